-- 0010: segment counts from bitmaps of customer numbers.
-- Counting "issued from A and not from B" or "(2 to 5 codes) or from any of three
-- groups" over the summaries meant reading 300,000-600,000 index entries or summary rows
-- per count: 115-140 ms at 1,000,000 customers, and growing with them. segment_bits holds
-- the same facts as bitmaps, 4,096 customers (by customers.num) per row:
--   kind 1, key = a group id: customers with a live initial issue from that group;
--   kind 2, key = k: customers with k live initial issues (k = 32: 32 or more);
--   kind 3, key = k: the same for all issues (initial and repeat).
-- A count whose filter these answer (Service.Prepare decides) combines a few hundred rows
-- with &, | and & ~ per chunk and sums bit_count: milliseconds. The fold maintains them
-- in the same statement as the summaries, and segment_rebuild (a release) with them, so
-- they always agree (TestFiltersMatchModel compares both paths with a model).
CREATE TABLE segment_bits (
    kind   smallint  NOT NULL CHECK (kind IN (1, 2, 3)),
    key    bigint    NOT NULL,
    chunk  integer   NOT NULL,
    bits   bit(4096) NOT NULL,
    PRIMARY KEY (kind, key, chunk)
);
ALTER TABLE segment_bits SET (autovacuum_vacuum_scale_factor = 0.01);

-- segment_bit is the bitmap of one customer in its chunk (inlined by the planner).
CREATE FUNCTION segment_bit(cust bigint) RETURNS bit(4096) LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT set_bit(B'0'::bit(4096), (cust % 4096)::integer, 1) $$;

-- segment_bits_set adds the bits the summaries give the customers (after segment_rebuild
-- or at this migration: all of them when custs is null).
CREATE FUNCTION segment_bits_set(custs bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO segment_bits AS s (kind, key, chunk, bits)
    SELECT kind, key, cust / 4096, bit_or(segment_bit(cust))
    FROM (SELECT 1::smallint AS kind, group_id AS key, cust FROM segment_groups
          WHERE n_initial > 0 AND (custs IS NULL OR cust = ANY (custs))
          UNION ALL
          SELECT 2::smallint, least(n_initial, 32), cust FROM segment_customers
          WHERE n_initial > 0 AND (custs IS NULL OR cust = ANY (custs))
          UNION ALL
          SELECT 3::smallint, least(n_all, 32), cust FROM segment_customers
          WHERE n_all > 0 AND (custs IS NULL OR cust = ANY (custs))) e
    GROUP BY 1, 2, 3
    ON CONFLICT (kind, key, chunk) DO UPDATE SET bits = s.bits | excluded.bits;
$$;

-- A release rebuilds the customers' summaries (0006's segment_rebuild, renamed), then
-- their bits: cleared in every row of their chunks, set again from the rebuilt rows.
ALTER FUNCTION segment_rebuild(bigint[], timestamptz) RENAME TO segment_rebuild_summaries;
CREATE FUNCTION segment_rebuild(custs bigint[], upto timestamptz) RETURNS void
LANGUAGE sql AS $$
    SELECT segment_rebuild_summaries(custs, upto);
    UPDATE segment_bits s SET bits = s.bits & ~m.mask
    FROM (SELECT cust / 4096 AS chunk, bit_or(segment_bit(cust)) AS mask FROM unnest(custs) cust GROUP BY 1) m
    WHERE s.chunk = m.chunk;
    SELECT segment_bits_set(custs);
$$;

SELECT segment_bits_set(NULL);
