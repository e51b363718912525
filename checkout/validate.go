package checkout

import (
	"context"
	"strings"
	"time"

	"promopool/offers"
)

// ValidateRequest asks whether a code applies to an order.
type ValidateRequest struct {
	// Code is the code as the buyer typed it (compared case-insensitively).
	Code string `json:"code"`
	// CustomerID is the platform's customer id, when the buyer is known: per-customer
	// caps, a code bound to its holder and customer restrictions need it.
	CustomerID string `json:"customer_id,omitempty"`
	// Email is the buyer's email, when that is all the shop knows: without CustomerID,
	// the customer with this email (case-insensitively) is the customer asked about;
	// no such customer validates as a guest. It also keys the miss limit.
	Email string `json:"email,omitempty"`
	// FirstTime is the shop's word on whether this is the buyer's first order; false
	// refuses a first-time-only code.
	FirstTime *bool `json:"first_time,omitempty"`
	// The order: currency, lines, and optionally its whole amount.
	offers.Order
	// NoOrder asks about the code alone (GET /v1/validate without an order): the
	// answer says whether it is usable and its terms, with no discount.
	NoOrder bool `json:"-"`
}

// GroupRef names the group a code belongs to.
type GroupRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Kind is unique or shared.
	Kind string `json:"kind"`
}

// Answer is a validation's answer.
type Answer struct {
	// Valid is true when the code applies to the order.
	Valid bool `json:"valid"`
	// Reason is why not (a stable code) and Message says it to the buyer.
	Reason  offers.Reason `json:"reason,omitempty"`
	Message string        `json:"message,omitempty"`
	// Group is the code's group; absent for a code not found.
	Group *GroupRef `json:"group,omitempty"`
	// Discount is what the code takes off the order and its allocation per line
	// (amount 0 when the code does not apply); absent without an order.
	Discount *offers.Discount `json:"discount,omitempty"`
	// TotalAfter is what the buyer pays (the order amount when the code does not apply).
	TotalAfter *int64 `json:"total_after,omitempty"`
	// TermsSummary is the terms in plain words ("20% off, at most 100 EUR").
	TermsSummary string `json:"terms_summary"`
}

// maxCodeLen bounds a code as typed.
const maxCodeLen = 200

// normalize checks what validation and redemption share: the code, the customer and
// the order.
func normalizeAsk(code *string, customer *string, order *offers.Order, noOrder bool) error {
	*code = strings.TrimSpace(*code)
	if *code == "" || len(*code) > maxCodeLen {
		return invalid("code", "is required (1–%d characters)", maxCodeLen)
	}
	*customer = strings.TrimSpace(*customer)
	if len(*customer) > 200 {
		return invalid("customer_id", "is at most 200 characters")
	}
	if noOrder {
		return nil
	}
	// NormalizeOrder trims the lines in place: work on a copy, never the caller's.
	order.Items = append([]offers.Item(nil), order.Items...)
	return offers.NormalizeOrder(order)
}

// Validate answers whether the code applies to the order and what it takes off. It
// consumes nothing. A code that does not exist is answered after the same work as one
// that does (Reason not_found). Errors: *InvalidError for a bad request, or a database
// failure.
func (s *Service) Validate(ctx context.Context, req ValidateRequest) (ans *Answer, err error) {
	defer observeValidate(time.Now(), &ans, &err)
	if err := normalizeAsk(&req.Code, &req.CustomerID, &req.Order, req.NoOrder); err != nil {
		return nil, err
	}
	if err := s.customerOf(ctx, &req.CustomerID, &req.Email); err != nil {
		return nil, err
	}
	o, err := s.loadOffer(ctx, req.Code, req.CustomerID)
	if err != nil {
		return nil, err
	}
	a := ask{customer: req.CustomerID, firstTime: req.FirstTime}
	if !req.NoOrder {
		a.order = &req.Order
	}
	reason, d := o.check(a, s.now())
	if reason == "" {
		reason = o.capReason(req.CustomerID, d.Amount)
	}
	ans = &Answer{Valid: reason == "", Reason: reason}
	if reason != "" {
		ans.Message = reason.Message()
	}
	if o.found() {
		ans.Group = &GroupRef{ID: o.groupID, Name: o.groupName, Kind: o.kind}
		ans.TermsSummary = o.terms.Summary()
	}
	if !req.NoOrder {
		if reason != "" {
			d = zeroDiscount(req.Order)
		}
		ans.Discount = &d
		ans.TotalAfter = &d.TotalAfter
	}
	return ans, nil
}
