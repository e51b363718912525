-- 0016: the five indexes behind "at least k initial issues since T" (0006) index only the
-- customers who have a k-th issue time.
--
-- recent_initial[k] is NULL for a customer with fewer than k initial issues, and every
-- fold of a customer's new issue rewrote all five index entries (plus the key and the
-- counts): for the customers of a mailing's first issue, four of the five held NULLs no
-- query ever asks for. The filter's condition recent_initial[k] >= T is strict, so the
-- planner proves it implies the index predicate and still uses the partial index. In a
-- rolled-back fold of 110,000 issues (100,000 customers with their first issue) over a
-- 200,000-issue history, the fold statement ran 5.3 s against 6.6-6.9 s (two rounds,
-- loaded machine: EXPLAIN ANALYZE of segments' foldSQL).
DROP INDEX segment_customers_recent1, segment_customers_recent2, segment_customers_recent3,
           segment_customers_recent4, segment_customers_recent5;
CREATE INDEX segment_customers_recent1 ON segment_customers ((recent_initial[1])) WHERE recent_initial[1] IS NOT NULL;
CREATE INDEX segment_customers_recent2 ON segment_customers ((recent_initial[2])) WHERE recent_initial[2] IS NOT NULL;
CREATE INDEX segment_customers_recent3 ON segment_customers ((recent_initial[3])) WHERE recent_initial[3] IS NOT NULL;
CREATE INDEX segment_customers_recent4 ON segment_customers ((recent_initial[4])) WHERE recent_initial[4] IS NOT NULL;
CREATE INDEX segment_customers_recent5 ON segment_customers ((recent_initial[5])) WHERE recent_initial[5] IS NOT NULL;
