package checkout

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"promopool/offers"
)

// Statuses of a redemption.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
	StatusRefunded  = "refunded"
	StatusFailed    = "failed"
)

// Redemption is one redemption attempt as recorded, with the snapshot of what it was
// worth when it was made.
type Redemption struct {
	ID int64 `json:"id"`
	// Status is pending (a hold), succeeded, cancelled, expired (a hold that ran out),
	// refunded or failed (refused; Reason says why).
	Status  string        `json:"status"`
	Reason  offers.Reason `json:"reason,omitempty"`
	Message string        `json:"message,omitempty"`
	// GroupID is absent on a failed attempt whose code was not found.
	GroupID   *int64 `json:"group_id,omitempty"`
	GroupName string `json:"group_name,omitempty"`
	// Code is the code as stored (its uploaded spelling); empty when not found.
	Code       string `json:"code"`
	Kind       string `json:"kind,omitempty"`
	CustomerID string `json:"customer_id"`
	OrderID    string `json:"order_id"`
	Currency   string `json:"currency"`
	// OrderAmount is the order before the discount; DiscountAmount what was taken off;
	// TotalAfter what the buyer paid; RefundedAmount the part of the discount refunds
	// gave back (minor units of Currency).
	OrderAmount    int64 `json:"order_amount"`
	DiscountAmount int64 `json:"discount_amount"`
	TotalAfter     int64 `json:"total_after"`
	RefundedAmount int64 `json:"refunded_amount"`
	// PerItem is the order's lines with their original and discounted amounts.
	PerItem []offers.Line `json:"per_item"`
	// Free is true when the discount covered the whole order.
	Free bool `json:"free"`
	// TermsSummary and Terms are the group's terms when the redemption was made.
	TermsSummary string        `json:"terms_summary"`
	Terms        *offers.Terms `json:"terms,omitempty"`
	// HoldExpiresAt is when a pending hold lets its slots go unless confirmed.
	HoldExpiresAt *time.Time `json:"hold_expires_at,omitempty"`
	// IssueID and MailingID link a unique code's redemption to the issue that gave the
	// customer the code, and to its mailing.
	IssueID   *int64    `json:"issue_id,omitempty"`
	MailingID *int64    `json:"mailing_id,omitempty"`
	UTMSource string    `json:"utm_source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	key  sql.NullString
	hash []byte
}

// snapshot is what a redemption keeps of its offer and order (redemptions.snapshot).
type snapshot struct {
	GroupName    string        `json:"group_name"`
	Terms        *offers.Terms `json:"terms"`
	TermsSummary string        `json:"terms_summary"`
	PerItem      []offers.Line `json:"per_item"`
	Free         bool          `json:"free"`
}

// redemptionCols are the columns scanRedemption reads, in its order.
const redemptionCols = `id, group_id, code, kind, customer_id, order_id, idempotency_key, request_hash,
	status, reason, issue_id, mailing_id, currency, order_amount, discount_amount, refunded_amount,
	utm_source, snapshot, hold_expires_at, created_at, updated_at`

// qualified is redemptionCols with each column prefixed ("(t.r)." for a composite).
func qualified(prefix string) string {
	cols := strings.Split(redemptionCols, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

type scanner interface{ Scan(dest ...any) error }

func scanRedemption(row scanner) (*Redemption, error) {
	var (
		r                     Redemption
		group, issue, mailing sql.NullInt64
		kind, reason          sql.NullString
		snap                  []byte
		hold                  sql.NullTime
	)
	err := row.Scan(&r.ID, &group, &r.Code, &kind, &r.CustomerID, &r.OrderID, &r.key, &r.hash,
		&r.Status, &reason, &issue, &mailing, &r.Currency, &r.OrderAmount, &r.DiscountAmount, &r.RefundedAmount,
		&r.UTMSource, &snap, &hold, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return nil, err
	}
	r.Kind, r.Reason = kind.String, offers.Reason(reason.String)
	if reason.Valid {
		r.Message = r.Reason.Message()
	}
	r.GroupID, r.IssueID, r.MailingID = nullInt(group), nullInt(issue), nullInt(mailing)
	if hold.Valid {
		t := hold.Time.UTC()
		r.HoldExpiresAt = &t
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	var sn snapshot
	if err := json.Unmarshal(snap, &sn); err != nil {
		return nil, fmt.Errorf("reading the snapshot of redemption %d: %w", r.ID, err)
	}
	r.GroupName, r.Terms, r.TermsSummary, r.PerItem, r.Free = sn.GroupName, sn.Terms, sn.TermsSummary, sn.PerItem, sn.Free
	if r.PerItem == nil {
		r.PerItem = []offers.Line{}
	}
	r.TotalAfter = r.OrderAmount - r.DiscountAmount
	return &r, nil
}

func nullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

// Get returns the redemption. Errors: ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (*Redemption, error) {
	return s.get(ctx, s.db, id)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Service) get(ctx context.Context, q queryer, id int64) (*Redemption, error) {
	r, err := scanRedemption(q.QueryRowContext(ctx, `SELECT `+redemptionCols+` FROM redemptions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("redemption %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading redemption %d: %w", id, err)
	}
	return r, nil
}
