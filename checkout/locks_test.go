package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/offers"
)

// checkCounters compares a group's counters with its rows: slots (group and code) are
// held, succeeded and refunded redemptions; the discount is what they gave minus
// refunds; a customer's count is their held and succeeded ones.
func (e *env) checkCounters(group int64) {
	e.t.Helper()
	var rows, disc int64
	e.db.QueryRow(`SELECT count(*), COALESCE(sum(discount_amount - refunded_amount), 0) FROM redemptions
		WHERE group_id = $1 AND status IN ('pending', 'succeeded', 'refunded')`, group).Scan(&rows, &disc)
	used, discounted := e.counters(group)
	if used != rows || discounted != disc {
		e.t.Errorf("group %d: counters used %d discounted %d; rows %d discount %d", group, used, discounted, rows, disc)
	}
	var bad []string
	e.db.Select(&bad, `SELECT c.code_id || ': ' || c.used || ' vs ' || count(r.id) FROM redemption_code_counts c
		LEFT JOIN redemptions r ON r.code_id = c.code_id AND r.status IN ('pending', 'succeeded', 'refunded')
		WHERE c.group_id = $1 GROUP BY c.code_id, c.used HAVING c.used <> count(r.id)`, group)
	e.db.Select(&bad, `SELECT c.customer_id || ': ' || c.used || ' vs ' || count(r.id) FROM redemption_customer_counts c
		LEFT JOIN redemptions r ON r.group_id = c.group_id AND r.customer_id = c.customer_id AND r.status IN ('pending', 'succeeded')
		WHERE c.group_id = $1 GROUP BY c.customer_id, c.used HAVING c.used <> count(r.id)`, group)
	if len(bad) > 0 {
		e.t.Errorf("group %d: code or customer counters differ from the rows: %v", group, bad)
	}
}

// TestRefundsAndHoldEndsWithRedemptions runs redemptions, holds, confirms, cancels,
// refunds (whole and by items) and sweeps of expired holds at once on one group, a few
// customers and two codes: no operation fails (a deadlock is an error: 40P01), and the
// counters equal the rows afterwards. Refunds, cancels and the sweep take the group's
// counter before the redemption row, as a redemption does (migration 0026).
func TestRefundsAndHoldEndsWithRedemptions(t *testing.T) {
	e := newEnv(t, checkout.Config{HoldTTL: time.Second})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: `{"type":"percent","percent_off":10,"currency":"EUR"}`, maxPer: ptr[int64](1000)})
	e.promoCode(g, "LOCKA", promoOpts{})
	e.promoCode(g, "LOCKB", promoOpts{})
	g2 := e.group(groupOpts{kind: "shared", terms: `{"type":"fixed","amount_off":100,"currency":"EUR"}`})
	e.promoCode(g2, "LOCKC", promoOpts{})

	var failures atomic.Int64
	fail := func(what string, err error) {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "40P01" {
			t.Errorf("%s deadlocked: %v", what, err)
		} else {
			t.Errorf("%s: %v", what, err)
		}
		failures.Add(1)
	}
	stop := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Add(2)
	for range 2 {
		go func() {
			defer sweeps.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e.clock.add(300 * time.Millisecond)
				if _, err := e.svc.ExpireHolds(ctx); err != nil {
					fail("sweep", err)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 25 {
				code := []string{"LOCKA", "LOCKB", "LOCKC"}[rng.IntN(3)]
				req := checkout.RedeemRequest{Code: code, CustomerID: fmt.Sprint("c", rng.IntN(3)), OrderID: fmt.Sprintf("o-%d-%d", w, i),
					Hold: rng.IntN(2) == 0, Order: cart}
				r, _, err := e.svc.Redeem(ctx, req)
				if err != nil {
					fail("redeem", err)
					continue
				}
				switch op := rng.IntN(4); {
				case r.Status == checkout.StatusPending && op < 2:
					if _, err := e.svc.Confirm(ctx, r.ID); err != nil && !errors.Is(err, checkout.ErrHoldExpired) {
						fail("confirm", err)
					} else if err == nil && op == 0 {
						if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf"}); err != nil {
							fail("refund after confirm", err)
						}
					}
				case r.Status == checkout.StatusPending && op == 2:
					if _, err := e.svc.Cancel(ctx, r.ID); err != nil && !errors.Is(err, checkout.ErrState) {
						fail("cancel", err)
					}
				case r.Status == checkout.StatusSucceeded && op < 2:
					if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf1", Items: []string{"sock"}}); err != nil {
						fail("refund by items", err)
					}
					if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf2"}); err != nil {
						fail("refund of the rest", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	sweeps.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d operations failed", failures.Load())
	}
	e.checkCounters(g)
	e.checkCounters(g2)
	var n int64
	e.db.Get(&n, `SELECT count(*) FROM redemptions WHERE group_id IN ($1, $2) AND status <> 'failed'`, g, g2)
	if n != 12*25 {
		t.Fatalf("%d redemptions stored, want %d", n, 12*25)
	}
}

// TestIdenticalConcurrentRedeems: many identical requests for one order at once (a
// shop's retries racing each other) all get the first answer: the same redemption, one
// row, no refusal. The code's cap is 1, so a second request that took a slot would be
// refused "exhausted" (what happened before the replay check moved under the lock).
func TestIdenticalConcurrentRedeems(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	for round := range 5 {
		g := e.group(groupOpts{kind: "shared", terms: `{"type":"fixed","amount_off":500,"currency":"EUR"}`, maxTotal: ptr[int64](1)})
		code := fmt.Sprint("SAME", round)
		e.promoCode(g, code, promoOpts{maxRedemptions: ptr[int64](1)})
		var wg sync.WaitGroup
		ids := make([]int64, 24)
		errs := make([]error, 24)
		start := make(chan struct{})
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: code, CustomerID: "ann", OrderID: "order-" + code, Order: cart})
				if err == nil {
					ids[i] = r.ID
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("round %d request %d: redemption %d, %v; the first got %d", round, i, ids[i], errs[i], ids[0])
			}
		}
		var rows, failed int64
		e.db.Get(&rows, `SELECT count(*) FROM redemptions WHERE order_id = $1 AND status = 'succeeded'`, "order-"+code)
		e.db.Get(&failed, `SELECT count(*) FROM redemptions WHERE order_id = $1 AND status = 'failed'`, "order-"+code)
		if rows != 1 || failed != 0 {
			t.Fatalf("round %d: %d rows, %d refusals recorded", round, rows, failed)
		}
		e.checkCounters(g)
	}
}

