package mailings

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// batchLease is a delivery's hold on a batch.
type batchLease struct {
	token int64 // tells this delivery's lease from a later one's
	// first: the first lease of the batch ever, i.e. its first delivery: none of its
	// recipients can hold a code under the mailing's scope yet (a customer is in one
	// batch).
	first bool
}

// lease takes the batch's lease for Config.Lease, unless the batch is done or another
// delivery holds a lease that has not expired: then it returns nil.
//
// Leases commit with synchronous_commit off (set_config(…, true) is local to the
// statement's transaction): a lease lost in a crash is what the crash means anyway —
// the batch is free for another delivery — so its commit need not wait for the WAL
// flush. That saved two fsyncs a batch.
func (s *Service) lease(ctx context.Context, mailingID int64, batch int) (*batchLease, error) {
	token := rand.Int64N(math.MaxInt64-1) + 1
	var row struct {
		First bool `db:"first"`
		Sync  bool `db:"sync"`
	}
	err := s.db.GetContext(ctx, &row, `
		UPDATE mailing_batches SET lease_until = now() + make_interval(secs => $3), lease_token = $4, leases = leases + 1
		WHERE mailing_id = $1 AND batch = $2 AND done_at IS NULL AND (lease_until IS NULL OR lease_until < now())
		RETURNING leases = 1 AS first, set_config('synchronous_commit', 'off', true) = 'off' AS sync`, mailingID, batch, s.cfg.Lease.Seconds(), token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("leasing batch %d of mailing %d: %w", batch, mailingID, err)
	}
	return &batchLease{token: token, first: row.First}, nil
}

// unlease gives the batch's lease up, if this delivery (token) still holds it.
func (s *Service) unlease(ctx context.Context, mailingID int64, batch int, token int64) {
	s.db.ExecContext(ctx, `
		UPDATE mailing_batches SET lease_until = NULL, lease_token = NULL
		WHERE mailing_id = $1 AND batch = $2 AND lease_token = $3 AND set_config('synchronous_commit', 'off', true) = 'off'`,
		mailingID, batch, token)
}

// holdLease renews the batch's lease (held under token) every third of MAILING_LEASE
// until stop is called. The context it returns ends when a renewal finds the lease
// taken over by another delivery (it had expired): from then on that delivery holds
// the batch, so this one must send nothing more. A renewal that fails (PostgreSQL out
// of reach) is logged and tried again at the next tick; sending goes on, since
// stopping would turn the messages in flight into ambiguous failures, and a delivery
// that takes the batch over meanwhile can only resend with the same message ids, as
// after a crash between sending and recording.
func (s *Service) holdLease(ctx context.Context, mailingID int64, batch int, token int64) (context.Context, func()) {
	lctx, cancel := context.WithCancelCause(ctx)
	every := s.cfg.Lease / 3
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			var held bool
			qctx, qcancel := context.WithTimeout(lctx, every)
			err := s.db.GetContext(qctx, &held, `
				UPDATE mailing_batches SET lease_until = now() + make_interval(secs => $4)
				WHERE mailing_id = $1 AND batch = $2 AND lease_token = $3
				RETURNING set_config('synchronous_commit', 'off', true) = 'off'`, mailingID, batch, token, s.cfg.Lease.Seconds())
			qcancel()
			switch {
			case err == nil:
			case errors.Is(err, sql.ErrNoRows):
				s.log.Warn("batch lease lost to another delivery: sending stops", "mailing_id", mailingID, "batch", batch)
				cancel(errLeaseLost)
				return
			case lctx.Err() != nil:
				return
			default:
				s.log.Warn("renewing a batch lease failed", "mailing_id", mailingID, "batch", batch, "err", err)
			}
		}
	}()
	return lctx, func() { cancel(nil) }
}

// errLeaseLost ends a batch's sending when its lease is gone.
var errLeaseLost = errors.New("the batch's lease was lost")
