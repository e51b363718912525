package segments

// Query shapes and their plans
//
// Every filter compiles to one statement over customer numbers (cust). The main shapes,
// with EXPLAIN (ANALYZE, COSTS OFF) at 1,000,000 customers and 10,000,000 issues over 50
// groups and a year (`promopool bench segments -explain`, PostgreSQL 15, Debian's default
// settings, on the 2-core machine of ../shared/PERFORMANCE.md):
//
// 1. "At least 3 initial issues in the last 30 days": recent_initial[3] >= now − 30 days,
//    one range of the expression index; no history row is read.
//
//	Aggregate
//	  ->  Bitmap Heap Scan on segment_customers
//	        Recheck Cond: (recent_initial[3] >= '…'::timestamptz)
//	        ->  Bitmap Index Scan on segment_customers_recent3
//	              Index Cond: (recent_initial[3] >= '…'::timestamptz)
//
// 2. "Issued from A and not from B": an anti-join of two groups' rows, both read in
//    customer order from the covering partial index segment_groups_initial, so no heap
//    page is touched once the visibility map is set.
//
//	Aggregate
//	  ->  Merge Anti Join (or Hash Anti Join)
//	        Merge Cond: (segment_groups.cust = segment_groups_1.cust)
//	        ->  Index Only Scan using segment_groups_initial on segment_groups
//	              Index Cond: (group_id = ANY ('{A}'))
//	        ->  Index Only Scan using segment_groups_initial on segment_groups segment_groups_1
//	              Index Cond: (group_id = ANY ('{B}'))
//
// 3. "(Between 2 and 5 codes) or issued from any of three groups": a UNION of a range of
//    segment_customers_initial (n_initial, cust) and the three groups' rows, deduplicated
//    by hashing.
//
//	Aggregate
//	  ->  HashAggregate (Group Key: cust)
//	        ->  Append
//	              ->  Index Only Scan using segment_customers_initial on segment_customers
//	                    Index Cond: ((n_initial >= 2) AND (n_initial <= 5))
//	              ->  HashAggregate (Group Key: segment_groups.cust)
//	                    ->  Index Only Scan using segment_groups_initial on segment_groups
//	                          Index Cond: (group_id = ANY ('{…}'))
//
// 4. "Never issued a code" (= 0), and any NOT at the top: the complement stays symbolic,
//    so the count is |customers| − |customers with a code|, two index-only counts, and
//    the list is an anti-join of customers against the set.
//
//	Result
//	  InitPlan 1: Aggregate -> Index Only Scan using customers_num on customers
//	  InitPlan 2: Aggregate -> Index Only Scan using segment_customers_initial on segment_customers
//	                             Filter: (NOT (n_initial = 0))
//
// 5. Windows the summaries cannot answer (a bounded window, a count per group within a
//    window, kind "all" within a window, more than five issues in a window) read the
//    history's rows of the window only, by the issued_at index, without the heap:
//
//	HashAggregate (Group Key: c.num)  Filter: (count(*) >= 2)
//	  ->  Hash Join (Hash Cond: (i.customer_id = c.id))
//	        ->  Index Only Scan using issues_issued_at on issues i
//	              Index Cond: ((issued_at < as_of) AND (issued_at >= from) AND (issued_at < to))
//	              Filter: ((group_id = ANY ('{…}')) AND (kind = 'initial'))
//	        ->  Hash -> Seq Scan on customers c
//
//    Their cost grows with the window's issues (a quarter of a 10M history: ~2.5M index
//    entries), not with the history.
//
// The measured times of these shapes are in the README (Measured).
