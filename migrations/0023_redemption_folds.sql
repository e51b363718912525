-- 0023: redemptions folded like issues (issue 19: segments over redemptions, and the
-- cost of keeping the report figures at checkout).
--
-- 0019 kept the redemption figures by triggers that updated the rollups in the
-- redemption's own statement. Every redemption of a group on a day updated the same
-- report_redemption_days row and upserted a report_redeemer_days row, while
-- checkout_redeem held the group's redemption_counts row locked: concurrent redemptions
-- of one group queued behind that longer critical section (the `bench metrics` redeem
-- phase measured them ~19% slower than without the triggers). Now the trigger only
-- appends each change (the old contribution taken back, the new one added) to two
-- narrow queue tables with no index, and the folders (reports.Service.FoldRedemptions,
-- segments.Service.FoldRedemptions; run by every worker each SEGMENT_FOLD_INTERVAL and
-- by a report or a segment answer that finds a short queue) consume them:
--
--   DELETE FROM queue RETURNING … feeding the rollup upserts, in one statement.
--
-- A change is folded exactly once: the delete and the rollup update commit together.
-- A change still uncommitted is invisible to the fold and left for the next one. The
-- fold consumes every change its snapshot sees, so the rollups are exact as of the
-- start of its statement (recorded as as_of): a -1 (a refund, a cancelled hold) is
-- committed after the +1 it takes back, so it is never folded before it.

-- Changes waiting for the report folder: one row per contribution, signed.
CREATE TABLE report_redemption_changes (
    group_id     bigint NOT NULL,
    day          date   NOT NULL,
    mailing_id   bigint NOT NULL,
    code_id      bigint NOT NULL,
    utm_source   text   NOT NULL,
    currency     text   NOT NULL,
    customer_id  text   COLLATE "C" NOT NULL,
    -- The issue of the unique code and when the redemption was made: the fold reads the
    -- issue's time for the delay from issue to use.
    issue_id     bigint,
    created_at   timestamptz NOT NULL,
    uses         bigint NOT NULL,
    revenue      bigint NOT NULL,
    discount     bigint NOT NULL,
    refunds      bigint NOT NULL,
    refunded     bigint NOT NULL,
    failed       bigint NOT NULL
);
-- Changes to uses, waiting for the segment folder: who used a group's code when (+1),
-- or no longer counts as a use (-1: refunded, or a redemption removed).
CREATE TABLE segment_redemption_changes (
    group_id     bigint      NOT NULL,
    customer_id  text        COLLATE "C" NOT NULL,
    used_at      timestamptz NOT NULL,
    n            integer     NOT NULL CHECK (n IN (-1, 1))
);
-- Queues: rows come and go all day; vacuum them often so the folds' scans stay short.
ALTER TABLE report_redemption_changes SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000);
ALTER TABLE segment_redemption_changes SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000);

