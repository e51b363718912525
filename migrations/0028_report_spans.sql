-- Reports (issue 19, performance): dyadic spans of days for the parts of a group's
-- report that are per mailing or per promotion code. 0027's per-group day rows answer the
-- cards and the charts in a row per day, but the mailings' issues, redemptions and
-- revenue and the codes' uses by source were still sums over a row per mailing (code,
-- source) and day: 18,000 + 16,000 rows for a group of 200 daily mailings over 90 days.

-- The folders hold these rows while they fold: the backfill below waits for a fold in
-- progress and no fold starts before this migration commits.
-- The backfills group millions of rows on a large history: sort and hash in memory.
SET LOCAL work_mem = '256MB';
SELECT folded_to FROM report_fold FOR UPDATE;
SELECT as_of FROM report_redemption_fold FOR UPDATE;

-- Dyadic spans: a mailing's (and a code's) sums over aligned blocks of 2, 4, … 1,024
-- days (level k, block = the day's number since 2000-01-01 shifted right by k). Any
-- period is at most two blocks per level, so a group's per-mailing figures over 90
-- days read about a dozen rows per mailing (and the edge days from the day rows)
-- instead of one per mailing and day.
CREATE FUNCTION report_block(d date, k int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (d - date '2000-01-01') >> k $$;

CREATE TABLE report_issue_mailing_spans (
    group_id    bigint   NOT NULL,
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 10),
    block       integer  NOT NULL,
    mailing_id  bigint   NOT NULL CHECK (mailing_id <> 0),
    initial     bigint   NOT NULL CHECK (initial >= 0),
    PRIMARY KEY (group_id, level, block, mailing_id) INCLUDE (initial)
);
INSERT INTO report_issue_mailing_spans (group_id, level, block, mailing_id, initial)
SELECT group_id, k, report_block(day, k), mailing_id, sum(initial)
FROM report_issue_days CROSS JOIN generate_series(1, 10) k
WHERE mailing_id <> 0
GROUP BY 1, 2, 3, 4 HAVING sum(initial) > 0 ORDER BY 1, 2, 3, 4;

-- Sums of the report_redemption_days rows of a mailing or a promotion code (the others
-- are not broken down); no CHECK: the fold adds signed changes with an upsert.
CREATE TABLE report_redemption_spans (
    group_id    bigint   NOT NULL,
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 10),
    block       integer  NOT NULL,
    mailing_id  bigint   NOT NULL,
    code_id     bigint   NOT NULL,
    utm_source  text     NOT NULL,
    uses        bigint   NOT NULL,
    revenue     bigint   NOT NULL,
    discount    bigint   NOT NULL,
    PRIMARY KEY (group_id, level, block, mailing_id, code_id, utm_source) INCLUDE (uses, revenue, discount)
);
INSERT INTO report_redemption_spans (group_id, level, block, mailing_id, code_id, utm_source, uses, revenue, discount)
SELECT group_id, k, report_block(day, k), mailing_id, code_id, utm_source, sum(uses), sum(revenue), sum(discount)
FROM report_redemption_days CROSS JOIN generate_series(1, 10) k
WHERE mailing_id <> 0 OR code_id <> 0
GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6;

-- A release of a folded issue takes its count back from every issue rollup (0027's and
-- the spans).
CREATE OR REPLACE FUNCTION issues_report_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    upto timestamptz;
BEGIN
    SELECT folded_to INTO upto FROM report_fold FOR SHARE;
    WITH r AS MATERIALIZED (
        SELECT a.group_id, report_day(a.issued_at) AS day, coalesce(a.mailing_id, 0) AS mailing_id, count(*) AS n
        FROM released_after a JOIN released_before b ON b.id = a.id
        WHERE b.released_at IS NULL AND a.released_at IS NOT NULL AND a.kind = 'initial'
          AND a.issued_at < upto
        GROUP BY 1, 2, 3
    ), g AS (
        UPDATE report_issue_group_days d SET initial = d.initial - x.n, direct = d.direct - x.direct
        FROM (SELECT group_id, day, sum(n) AS n, coalesce(sum(n) FILTER (WHERE mailing_id = 0), 0) AS direct
              FROM r GROUP BY 1, 2) x
        WHERE d.group_id = x.group_id AND d.day = x.day
    ), s AS (
        UPDATE report_issue_mailing_spans d SET initial = d.initial - x.n
        FROM (SELECT group_id, k AS level, report_block(day, k) AS block, mailing_id, sum(n) AS n
              FROM r CROSS JOIN generate_series(1, 10) k WHERE mailing_id <> 0 GROUP BY 1, 2, 3, 4) x
        WHERE d.group_id = x.group_id AND d.level = x.level AND d.block = x.block AND d.mailing_id = x.mailing_id
    )
    UPDATE report_issue_days d SET initial = d.initial - r.n
    FROM r
    WHERE d.group_id = r.group_id AND d.day = r.day AND d.mailing_id = r.mailing_id;
    RETURN NULL;
END $$;

ANALYZE report_issue_mailing_spans, report_redemption_spans;
