package segments

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/postgres"
)

// The redemption summaries (migration 0023) are folded from a queue the trigger on
// redemptions appends to: +1 when a redemption becomes a use (succeeded), -1 when it
// stops being one (refunded, or changed). A fold consumes the queue — DELETE … RETURNING
// feeding the summaries in one statement — so each change is folded exactly once, and a
// change not yet committed is left for the next fold. Customers who redeemed but have no
// row get one first (as the issue fold gives them), so the fold's statement finds every
// number.

// redemptionCustomersSQL gives a row (and a number) to the customers of queued changes
// that have none, and returns the statement's start: every change committed before it
// is seen by this statement, given a customer, and seen again by the fold's statement.
const redemptionCustomersSQL = `
WITH ins AS (
    INSERT INTO customers (id)
    SELECT DISTINCT q.customer_id FROM segment_redemption_changes q
    WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = q.customer_id)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT statement_timestamp() AS started, (SELECT count(*) FROM ins) AS added`

// foldRedemptionsSQL folds the queued changes whose customer has a row. For each
// (group, customer) and each customer touched it merges the kept instants with the
// changes' (+1 adds an instant, -1 takes one back) and writes the row, or deletes it
// when no use is left. It returns the (group, customer) pairs and customers it wrote,
// with whether each still has a use and the customer's count, for the bitmaps.
const foldRedemptionsSQL = `
WITH d AS MATERIALIZED (
    DELETE FROM segment_redemption_changes q USING customers c WHERE c.id = q.customer_id
    RETURNING q.group_id, c.num AS cust, q.used_at, q.n
), dn AS MATERIALIZED (
    SELECT group_id, cust, used_at, sum(n) AS n FROM d GROUP BY 1, 2, 3 HAVING sum(n) <> 0
), gk AS MATERIALIZED (
    SELECT DISTINCT group_id, cust FROM dn
), gm AS (
    SELECT group_id, cust, t, sum(n) AS n
    FROM (SELECT s.group_id, s.cust, u.t, 1 AS n
          FROM gk JOIN segment_redeemers s USING (group_id, cust) CROSS JOIN LATERAL unnest(s.used_at) u(t)
          UNION ALL
          SELECT group_id, cust, used_at, n FROM dn) x
    GROUP BY 1, 2, 3
), gn AS MATERIALIZED (
    SELECT k.group_id, k.cust,
           coalesce(array_agg(e.t ORDER BY e.t DESC) FILTER (WHERE e.t IS NOT NULL), '{}') AS used_at
    FROM gk k
    LEFT JOIN (SELECT m.group_id, m.cust, m.t FROM gm m CROSS JOIN LATERAL generate_series(1, m.n::int) WHERE m.n > 0) e
      ON e.group_id = k.group_id AND e.cust = k.cust
    GROUP BY 1, 2
), g_gone AS (
    DELETE FROM segment_redeemers s USING gn
    WHERE cardinality(gn.used_at) = 0 AND s.group_id = gn.group_id AND s.cust = gn.cust
    RETURNING 1
), g_kept AS (
    INSERT INTO segment_redeemers AS s (group_id, cust, n_uses, used_at)
    SELECT group_id, cust, cardinality(used_at), used_at FROM gn WHERE cardinality(used_at) > 0 ORDER BY 1, 2
    ON CONFLICT (group_id, cust) DO UPDATE SET n_uses = excluded.n_uses, used_at = excluded.used_at
    RETURNING 1
), ck AS MATERIALIZED (
    SELECT DISTINCT cust FROM dn
), cm AS (
    SELECT cust, t, sum(n) AS n
    FROM (SELECT s.cust, u.t, 1 AS n
          FROM ck JOIN segment_redeemer_customers s USING (cust) CROSS JOIN LATERAL unnest(s.used_at) u(t)
          UNION ALL
          SELECT cust, used_at, n FROM dn) x
    GROUP BY 1, 2
), cn AS MATERIALIZED (
    SELECT k.cust, coalesce(array_agg(e.t ORDER BY e.t DESC) FILTER (WHERE e.t IS NOT NULL), '{}') AS used_at
    FROM ck k
    LEFT JOIN (SELECT m.cust, m.t FROM cm m CROSS JOIN LATERAL generate_series(1, m.n::int) WHERE m.n > 0) e ON e.cust = k.cust
    GROUP BY 1
), c_gone AS (
    DELETE FROM segment_redeemer_customers s USING cn
    WHERE cardinality(cn.used_at) = 0 AND s.cust = cn.cust
    RETURNING 1
), c_kept AS (
    INSERT INTO segment_redeemer_customers AS s (cust, n_uses, used_at)
    SELECT cust, cardinality(used_at), used_at FROM cn WHERE cardinality(used_at) > 0 ORDER BY 1
    ON CONFLICT (cust) DO UPDATE SET n_uses = excluded.n_uses, used_at = excluded.used_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM d) AS n,
       (SELECT count(*) FROM g_gone) + (SELECT count(*) FROM g_kept) + (SELECT count(*) FROM c_gone) + (SELECT count(*) FROM c_kept) AS written,
       (SELECT array_agg(group_id) FROM gn) AS g_group, (SELECT array_agg(cust) FROM gn) AS g_cust,
       (SELECT array_agg(cardinality(used_at) > 0) FROM gn) AS g_has,
       (SELECT array_agg(cust) FROM cn) AS c_cust, (SELECT array_agg(cardinality(used_at)) FROM cn) AS c_uses`

