-- Reports (issue 19, performance): rollups a group's report and the portfolio read in a
-- few rows per group and day, instead of every mailing's, code's and customer's row.
--
-- report_issue_group_days: the live issues of a group and UTC day (all mailings), kept
-- beside report_issue_days by the issue fold and by the release trigger.
-- report_redemption_group_days: the redemption figures of a group, UTC day and currency
-- (all mailings, codes and sources), kept beside report_redemption_days by the fold of
-- the redemption change queue.
-- report_redeemer_last_days: how many customers used a group's codes last on each UTC
-- day (a customer's last day is the latest of their report_redeemer_days). Customers
-- with a use in [from, to] are those whose last use is on or after from, whenever no
-- use of the group is later than to — every period that ends today — so unique
-- customers are a sum over the period's days, exactly.

-- The folders hold these rows while they fold: the backfill below waits for a fold in
-- progress and no fold starts before this migration commits.
-- The backfills group millions of rows on a large history: sort and hash in memory.
SET LOCAL work_mem = '256MB';
SELECT folded_to FROM report_fold FOR UPDATE;
SELECT as_of FROM report_redemption_fold FOR UPDATE;

CREATE TABLE report_issue_group_days (
    group_id  bigint NOT NULL,
    day       date   NOT NULL,
    initial   bigint NOT NULL DEFAULT 0 CHECK (initial >= 0),
    repeat    bigint NOT NULL DEFAULT 0 CHECK (repeat >= 0),
    direct    bigint NOT NULL DEFAULT 0 CHECK (direct >= 0 AND direct <= initial),
    PRIMARY KEY (group_id, day) INCLUDE (initial, repeat, direct)
);
INSERT INTO report_issue_group_days (group_id, day, initial, repeat, direct)
SELECT group_id, day, sum(initial), sum(repeat), coalesce(sum(initial) FILTER (WHERE mailing_id = 0), 0)
FROM report_issue_days GROUP BY 1, 2 ORDER BY 1, 2;

CREATE TABLE report_redemption_group_days (
    group_id  bigint NOT NULL,
    day       date   NOT NULL,
    currency  text   NOT NULL,
    uses      bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revenue   bigint NOT NULL DEFAULT 0 CHECK (revenue >= 0),
    discount  bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    refunds   bigint NOT NULL DEFAULT 0 CHECK (refunds >= 0),
    refunded  bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    failed    bigint NOT NULL DEFAULT 0 CHECK (failed >= 0),
    PRIMARY KEY (group_id, day, currency) INCLUDE (uses, revenue, discount)
);
INSERT INTO report_redemption_group_days (group_id, day, currency, uses, revenue, discount, refunds, refunded, failed)
SELECT group_id, day, currency, sum(uses), sum(revenue), sum(discount), sum(refunds), sum(refunded), sum(failed)
FROM report_redemption_days GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

CREATE TABLE report_redeemer_last_days (
    group_id   bigint NOT NULL,
    day        date   NOT NULL,
    customers  bigint NOT NULL CHECK (customers >= 0),
    PRIMARY KEY (group_id, day) INCLUDE (customers)
);
INSERT INTO report_redeemer_last_days (group_id, day, customers)
SELECT group_id, last, count(*)
FROM (SELECT group_id, customer_id, max(day) AS last FROM report_redeemer_days GROUP BY 1, 2) c
GROUP BY 1, 2 ORDER BY 1, 2;

-- A release of a folded issue takes its count back from both issue rollups.
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
    )
    UPDATE report_issue_days d SET initial = d.initial - r.n
    FROM r
    WHERE d.group_id = r.group_id AND d.day = r.day AND d.mailing_id = r.mailing_id;
    RETURN NULL;
END $$;

ANALYZE report_issue_group_days, report_redemption_group_days, report_redeemer_last_days;
