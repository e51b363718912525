package mailings

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// reenqueue bumps the attempt of the mailing's open batches and enqueues them.
func (s *Service) reenqueue(ctx context.Context, q sqlx.QueryerContext, id int64) ([]BatchRef, error) {
	var refs []BatchRef
	err := sqlx.SelectContext(ctx, q, &refs, `
		UPDATE mailing_batches SET attempt = attempt + 1, enqueued_at = now()
		WHERE mailing_id = $1 AND done_at IS NULL RETURNING mailing_id, batch, attempt`, id)
	return refs, err
}

// transition moves a mailing from one of the statuses in from to to, records the event
// with the context's Actor (actor naming it when there is none), and re-enqueues its
// open batches when requeue is set. Errors: ErrNotFound, ErrState.
func (s *Service) transition(ctx context.Context, id int64, from []string, to, event, actor, kind, reason string, requeue bool) (*Mailing, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	m, err := getMailing(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	ok := false
	for _, f := range from {
		ok = ok || m.Status == f
	}
	if !ok {
		return nil, fmt.Errorf("mailing %d is %s, cannot become %s: %w", id, m.Status, to, ErrState)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mailings SET status = $2, pause_reason = $3, pause_kind = $4 WHERE id = $1`, id, to, reason, kind); err != nil {
		return nil, err
	}
	if to == StatusCancelled && m.Status == StatusDraft {
		_, err = tx.ExecContext(ctx, `UPDATE mailings SET finished_at = now() WHERE id = $1`, id)
		if err != nil {
			return nil, err
		}
	}
	if err := recordEvent(ctx, tx, id, event, actor, ""); err != nil {
		return nil, err
	}
	var refs []BatchRef
	if requeue {
		if refs, err = s.reenqueue(ctx, tx, id); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.enqueue(ctx, refs)
	s.log.Info("mailing "+to, "mailing_id", id, "reason", reason)
	return s.Get(ctx, id)
}

// Pause stops a running mailing after the batches in flight. Errors: ErrNotFound, ErrState.
func (s *Service) Pause(ctx context.Context, id int64, actor string) (*Mailing, error) {
	return s.transition(ctx, id, []string{StatusRunning}, StatusPaused, EventPause, actor, PausePerson, "paused by "+actor, false)
}

// Resume continues a paused mailing where it stopped: its open batches are enqueued
// again (recipients already sent are never sent again). Errors: ErrNotFound, ErrState.
func (s *Service) Resume(ctx context.Context, id int64) (*Mailing, error) {
	return s.transition(ctx, id, []string{StatusPaused}, StatusRunning, EventResume, "", "", "", true)
}

// Cancel stops a mailing for good. Each open batch's task then skips its queued
// recipients and returns their codes to the pool, under the batch's lease, so a batch
// in flight finishes its sends before anything is released. Errors: ErrNotFound, ErrState.
func (s *Service) Cancel(ctx context.Context, id int64, actor string) (*Mailing, error) {
	return s.transition(ctx, id, []string{StatusDraft, StatusRunning, StatusPaused}, StatusCancelled, EventCancel, actor, "", "cancelled by "+actor, true)
}
