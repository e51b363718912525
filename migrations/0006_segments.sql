-- 0006: what the segment builder's filters read (SPEC §6).
--
-- A GROUP BY over tens of millions of issues takes seconds; counters kept per customer and
-- per (group, customer) answer in milliseconds. They are not updated by the claim itself
-- (that would put two upserts on every issue of a mailing and make concurrent mailings wait
-- on each other's customers): a folder (segments.Fold, run by the worker every few seconds
-- and by a query that finds a small tail) adds the issues between segment_fold.folded_to
-- and a horizon below which every issue is committed. Filters answer as of folded_to.
--
-- The horizon: issued_at defaults to clock_timestamp() and every statement that inserts
-- issues first takes a shared advisory lock for its transaction (issues_writer below). A
-- transaction not holding that lock when the folder looks will stamp its rows later than
-- that moment; one holding it stamps them no earlier than its own start. So nothing can
-- still appear below min(now, xact_start of the lock holders).

ALTER TABLE issues ALTER COLUMN issued_at SET DEFAULT clock_timestamp();

CREATE FUNCTION issues_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Keyed by schema: schemas (tests, benchmarks) do not hold back each other's folds.
    PERFORM pg_advisory_xact_lock_shared(1660060006, hashtext(current_schema()));
    RETURN NULL;
END $$;
CREATE TRIGGER issues_writer BEFORE INSERT ON issues
    FOR EACH STATEMENT EXECUTE FUNCTION issues_writer();

-- The fold reads issues by time; the history fallback of time windows does too
-- (index-only: the columns a filter needs are included).
CREATE INDEX issues_issued_at ON issues (issued_at) INCLUDE (customer_id, group_id, kind)
    WHERE released_at IS NULL;

-- A dense number per customer: the summaries and the set algebra of filters work on
-- bigints, and it is the stable paging cursor. Customers issued a code but never upserted
-- are added by the fold (with empty fields), so "= 0" and NOT see every customer.
ALTER TABLE customers ADD COLUMN num bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX customers_num ON customers (num);

CREATE TABLE segment_fold (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    folded_to  timestamptz NOT NULL DEFAULT '1900-01-01'
);
INSERT INTO segment_fold DEFAULT VALUES;

-- Per (group, customer): counts and latest times of the issues folded (released ones
-- excluded). A row exists only while one of the counts is positive.
CREATE TABLE segment_groups (
    group_id         bigint      NOT NULL,
    cust             bigint      NOT NULL,
    n_initial        integer     NOT NULL,
    n_repeat         integer     NOT NULL,
    last_initial_at  timestamptz,
    last_at          timestamptz NOT NULL,
    -- Covering: a group's customers, counts and latest time by index-only scans, in
    -- customer order (merge joins between groups).
    PRIMARY KEY (group_id, cust) INCLUDE (n_initial, n_repeat, last_at)
);
CREATE INDEX segment_groups_initial ON segment_groups (group_id, cust) INCLUDE (last_initial_at)
    WHERE n_initial > 0;

-- Per customer over all groups, with the times of the five latest initial issues, newest
-- first: "at least k initial issues since T" (k ≤ 5) is recent_initial[k] >= T, one index
-- range scan; and the groups it was issued a code from (sorted), so that ORs and ANDs of
-- per-customer conditions are one pass over this table.
CREATE TABLE segment_customers (
    cust            bigint        PRIMARY KEY,
    n_initial       integer       NOT NULL,
    n_all           integer       NOT NULL,
    recent_initial  timestamptz[] NOT NULL DEFAULT '{}',
    groups_initial  bigint[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX segment_customers_initial ON segment_customers (n_initial, cust);
CREATE INDEX segment_customers_all ON segment_customers (n_all, cust);
CREATE INDEX segment_customers_recent1 ON segment_customers ((recent_initial[1]));
CREATE INDEX segment_customers_recent2 ON segment_customers ((recent_initial[2]));
CREATE INDEX segment_customers_recent3 ON segment_customers ((recent_initial[3]));
CREATE INDEX segment_customers_recent4 ON segment_customers ((recent_initial[4]));
CREATE INDEX segment_customers_recent5 ON segment_customers ((recent_initial[5]));

-- The folder rewrites summary rows all day and the counts are index-only scans, 2-3x
-- slower until vacuum marks the updated pages all-visible again: vacuum them early.
ALTER TABLE segment_customers SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);
ALTER TABLE segment_groups SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);

-- segment_rebuild recomputes the summaries of the given customers from the issues below
-- upto: after a release (a code returned to the pool no longer counts).
CREATE FUNCTION segment_rebuild(custs bigint[], upto timestamptz) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM segment_groups WHERE cust = ANY (custs);
    DELETE FROM segment_customers WHERE cust = ANY (custs);
    INSERT INTO segment_groups (group_id, cust, n_initial, n_repeat, last_initial_at, last_at)
    SELECT i.group_id, c.num, count(*) FILTER (WHERE i.kind = 'initial'),
           count(*) FILTER (WHERE i.kind = 'repeat'),
           max(i.issued_at) FILTER (WHERE i.kind = 'initial'), max(i.issued_at)
    FROM customers c JOIN issues i ON i.customer_id = c.id
    WHERE c.num = ANY (custs) AND i.issued_at < upto AND i.released_at IS NULL
    GROUP BY i.group_id, c.num;
    INSERT INTO segment_customers (cust, n_initial, n_all, recent_initial, groups_initial)
    SELECT c.num, count(*) FILTER (WHERE i.kind = 'initial'), count(*),
           coalesce((array_agg(i.issued_at ORDER BY i.issued_at DESC)
                     FILTER (WHERE i.kind = 'initial'))[1:5], '{}'),
           coalesce(array_agg(DISTINCT i.group_id ORDER BY i.group_id) FILTER (WHERE i.kind = 'initial'), '{}')
    FROM customers c JOIN issues i ON i.customer_id = c.id
    WHERE c.num = ANY (custs) AND i.issued_at < upto AND i.released_at IS NULL
    GROUP BY c.num;
$$;

-- A release of an issue already folded rebuilds that customer's summaries. It reads the
-- watermark FOR SHARE: a fold in progress finishes first, so the rebuild sees its rows.
CREATE FUNCTION issues_segment_release() RETURNS trigger LANGUAGE plpgsql AS $$
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
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER issues_segment_release AFTER UPDATE ON issues
    REFERENCING NEW TABLE AS released
    FOR EACH STATEMENT EXECUTE FUNCTION issues_segment_release();
