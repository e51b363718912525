package segments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/metrics"
)

// writerLock is the first advisory lock key every statement inserting issues takes,
// shared, for its transaction; the second is the schema's hashtext (trigger issues_writer
// in migrations/0006_segments.sql).
const writerLock = 1660060006

// Fold adds every issue committed since the last fold to the summaries, in transactions
// of at most FoldBatch issues, and returns how many it added. Several folders may run:
// one folds, the others return at once.
func (s *Service) Fold(ctx context.Context) (int, error) {
	if err := s.compactCustomerCounts(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, more, err := s.foldOnce(ctx, s.cfg.FoldBatch, true)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// compactCustomerCounts replaces the rows of segment_customer_counts (one per statement
// that inserted customers, migration 0031) by their sum, so that a count that is a
// complement sums a few rows. The rows deleted are those this statement sees; a
// concurrent compaction deletes none of them twice (it waits, then skips them), and
// rows still uncommitted are left for the next one.
func (s *Service) compactCustomerCounts(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `
		WITH d AS (DELETE FROM segment_customer_counts RETURNING n)
		INSERT INTO segment_customer_counts (n) SELECT sum(n) FROM d HAVING count(*) > 0`)
	if err != nil {
		return fmt.Errorf("segment fold, customer counts: %w", err)
	}
	return nil
}

// horizonSQL is the instant below which no issue can still appear: now, or the start of
// the oldest transaction that is inserting issues (holding writerLock), if earlier.
// clock_timestamp() is read before pg_locks: a transaction that takes the lock after that
// read stamps its rows later than it.
const horizonSQL = `
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now)
SELECT least((SELECT now FROM t), (
    SELECT min(a.xact_start) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = hashtext(current_schema())::oid
      AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.pid <> pg_backend_pid()))`

// foldSQL adds the issues in [$1, $2) to both summaries in one statement and returns
// how many there were. Both upserts go in key order (segment_customers' aggregate is
// sorted by cust already), so each index leaf is visited once and in order rather than
// at random: a fold of 300,000 issues over 150,000 random customers of a 1M-customer
// history took 9.0-9.6 s instead of 10.9-12.7 s (psql, alternating runs). New issues
// are all later than the folded ones, so the latest times merge as (new || old)[1:5].
//
// Issues of customers without a row (direct issues to customers the platform never
// sent) are counted in missing, and the statement folds nothing then: foldRange gives
// them a row and runs it again. (It used to insert them first, in a statement of its
// own that read the range again with an index probe of customers per issue: 1-2% of a
// mailing's samples, a tenth of the fold's, for rows that almost never exist.)
const foldSQL = `
WITH span AS MATERIALIZED (
    SELECT c.num AS cust, i.group_id, i.kind, i.issued_at
    FROM issues i LEFT JOIN customers c ON c.id = i.customer_id
    WHERE i.issued_at >= $1 AND i.issued_at < $2 AND i.released_at IS NULL
), missing AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM span WHERE cust IS NULL) AS found
), new AS MATERIALIZED (
    SELECT cust, group_id, kind, issued_at FROM span WHERE NOT (SELECT found FROM missing)
), g AS (
    INSERT INTO segment_groups AS s (group_id, cust, n_initial, n_repeat, last_initial_at, last_at)
    SELECT group_id, cust, count(*) FILTER (WHERE kind = 'initial'), count(*) FILTER (WHERE kind = 'repeat'),
           max(issued_at) FILTER (WHERE kind = 'initial'), max(issued_at)
    FROM new GROUP BY group_id, cust ORDER BY group_id, cust
    ON CONFLICT (group_id, cust) DO UPDATE SET
        n_initial = s.n_initial + excluded.n_initial,
        n_repeat = s.n_repeat + excluded.n_repeat,
        last_initial_at = greatest(s.last_initial_at, excluded.last_initial_at),
        last_at = greatest(s.last_at, excluded.last_at)
    RETURNING 1
), c AS (
INSERT INTO segment_customers AS s (cust, n_initial, n_all, recent_initial, groups_initial)
SELECT cust, count(*) FILTER (WHERE kind = 'initial'), count(*),
       coalesce((array_agg(issued_at ORDER BY issued_at DESC) FILTER (WHERE kind = 'initial'))[1:5], '{}'),
       coalesce(array_agg(DISTINCT group_id ORDER BY group_id) FILTER (WHERE kind = 'initial'), '{}')
FROM new GROUP BY cust
ON CONFLICT (cust) DO UPDATE SET
    n_initial = s.n_initial + excluded.n_initial,
    n_all = s.n_all + excluded.n_all,
    recent_initial = (excluded.recent_initial || s.recent_initial)[1:5],
    groups_initial = CASE WHEN excluded.groups_initial <@ s.groups_initial THEN s.groups_initial
        ELSE ARRAY(SELECT DISTINCT g FROM unnest(s.groups_initial || excluded.groups_initial) g ORDER BY g) END
RETURNING cust, n_initial, n_all
),
-- Per (group, hour, customer) (migration 0031): appended, nothing looked up (readers sum
-- a key's rows), in the order of their index.
h AS (
    INSERT INTO segment_hours (group_id, hour, cust, n_initial, n_repeat)
    SELECT group_id, segment_hour(issued_at), cust, count(*) FILTER (WHERE kind = 'initial'),
           count(*) FILTER (WHERE kind = 'repeat')
    FROM new GROUP BY 1, 2, 3 ORDER BY 1, 2
    RETURNING 1
),
-- The bitmaps (migration 0010). Group membership only grows here: set the bits.
gb AS (
    INSERT INTO segment_bits AS s (kind, key, chunk, bits)
    SELECT 1, group_id, cust / 4096, bit_or(segment_bit(cust))
    FROM (SELECT DISTINCT group_id, cust FROM new WHERE kind = 'initial') x
    GROUP BY group_id, cust / 4096
    ON CONFLICT (kind, key, chunk) DO UPDATE SET bits = s.bits | excluded.bits
    RETURNING 1
)
SELECT (SELECT count(*) FROM new) AS n, (SELECT found FROM missing) AS missing, (SELECT array_agg(cust) FROM c) AS custs,
       (SELECT array_agg(n_initial) FROM c) AS n_initial, (SELECT array_agg(n_all) FROM c) AS n_all`

// The count buckets of the customers a fold touched (foldSQL returns them with their new
// counts): each leaves every bucket row of its chunk, then joins the buckets of its new
// counts. Two statements after foldSQL, in its transaction, so that no statement changes
// a row twice; each reaches its rows by primary key.
const (
	bucketsClearSQL = `
UPDATE segment_bits s SET bits = s.bits & ~m.mask
FROM (SELECT k.kind, k.key, m.chunk, m.mask
      FROM (SELECT cust / 4096 AS chunk, bit_or(segment_bit(cust)) AS mask FROM unnest($1::bigint[]) cust GROUP BY 1) m
      CROSS JOIN (SELECT kd::smallint AS kind, kb::bigint AS key FROM generate_series(2, 3) kd, generate_series(1, 32) kb) k) m
WHERE s.kind = m.kind AND s.key = m.key AND s.chunk = m.chunk`
	bucketsSetSQL = `
INSERT INTO segment_bits AS s (kind, key, chunk, bits)
SELECT v.kind, v.key, u.cust / 4096, bit_or(segment_bit(u.cust))
FROM unnest($1::bigint[], $2::integer[], $3::integer[]) AS u(cust, n_initial, n_all)
CROSS JOIN LATERAL (VALUES (2::smallint, least(u.n_initial, 32)::bigint), (3::smallint, least(u.n_all, 32)::bigint)) v(kind, key)
WHERE v.key > 0
GROUP BY 1, 2, 3
ON CONFLICT (kind, key, chunk) DO UPDATE SET bits = s.bits | excluded.bits`
)

// foldOnce folds at most limit issues in one transaction; more says issues below the
// horizon are left. first allows the first fold of all (else it is left to Fold).
func (s *Service) foldOnce(ctx context.Context, limit int, first bool) (n int, more bool, err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	var from time.Time
	if err := tx.GetContext(ctx, &from, `SELECT folded_to FROM segment_fold FOR UPDATE NOWAIT`); err != nil {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available: another fold runs
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("segment fold: %w", err)
	}
	var horizon time.Time
	if err := tx.GetContext(ctx, &horizon, horizonSQL, writerLock); err != nil {
		return 0, false, fmt.Errorf("segment fold horizon: %w", err)
	}
	if !horizon.After(from) {
		return 0, false, nil
	}
	// Fold up to the limit-th issue after from, or to the horizon. The very first fold
	// (a new install, or the migration over an existing history) has empty summaries:
	// it folds everything at once, one aggregate over the history, which is many times
	// faster than upserting batch after batch and leaves each group's rows together.
	upto := horizon
	initial := from.Year() <= 1900
	if initial && first {
		limit = 0
	}
	var next []time.Time
	if limit > 0 {
		err = tx.SelectContext(ctx, &next, `
		SELECT issued_at FROM issues WHERE released_at IS NULL AND issued_at >= $1 AND issued_at < $2
		ORDER BY issued_at OFFSET $3 LIMIT 1`, from, horizon, limit)
		if err != nil {
			return 0, false, fmt.Errorf("segment fold: %w", err)
		}
	}
	if len(next) == 1 && initial {
		return 0, false, nil // a query does not fold a long history the first time: Fold does, at once
	}
	if len(next) == 1 && next[0].After(from) {
		upto = next[0]
	}
	if n, err = foldRange(ctx, tx, from, upto); err != nil {
		return 0, false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE segment_fold SET folded_to = $1`, upto); err != nil {
		return 0, false, err
	}
	return n, upto.Before(horizon), tx.Commit()
}

// foldRange folds the issues of [from, upto) into the summaries and count bitmaps, in
// foldOnce's transaction, and returns how many it folded.
func foldRange(ctx context.Context, tx *sqlx.Tx, from, upto time.Time) (int, error) {
	// The aggregates of a batch hash hundreds of thousands of customers: in the default
	// 4 MB they spill to disk.
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
		return 0, err
	}
	var folded struct {
		N        int           `db:"n"`
		Missing  bool          `db:"missing"`
		Custs    pq.Int64Array `db:"custs"`
		NInitial pq.Int64Array `db:"n_initial"`
		NAll     pq.Int64Array `db:"n_all"`
	}
	if err := tx.GetContext(ctx, &folded, foldSQL, from, upto); err != nil {
		return 0, fmt.Errorf("segment fold: %w", err)
	}
	if folded.Missing {
		// Customers issued a code but never upserted get a row (and a number), and the
		// range is folded with them (the first run wrote nothing).
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO customers (id)
			SELECT DISTINCT i.customer_id FROM issues i
			WHERE i.issued_at >= $1 AND i.issued_at < $2 AND i.released_at IS NULL
			  AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = i.customer_id)
			ON CONFLICT (id) DO NOTHING`, from, upto); err != nil {
			return 0, fmt.Errorf("segment fold customers: %w", err)
		}
		if err := tx.GetContext(ctx, &folded, foldSQL, from, upto); err != nil {
			return 0, fmt.Errorf("segment fold: %w", err)
		}
		if folded.Missing {
			return 0, errors.New("segment fold: issues of customers without a row after adding them")
		}
	}
	if len(folded.Custs) > 0 {
		if _, err := tx.ExecContext(ctx, bucketsClearSQL, folded.Custs); err != nil {
			return 0, fmt.Errorf("segment fold, count bitmaps: %w", err)
		}
		if _, err := tx.ExecContext(ctx, bucketsSetSQL, folded.Custs, folded.NInitial, folded.NAll); err != nil {
			return 0, fmt.Errorf("segment fold, count bitmaps: %w", err)
		}
	}
	return folded.N, nil
}

