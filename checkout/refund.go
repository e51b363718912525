package checkout

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
)

// RefundRequest refunds a redemption, whole or by items.
type RefundRequest struct {
	// RefundID is the shop's refund id (required): the same refund again gets the
	// first answer; another refund under the same id is a conflict.
	RefundID string `json:"refund_id"`
	// Items lists the product ids of the lines refunded; empty refunds the whole order.
	Items []string `json:"items,omitempty"`
}

// Refund refunds a succeeded redemption (SPEC §11). The refunded lines' discount goes
// back to the group's budget; once every discounted line is refunded (or the whole
// order is) the redemption is refunded and the customer's slot is free again (a
// first-time code becomes usable again); the total cap never gets its slot back
// (raise the cap for more).
//
// Errors: *InvalidError (no refund id, an item not in the order or already refunded);
// ErrNotFound; ErrState (a hold, a cancelled or failed redemption, or refunded
// already); ErrRefundConflict (the refund id was used for other items).
func (s *Service) Refund(ctx context.Context, id int64, req RefundRequest) (*Redemption, error) {
	req.RefundID = strings.TrimSpace(req.RefundID)
	if req.RefundID == "" || len(req.RefundID) > 200 {
		return nil, invalid("refund_id", "is required (1–200 characters)")
	}
	items := slices.Clone(req.Items)
	slices.Sort(items)
	items = slices.Compact(items)
	canon, _ := json.Marshal(items)
	hash := sha256.Sum256(canon)
	var notify bool
	r, err := s.inTx(ctx, func(tx *sqlx.Tx) (*Redemption, error) {
		r, err := s.lockRedemption(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		var prev []byte
		err = tx.GetContext(ctx, &prev, `SELECT request_hash FROM redemption_refunds WHERE redemption_id = $1 AND refund_id = $2`, id, req.RefundID)
		switch {
		case err == nil && string(prev) == string(hash[:]):
			return r, nil
		case err == nil:
			return nil, fmt.Errorf("refund %q of redemption %d: %w", req.RefundID, id, ErrRefundConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("reading refund %q of redemption %d: %w", req.RefundID, id, err)
		}
		if r.Status != StatusSucceeded {
			return nil, fmt.Errorf("redemption %d is %s; only a succeeded redemption can be refunded: %w", id, r.Status, ErrState)
		}
		done, err := refundedItems(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		amount, lines, whole, err := refundAmount(r, items, done)
		if err != nil {
			return nil, err
		}
		now := s.now()
		linesJSON, _ := json.Marshal(lines)
		if _, err := tx.ExecContext(ctx, `INSERT INTO redemption_refunds (redemption_id, refund_id, request_hash, items, amount, whole, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, req.RefundID, hash[:], linesJSON, amount, whole, now); err != nil {
			return nil, fmt.Errorf("recording refund %q of redemption %d: %w", req.RefundID, id, err)
		}
		status := StatusSucceeded
		if whole {
			status = StatusRefunded
		}
		if _, err := tx.ExecContext(ctx, `UPDATE redemptions SET refunded_amount = refunded_amount + $2, status = $3, updated_at = $4 WHERE id = $1`,
			id, amount, status, now); err != nil {
			return nil, fmt.Errorf("refunding redemption %d: %w", id, err)
		}
		// The budget gets the discount back; the customer's slot is freed by the
		// refund that completes it; the total cap keeps its slot.
		if err := s.release(ctx, tx, r, false, amount, whole); err != nil {
			return nil, err
		}
		if err := s.writeWebhook(ctx, tx, r, "redemption.refunded", amount, now); err != nil {
			return nil, err
		}
		notify = s.cfg.Webhooks
		return s.get(ctx, tx, id)
	})
	if err == nil && notify {
		s.notify(ctx, id)
	}
	return r, err
}

// refundedItems lists the product ids earlier refunds of the redemption covered ("*"
// for a whole refund).
func refundedItems(ctx context.Context, tx *sqlx.Tx, id int64) ([]string, error) {
	var raws [][]byte
	if err := tx.SelectContext(ctx, &raws, `SELECT items FROM redemption_refunds WHERE redemption_id = $1`, id); err != nil {
		return nil, fmt.Errorf("reading the refunds of redemption %d: %w", id, err)
	}
	var out []string
	for _, raw := range raws {
		var ids []string
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, fmt.Errorf("reading a refund of redemption %d: %w", id, err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// refundAmount is the discount a refund of items gives back (all lines not refunded
// yet when items is empty), the product ids it covers, and whether, with the earlier
// refunds, every line with a discount is now refunded.
func refundAmount(r *Redemption, items, done []string) (amount int64, lines []string, whole bool, err error) {
	if len(items) == 0 {
		for _, l := range r.PerItem {
			if !slices.Contains(done, l.ProductID) {
				lines = append(lines, l.ProductID)
			}
		}
		if lines == nil {
			lines = []string{}
		}
		return r.DiscountAmount - r.RefundedAmount, lines, true, nil
	}
	for _, id := range items {
		found := false
		for _, l := range r.PerItem {
			if l.ProductID == id {
				found = true
				amount += l.DiscountAmount
			}
		}
		switch {
		case !found:
			return 0, nil, false, invalid("items", "product %q is not a line of order %q", id, r.OrderID)
		case slices.Contains(done, id):
			return 0, nil, false, invalid("items", "product %q was refunded already", id)
		}
	}
	whole = true
	for _, l := range r.PerItem {
		if l.DiscountAmount > 0 && !slices.Contains(items, l.ProductID) && !slices.Contains(done, l.ProductID) {
			whole = false
		}
	}
	return amount, items, whole, nil
}