// TestCapLoweredWhileRedeeming lowers a group's cap (through groups.Store.Update, whose
// check reads checkout.Usage) to one above what is used, once, in the middle of a burst
// of redemptions: the redemptions end exactly at the new cap, never past it. Before
// migration 0026 the redemptions waiting behind the edit had read the old cap and went
// past the new one.
func TestCapLoweredWhileRedeeming(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	store := groups.NewStore(e.db.DB, groups.Config{Usage: checkout.Usage, CodeRedemptions: checkout.CodeRedemptions})
	for round := range 5 {
		g := e.group(groupOpts{kind: "shared", maxTotal: ptr[int64](100000)})
		code := fmt.Sprint("EDIT", round)
		e.promoCode(g, code, promoOpts{})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := range 5 {
					_, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: code, CustomerID: fmt.Sprint("c", i), OrderID: fmt.Sprintf("%s-%d-%d", code, i, j), Order: cart})
					var re *checkout.RefusedError
					if err != nil && !(errors.As(err, &re) && re.Reason == offers.ReasonExhausted) {
						t.Errorf("redeem: %v", err)
					}
				}
			}()
		}
		close(start)
		// Lower the cap to one above what is used (refused when a redemption got in
		// first: try again) while the redemptions run.
		var set int64
		for set == 0 {
			used, _ := e.counters(g)
			n := used + 1
			in := groups.Input{Limits: &groups.LimitsInput{MaxRedemptions: groups.NullInt{Set: true, Value: &n}}}
			var inv *offers.InvalidError
			_, err := store.Update(ctx, "tests", g, in)
			switch {
			case err == nil:
				set = n
			case !errors.As(err, &inv):
				t.Fatalf("editing the cap: %v", err)
			}
		}
		wg.Wait()
		var rows int64
		e.db.Get(&rows, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'succeeded'`, g)
		if rows != min(set, 200) {
			t.Fatalf("round %d: %d of 200 redemptions succeeded, the cap was lowered to %d", round, rows, set)
		}
		e.checkCounters(g)
	}
}

// TestRedeemByEmail: with no customer id, the customer is the one with the email
// (compared case-insensitively): per-customer caps and a holder-bound code are theirs.
// An email nobody has validates as a guest and cannot redeem.
func TestRedeemByEmail(t *testing.T) {
	e := newEnv(t, checkout.Config{}, func(d *checkout.Deps) { d.CustomerByEmail = customers.NewStore(d.DB).IDByEmail })
	svc := e.svc
	ctx := context.Background()
	e.db.MustExec(`INSERT INTO customers (id, email) VALUES ('ann', 'Ann.Smith@Example.com'), ('bob', 'bob@example.com')`)
	g := e.group(groupOpts{kind: "unique", terms: `{"type":"fixed","amount_off":500,"currency":"EUR"}`})
	code := e.uniqueCode(g, "ANNS-CODE", nil)
	e.issue(g, code, "ann", nil)
	ans, err := svc.Validate(ctx, checkout.ValidateRequest{Code: "ANNS-CODE", Email: "ann.smith@EXAMPLE.com", Order: cart})
	if err != nil || !ans.Valid {
		t.Fatalf("validate by ann's email: %+v %v", ans, err)
	}
	ans, err = svc.Validate(ctx, checkout.ValidateRequest{Code: "ANNS-CODE", Email: "BOB@example.com", Order: cart})
	if err != nil || ans.Reason != offers.ReasonNotYourCode {
		t.Fatalf("validate by bob's email: %+v %v", ans, err)
	}
	// Nobody has this email: a guest (the code is not checked against a holder).
	if ans, err = svc.Validate(ctx, checkout.ValidateRequest{Code: "ANNS-CODE", Email: "who@example.com", Order: cart}); err != nil || !ans.Valid {
		t.Fatalf("validate by an unknown email: %+v %v", ans, err)
	}
	var inv *checkout.InvalidError
	if _, _, err := svc.Redeem(ctx, checkout.RedeemRequest{Code: "ANNS-CODE", Email: "who@example.com", OrderID: "o-0", Order: cart}); !errors.As(err, &inv) || inv.Field != "email" {
		t.Fatalf("redeem by an unknown email: %v", err)
	}
	var re *checkout.RefusedError
	if _, _, err := svc.Redeem(ctx, checkout.RedeemRequest{Code: "ANNS-CODE", Email: "bob@example.com", OrderID: "o-1", Order: cart}); !errors.As(err, &re) || re.Reason != offers.ReasonNotYourCode {
		t.Fatalf("redeem by bob's email: %v", err)
	}
	r, _, err := svc.Redeem(ctx, checkout.RedeemRequest{Code: "anns-code", Email: " ANN.SMITH@example.COM ", OrderID: "o-2", Order: cart})
	if err != nil || r.CustomerID != "ann" || r.Status != checkout.StatusSucceeded {
		t.Fatalf("redeem by ann's email: %+v %v", r, err)
	}
	// The same order by customer id is the same request: a replay.
	r2, replayed, err := svc.Redeem(ctx, checkout.RedeemRequest{Code: "ANNS-CODE", CustomerID: "ann", OrderID: "o-2", Order: cart})
	if err != nil || !replayed || r2.ID != r.ID {
		t.Fatalf("replay by id: %+v %v %v", r2, replayed, err)
	}
	// The look-up is one probe of the lower(email) index.
	var plan string
	tx := e.db.MustBegin()
	defer tx.Rollback()
	tx.MustExec(`SET LOCAL enable_seqscan = off`)
	rows, _ := tx.Query(`EXPLAIN SELECT id FROM customers WHERE lower(email) = lower('x@y') AND email <> '' ORDER BY id LIMIT 1`)
	for rows.Next() {
		var l string
		rows.Scan(&l)
		plan += l + "\n"
	}
	rows.Close()
	if !strings.Contains(plan, "customers_lower_email") {
		t.Fatalf("the email look-up does not use customers_lower_email:\n%s", plan)
	}
}
