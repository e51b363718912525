package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"promopool/checkout"
	"promopool/offers"
)

// TestCapsExactUnderConcurrency races many redemptions against each cap: the total cap,
// the per-customer cap, a promotion code's own cap and the budget. Exactly the cap
// succeeds, the rest are refused with the cap's reason, and the counters equal the rows.
func TestCapsExactUnderConcurrency(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	fixed := `{"type":"fixed","amount_off":500,"currency":"EUR"}`
	total := e.group(groupOpts{kind: "shared", terms: fixed, maxTotal: ptr[int64](25)})
	e.promoCode(total, "TOTAL", promoOpts{})
	perCust := e.group(groupOpts{kind: "shared", terms: fixed, maxPer: ptr[int64](3)})
	e.promoCode(perCust, "PERCUST", promoOpts{})
	code := e.group(groupOpts{kind: "shared", terms: fixed})
	e.promoCode(code, "CODECAP", promoOpts{maxRedemptions: ptr[int64](7)})
	budget := e.group(groupOpts{kind: "shared", terms: fixed, budget: ptr[int64](500 * 11)})
	e.promoCode(budget, "BUDGET", promoOpts{})

	cases := []struct {
		code     string
		group    int64
		customer func(i int) string
		want     int
		reason   offers.Reason
	}{
		{"TOTAL", total, func(i int) string { return fmt.Sprint("c", i) }, 25, offers.ReasonExhausted},
		{"PERCUST", perCust, func(int) string { return "same" }, 3, offers.ReasonCustomerLimit},
		{"CODECAP", code, func(i int) string { return fmt.Sprint("c", i) }, 7, offers.ReasonExhausted},
		{"BUDGET", budget, func(i int) string { return fmt.Sprint("c", i) }, 11, offers.ReasonBudgetExhausted},
	}
	for _, c := range cases {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for i := 0; i < 80; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: c.code, CustomerID: c.customer(i), OrderID: fmt.Sprintf("%s-%d", c.code, i), Order: cart})
				var re *checkout.RefusedError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.As(err, &re) && re.Reason == c.reason:
					refused++
				default:
					t.Errorf("%s: %v", c.code, err)
				}
			}()
		}
		wg.Wait()
		if ok != c.want || refused != 80-c.want {
			t.Errorf("%s: %d succeeded, %d refused; want %d and %d", c.code, ok, refused, c.want, 80-c.want)
		}
		var rows, failed int64
		e.db.Get(&rows, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'succeeded'`, c.group)
		e.db.Get(&failed, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'failed' AND reason = $2`, c.group, string(c.reason))
		used, discounted := e.counters(c.group)
		if rows != int64(c.want) || used != rows || discounted != 500*rows || failed != int64(80-c.want) {
			t.Errorf("%s: %d rows, %d failed rows, counters used %d discounted %d", c.code, rows, failed, used, discounted)
		}
	}
	// The counters' constraints refuse what the function would never do.
	if _, err := e.db.Exec(`UPDATE redemption_counts SET used = used + 1 WHERE group_id = $1`, total); err == nil {
		t.Error("the total counter went past its cap")
	}
}

