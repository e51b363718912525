package checkout

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"promopool/offers"
)

// offerQuery reads, in one statement, everything a validation decides on: the code
// (compared case-insensitively: one probe of the unique index on (lower(code),
// case_dup), migration 0024; of legacy codes that differ only in case, the spelling
// typed, else the first stored), its group's terms, limits and status, a promotion code's restrictions, a
// void, a unique code's range (its expiry) and live issue (its holder), and the counters
// of the group, the code and the customer.
//
// A code that does not exist becomes the row id -1 (the UNION ALL branch), and every
// join below probes its index with it: a miss does the same index descents as a hit, so
// the time of the answer does not tell whether the string is a code.
const offerQuery = `
SELECT c.id, c.code, COALESCE(g.id, 0), COALESCE(g.name, ''), COALESCE(g.kind, ''), COALESCE(g.status, ''),
       g.archived_at IS NOT NULL, g.terms, g.max_redemptions, g.max_per_customer, g.starts_at, g.ends_at,
       g.budget, COALESCE(g.code_binding, 'holder'), r.expires_at,
       pc.code_id IS NOT NULL, COALESCE(pc.active, true), COALESCE(pc.first_time_only, false), pc.customer_id,
       pc.max_redemptions, pc.expires_at, pc.min_order,
       v.code_id IS NOT NULL, i.id, i.customer_id, i.mailing_id,
       COALESCE(gc.used, 0), COALESCE(gc.discounted, 0), COALESCE(cc.used, 0), COALESCE(cu.used, 0),
       EXISTS (SELECT 1 FROM redemption_customer_counts x WHERE x.customer_id = $2 AND x.used > 0)
  FROM (SELECT * FROM ((SELECT id, code FROM codes WHERE lower(code) = lower($1::text COLLATE "C")
                         ORDER BY code = $1 DESC, case_dup LIMIT 1)
                       UNION ALL SELECT -1::bigint, ''::text) u LIMIT 1) c
  LEFT JOIN promotion_codes pc ON pc.code_id = c.id
  LEFT JOIN code_ranges r ON pc.code_id IS NULL AND r.upload_id = (c.id >> 32)
                         AND c.id BETWEEN r.first_id AND r.last_id
  LEFT JOIN groups g ON g.id = COALESCE(pc.group_id, r.group_id, -1)
  LEFT JOIN code_voids v ON v.code_id = c.id
  LEFT JOIN issues i ON i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL AND NOT i.shared
  LEFT JOIN redemption_counts gc ON gc.group_id = COALESCE(g.id, -1)
  LEFT JOIN redemption_code_counts cc ON cc.code_id = c.id
  LEFT JOIN redemption_customer_counts cu ON cu.group_id = COALESCE(g.id, -1) AND cu.customer_id = $2`

// offer is one code with everything a validation decides on.
type offer struct {
	codeID    int64
	code      string
	groupID   int64
	groupName string
	kind      string // unique or shared
	status    string // draft, active, paused
	archived  bool
	termsJSON []byte
	terms     *offers.Terms
	maxTotal  sql.NullInt64
	maxPer    sql.NullInt64
	startsAt  sql.NullTime
	endsAt    sql.NullTime
	budget    sql.NullInt64
	binding   string // holder or bearer
	// codeExpires is a unique code's expiry (its upload range's).
	codeExpires sql.NullTime
	// promo: a shared group's promotion code, with its restrictions.
	promo          bool
	promoActive    bool
	firstTimeOnly  bool
	promoCustomer  sql.NullString
	promoCap       sql.NullInt64
	promoExpires   sql.NullTime
	promoMinOrder  sql.NullInt64
	voided         bool
	issueID        sql.NullInt64
	holder         sql.NullString
	mailingID      sql.NullInt64
	groupUsed      int64
	groupDiscount  int64
	codeUsed       int64
	customerUsed   int64
	customerBefore bool // the customer has a live redemption in some group
}

// loadOffer reads the code's offer. A code that does not exist is an offer with
// codeID -1.
func (s *Service) loadOffer(ctx context.Context, code, customer string) (*offer, error) {
	st, err := s.stmt(ctx, offerQuery)
	if err != nil {
		return nil, err
	}
	return scanOffer(st.QueryRowContext(ctx, code, customer))
}

// scanOffer reads an offer's columns (offerQuery's, after any the caller scans first).
func scanOffer(row scanner, first ...any) (*offer, error) {
	var o offer
	err := row.Scan(append(first, &o.codeID, &o.code, &o.groupID, &o.groupName, &o.kind, &o.status,
		&o.archived, &o.termsJSON, &o.maxTotal, &o.maxPer, &o.startsAt, &o.endsAt,
		&o.budget, &o.binding, &o.codeExpires,
		&o.promo, &o.promoActive, &o.firstTimeOnly, &o.promoCustomer,
		&o.promoCap, &o.promoExpires, &o.promoMinOrder,
		&o.voided, &o.issueID, &o.holder, &o.mailingID,
		&o.groupUsed, &o.groupDiscount, &o.codeUsed, &o.customerUsed, &o.customerBefore)...)
	if err != nil {
		return nil, fmt.Errorf("reading the offer of a code: %w", err)
	}
	if len(o.termsJSON) > 0 {
		var t offers.Terms
		if err := json.Unmarshal(o.termsJSON, &t); err != nil {
			return nil, fmt.Errorf("reading the terms of group %d: %w", o.groupID, err)
		}
		if t.Duration == "" {
			t.Duration = offers.DurationOnce // Normalize's default, for terms stored without it
		}
		o.terms = &t
	} else {
		// A miss evaluates the same empty terms a group without terms has.
		o.terms = nil
	}
	return &o, nil
}

