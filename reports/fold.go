package reports

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/segments"
)

// Fold adds every issue committed since the last fold to the rollups, in transactions
// of at most Config.FoldBatch issues, and returns how many it added. Several folders
// may run: one folds, the others return at once.
func (s *Service) Fold(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := s.foldOnce(ctx, s.cfg.FoldBatch, true)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// foldIssuesSQL adds the live issues of [$1, $2) to report_issue_days, in key order,
// their sums over mailings to report_issue_group_days (migration 0027) and each
// mailing's sums over blocks of days to report_issue_mailing_spans (0028), which the
// reports read. It reads the window through issues_issued_at and fetches mailing_id
// from the heap: the fold runs behind the claims, off their path. Its row count is
// report_issue_days'.
const foldIssuesSQL = `
WITH src AS MATERIALIZED (
    SELECT group_id, report_day(issued_at) AS day, coalesce(mailing_id, 0) AS mailing_id,
           count(*) FILTER (WHERE kind = 'initial') AS initial, count(*) FILTER (WHERE kind = 'repeat') AS repeat
    FROM issues
    WHERE issued_at >= $1 AND issued_at < $2 AND released_at IS NULL
    GROUP BY 1, 2, 3
), by_group AS (
    INSERT INTO report_issue_group_days AS d (group_id, day, initial, repeat, direct)
    SELECT group_id, day, sum(initial), sum(repeat), coalesce(sum(initial) FILTER (WHERE mailing_id = 0), 0)
    FROM src GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (group_id, day) DO UPDATE SET
        initial = d.initial + excluded.initial,
        repeat = d.repeat + excluded.repeat,
        direct = d.direct + excluded.direct
), spans AS (
    INSERT INTO report_issue_mailing_spans AS d (group_id, level, block, mailing_id, initial)
    SELECT group_id, k, report_block(day, k), mailing_id, sum(initial)
    FROM src CROSS JOIN generate_series(1, 10) k WHERE mailing_id <> 0
    GROUP BY 1, 2, 3, 4 HAVING sum(initial) > 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (group_id, level, block, mailing_id) DO UPDATE SET initial = d.initial + excluded.initial
)
INSERT INTO report_issue_days AS d (group_id, day, mailing_id, initial, repeat)
SELECT group_id, day, mailing_id, initial, repeat FROM src ORDER BY 1, 2, 3
ON CONFLICT (group_id, day, mailing_id) DO UPDATE SET
    initial = d.initial + excluded.initial,
    repeat = d.repeat + excluded.repeat`

// foldOnce folds at most limit issues in one transaction; more says issues below the
// horizon are left. first allows the first fold of a long history (else it is left to
// Fold: a report does not wait for it).
func (s *Service) foldOnce(ctx context.Context, limit int, first bool) (n int, more bool, err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	var from time.Time
	if err := tx.GetContext(ctx, &from, `SELECT folded_to FROM report_fold FOR UPDATE NOWAIT`); err != nil {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available: another fold runs
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("report fold: %w", err)
	}
	horizon, err := segments.Horizon(ctx, tx)
	if err != nil {
		return 0, false, fmt.Errorf("report fold: %w", err)
	}
	if !horizon.After(from) {
		return 0, false, nil
	}
	upto, err := foldLimit(ctx, tx, from, horizon, limit, first)
	if err != nil || upto.IsZero() {
		return 0, false, err
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
		return 0, false, err
	}
	res, err := tx.ExecContext(ctx, foldIssuesSQL, from, upto)
	if err != nil {
		return 0, false, fmt.Errorf("report fold, issues: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE report_fold SET folded_to = $1`, upto); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	rows, _ := res.RowsAffected()
	return int(rows), upto.Before(horizon), nil
}

// foldLimit is where a fold from from stops: the limit-th issue after from, or the
// horizon. The very first fold (a new install, or this migration over an existing
// history) folds everything at once when first allows it, one aggregate over the
// history; a report's short fold returns the zero time then and leaves it to Fold.
func foldLimit(ctx context.Context, tx *sqlx.Tx, from, horizon time.Time, limit int, first bool) (time.Time, error) {
	initial := from.Year() <= 1900
	if initial && first {
		return horizon, nil
	}
	var next []time.Time
	err := tx.SelectContext(ctx, &next, `
		SELECT issued_at FROM issues WHERE released_at IS NULL AND issued_at >= $1 AND issued_at < $2
		ORDER BY issued_at OFFSET $3 LIMIT 1`, from, horizon, limit)
	if err != nil {
		return time.Time{}, fmt.Errorf("report fold: %w", err)
	}
	switch {
	case len(next) == 1 && initial:
		return time.Time{}, nil
	case len(next) == 1 && next[0].After(from):
		return next[0], nil
	}
	return horizon, nil
}

// AsOf returns the instant the rollups are complete to: the earlier of the issue
// fold's watermark and the redemption fold's start.
func (s *Service) AsOf(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.db.GetContext(ctx, &t, `SELECT least(f.folded_to, r.as_of) FROM report_fold f, report_redemption_fold r`)
	return t, err
}

// foldTails folds, before a report answers, a short tail of new issues and the queued
// redemption changes when they are few (longer ones are the worker's).
func (s *Service) foldTails(ctx context.Context) error {
	if _, _, err := s.foldOnce(ctx, s.cfg.QueryFold, false); err != nil {
		return err
	}
	_, err := s.foldRedemptions(ctx, s.cfg.QueryFold)
	return err
}

// SnapshotBalances records every live group's counters as today's row of the balance
// chart (replacing an earlier one of the same day) and returns how many groups it saw.
func (s *Service) SnapshotBalances(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	bs, err := s.groups.Balances(ctx, now, now)
	if err != nil {
		return 0, err
	}
	if len(bs) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(bs))
	total, active, issued, expired := make([]int64, len(bs)), make([]int64, len(bs)), make([]int64, len(bs)), make([]int64, len(bs))
	for i, b := range bs {
		ids[i], total[i], active[i], issued[i], expired[i] = b.ID, b.Total, b.Active, b.Issued, b.Expired
	}
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO report_balance_days AS d (group_id, day, total, active, issued, expired, seen_at)
		SELECT u.id, report_day($6), u.total, u.active, u.issued, u.expired, $6
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(id, total, active, issued, expired)
		ON CONFLICT (group_id, day) DO UPDATE SET total = excluded.total, active = excluded.active,
		    issued = excluded.issued, expired = excluded.expired, seen_at = excluded.seen_at
		WHERE d.seen_at <= excluded.seen_at`,
		pq.Array(ids), pq.Array(total), pq.Array(active), pq.Array(issued), pq.Array(expired), now)
	if err != nil {
		return 0, fmt.Errorf("recording the balances of groups: %w", err)
	}
	return len(bs), nil
}

// RunFolder folds and records the balances every interval until ctx ends (the worker
// runs it). Errors are logged and retried at the next interval.
func (s *Service) RunFolder(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := s.Fold(ctx)
		if err == nil {
			var r int
			r, err = s.FoldRedemptions(ctx)
			n += r
		}
		if err == nil {
			_, err = s.SnapshotBalances(ctx)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("report fold failed", "err", err)
		case n > 0:
			s.log.Info("report fold", "rows", n, "duration", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
