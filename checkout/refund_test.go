package checkout_test

import (
	"context"
	"errors"
	"testing"

	"promopool/checkout"
	"promopool/offers"
)

// TestRefundRules: a refund frees the per-customer slot (a first-time code is usable
// again), does not give the total cap its slot back, and returns the discount to the
// budget; the same refund id replays, another refund under it conflicts.
func TestRefundRules(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: `{"type":"fixed","amount_off":1000,"currency":"EUR"}`,
		maxTotal: ptr[int64](2), maxPer: ptr[int64](1), budget: ptr[int64](5000)})
	e.promoCode(g, "FIRST", promoOpts{firstTime: true})
	r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "FIRST", CustomerID: "ann", OrderID: "o1", Order: cart})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "FIRST", CustomerID: "ann", OrderID: "o2", Order: cart}); !reasonIs(err, offers.ReasonFirstTimeOnly) {
		t.Fatalf("second use before the refund: %v", err)
	}
	f, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-1"})
	if err != nil || f.Status != checkout.StatusRefunded || f.RefundedAmount != 1000 {
		t.Fatalf("refund: %+v %v", f, err)
	}
	if again, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-1"}); err != nil || again.RefundedAmount != 1000 {
		t.Fatalf("refund replay: %v", err)
	}
	if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-1", Items: []string{"shoe"}}); !errors.Is(err, checkout.ErrRefundConflict) {
		t.Fatalf("another refund under the id: %v", err)
	}
	if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-2"}); !errors.Is(err, checkout.ErrState) {
		t.Fatalf("refund of a refunded redemption: %v", err)
	}
	used, d := e.counters(g)
	if used != 1 || d != 0 {
		t.Fatalf("after the refund: used %d (the total keeps its slot), discounted %d (the budget gets it back)", used, d)
	}
	// The customer may use the first-time code again; the total cap then has one slot.
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "FIRST", CustomerID: "ann", OrderID: "o3", Order: cart}); err != nil {
		t.Fatalf("first-time code after a refund: %v", err)
	}
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "FIRST", CustomerID: "bob", OrderID: "o4", Order: cart}); !reasonIs(err, offers.ReasonExhausted) {
		t.Fatalf("refunded slot came back to the total: %v", err)
	}
}

// TestRefundItems: refunding lines returns their part of the discount; the redemption
// is refunded (and the customer's slot freed) when every discounted line is.
func TestRefundItems(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: euro20, maxPer: ptr[int64](1)})
	e.promoCode(g, "NEWS10", promoOpts{})
	r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "NEWS10", CustomerID: "ann", OrderID: "o1", Order: cart})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-sock", Items: []string{"sock"}})
	if err != nil || p.Status != checkout.StatusSucceeded || p.RefundedAmount != 200 {
		t.Fatalf("refund of the sock line: %+v %v", p, err)
	}
	if _, d := e.counters(g); d != 1200 {
		t.Fatalf("discounted %d after refunding 200 of 1400", d)
	}
	var ie *checkout.InvalidError
	if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-x", Items: []string{"sock"}}); !errors.As(err, &ie) {
		t.Fatalf("a line refunded twice: %v", err)
	}
	if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-y", Items: []string{"hat"}}); !errors.As(err, &ie) {
		t.Fatalf("a line not in the order: %v", err)
	}
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "NEWS10", CustomerID: "ann", OrderID: "o2", Order: cart}); !reasonIs(err, offers.ReasonCustomerLimit) {
		t.Fatalf("a partial refund freed the customer's slot: %v", err)
	}
	f, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf-shoe", Items: []string{"shoe"}})
	if err != nil || f.Status != checkout.StatusRefunded || f.RefundedAmount != 1400 {
		t.Fatalf("refund of the last line: %+v %v", f, err)
	}
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "NEWS10", CustomerID: "ann", OrderID: "o2", Order: cart}); err != nil {
		t.Fatalf("after the whole order was refunded line by line: %v", err)
	}
}
