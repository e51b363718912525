package mailings

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Reconcile finishes mailings whose batches are all done, continues outboxes whose
// writer stopped (Config.OutboxStale), and enqueues again the open batches of running
// or cancelled mailings that hold no live lease and were last enqueued longer ago than
// Config.ReenqueueAfter: their tasks were lost (Redis restarted without its data, a
// task archived after its retries, a worker killed while its lease ran out). When the
// enqueuer is a QueueChecker, batches whose task still waits in the queue are left
// alone. Each gets a new attempt number, hence a new task id; a duplicate delivery
// finds the batch done or leased and does nothing. Returns how many batches it enqueued.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	// A mailing whose last batch's finish check failed (the process died right after
	// committing) is finished here.
	if _, err := finishDone(ctx, s.db, 0); err != nil {
		return 0, err
	}
	if err := s.continueOutboxes(ctx); err != nil {
		return 0, err
	}
	// Mailings paused for lack of codes whose groups were refilled by a way that did
	// not announce it (the CLI's upload, a cap raised, codes returned) resume here.
	if _, err := s.ResumeExhausted(ctx, 0, "the reconciler found codes for its waiting recipients"); err != nil {
		return 0, err
	}
	// Mailings waiting for a paused group that is active again, whose activation did not
	// resume them (the process died first, or the pause came just after it), resume here.
	if _, err := s.ResumeGroupWait(ctx, 0, "the reconciler found its groups active again"); err != nil {
		return 0, err
	}
	var cands []BatchRef
	err := s.db.SelectContext(ctx, &cands, `
		SELECT b.mailing_id, b.batch, b.attempt FROM mailing_batches b JOIN mailings m ON m.id = b.mailing_id
		WHERE m.status IN ('running', 'cancelled') AND b.done_at IS NULL
		  AND (b.lease_until IS NULL OR b.lease_until < now())
		  AND (b.enqueued_at IS NULL OR b.enqueued_at < now() - make_interval(secs => $1))`, s.cfg.ReenqueueAfter.Seconds())
	if err != nil || len(cands) == 0 {
		if err != nil {
			return 0, fmt.Errorf("reconciling mailings: %w", err)
		}
		return 0, nil
	}
	refs, err := s.requeue(ctx, cands)
	if err != nil {
		return 0, fmt.Errorf("reconciling mailings: %w", err)
	}
	if len(refs) > 0 {
		if s.enqueuer == nil {
			return 0, fmt.Errorf("reconciling mailings: no enqueuer")
		}
		if err := s.enqueuer.EnqueueBatches(ctx, refs); err != nil {
			return 0, fmt.Errorf("reconciling mailings: %w", err)
		}
		s.log.Info("re-enqueued lost batches", "batches", len(refs))
	}
	return len(refs), nil
}

// continueOutboxes continues the outboxes whose writer stopped between chunks (its
// process died): Config.OutboxStale without a chunk.
func (s *Service) continueOutboxes(ctx context.Context) error {
	var unwritten []int64
	if err := s.db.SelectContext(ctx, &unwritten, `
		SELECT id FROM mailings WHERE NOT outbox_complete AND outbox_at < now() - make_interval(secs => $1)`,
		s.cfg.OutboxStale.Seconds()); err != nil {
		return fmt.Errorf("reconciling mailings: %w", err)
	}
	for _, id := range unwritten {
		s.log.Warn("continuing the outbox of a mailing whose writer stopped", "mailing_id", id)
		if err := s.fillOutbox(ctx, id, nil); err != nil {
			return err
		}
	}
	return nil
}

// requeue sorts the candidate batches into those whose task still waits in the queue
// (when the enqueuer can tell) and those whose task is lost, and returns the lost ones
// with their new attempt, to be enqueued.
func (s *Service) requeue(ctx context.Context, cands []BatchRef) ([]BatchRef, error) {
	waiting := make([]bool, len(cands))
	if qc, ok := s.enqueuer.(QueueChecker); ok {
		if w, err := qc.Waiting(ctx, cands); err != nil || len(w) != len(cands) {
			s.log.Warn("reconciler could not read the queue: enqueuing every candidate batch again", "err", err)
		} else {
			waiting = w
		}
	}
	var wait, lost [3][]int64
	for i, r := range cands {
		dst := &lost
		if waiting[i] {
			dst = &wait
		}
		dst[0], dst[1], dst[2] = append(dst[0], r.MailingID), append(dst[1], int64(r.Batch)), append(dst[2], int64(r.Attempt))
	}
	// Batches whose task still waits count as enqueued now: looked at again after
	// ReenqueueAfter. The others get a new attempt; "attempt = u.a" keeps two
	// reconcilers (one per worker) from both enqueuing one batch.
	if len(wait[0]) > 0 {
		if _, err := s.db.ExecContext(ctx, `
			UPDATE mailing_batches b SET enqueued_at = now()
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(m, bt, a)
			WHERE b.mailing_id = u.m AND b.batch = u.bt AND b.attempt = u.a`,
			pq.Array(wait[0]), pq.Array(wait[1]), pq.Array(wait[2])); err != nil {
			return nil, err
		}
	}
	var refs []BatchRef
	if len(lost[0]) > 0 {
		err := s.db.SelectContext(ctx, &refs, `
			UPDATE mailing_batches b SET attempt = b.attempt + 1, enqueued_at = now()
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(m, bt, a)
			WHERE b.mailing_id = u.m AND b.batch = u.bt AND b.attempt = u.a AND b.done_at IS NULL
			  AND (b.lease_until IS NULL OR b.lease_until < now())
			RETURNING b.mailing_id, b.batch, b.attempt`, pq.Array(lost[0]), pq.Array(lost[1]), pq.Array(lost[2]))
		if err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// RunReconciler calls Reconcile and returns the codes of claims that crashed between
// their two transactions to the pool (groups.Store.RecoverReservations), every
// interval until ctx ends.
func (s *Service) RunReconciler(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reconciler failed", "err", err)
			}
			n, err := s.groups.RecoverReservations(ctx, s.cfg.ReservationTimeout)
			if err != nil && ctx.Err() == nil {
				s.log.Error("recovering reservations failed", "err", err)
			} else if n > 0 {
				s.log.Info("returned codes of crashed claims to the pool", "codes", n)
			}
		}
	}
}