// TestReplayAndConflict: the same order again gets the first answer (also concurrently,
// also with the code in another case); the same order with another request is 409; an
// Idempotency-Key replays even a refusal, and another request under it is a conflict.
func TestReplayAndConflict(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](100)})
	e.promoCode(g, "NEWS10", promoOpts{})
	e.promoCode(g, "OTHER10", promoOpts{})
	req := checkout.RedeemRequest{Code: "NEWS10", CustomerID: "ann", OrderID: "order-1", Order: cart}

	var wg sync.WaitGroup
	ids := make([]int64, 16)
	replays := make([]bool, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req
			if i%2 == 1 {
				r.Code = "news10"
			}
			got, replayed, err := e.svc.Redeem(ctx, r)
			if err != nil {
				t.Errorf("replay %d: %v", i, err)
				return
			}
			ids[i], replays[i] = got.ID, replayed
		}()
	}
	wg.Wait()
	fresh := 0
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("replay %d made redemption %d, not %d", i, id, ids[0])
		}
		if !replays[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers say they made the redemption; want 1", fresh)
	}
	if used, _ := e.counters(g); used != 1 {
		t.Fatalf("16 replays took %d slots", used)
	}
	for name, r := range map[string]checkout.RedeemRequest{
		"another code":     {Code: "OTHER10", CustomerID: "ann", OrderID: "order-1", Order: cart},
		"another amount":   {Code: "NEWS10", CustomerID: "ann", OrderID: "order-1", Order: order(offers.Item{ProductID: "shoe", Quantity: 3, UnitAmount: 3000})},
		"another customer": {Code: "NEWS10", CustomerID: "bob", OrderID: "order-1", Order: cart},
	} {
		if _, _, err := e.svc.Redeem(ctx, r); !errors.Is(err, checkout.ErrOrderConflict) {
			t.Errorf("%s: %v, want an order conflict", name, err)
		}
	}
	// A refusal under a key is replayed as the same refusal.
	bad := checkout.RedeemRequest{Code: "NOPE", CustomerID: "ann", OrderID: "order-2", Order: cart, IdempotencyKey: "k-2"}
	var re1, re2 *checkout.RefusedError
	_, _, err1 := e.svc.Redeem(ctx, bad)
	_, _, err2 := e.svc.Redeem(ctx, bad)
	if !errors.As(err1, &re1) || !errors.As(err2, &re2) || re1.Redemption.ID != re2.Redemption.ID || re1.Reason != offers.ReasonNotFound {
		t.Fatalf("refusal replay: %v / %v", err1, err2)
	}
	other := bad
	other.Code = "NEWS10"
	if _, _, err := e.svc.Redeem(ctx, other); !errors.Is(err, checkout.ErrKeyConflict) {
		t.Fatalf("another request under a used key: %v", err)
	}
	// Without the key the order is free: the refusal held nothing.
	other.IdempotencyKey = ""
	if r, _, err := e.svc.Redeem(ctx, other); err != nil || r.Status != checkout.StatusSucceeded {
		t.Fatalf("order after a refusal: %v", err)
	}
}

// TestUniqueCodeRedemption: a unique code is redeemed once, by its holder when the group
// binds codes to holders, by anyone holding it otherwise; the redemption links to the
// issue and its mailing.
func TestUniqueCodeRedemption(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	holder := e.group(groupOpts{terms: euro20})
	c1 := e.uniqueCode(holder, "H-0001", nil)
	mailing := int64(77)
	issue := e.issue(holder, c1, "ann", &mailing)
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "H-0001", CustomerID: "eve", OrderID: "e1", Order: cart}); !reasonIs(err, offers.ReasonNotYourCode) {
		t.Fatalf("someone else: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "h-0001", CustomerID: "ann", OrderID: fmt.Sprint("a", i), Order: cart})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
				if r.IssueID == nil || *r.IssueID != issue || r.MailingID == nil || *r.MailingID != mailing || r.Code != "H-0001" {
					t.Errorf("redemption not linked to its issue: %+v", r)
				}
			} else if !reasonIs(err, offers.ReasonAlreadyRedeemed) {
				t.Errorf("second redemption: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("a unique code was redeemed %d times", won)
	}
	bearer := e.group(groupOpts{terms: euro20, binding: "bearer"})
	e.uniqueCode(bearer, "B-0001", nil)
	if r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "B-0001", CustomerID: "anyone", OrderID: "b1", Order: cart}); err != nil || r.IssueID != nil {
		t.Fatalf("bearer code: %v", err)
	}
	// The unique index stands behind the counter.
	var n int
	e.db.Get(&n, `SELECT count(*) FROM redemptions WHERE code_id = $1 AND status = 'succeeded'`, c1)
	if n != 1 {
		t.Fatalf("%d succeeded redemptions of one unique code", n)
	}
}

func reasonIs(err error, reason offers.Reason) bool {
	var re *checkout.RefusedError
	return errors.As(err, &re) && re.Reason == reason
}

// TestReplayAfterTheOfferChanged: an order redeemed before its group was paused (or its
// code voided) answers its redemption on a replay, not a refusal; another request for
// it is still a conflict.
func TestReplayAfterTheOfferChanged(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: euro20})
	code := e.promoCode(g, "LATER10", promoOpts{})
	req := checkout.RedeemRequest{Code: "LATER10", CustomerID: "ann", OrderID: "o-1", Order: cart}
	first, _, err := e.svc.Redeem(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.db.MustExec(`UPDATE groups SET status = 'paused' WHERE id = $1`, g)
	e.void(g, code)
	again, replayed, err := e.svc.Redeem(ctx, req)
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("replay after pause and void: %+v %v %v", again, replayed, err)
	}
	other := req
	other.CustomerID = "bob"
	if _, _, err := e.svc.Redeem(ctx, other); !errors.Is(err, checkout.ErrOrderConflict) {
		t.Fatalf("another request for the order: %v", err)
	}
	var failed int
	e.db.Get(&failed, `SELECT count(*) FROM redemptions WHERE status = 'failed'`)
	if failed != 0 {
		t.Fatalf("%d refusals recorded for replays", failed)
	}
}
