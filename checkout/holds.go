package checkout

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// lockQuery takes the checkout lock of a redemption's group (its redemption_counts
// row, migration 0026) before the redemption's own row: the order a redemption takes
// its locks in (checkout_redeem holds the counter while it inserts its row), so a
// refund, confirm, cancel or expiry never waits for a counter while holding a
// redemption a redemption could wait for. A redemption without a group (a refusal of a
// code not found) locks no counter.
const lockQuery = `SELECT 1 FROM redemption_counts WHERE group_id = (SELECT group_id FROM redemptions WHERE id = $1) FOR UPDATE`

// lockRedemption takes the group's checkout lock, then reads the redemption under a
// row lock.
func (s *Service) lockRedemption(ctx context.Context, tx *sqlx.Tx, id int64) (*Redemption, error) {
	if _, err := tx.ExecContext(ctx, lockQuery, id); err != nil {
		return nil, fmt.Errorf("locking the counters of redemption %d: %w", id, err)
	}
	r, err := scanRedemption(tx.QueryRowContext(ctx, `SELECT `+redemptionCols+` FROM redemptions WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("redemption %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("locking redemption %d: %w", id, err)
	}
	return r, nil
}

// Confirm makes a hold final (succeeded). Confirming a redemption that already
// succeeded returns it as it is. Errors: ErrNotFound; ErrHoldExpired (its time ran out:
// the slots were freed, redeem the order again); ErrState (cancelled, or not a hold).
func (s *Service) Confirm(ctx context.Context, id int64) (*Redemption, error) {
	var notify bool
	r, err := s.inTx(ctx, func(tx *sqlx.Tx) (*Redemption, error) {
		r, err := s.lockRedemption(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		now := s.now()
		switch {
		case r.Status == StatusSucceeded:
			return r, nil
		case r.Status == StatusExpired:
			return nil, fmt.Errorf("redemption %d: %w", id, ErrHoldExpired)
		case r.Status != StatusPending:
			return nil, fmt.Errorf("redemption %d is %s, not a hold: %w", id, r.Status, ErrState)
		case !now.Before(*r.HoldExpiresAt):
			// Past its TTL and not swept yet: it expires now.
			if err := s.endHold(ctx, tx, r, StatusExpired, now); err != nil {
				return nil, err
			}
			return nil, errHoldExpiredNow{id}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE redemptions SET status = 'succeeded', hold_expires_at = NULL, updated_at = $2 WHERE id = $1`, id, now); err != nil {
			return nil, fmt.Errorf("confirming redemption %d: %w", id, err)
		}
		if err := s.writeWebhook(ctx, tx, r, "redemption.succeeded", 0, now); err != nil {
			return nil, err
		}
		notify = s.cfg.Webhooks
		return s.get(ctx, tx, id)
	})
	var exp errHoldExpiredNow
	if errors.As(err, &exp) {
		return nil, fmt.Errorf("redemption %d: %w", id, ErrHoldExpired)
	}
	if err == nil && notify {
		s.notify(ctx, id)
	}
	return r, err
}

// errHoldExpiredNow commits the expiry a late Confirm found, then becomes ErrHoldExpired.
type errHoldExpiredNow struct{ id int64 }

func (e errHoldExpiredNow) Error() string { return "hold expired" }

