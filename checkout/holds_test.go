package checkout_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/offers"
)

// TestHoldsConfirmCancelExpire: a hold counts against the cap; confirm makes it final
// (twice is fine); cancel frees its slot at once; a hold past its TTL cannot be
// confirmed and its slot is free.
func TestHoldsConfirmCancelExpire(t *testing.T) {
	e := newEnv(t, checkout.Config{HoldTTL: 10 * time.Minute})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](1)})
	e.promoCode(g, "ONE", promoOpts{})
	hold := func(order string) (*checkout.Redemption, error) {
		r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "ONE", CustomerID: "ann", OrderID: order, Order: cart, Hold: true})
		return r, err
	}
	h1, err := hold("o1")
	if err != nil || h1.Status != checkout.StatusPending || h1.HoldExpiresAt == nil || !h1.HoldExpiresAt.Equal(e.clock.now().Add(10*time.Minute)) {
		t.Fatalf("hold: %+v %v", h1, err)
	}
	if _, err := hold("o2"); !reasonIs(err, offers.ReasonExhausted) {
		t.Fatalf("a second hold past the cap: %v", err)
	}
	if c, err := e.svc.Cancel(ctx, h1.ID); err != nil || c.Status != checkout.StatusCancelled {
		t.Fatalf("cancel: %v", err)
	}
	if used, d := e.counters(g); used != 0 || d != 0 {
		t.Fatalf("cancel left used %d discounted %d", used, d)
	}
	h3, err := hold("o3")
	if err != nil {
		t.Fatalf("hold after cancel: %v", err)
	}
	for i := 0; i < 2; i++ {
		if c, err := e.svc.Confirm(ctx, h3.ID); err != nil || c.Status != checkout.StatusSucceeded || c.HoldExpiresAt != nil {
			t.Fatalf("confirm %d: %+v %v", i, c, err)
		}
	}
	if _, err := e.svc.Cancel(ctx, h3.ID); !errors.Is(err, checkout.ErrState) {
		t.Fatalf("cancel a succeeded redemption: %v", err)
	}
	if used, d := e.counters(g); used != 1 || d != 1400 {
		t.Fatalf("after confirm: used %d discounted %d", used, d)
	}

	// A hold confirmed after its TTL: refused, its slot freed, even before a sweep.
	g2 := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](1)})
	e.promoCode(g2, "TWO", promoOpts{})
	h, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "TWO", CustomerID: "ann", OrderID: "o4", Order: cart, Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.add(10 * time.Minute)
	if _, err := e.svc.Confirm(ctx, h.ID); !errors.Is(err, checkout.ErrHoldExpired) {
		t.Fatalf("late confirm: %v", err)
	}
	if _, err := e.svc.Confirm(ctx, h.ID); !errors.Is(err, checkout.ErrHoldExpired) {
		t.Fatalf("late confirm again: %v", err)
	}
	if used, _ := e.counters(g2); used != 0 {
		t.Fatalf("an expired hold keeps its slot: %d", used)
	}
	// The order is free again.
	if r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "TWO", CustomerID: "ann", OrderID: "o4", Order: cart}); err != nil || r.Status != checkout.StatusSucceeded {
		t.Fatalf("order after its hold expired: %v", err)
	}
}

// TestHoldExpiry: the sweep expires exactly the holds past their TTL, frees their slots,
// and running it again does nothing.
func TestHoldExpiry(t *testing.T) {
	e := newEnv(t, checkout.Config{HoldTTL: time.Minute})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](1000), maxPer: ptr[int64](1)})
	e.promoCode(g, "SWEEP", promoOpts{})
	for i := 0; i < 600; i++ {
		if i == 300 {
			e.clock.add(30 * time.Second)
		}
		if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "SWEEP", CustomerID: "c" + itoa(i), OrderID: "o" + itoa(i), Order: cart, Hold: true}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.add(45 * time.Second) // the first 300 are past their minute
	res, err := e.svc.ExpireHolds(ctx)
	if err != nil || res.Expired != 300 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if res, _ := e.svc.ExpireHolds(ctx); res.Expired != 0 {
		t.Fatalf("second sweep expired %d", res.Expired)
	}
	used, d := e.counters(g)
	var live, custUsed int64
	e.db.Get(&live, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'pending'`, g)
	e.db.Get(&custUsed, `SELECT sum(used) FROM redemption_customer_counts WHERE group_id = $1`, g)
	if used != 300 || live != 300 || d != 300*1400 || custUsed != 300 {
		t.Fatalf("after the sweep: used %d discounted %d live %d customer slots %d", used, d, live, custUsed)
	}
	var late int
	e.db.Get(&late, `SELECT count(*) FROM redemptions WHERE status = 'pending' AND hold_expires_at <= $1`, e.clock.now())
	if late != 0 {
		t.Fatalf("%d holds outlive their TTL", late)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
