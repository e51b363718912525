-- 0019: reports (SPEC §12). What a marketer reads first — issues per day, per mailing,
-- the balance over time — kept as daily rollups so that a group's figures over 90 days
-- sum a few hundred rows instead of scanning millions of issues.
--
-- Issues are not counted by the claim (a hot counter row per group would serialise
-- every batch of every mailing, as mailing_group_counts' comment recalls): like the
-- segment summaries (0006), a folder (reports.Service.Fold, run by the worker and by a
-- query that finds a short tail) adds the issues between report_fold.folded_to and the
-- horizon below which every issue is committed (the same writer lock as 0006). A release
-- of an issue already folded takes its count back in the releasing statement (trigger
-- below), so the rollups always equal a recount of the live issues below folded_to
-- (reports.TestMetricsEqualRecount).

CREATE TABLE report_fold (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    folded_to  timestamptz NOT NULL DEFAULT '1900-01-01'
);
INSERT INTO report_fold DEFAULT VALUES;

-- Live issues per group, mailing and UTC day. mailing_id 0: issues outside mailings
-- (direct issues, the render API). Keyed by group first: a group's period is one range.
CREATE TABLE report_issue_days (
    group_id    bigint  NOT NULL,
    day         date    NOT NULL,
    mailing_id  bigint  NOT NULL DEFAULT 0,
    initial     bigint  NOT NULL DEFAULT 0 CHECK (initial >= 0),
    repeat      bigint  NOT NULL DEFAULT 0 CHECK (repeat >= 0),
    PRIMARY KEY (group_id, day, mailing_id)
);
-- A mailing's issues across groups and days (its figures in the group report).
CREATE INDEX report_issue_days_mailing ON report_issue_days (mailing_id) WHERE mailing_id <> 0;

-- A group's counters as the folder saw them last on each UTC day: the balance chart. The
-- balance of a past day cannot be recomputed from the raw rows (expiry and undo change
-- it), so it is recorded as it is observed; a day with no row carries the previous one.
CREATE TABLE report_balance_days (
    group_id  bigint      NOT NULL,
    day       date        NOT NULL,
    total     bigint      NOT NULL CHECK (total >= 0),
    active    bigint      NOT NULL CHECK (active >= 0),
    issued    bigint      NOT NULL CHECK (issued >= 0),
    expired   bigint      NOT NULL CHECK (expired >= 0),
    seen_at   timestamptz NOT NULL,
    PRIMARY KEY (group_id, day)
);

-- report_day is the UTC day of an instant: the rollups' day, whatever the session's
-- time zone.
CREATE FUNCTION report_day(t timestamptz) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (t AT TIME ZONE 'UTC')::date $$;

-- A release (released_at set on a live initial issue) of an issue the folder already
-- counted takes it back. It reads the watermark FOR SHARE: a fold in progress commits
-- first (and counts the issue, which it still saw live), then this subtracts it.
CREATE FUNCTION issues_report_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    upto timestamptz;
BEGIN
    SELECT folded_to INTO upto FROM report_fold FOR SHARE;
    UPDATE report_issue_days d SET initial = d.initial - r.n
    FROM (SELECT a.group_id, report_day(a.issued_at) AS day, coalesce(a.mailing_id, 0) AS mailing_id, count(*) AS n
          FROM released_after a JOIN released_before b ON b.id = a.id
          WHERE b.released_at IS NULL AND a.released_at IS NOT NULL AND a.kind = 'initial'
            AND a.issued_at < upto
          GROUP BY 1, 2, 3) r
    WHERE d.group_id = r.group_id AND d.day = r.day AND d.mailing_id = r.mailing_id;
    RETURN NULL;
END $$;
CREATE TRIGGER issues_report_release AFTER UPDATE ON issues
    REFERENCING OLD TABLE AS released_before NEW TABLE AS released_after
    FOR EACH STATEMENT EXECUTE FUNCTION issues_report_release();
