package checkout

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"promopool/internal/csvsafe"
)

// Filter selects redemptions for the history (every field optional), newest first.
type Filter struct {
	GroupID    int64
	CustomerID string
	OrderID    string
	// Code matches the stored code case-insensitively.
	Code string
	// CodeID matches one code exactly (GET /v1/codes/{code}).
	CodeID int64
	// Before pages: redemptions with ids below it; 0 is from the newest.
	Before int64
	// Limit is the page size (1–1000, default 100).
	Limit int
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.GroupID != 0 {
		add("group_id = ?", f.GroupID)
	}
	if f.CustomerID != "" {
		add("customer_id = ?", f.CustomerID)
	}
	if f.OrderID != "" {
		add("order_id = ?", f.OrderID)
	}
	if f.Code != "" {
		add(`lower(code) = lower(?::text COLLATE "C")`, f.Code) // as codes compare (migration 0024)
	}
	if f.CodeID != 0 {
		add("code_id = ?", f.CodeID)
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns a page of the redemption history: held, succeeded, cancelled, expired,
// refunded and failed attempts (with their reasons), newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]*Redemption, error) {
	if f.Limit < 1 || f.Limit > 1000 {
		f.Limit = 100
	}
	where, args := f.where()
	// Each filter has an index led by it (group, customer, code id, live order); the
	// id order then reads the newest first.
	rows, err := s.db.QueryContext(ctx, `SELECT `+redemptionCols+` FROM redemptions`+where+
		` ORDER BY id DESC LIMIT `+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("listing redemptions: %w", err)
	}
	defer rows.Close()
	out := []*Redemption{}
	for rows.Next() {
		r, err := scanRedemption(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ExportCSV streams the group's redemptions (every status) to w as CSV, oldest first:
// id, created_at, status, reason, code, customer_id, order_id, currency, order_amount,
// discount_amount, refunded_amount, mailing_id. Cells are written as text a spreadsheet will
// not run (internal/csvsafe).
func (s *Service) ExportCSV(ctx context.Context, groupID int64, w io.Writer) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, created_at, status, COALESCE(reason, ''), code, customer_id, order_id,
		currency, order_amount, discount_amount, refunded_amount, COALESCE(mailing_id::text, '')
		FROM redemptions WHERE group_id = $1 ORDER BY id`, groupID)
	if err != nil {
		return fmt.Errorf("exporting the redemptions of group %d: %w", groupID, err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "created_at", "status", "reason", "code", "customer_id", "order_id", "currency", "order_amount", "discount_amount", "refunded_amount", "mailing_id"})
	for rows.Next() {
		var (
			id, amount, discount, refunded        int64
			at                                    time.Time
			status, reason, code, customer, order string
			currency, mailing                     string
		)
		if err := rows.Scan(&id, &at, &status, &reason, &code, &customer, &order, &currency, &amount, &discount, &refunded, &mailing); err != nil {
			return fmt.Errorf("exporting the redemptions of group %d: %w", groupID, err)
		}
		if err := cw.Write([]string{strconv.FormatInt(id, 10), at.UTC().Format(time.RFC3339), status, reason, csvsafe.Cell(code), csvsafe.Cell(customer),
			csvsafe.Cell(order), currency, strconv.FormatInt(amount, 10), strconv.FormatInt(discount, 10), strconv.FormatInt(refunded, 10), mailing}); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return rows.Err()
}