-- The instant the redemption rollups are complete to: the start of the last fold (its
-- own row, so that a fold of issues, which locks report_fold, does not make a report
-- skip the redemptions).
CREATE TABLE report_redemption_fold (
    one    boolean     PRIMARY KEY DEFAULT true CHECK (one),
    as_of  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO report_redemption_fold DEFAULT VALUES;

-- A report_redeemer_days row whose uses fall to 0 is deleted by the fold (in the same
-- statement as the others are updated), so the constraint stays.

-- The delays from a mailing's issue of a code to its use, per group, day and mailing, in
-- microseconds, with how many uses took each: the report's median time to redeem is
-- read from one index range (it scanned the group's redemptions joined to their issues:
-- seconds for a large group). Folded with the other rollups.
CREATE TABLE report_redemption_delays (
    group_id    bigint NOT NULL,
    day         date   NOT NULL,
    mailing_id  bigint NOT NULL,
    micros      bigint NOT NULL,
    uses        bigint NOT NULL CHECK (uses > 0),
    PRIMARY KEY (group_id, day, mailing_id, micros) INCLUDE (uses)
);

-- The trigger: what 0019's report_redemption_add computed, appended instead of applied.
-- Only redemptions that count (succeeded, refunded, failed; with a group) have a
-- contribution; only succeeded ones are uses.
DROP TRIGGER redemptions_report_insert ON redemptions;
DROP TRIGGER redemptions_report_update ON redemptions;
DROP TRIGGER redemptions_report_delete ON redemptions;
DROP FUNCTION redemptions_report();
DROP FUNCTION report_redemption_add(redemptions, int);

CREATE FUNCTION redemption_change_queue(r redemptions, s int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    kept boolean;
BEGIN
    IF r.group_id IS NULL OR r.status NOT IN ('succeeded', 'refunded', 'failed') THEN
        RETURN;
    END IF;
    kept := r.status IN ('succeeded', 'refunded');
    INSERT INTO report_redemption_changes (group_id, day, mailing_id, code_id, utm_source, currency, customer_id,
                                           issue_id, created_at, uses, revenue, discount, refunds, refunded, failed)
    VALUES (r.group_id, report_day(r.created_at), coalesce(r.mailing_id, 0),
            CASE WHEN r.kind = 'shared' THEN r.code_id ELSE 0 END, r.utm_source, r.currency, r.customer_id,
            r.issue_id, r.created_at,
            s * (r.status = 'succeeded')::int,
            s * CASE WHEN r.status = 'succeeded' THEN r.order_amount ELSE 0 END,
            s * CASE WHEN kept THEN r.discount_amount - r.refunded_amount ELSE 0 END,
            s * (r.status = 'refunded')::int,
            s * CASE WHEN kept THEN r.refunded_amount ELSE 0 END,
            s * (r.status = 'failed')::int);
    IF r.status = 'succeeded' THEN
        INSERT INTO segment_redemption_changes (group_id, customer_id, used_at, n)
        VALUES (r.group_id, r.customer_id, r.created_at, s);
    END IF;
END $$;

CREATE FUNCTION redemptions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM redemption_change_queue(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM redemption_change_queue(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
-- Same triggers and conditions as 0019 (an update that changes no counted column does
-- not call the function).
CREATE TRIGGER redemptions_report_insert AFTER INSERT ON redemptions
    FOR EACH ROW EXECUTE FUNCTION redemptions_changed();
CREATE TRIGGER redemptions_report_update AFTER UPDATE ON redemptions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.refunded_amount IS DISTINCT FROM NEW.refunded_amount
        OR OLD.discount_amount IS DISTINCT FROM NEW.discount_amount OR OLD.order_amount IS DISTINCT FROM NEW.order_amount
        OR OLD.group_id IS DISTINCT FROM NEW.group_id OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.mailing_id IS DISTINCT FROM NEW.mailing_id OR OLD.code_id IS DISTINCT FROM NEW.code_id
        OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.utm_source IS DISTINCT FROM NEW.utm_source
        OR OLD.currency IS DISTINCT FROM NEW.currency OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION redemptions_changed();
CREATE TRIGGER redemptions_report_delete AFTER DELETE ON redemptions
    FOR EACH ROW EXECUTE FUNCTION redemptions_changed();

-- Segments over redemptions (the "redeemed" filter). Uses are succeeded redemptions (a
-- hold once confirmed; a refunded one no longer counts), at the instant the redemption
-- was made (created_at), as the reports count them.

-- The instant the summaries below are complete to.
CREATE TABLE segment_redemption_fold (
    one    boolean     PRIMARY KEY DEFAULT true CHECK (one),
    as_of  timestamptz NOT NULL DEFAULT now()
);

-- Per (group, customer): the uses of the group's codes and their instants, newest first
-- (cardinality(used_at) = n_uses). "At least k uses since T" is used_at[k] >= T; a
-- bounded window counts the array's elements inside it. A row exists while n_uses > 0.
CREATE TABLE segment_redeemers (
    group_id  bigint        NOT NULL,
    cust      bigint        NOT NULL,
    n_uses    integer       NOT NULL CHECK (n_uses > 0),
    used_at   timestamptz[] NOT NULL CHECK (cardinality(used_at) = n_uses),
    PRIMARY KEY (group_id, cust) INCLUDE (n_uses)
);
-- "Redeemed from G since T" (the reminder's "and not redeemed"): one index range.
CREATE INDEX segment_redeemers_last ON segment_redeemers (group_id, (used_at[1])) INCLUDE (cust);

-- Per customer over all groups: the same, for filters without groups.
CREATE TABLE segment_redeemer_customers (
    cust     bigint        PRIMARY KEY,
    n_uses   integer       NOT NULL CHECK (n_uses > 0),
    used_at  timestamptz[] NOT NULL CHECK (cardinality(used_at) = n_uses)
);
CREATE INDEX segment_redeemer_customers_last ON segment_redeemer_customers ((used_at[1]));

ALTER TABLE segment_redeemers SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);
ALTER TABLE segment_redeemer_customers SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);

-- The bitmaps (0010) get two kinds: 4, key = a group id: customers with a use of the
-- group's codes; 5, key = k: customers with k uses over all groups (32: 32 or more).
ALTER TABLE segment_bits DROP CONSTRAINT segment_bits_kind_check;
ALTER TABLE segment_bits ADD CONSTRAINT segment_bits_kind_check CHECK (kind IN (1, 2, 3, 4, 5));

-- A release rebuilds the issue kinds (1-3) of its customers' chunks only: 0010's
-- segment_rebuild cleared every kind of the chunk, which would now drop their
-- redemption bits.
CREATE OR REPLACE FUNCTION segment_rebuild(custs bigint[], upto timestamptz) RETURNS void
LANGUAGE sql AS $$
    SELECT segment_rebuild_summaries(custs, upto);
    UPDATE segment_bits s SET bits = s.bits & ~m.mask
    FROM (SELECT cust / 4096 AS chunk, bit_or(segment_bit(cust)) AS mask FROM unnest(custs) cust GROUP BY 1) m
    WHERE s.chunk = m.chunk AND s.kind IN (1, 2, 3);
    SELECT segment_bits_set(custs);
$$;

-- The redemptions made before this migration: their summaries and bits, as of now. The
-- share lock keeps checkout from committing a redemption between this snapshot and the
-- new trigger (it waits for this migration's commit).
LOCK TABLE redemptions IN SHARE MODE;
INSERT INTO customers (id)
SELECT DISTINCT customer_id FROM redemptions WHERE status = 'succeeded' AND group_id IS NOT NULL
ON CONFLICT (id) DO NOTHING;
INSERT INTO segment_redeemers (group_id, cust, n_uses, used_at)
SELECT r.group_id, c.num, count(*), array_agg(r.created_at ORDER BY r.created_at DESC)
FROM redemptions r JOIN customers c ON c.id = r.customer_id
WHERE r.status = 'succeeded' AND r.group_id IS NOT NULL
GROUP BY 1, 2;
INSERT INTO segment_redeemer_customers (cust, n_uses, used_at)
SELECT cust, count(*), array_agg(t ORDER BY t DESC)
FROM segment_redeemers, unnest(used_at) t
GROUP BY cust;
INSERT INTO segment_bits AS s (kind, key, chunk, bits)
SELECT kind, key, cust / 4096, bit_or(segment_bit(cust))
FROM (SELECT 4::smallint AS kind, group_id AS key, cust FROM segment_redeemers
      UNION ALL
      SELECT 5::smallint, least(n_uses, 32), cust FROM segment_redeemer_customers) e
GROUP BY 1, 2, 3
ON CONFLICT (kind, key, chunk) DO UPDATE SET bits = s.bits | excluded.bits;
INSERT INTO segment_redemption_fold DEFAULT VALUES;
INSERT INTO report_redemption_delays (group_id, day, mailing_id, micros, uses)
SELECT r.group_id, report_day(r.created_at), r.mailing_id,
       (extract(epoch FROM r.created_at - i.issued_at) * 1000000)::bigint, count(*)
FROM redemptions r JOIN issues i ON i.id = r.issue_id
WHERE r.status = 'succeeded' AND r.mailing_id IS NOT NULL AND r.group_id IS NOT NULL
GROUP BY 1, 2, 3, 4;
