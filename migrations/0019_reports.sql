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

-- Redemptions (0017, package checkout). Redemptions come one order at a time, not in
-- batches of thousands: their figures are counters kept in the redemption's own
-- statement by the triggers below, which add each changed row's new contribution and
-- take back its old one. The row they write is keyed by the group (and day), whose
-- redemption_counts row checkout_redeem already holds locked until commit, so they add
-- no wait between redemptions; `promopool bench metrics` measures what they cost.
-- A redemption counts on the UTC day it was made (created_at), whatever happens to it
-- later: a confirmation or a refund changes that day's figures.
--   uses:     succeeded (a hold not yet confirmed, a cancelled or expired hold, a
--             refunded redemption and a refusal are not uses);
--   revenue:  the order amounts of the uses;
--   discount: the discount given and kept (succeeded or refunded, minus refunds: what
--             the budget spent);
--   refunds:  redemptions refunded (status refunded); refunded: the discount given back;
--   failed:   refused attempts.
-- code_id is the promotion code of a shared group (the partners' codes), 0 for unique
-- codes; mailing_id the mailing that issued the unique code, 0 otherwise.
CREATE TABLE report_redemption_days (
    group_id    bigint NOT NULL,
    day         date   NOT NULL,
    mailing_id  bigint NOT NULL DEFAULT 0,
    code_id     bigint NOT NULL DEFAULT 0,
    utm_source  text   NOT NULL DEFAULT '',
    currency    text   NOT NULL,
    uses        bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revenue     bigint NOT NULL DEFAULT 0 CHECK (revenue >= 0),
    discount    bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    refunds     bigint NOT NULL DEFAULT 0 CHECK (refunds >= 0),
    refunded    bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    failed      bigint NOT NULL DEFAULT 0 CHECK (failed >= 0),
    PRIMARY KEY (group_id, day, mailing_id, code_id, utm_source, currency)
);

-- Who redeemed (succeeded) per group and day, and how often: unique customers over any
-- period are a count of distinct customer_id over one index range (index-only), and
-- the segment filter "redeemed" reads it. A row whose uses fell to 0 is deleted.
CREATE TABLE report_redeemer_days (
    group_id     bigint NOT NULL,
    day          date   NOT NULL,
    customer_id  text   COLLATE "C" NOT NULL,
    uses         bigint NOT NULL CHECK (uses > 0),
    PRIMARY KEY (group_id, day, customer_id)
);
CREATE INDEX report_redeemer_days_customer ON report_redeemer_days (customer_id, group_id, day);

-- report_redemption_add adds s (1 or -1) times one redemption's contribution. A negative
-- one goes to its row by UPDATE: the row exists (the contribution was added when the
-- redemption took its current state, by a committed transaction: the redemption's row is
-- locked by the statement changing it now). A positive one updates the row, or inserts
-- it (ON CONFLICT: a concurrent first redemption of the key).
CREATE FUNCTION report_redemption_add(r redemptions, s int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k_day      date   := report_day(r.created_at);
    k_mailing  bigint := coalesce(r.mailing_id, 0);
    k_code     bigint := CASE WHEN r.kind = 'shared' THEN r.code_id ELSE 0 END;
    kept       boolean := r.status IN ('succeeded', 'refunded');
    d_uses     bigint := s * (r.status = 'succeeded')::int;
    d_revenue  bigint := s * CASE WHEN r.status = 'succeeded' THEN r.order_amount ELSE 0 END;
    d_discount bigint := s * CASE WHEN kept THEN r.discount_amount - r.refunded_amount ELSE 0 END;
    d_refunds  bigint := s * (r.status = 'refunded')::int;
    d_refunded bigint := s * CASE WHEN kept THEN r.refunded_amount ELSE 0 END;
    d_failed   bigint := s * (r.status = 'failed')::int;
BEGIN
    IF r.group_id IS NULL OR r.status NOT IN ('succeeded', 'refunded', 'failed') THEN
        RETURN;
    END IF;
    UPDATE report_redemption_days d SET uses = d.uses + d_uses, revenue = d.revenue + d_revenue,
           discount = d.discount + d_discount, refunds = d.refunds + d_refunds,
           refunded = d.refunded + d_refunded, failed = d.failed + d_failed
     WHERE d.group_id = r.group_id AND d.day = k_day AND d.mailing_id = k_mailing AND d.code_id = k_code
       AND d.utm_source = r.utm_source AND d.currency = r.currency;
    IF NOT FOUND THEN
        INSERT INTO report_redemption_days AS d (group_id, day, mailing_id, code_id, utm_source, currency,
                                                 uses, revenue, discount, refunds, refunded, failed)
        VALUES (r.group_id, k_day, k_mailing, k_code, r.utm_source, r.currency,
                d_uses, d_revenue, d_discount, d_refunds, d_refunded, d_failed)
        ON CONFLICT (group_id, day, mailing_id, code_id, utm_source, currency) DO UPDATE SET
            uses = d.uses + excluded.uses, revenue = d.revenue + excluded.revenue,
            discount = d.discount + excluded.discount, refunds = d.refunds + excluded.refunds,
            refunded = d.refunded + excluded.refunded, failed = d.failed + excluded.failed;
    END IF;
    IF r.status = 'succeeded' AND s > 0 THEN
        INSERT INTO report_redeemer_days AS d (group_id, day, customer_id, uses)
        VALUES (r.group_id, k_day, r.customer_id, 1)
        ON CONFLICT (group_id, day, customer_id) DO UPDATE SET uses = d.uses + 1;
    ELSIF r.status = 'succeeded' THEN
        UPDATE report_redeemer_days d SET uses = d.uses - 1
         WHERE d.group_id = r.group_id AND d.day = k_day AND d.customer_id = r.customer_id AND d.uses > 1;
        IF NOT FOUND THEN
            DELETE FROM report_redeemer_days d
             WHERE d.group_id = r.group_id AND d.day = k_day AND d.customer_id = r.customer_id;
        END IF;
    END IF;
END $$;

-- Row triggers: checkout writes one redemption per statement, and a row trigger passes
-- it without building transition tables. An update that changes no counted column
-- (updated_at, a webhook's bookkeeping) does not call the function.
CREATE FUNCTION redemptions_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_redemption_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM report_redemption_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER redemptions_report_insert AFTER INSERT ON redemptions
    FOR EACH ROW EXECUTE FUNCTION redemptions_report();
CREATE TRIGGER redemptions_report_update AFTER UPDATE ON redemptions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.refunded_amount IS DISTINCT FROM NEW.refunded_amount
        OR OLD.discount_amount IS DISTINCT FROM NEW.discount_amount OR OLD.order_amount IS DISTINCT FROM NEW.order_amount
        OR OLD.group_id IS DISTINCT FROM NEW.group_id OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.mailing_id IS DISTINCT FROM NEW.mailing_id OR OLD.code_id IS DISTINCT FROM NEW.code_id
        OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.utm_source IS DISTINCT FROM NEW.utm_source
        OR OLD.currency IS DISTINCT FROM NEW.currency OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION redemptions_report();
CREATE TRIGGER redemptions_report_delete AFTER DELETE ON redemptions
    FOR EACH ROW EXECUTE FUNCTION redemptions_report();

-- Redemptions made before this migration.
SELECT report_redemption_add(r, 1) FROM redemptions r;