// RunFolder folds new issues and redemption changes every interval until ctx ends (the
// worker runs it). Errors are logged and retried at the next interval.
//
// A fold that took longer than a fifth of the interval means issues arrive faster than
// the interval lets it keep up (a mailing issuing tens of thousands a second): the next
// fold starts at once instead of after the rest of the interval, during which as_of
// would fall further behind. A fold is one transaction and takes every issue below the
// horizon, so folding back to back adds no work, only removes the waits; an idle or
// trickling history still folds once per interval.
func (s *Service) RunFolder(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		start := time.Now()
		n, foldErr := s.Fold(ctx)
		took := time.Since(start)
		metrics.SegmentFoldIssues.Add(float64(n))
		metrics.SegmentFoldSeconds.Add(took.Seconds())
		switch {
		case foldErr != nil && ctx.Err() == nil:
			log.Error("segment fold failed", "err", foldErr)
		case n > 0:
			log.Info("segment fold", "issues", n, "duration", took.Round(time.Millisecond))
		}
		rstart := time.Now()
		r, err := s.FoldRedemptions(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("segment fold of redemptions failed", "err", err)
		case r > 0:
			log.Info("segment fold of redemptions", "changes", r, "duration", time.Since(rstart).Round(time.Millisecond))
		}
		next := every - time.Since(start)
		if foldErr == nil && n > 0 && took > every/5 {
			next = 0 // behind: fold again at once
		}
		t.Reset(max(next, 0))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
