package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// FoldQueue is the frame of a change-queue fold (the report and segment redemption folds,
// migration 0023): in one transaction it takes the fold's single state row
// (`SELECT as_of FROM state FOR UPDATE NOWAIT`), runs fold, and sets the row's as_of to
// the instant fold returns, so readers know every change committed before it is counted.
// When another fold holds the row it returns 0 at once: one folder folds, the others do
// not queue behind it. With limit > 0 it folds only when queue holds at most limit
// changes, leaving a backlog to the worker's folder (a reader does not wait for it and
// answers as of the last fold). state and queue are table names from the caller's code,
// never input; name prefixes errors.
func FoldQueue(ctx context.Context, db *sqlx.DB, name, state, queue string, limit int,
	fold func(tx *sqlx.Tx) (n int, asOf time.Time, err error)) (int, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var asOf time.Time
	if err := tx.GetContext(ctx, &asOf, `SELECT as_of FROM `+state+` FOR UPDATE NOWAIT`); err != nil {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available: another fold runs
			return 0, nil
		}
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if limit > 0 {
		var queued int
		if err := tx.GetContext(ctx, &queued, `SELECT count(*) FROM (SELECT 1 FROM `+queue+` LIMIT $1) q`, limit+1); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if queued > limit {
			return 0, nil
		}
	}
	n, asOf, err := fold(tx)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+state+` SET as_of = $1`, asOf); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, tx.Commit()
}
