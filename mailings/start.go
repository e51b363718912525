package mailings

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/macros"
	"promopool/segments"
)

// audienceSize counts the distinct known customers of an audience; seg is the prepared
// segment of a segment audience.
func audienceSize(ctx context.Context, tx *sqlx.Tx, a Audience, seg *segments.Query) (int64, error) {
	var n int64
	var err error
	switch {
	case a.All:
		err = tx.GetContext(ctx, &n, `SELECT count(*) FROM customers`)
	case seg != nil:
		q, args := seg.SQL()
		err = tx.GetContext(ctx, &n, `SELECT count(*) FROM (`+q+`) s`, args...)
	default:
		err = tx.GetContext(ctx, &n, `SELECT count(*) FROM customers WHERE id = ANY($1)`, pq.Array(a.CustomerIDs))
	}
	return n, err
}

// Start checks that every group the templates draw from has enough active codes for
// the audience (unless whileCodesLast), then writes one outbox row per distinct
// recipient, numbered into batches, and enqueues a task per batch. Errors: ErrNotFound,
// ErrState (not a draft), ErrEmptyAudience, *InsufficientCodesError.
func (s *Service) Start(ctx context.Context, id int64, whileCodesLast bool) (*Mailing, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	m, err := getMailing(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if m.Status != StatusDraft {
		return nil, fmt.Errorf("starting mailing %d (%s): %w", id, m.Status, ErrState)
	}
	var seg *segments.Query
	if m.Audience.Segment != nil {
		if s.cfg.Segments == nil {
			return nil, fmt.Errorf("mailing %d has a segment audience and this process has no segments service", id)
		}
		if seg, err = s.cfg.Segments.Prepare(ctx, m.Audience.Segment); err != nil {
			return nil, fmt.Errorf("mailing %d: segment audience: %w", id, err)
		}
	}
	n, err := audienceSize(ctx, tx, m.Audience, seg)
	if err != nil {
		return nil, fmt.Errorf("counting the audience of mailing %d: %w", id, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("mailing %d: %w", id, ErrEmptyAudience)
	}
	t, err := s.tmpl.get(m)
	if err != nil {
		return nil, err
	}
	if !whileCodesLast {
		short := &InsufficientCodesError{Audience: n, Missing: map[string]int64{}}
		for _, g := range t.NewCodeGroups() {
			gid, ok := m.GroupIDs[macros.GroupKey(g)]
			if !ok {
				short.Missing[g] = n
				continue
			}
			grp, err := s.groups.Get(ctx, gid)
			if err != nil {
				short.Missing[g] = n // archived since the mailing was created
				continue
			}
			if grp.Active < n {
				short.Missing[grp.Name] = n - grp.Active
			}
		}
		if len(short.Missing) > 0 {
			return nil, short
		}
	}
	// Recipients: explicit ids deduplicated, keeping each id's first position; every
	// customer by id; or a segment's customers in its order. Batches are consecutive runs
	// of batch_size recipients.
	switch {
	case m.Audience.All:
		_, err = tx.ExecContext(ctx, `
			INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
			SELECT $1, id, (row_number() OVER (ORDER BY id) - 1) / $2 FROM customers`, id, m.BatchSize)
	case seg != nil:
		q, args := seg.SQL()
		n := len(args)
		_, err = tx.ExecContext(ctx, fmt.Sprintf(`
			INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
			SELECT $%d, c.id, (row_number() OVER (ORDER BY s.cust) - 1) / $%d
			FROM (%s) s JOIN customers c ON c.num = s.cust`, n+1, n+2, q), append(args, id, m.BatchSize)...)
	default:
		_, err = tx.ExecContext(ctx, `
			INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
			SELECT $1, id, (row_number() OVER (ORDER BY first) - 1) / $2
			FROM (SELECT id, min(n) AS first FROM unnest($3::text[]) WITH ORDINALITY AS u(id, n) GROUP BY id) x`,
			id, m.BatchSize, pq.Array(m.Audience.CustomerIDs))
	}
	if err != nil {
		return nil, fmt.Errorf("writing recipients of mailing %d: %w", id, err)
	}
	var refs []BatchRef
	err = tx.SelectContext(ctx, &refs, `
		INSERT INTO mailing_batches (mailing_id, batch, recipients, attempt, enqueued_at)
		SELECT $1, batch, count(*), 1, now() FROM mailing_recipients WHERE mailing_id = $1 GROUP BY batch
		RETURNING mailing_id, batch, attempt`, id)
	if err != nil {
		return nil, fmt.Errorf("writing batches of mailing %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mailings SET status = 'running', started_at = now(), while_codes_last = $2 WHERE id = $1`, id, whileCodesLast); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.enqueue(ctx, refs)
	s.log.Info("mailing started", "mailing_id", id, "audience", n, "batches", len(refs))
	return s.Get(ctx, id)
}

// enqueue hands batch tasks to the queue. The rows are already committed: if Redis is
// unreachable now, the reconciler enqueues them later, so a failure is only logged.
func (s *Service) enqueue(ctx context.Context, refs []BatchRef) {
	if len(refs) == 0 || s.enqueuer == nil {
		return
	}
	if err := s.enqueuer.EnqueueBatches(ctx, refs); err != nil {
		s.log.Warn("enqueuing batches failed; the reconciler will retry", "mailing_id", refs[0].MailingID, "err", err)
	}
}

// reenqueue bumps the attempt of the mailing's open batches and enqueues them.
func (s *Service) reenqueue(ctx context.Context, q sqlx.QueryerContext, id int64) ([]BatchRef, error) {
	var refs []BatchRef
	err := sqlx.SelectContext(ctx, q, &refs, `
		UPDATE mailing_batches SET attempt = attempt + 1, enqueued_at = now()
		WHERE mailing_id = $1 AND done_at IS NULL RETURNING mailing_id, batch, attempt`, id)
	return refs, err
}

// transition moves a mailing from one of the statuses in from to to, and re-enqueues
// its open batches when requeue is set. Errors: ErrNotFound, ErrState.
func (s *Service) transition(ctx context.Context, id int64, from []string, to, reason string, requeue bool) (*Mailing, error) {
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
	if _, err := tx.ExecContext(ctx, `UPDATE mailings SET status = $2, pause_reason = $3 WHERE id = $1`, id, to, reason); err != nil {
		return nil, err
	}
	if to == StatusCancelled && m.Status == StatusDraft {
		_, err = tx.ExecContext(ctx, `UPDATE mailings SET finished_at = now() WHERE id = $1`, id)
		if err != nil {
			return nil, err
		}
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
	return s.transition(ctx, id, []string{StatusRunning}, StatusPaused, "paused by "+actor, false)
}

// Resume continues a paused mailing where it stopped: its open batches are enqueued
// again (recipients already sent are never sent again). Errors: ErrNotFound, ErrState.
func (s *Service) Resume(ctx context.Context, id int64) (*Mailing, error) {
	return s.transition(ctx, id, []string{StatusPaused}, StatusRunning, "", true)
}

// Cancel stops a mailing for good. Each open batch's task then skips its queued
// recipients and returns their codes to the pool, under the batch's lease, so a batch
// in flight finishes its sends before anything is released. Errors: ErrNotFound, ErrState.
func (s *Service) Cancel(ctx context.Context, id int64, actor string) (*Mailing, error) {
	return s.transition(ctx, id, []string{StatusDraft, StatusRunning, StatusPaused}, StatusCancelled, "cancelled by "+actor, true)
}