// The bitmaps of the rows a fold wrote: each (group, customer) leaves its group's row
// (kind 4) and joins it again while it has a use; each customer leaves every bucket row
// (kind 5) of its chunk and joins the bucket of its new count. One statement each, in
// the fold's transaction, each reaching its rows by primary key.
const (
	redeemerBitsClearSQL = `
UPDATE segment_bits s SET bits = s.bits & ~m.mask
FROM (SELECT g, c / 4096 AS chunk, bit_or(segment_bit(c)) AS mask FROM unnest($1::bigint[], $2::bigint[]) u(g, c) GROUP BY 1, 2) m
WHERE s.kind = 4 AND s.key = m.g AND s.chunk = m.chunk`
	redeemerBitsSetSQL = `
INSERT INTO segment_bits AS s (kind, key, chunk, bits)
SELECT 4, g, c / 4096, bit_or(segment_bit(c)) FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]) u(g, c, has)
WHERE has GROUP BY 2, 3
ON CONFLICT (kind, key, chunk) DO UPDATE SET bits = s.bits | excluded.bits`
	useBucketsClearSQL = `
UPDATE segment_bits s SET bits = s.bits & ~m.mask
FROM (SELECT c / 4096 AS chunk, bit_or(segment_bit(c)) AS mask FROM unnest($1::bigint[]) c GROUP BY 1) m
WHERE s.kind = 5 AND s.key BETWEEN 1 AND 32 AND s.chunk = m.chunk`
	useBucketsSetSQL = `
INSERT INTO segment_bits AS s (kind, key, chunk, bits)
SELECT 5, least(n, 32), c / 4096, bit_or(segment_bit(c)) FROM unnest($1::bigint[], $2::integer[]) u(c, n)
WHERE n > 0 GROUP BY 2, 3
ON CONFLICT (kind, key, chunk) DO UPDATE SET bits = s.bits | excluded.bits`
)

// FoldRedemptions folds every redemption change committed so far into the redemption
// summaries and their bitmaps, and returns how many changes it folded. Several folders
// may run: one folds, the others return at once.
func (s *Service) FoldRedemptions(ctx context.Context) (int, error) {
	return s.foldRedemptions(ctx, 0)
}

// foldRedemptions folds the queue in one transaction; with limit > 0 it leaves a queue
// longer than limit to the worker's folder (a query does not wait for a backlog, and
// answers as of the last fold).
func (s *Service) foldRedemptions(ctx context.Context, limit int) (int, error) {
	return postgres.FoldQueue(ctx, s.db, "segment fold, redemptions", "segment_redemption_fold", "segment_redemption_changes", limit,
		func(tx *sqlx.Tx) (int, time.Time, error) { return foldRedemptionChanges(ctx, tx) })
}

// foldRedemptionChanges folds the queue in tx and returns how many changes it folded and
// the instant the summaries are then complete to.
func foldRedemptionChanges(ctx context.Context, tx *sqlx.Tx) (int, time.Time, error) {
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
		return 0, time.Time{}, err
	}
	var cs struct {
		Started time.Time `db:"started"`
		Added   int       `db:"added"`
	}
	if err := tx.GetContext(ctx, &cs, redemptionCustomersSQL); err != nil {
		return 0, time.Time{}, fmt.Errorf("segment fold, redemptions' customers: %w", err)
	}
	var f struct {
		N       int           `db:"n"`
		Written int           `db:"written"`
		GGroup  pq.Int64Array `db:"g_group"`
		GCust   pq.Int64Array `db:"g_cust"`
		GHas    pq.BoolArray  `db:"g_has"`
		CCust   pq.Int64Array `db:"c_cust"`
		CUses   pq.Int64Array `db:"c_uses"`
	}
	if err := tx.GetContext(ctx, &f, foldRedemptionsSQL); err != nil {
		return 0, time.Time{}, fmt.Errorf("segment fold, redemptions: %w", err)
	}
	if len(f.GCust) > 0 {
		if _, err := tx.ExecContext(ctx, redeemerBitsClearSQL, f.GGroup, f.GCust); err != nil {
			return 0, time.Time{}, fmt.Errorf("segment fold, redemption bitmaps: %w", err)
		}
		if _, err := tx.ExecContext(ctx, redeemerBitsSetSQL, f.GGroup, f.GCust, f.GHas); err != nil {
			return 0, time.Time{}, fmt.Errorf("segment fold, redemption bitmaps: %w", err)
		}
	}
	if len(f.CCust) > 0 {
		if _, err := tx.ExecContext(ctx, useBucketsClearSQL, f.CCust); err != nil {
			return 0, time.Time{}, fmt.Errorf("segment fold, use buckets: %w", err)
		}
		if _, err := tx.ExecContext(ctx, useBucketsSetSQL, f.CCust, f.CUses); err != nil {
			return 0, time.Time{}, fmt.Errorf("segment fold, use buckets: %w", err)
		}
	}
	return f.N, cs.Started, nil
}