// found reports whether the code exists in a group.
func (o *offer) found() bool { return o.codeID > 0 && o.groupID > 0 }

// codeCap is the per-code cap: 1 for a unique code, the promotion code's own (or none).
func (o *offer) codeCap() sql.NullInt64 {
	if o.kind == "unique" {
		return sql.NullInt64{Int64: 1, Valid: true}
	}
	return o.promoCap
}

// ask is what is asked of an offer: the customer (may be empty for a validation), the
// shop's first-time flag, and the order (nil: no order, the storefront's yes/no).
type ask struct {
	customer  string
	firstTime *bool
	order     *offers.Order
}

// check decides everything but the caps, in the order a buyer is best told about:
// existence, voids and status, the window and expiry, who may use the code, then the
// order (currency, minimum, eligible items). It returns the discount on the order.
func (o *offer) check(a ask, now time.Time) (offers.Reason, offers.Discount) {
	switch {
	case !o.found():
		if a.order != nil {
			// The arithmetic a found code would do, so a miss costs what a hit costs.
			_, _ = o.apply(*a.order)
		}
		return offers.ReasonNotFound, offers.Discount{}
	case o.voided || (o.promo && !o.promoActive):
		return offers.ReasonVoided, offers.Discount{}
	case o.archived:
		return offers.ReasonExpired, offers.Discount{}
	case o.status == "draft":
		return offers.ReasonDraft, offers.Discount{}
	case o.status == "paused":
		return offers.ReasonPaused, offers.Discount{}
	case o.startsAt.Valid && now.Before(o.startsAt.Time):
		return offers.ReasonNotYetActive, offers.Discount{}
	case o.endsAt.Valid && !now.Before(o.endsAt.Time),
		o.codeExpires.Valid && !now.Before(o.codeExpires.Time),
		o.promoExpires.Valid && !now.Before(o.promoExpires.Time):
		return offers.ReasonExpired, offers.Discount{}
	case o.promoCustomer.Valid && a.customer != "" && o.promoCustomer.String != a.customer:
		return offers.ReasonCustomerRestricted, offers.Discount{}
	case o.kind == "unique" && o.binding == "holder" && a.customer != "" && (!o.holder.Valid || o.holder.String != a.customer):
		return offers.ReasonNotYourCode, offers.Discount{}
	case o.firstTimeOnly && ((a.firstTime != nil && !*a.firstTime) || o.customerBefore):
		return offers.ReasonFirstTimeOnly, offers.Discount{}
	}
	if a.order == nil {
		return "", offers.Discount{}
	}
	d, reason := o.apply(*a.order)
	if reason != "" {
		return reason, offers.Discount{}
	}
	if o.promoMinOrder.Valid && d.OrderAmount < o.promoMinOrder.Int64 {
		return offers.ReasonMinOrder, offers.Discount{}
	}
	return "", d
}

// apply is the terms' discount on the order; a group without terms takes nothing off.
func (o *offer) apply(order offers.Order) (offers.Discount, offers.Reason) {
	if o.terms != nil {
		return o.terms.Apply(order)
	}
	none := offers.Terms{Type: offers.TypeFixed}
	d, reason := none.Apply(order)
	if reason == offers.ReasonNoEligibleItems {
		// Nothing to take off is not a refusal for a group without terms.
		return zeroDiscount(order), ""
	}
	return d, reason
}

// zeroDiscount is an order with nothing taken off.
func zeroDiscount(order offers.Order) offers.Discount {
	lines := make([]offers.Line, len(order.Items))
	var sum int64
	for i, it := range order.Items {
		lines[i] = offers.Line{ProductID: it.ProductID, Quantity: it.Quantity, OriginalAmount: it.Quantity * it.UnitAmount}
		sum += lines[i].OriginalAmount
	}
	if order.Amount != nil {
		sum = *order.Amount
	}
	return offers.Discount{Currency: order.Currency, PerItem: lines, OrderAmount: sum, TotalAfter: sum}
}

// capReason is the first cap the redemption of discount would pass, judged from the
// counters as read (a validation's answer; a redemption decides under the counters'
// row locks in checkout_redeem).
func (o *offer) capReason(customer string, discount int64) offers.Reason {
	if c := o.codeCap(); c.Valid && o.codeUsed >= c.Int64 {
		if o.kind == "unique" {
			return offers.ReasonAlreadyRedeemed
		}
		return offers.ReasonExhausted
	}
	if o.maxTotal.Valid && o.groupUsed >= o.maxTotal.Int64 {
		return offers.ReasonExhausted
	}
	if customer != "" && o.maxPer.Valid && o.customerUsed >= o.maxPer.Int64 {
		return offers.ReasonCustomerLimit
	}
	if o.budget.Valid && o.groupDiscount+discount > o.budget.Int64 {
		return offers.ReasonBudgetExhausted
	}
	return ""
}
