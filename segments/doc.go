// Package segments answers the segment builder's promo-code filters (SPEC §6): which
// customers were issued how many codes (from which groups, when), and which were issued a
// code from any or all of some groups, combined with AND, OR and NOT. The segment builder
// calls Service in-process; the api package serves the same over HTTP.
//
// Answers come from summaries kept beside the issue history (per customer and per group
// and customer), folded in from the history in the background and just before a query;
// each answer says the instant it is as of. See migrations/0006_segments.sql for the
// tables; the query plans follow.
//
// # Query shapes and their plans
//
// Every filter compiles to one statement over customer numbers (cust). The main shapes,
// with EXPLAIN (ANALYZE, COSTS OFF) of the count at 1,000,000 customers and 10,000,000
// issues over 50 groups and a year (`promopool bench segments -explain`; PostgreSQL 15
// with Debian's defaults, work_mem 64 MB set by the service; abridged: buffers, worker
// counts and memory lines left out). Measured timings are in docs/benchmarks.md.
//
// Shape 0: Counts from bitmaps (bits.go, migration 0010). A filter made of issued_from without
// a window, quantities without a window or groups that exclude zero, ANDs, ORs and AND
// NOTs is counted from segment_bits: one row per 4,096 customers per group or count
// bucket, combined per chunk with &, | and & ~, then bit_count summed. Shapes 2 and 3
// below are counted so; their plans below are those of their ids (pages, streams).
// "Issued from G01 and not from G02", 199,608 customers, 490 rows read:
//
//	Aggregate (actual time=3.921..3.923 rows=1 loops=1)
//	  ->  GroupAggregate (Group Key: segment_bits.chunk) (rows=245)
//	        ->  Sort (Sort Key: segment_bits.chunk)
//	              ->  Bitmap Heap Scan on segment_bits (rows=490)
//	                    Recheck Cond: (((kind = 1) AND (key = ANY ('{2}'::bigint[]))) OR ((kind = 1) AND (key = ANY ('{3}'::bigint[]))))
//	                    ->  BitmapOr
//	                          ->  Bitmap Index Scan on segment_bits_pkey  Index Cond: ((kind = 1) AND (key = ANY ('{2}'::bigint[])))
//	                          ->  Bitmap Index Scan on segment_bits_pkey  Index Cond: ((kind = 1) AND (key = ANY ('{3}'::bigint[])))
//	Execution Time: 3.955 ms
//
// Shape 1: "At least 3 initial issues in the last 30 days" is recent_initial[3] >= now − 30 days:
// one range of an expression index, no history row read. 55,555 customers:
//
//	Aggregate (actual time=13.161..13.162 rows=1 loops=1)
//	  ->  Bitmap Heap Scan on segment_customers (actual time=2.967..11.071 rows=55555 loops=1)
//	        Recheck Cond: (recent_initial[3] >= '2026-10-31 20:22:02+00'::timestamptz)
//	        ->  Bitmap Index Scan on segment_customers_recent3 (actual time=2.007..2.008 rows=55555 loops=1)
//	              Index Cond: (recent_initial[3] >= '2026-10-31 20:22:02+00'::timestamptz)
//	Execution Time: 13.173 ms
//
// Shape 2: "Issued from A and not from B": an anti-join of the two groups' rows, both read by
// index-only scans of the covering primary key of segment_groups (no heap page
// once the visibility map is set; "initial" is a filter on its included counts since
// migration 0032, which dropped the partial index segment_groups_initial that these
// timings were taken with). 290,209 and 252,891 rows in, 199,018 out:
//
//	Finalize Aggregate (actual time=102.171..104.557 rows=1 loops=1)
//	  ->  Gather
//	        ->  Partial Aggregate
//	              ->  Parallel Hash Anti Join (actual time=37.702..87.757 rows=66339 loops=3)
//	                    Hash Cond: (segment_groups.cust = segment_groups_1.cust)
//	                    ->  Parallel Index Only Scan using segment_groups_pkey on segment_groups
//	                          Index Cond: (group_id = ANY ('{2}'::bigint[]))
//	                          Filter: (n_initial > 0)
//	                    ->  Parallel Hash
//	                          ->  Parallel Index Only Scan using segment_groups_pkey on segment_groups segment_groups_1
//	                                Index Cond: (group_id = ANY ('{3}'::bigint[]))
//	                                Filter: (n_initial > 0)
//	Execution Time: 104.580 ms
//
// Shape 3: "(Between 2 and 5 codes) or issued from any of three groups": both parts are
// conditions on a customer's summary row (its count, and the groups it lists), so the
// OR is one parallel scan of segment_customers with one condition per row. (As a
// UNION of the two sets it deduplicated 690,000 rows: 0.5–0.7 s.) 622,132 customers:
//
//	Finalize Aggregate (actual time=124.268..124.368 rows=1 loops=1)
//	  ->  Gather
//	        ->  Partial Aggregate
//	              ->  Parallel Seq Scan on segment_customers (actual time=0.123..104.901 rows=207377 loops=3)
//	                    Filter: (((n_initial >= 2) AND (n_initial <= 5)) OR (groups_initial && '{11,21,31}'::bigint[]))
//	Execution Time: 124.387 ms
//
// Shape 4: "Never issued a code" (= 0), and any NOT at the top: the complement stays symbolic,
// so the count is |customers| − |customers with a code| (two counts, no join), and the
// list is an anti-join of customers against the set:
//
//	Result
//	  InitPlan 1 (returns $1)
//	    ->  Finalize Aggregate -> Gather -> Partial Aggregate
//	          ->  Parallel Seq Scan on customers
//	  InitPlan 2 (returns $3)
//	    ->  Finalize Aggregate -> Gather -> Partial Aggregate
//	          ->  Parallel Seq Scan on segment_customers
//	                Filter: (n_initial <> 0)
//
// Shape 5: "From all of G03 and G04 in the last 90 days": since-only windows over groups read
// the latest issue time kept per (group, customer), from the same covering index:
//
//	Aggregate (actual time=94.585..94.587 rows=1 loops=1)
//	  ->  HashAggregate (Group Key: segment_groups.cust)  Filter: (count(*) = '2'::bigint)
//	        ->  Index Only Scan using segment_groups_pkey on segment_groups
//	              Index Cond: (group_id = ANY ('{4,5}'::bigint[]))
//	              Filter: ((n_initial > 0) AND (last_initial_at >= '2026-09-01 20:23:49+00'::timestamptz))
//	Execution Time: 94.759 ms
//
// Shape 6: Windows the per-customer summaries cannot answer (a bounded window, a count
// per group within a window, kind "all" within a window, more than five issues in a
// window) read the window's whole hours from segment_hours (migration 0031: per group,
// hour and customer, numbered already) and only the partial hours at its ends from the
// history, index-only by issues_issued_at with the customers joined by their key. "At
// least 2 of G05 in a bounded quarter", 3,613 customers (the bench measured 88 ms as
// its median; this plan was taken with the machine's load average at 11):
//
//	Aggregate (actual time=289.187..297.004 rows=1 loops=1)
//	  ->  Finalize GroupAggregate (Group Key: cust)  Filter: (sum(n) >= 2)
//	        ->  Gather Merge -> Sort -> Partial HashAggregate
//	              ->  Parallel Append
//	                    ->  Nested Loop (rows=27)
//	                          ->  Index Only Scan using issues_issued_at on issues i
//	                                Index Cond: ((issued_at < as_of) AND (issued_at < end of from's hour) AND (issued_at >= from))
//	                                Filter: ((group_id = ANY ('{6}'::bigint[])) AND (kind = 'initial'::text))
//	                          ->  Index Scan using customers_pkey on customers c  Index Cond: (id = i.customer_id)
//	                    ->  Parallel Index Only Scan using segment_hours_pkey on segment_hours (rows=21789 loops=3)
//	                          Index Cond: ((group_id = ANY ('{6}'::bigint[])) AND (hour >= first whole hour) AND (hour < to's hour))
//	                          Filter: (n_initial > 0)
//	                    ->  Nested Loop (rows=2)  (the same for [to's hour, to))
//	Execution Time: 297.682 ms
//
// A window over every group reads every group's range (the groups found by a skip scan
// of segment_hours' key): about one row per issue of the window, grouped per customer —
// 2.3M rows and 554,000 customers for a quarter of the 10M-issue year, seconds; see
// docs/benchmarks.md.
package segments
