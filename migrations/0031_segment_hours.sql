-- 0031: windowed segment counts from hourly summaries (issue 22, target 3).
--
-- A window the per-customer summaries cannot answer (a bounded window, a count per group
-- within a window, kind "all" within a window, more than five issues in a window) read
-- the window's history: an index-only scan of issues_issued_at over every group's issues
-- of the window (2.6M entries for a quarter at 10M issues a year), filtered to the
-- groups asked for, then a hash join over every customer to number them (0.4-0.5 s of
-- its own). "At least 2 of G05 in a bounded quarter" took 0.5-2.4 s.
--
-- segment_hours holds, per (group, hour, customer), the folded live issues of that hour:
-- a window's whole hours are one index range per group, already numbered by customer, and
-- only the partial hours at its ends (at most two, a few thousand issues) are read from
-- the history. The folder appends the rows in the statement that updates the other
-- summaries (so they are exact as of segment_fold.folded_to, the answers' as_of), and a
-- release appends the released issues' rows with negative counts in the same transaction.
--
-- Append only: no key is unique, a (group, hour, customer) may have several rows (one per
-- fold that saw its issues, and the releases'), and readers sum them. Keyed by (group,
-- hour) alone, a mailing's rows are appended at the end of its group's current hour, and
-- nothing is looked up before an insert. A unique (group, hour, customer) key upserted
-- by the fold (this migration's first version) cost the fold 35-43% of its rate in
-- `bench mailing` (18.5k -> 10.5k and 43.8k -> 29.0k issues/s in two pairs).
--
-- Why not an index on issues (group_id, issued_at): it is one more entry on every issue
-- the claim inserts, on the hottest path, and still leaves the join that numbers the
-- customers; the fold appends these rows in batches, off the claim.

-- The folder holds this row while it folds: the backfill below waits for a fold in
-- progress and no fold (or release of a folded issue) runs before this commits.
SET LOCAL work_mem = '256MB';
SELECT folded_to FROM segment_fold FOR UPDATE;

-- The hour of an instant: hours since 1970-01-01 00:00 UTC (independent of TimeZone).
CREATE FUNCTION segment_hour(t timestamptz) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT floor(extract(epoch FROM t) / 3600)::integer $$;

CREATE TABLE segment_hours (
    group_id   bigint  NOT NULL,
    hour       integer NOT NULL,
    cust       bigint  NOT NULL,
    -- Negative for a release (-1 initial issue); a (group, hour, customer)'s rows sum to
    -- its live issues.
    n_initial  integer NOT NULL,
    n_repeat   integer NOT NULL CHECK (n_repeat >= 0),
    CHECK (n_initial <> 0 OR n_repeat <> 0)
);

-- The issues folded so far (all of them on an existing install: 0006's first fold).
INSERT INTO segment_hours (group_id, hour, cust, n_initial, n_repeat)
SELECT i.group_id, segment_hour(i.issued_at), c.num,
       count(*) FILTER (WHERE i.kind = 'initial'), count(*) FILTER (WHERE i.kind = 'repeat')
FROM issues i JOIN customers c ON c.id = i.customer_id
WHERE i.issued_at < (SELECT folded_to FROM segment_fold) AND i.released_at IS NULL
GROUP BY 1, 2, 3
ORDER BY 1, 2;

-- Covering: a window's rows of a group are one index-only range, in hour order.
CREATE INDEX segment_hours_range ON segment_hours (group_id, hour) INCLUDE (cust, n_initial, n_repeat);
ALTER TABLE segment_hours SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);

-- A release of folded issues (0006's trigger function, extended): the customers'
-- summaries and bits are rebuilt as before, and each issue that this statement released
-- (its released_at was NULL before: an update of an already released row changes
-- nothing) gets a row of -1 in its hour. The trigger now also reads the rows as they were.
CREATE OR REPLACE FUNCTION issues_segment_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    upto timestamptz;
    custs bigint[];
BEGIN
    SELECT folded_to INTO upto FROM segment_fold FOR SHARE;
    SELECT array_agg(DISTINCT c.num) INTO custs
    FROM released r JOIN customers c ON c.id = r.customer_id
    WHERE r.issued_at < upto AND r.released_at IS NOT NULL;
    IF custs IS NOT NULL THEN
        PERFORM segment_rebuild(custs, upto);
        INSERT INTO segment_hours (group_id, hour, cust, n_initial, n_repeat)
        SELECT r.group_id, segment_hour(r.issued_at), c.num, -count(*), 0
        FROM released r JOIN unreleased o ON o.id = r.id JOIN customers c ON c.id = r.customer_id
        WHERE r.issued_at < upto AND r.released_at IS NOT NULL AND o.released_at IS NULL AND r.kind = 'initial'
        GROUP BY 1, 2, 3;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER issues_segment_release ON issues;
CREATE TRIGGER issues_segment_release AFTER UPDATE ON issues
    REFERENCING OLD TABLE AS unreleased NEW TABLE AS released
    FOR EACH STATEMENT EXECUTE FUNCTION issues_segment_release();

-- The number of customers, for counts that are complements (a NOT at the top, "never
-- issued", a count that accepts zero: every customer minus the bits of what they
-- exclude). count(*) over customers scanned every customer: 50-190 ms of the 54-98 ms
-- and more such counts took at 1M customers, against ~10 ms for their bitmaps. Each
-- statement that inserts customers appends the number it inserted, in its own
-- transaction (so the sum is exact in every snapshot); the folder
-- (segments.Service.Fold) replaces the rows it sees by their sum, as the redemption
-- queue is consumed, so a count sums a handful of rows. Inserts only: concurrent
-- writers of customers never wait on each other here.
CREATE TABLE segment_customer_counts (
    n  bigint NOT NULL CHECK (n > 0)
);
ALTER TABLE segment_customer_counts SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);

CREATE FUNCTION customers_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k bigint;
BEGIN
    SELECT count(*) INTO k FROM added;
    IF k > 0 THEN
        INSERT INTO segment_customer_counts (n) VALUES (k);
    END IF;
    RETURN NULL;
END $$;

-- No customer is inserted between the count below and the trigger (the share lock waits
-- for writers in progress and holds new ones until this commits).
LOCK TABLE customers IN SHARE MODE;
CREATE TRIGGER customers_counted AFTER INSERT ON customers
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION customers_counted();
INSERT INTO segment_customer_counts (n) SELECT count(*) FROM customers HAVING count(*) > 0;