// Cancel lets a hold go: its slots are free again at once. Cancelling a cancelled hold
// returns it as it is. Errors: ErrNotFound; ErrState (succeeded, refunded or expired:
// a redemption that succeeded is refunded instead).
func (s *Service) Cancel(ctx context.Context, id int64) (*Redemption, error) {
	return s.inTx(ctx, func(tx *sqlx.Tx) (*Redemption, error) {
		r, err := s.lockRedemption(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		switch r.Status {
		case StatusCancelled:
			return r, nil
		case StatusPending:
		default:
			return nil, fmt.Errorf("redemption %d is %s; only a hold can be cancelled: %w", id, r.Status, ErrState)
		}
		if err := s.endHold(ctx, tx, r, StatusCancelled, s.now()); err != nil {
			return nil, err
		}
		return s.get(ctx, tx, id)
	})
}

// endHold marks a locked pending redemption cancelled or expired and gives its slots
// back: the group's count and held discount, the code's count, the customer's count.
func (s *Service) endHold(ctx context.Context, tx *sqlx.Tx, r *Redemption, status string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE redemptions SET status = $2, updated_at = $3 WHERE id = $1`, r.ID, status, now); err != nil {
		return fmt.Errorf("ending hold %d: %w", r.ID, err)
	}
	return s.release(ctx, tx, r, true, r.DiscountAmount, true)
}

// release gives slots back, in checkout_redeem's lock order: the group's count (total)
// and discount, the code's count (total), the customer's count (customer).
func (s *Service) release(ctx context.Context, tx *sqlx.Tx, r *Redemption, total bool, discount int64, customer bool) error {
	slot := 0
	if total {
		slot = 1
	}
	if _, err := tx.ExecContext(ctx, `UPDATE redemption_counts SET used = used - $2, discounted = discounted - $3 WHERE group_id = $1`,
		*r.GroupID, slot, discount); err != nil {
		return fmt.Errorf("releasing the group slot of redemption %d: %w", r.ID, err)
	}
	if total {
		if _, err := tx.ExecContext(ctx, `UPDATE redemption_code_counts SET used = used - 1 WHERE code_id = (SELECT code_id FROM redemptions WHERE id = $1)`, r.ID); err != nil {
			return fmt.Errorf("releasing the code slot of redemption %d: %w", r.ID, err)
		}
	}
	if customer {
		if _, err := tx.ExecContext(ctx, `UPDATE redemption_customer_counts SET used = used - 1 WHERE group_id = $1 AND customer_id = $2`,
			*r.GroupID, r.CustomerID); err != nil {
			return fmt.Errorf("releasing the customer slot of redemption %d: %w", r.ID, err)
		}
	}
	return nil
}

// ExpireResult is what one sweep of expired holds did.
type ExpireResult struct {
	// Expired counts the holds that ran out and gave their slots back.
	Expired int
}

// ExpireHolds ends every hold past its TTL (status expired, slots freed), in batches of
// 500: a batch's groups' checkout locks are taken in group id order, then its holds
// with SKIP LOCKED, so several schedulers, a Confirm racing the sweep and redemptions
// never deadlock with it. Safe to run at any time, twice included.
func (s *Service) ExpireHolds(ctx context.Context) (ExpireResult, error) {
	var res ExpireResult
	for {
		n, more := 0, false
		_, err := s.inTx(ctx, func(tx *sqlx.Tx) (*Redemption, error) {
			now := s.now()
			var ids, groups []int64
			rows, err := tx.QueryContext(ctx, `SELECT id, group_id FROM redemptions
				WHERE status = 'pending' AND hold_expires_at <= $1 ORDER BY hold_expires_at LIMIT 500`, now)
			if err != nil {
				return nil, fmt.Errorf("finding expired holds: %w", err)
			}
			for rows.Next() {
				var id, g int64
				if err := rows.Scan(&id, &g); err != nil {
					rows.Close()
					return nil, err
				}
				ids = append(ids, id)
				if !slices.Contains(groups, g) {
					groups = append(groups, g)
				}
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			if len(ids) == 0 {
				return nil, nil
			}
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM redemption_counts WHERE group_id = ANY($1) ORDER BY group_id FOR UPDATE`, pq.Array(groups)); err != nil {
				return nil, fmt.Errorf("locking the counters of expired holds: %w", err)
			}
			rows, err = tx.QueryContext(ctx, `SELECT `+redemptionCols+` FROM redemptions
				WHERE id = ANY($1) AND status = 'pending' AND hold_expires_at <= $2 FOR UPDATE SKIP LOCKED`, pq.Array(ids), now)
			if err != nil {
				return nil, fmt.Errorf("locking expired holds: %w", err)
			}
			var due []*Redemption
			for rows.Next() {
				r, err := scanRedemption(rows)
				if err != nil {
					rows.Close()
					return nil, err
				}
				due = append(due, r)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			for _, r := range due {
				if err := s.endHold(ctx, tx, r, StatusExpired, now); err != nil {
					return nil, err
				}
			}
			n = len(due)
			// A full batch may have more behind it; one whose holds were all locked by
			// someone else (ending them) is left to the next sweep.
			more = len(ids) == 500 && n > 0
			return nil, nil
		})
		if err != nil {
			return res, err
		}
		res.Expired += n
		if !more {
			return res, nil
		}
	}
}

// inTx runs f in a transaction: committed when f returns no error (or an
// errHoldExpiredNow, whose expiry must stick), rolled back otherwise.
func (s *Service) inTx(ctx context.Context, f func(tx *sqlx.Tx) (*Redemption, error)) (*Redemption, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	defer tx.Rollback()
	r, err := f(tx)
	var exp errHoldExpiredNow
	if err != nil && !errors.As(err, &exp) {
		return nil, err
	}
	if cerr := tx.Commit(); cerr != nil {
		return nil, fmt.Errorf("committing: %w", cerr)
	}
	return r, err
}

// writeWebhook puts a webhook of the event in the outbox, when webhooks are on.
func (s *Service) writeWebhook(ctx context.Context, tx *sqlx.Tx, r *Redemption, event string, refunded int64, now time.Time) error {
	if !s.cfg.Webhooks {
		return nil
	}
	items := make([]WebhookItem, len(r.PerItem))
	for i, l := range r.PerItem {
		items[i] = WebhookItem{ProductID: l.ProductID, Quantity: l.Quantity, OriginalAmount: l.OriginalAmount, DiscountAmount: l.DiscountAmount}
	}
	body, _ := json.Marshal(map[string]any{"event": event, "redemption_id": r.ID, "order_id": r.OrderID, "promo_code": r.Code,
		"group_id": r.GroupID, "customer_id": r.CustomerID, "currency": r.Currency, "order_amount": r.OrderAmount,
		"discount_amount": r.DiscountAmount, "refunded_amount": refunded, "items": items, "issue_id": r.IssueID, "mailing_id": r.MailingID})
	if _, err := tx.ExecContext(ctx, `INSERT INTO redemption_webhooks (redemption_id, event, payload, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $4)`, r.ID, event, body, now); err != nil {
		return fmt.Errorf("writing the %s webhook of redemption %d: %w", event, r.ID, err)
	}
	return nil
}
