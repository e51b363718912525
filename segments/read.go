package segments

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Reader begins the read-only transactions answers are read in: *sqlx.DB, or a
// postgres.ReadPool, which sends them to a hot standby while it keeps up and to the
// primary otherwise.
type Reader interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

// prepareRead checks f and folds a short tail on the primary, then opens the answer's
// snapshot on the Reader and compiles f as of the summaries that snapshot holds: on a
// replica, as_of is the fold its replay has reached, and the history read for windows
// past the summaries stops at the same instant, so every node answers as of one moment.
// The caller rolls the transaction back.
func (s *Service) prepareRead(ctx context.Context, f *Filter) (*Query, *sqlx.Tx, error) {
	if err := s.checkFold(ctx, f); err != nil {
		return nil, nil, err
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, nil, err
	}
	at, err := readInstants(ctx, tx)
	if err != nil {
		tx.Rollback()
		return nil, nil, err
	}
	return s.compile(f, at), tx, nil
}

// readTx begins the read-only snapshot an answer is read from (its count and ids agree),
// with room to hash and sort a few hundred thousand customers in memory: in the default
// 4 MB work_mem a union of 600,000 spills to disk and takes twice as long.
func (s *Service) readTx(ctx context.Context) (*sqlx.Tx, error) {
	tx, err := s.cfg.Reader.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("beginning a segment read: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}
