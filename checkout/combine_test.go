package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/offers"
)

// blockGroup holds the group's counter row (its checkout lock) in a transaction of its
// own until release is called: a batch of the group waits for it, and the redemptions
// that arrive meanwhile queue for the next batch.
func (e *env) blockGroup(g int64) (release func()) {
	e.t.Helper()
	e.db.MustExec(`INSERT INTO redemption_counts (group_id) VALUES ($1) ON CONFLICT DO NOTHING`, g)
	tx := e.db.MustBegin()
	tx.MustExec(`SELECT 1 FROM redemption_counts WHERE group_id = $1 FOR UPDATE`, g)
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	e.t.Cleanup(release)
	return release
}

// waitQueued waits until the group has n redemptions queued and a batch running.
func (e *env) waitQueued(svc *checkout.Service, g int64, n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending, running := checkout.Queued(svc, g)
		if pending == n && running {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("group %d: %d queued (running %v), want %d", g, pending, running, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// outcome is what one request got.
type outcome struct {
	r        *checkout.Redemption
	replayed bool
	err      error
}

func (o outcome) reason() offers.Reason {
	var re *checkout.RefusedError
	if errors.As(o.err, &re) {
		return re.Reason
	}
	return ""
}

// start sends the request and returns a function that waits for its answer.
func start(svc *checkout.Service, req checkout.RedeemRequest) func() outcome {
	ch := make(chan outcome, 1)
	go func() {
		r, replayed, err := svc.Redeem(context.Background(), req)
		ch <- outcome{r, replayed, err}
	}()
	return func() outcome { return <-ch }
}

// queue sends the requests one after the other, each once the one before is queued
// (so the queue's order is theirs), and returns a function that waits for the answers.
func (e *env) queue(svc *checkout.Service, g int64, already int, reqs []checkout.RedeemRequest) func() []outcome {
	e.t.Helper()
	out := make([]outcome, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, replayed, err := svc.Redeem(context.Background(), req)
			out[i] = outcome{r, replayed, err}
		}()
		e.waitQueued(svc, g, already+i+1)
	}
	return func() []outcome { wg.Wait(); return out }
}

// TestBatchMixed queues, behind a batch held at the group's lock, one batch's worth of
// requests that each need their own answer: successes up to the total cap, a customer
// over the per-customer cap, an identical replay of a request in the same batch (it
// gets the first one's redemption), another request for the same order and another
// under the same Idempotency-Key (they wait for the next batch, which answers 409), a
// hold, a replay and a conflict of an order redeemed before, and refusals once the cap
// is full. In a group with a budget, a discount that does not fit is refused and a
// smaller one after it still fits: each item is judged in order against the counters
// the items before it left. Afterwards the counters equal the rows, only refusals are
// recorded as failed, and the queued requests went in one batch (plus one for the two
// that had to wait).
func TestBatchMixed(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	svc := e.svc
	ctx := context.Background()
	fixed := `{"type":"fixed","amount_off":500,"currency":"EUR"}`
	g := e.group(groupOpts{kind: "shared", terms: fixed, maxTotal: ptr[int64](5), maxPer: ptr[int64](1)})
	e.promoCode(g, "MIXED", promoOpts{})
	req := func(order, customer string) checkout.RedeemRequest {
		return checkout.RedeemRequest{Code: "MIXED", CustomerID: customer, OrderID: order, Order: cart}
	}
	pre, _, err := svc.Redeem(ctx, req("pre", "zed"))
	if err != nil {
		t.Fatal(err)
	}
	release := e.blockGroup(g)
	lead := start(svc, req("lead", "c0"))
	e.waitQueued(svc, g, 0) // the lead's batch is running, waiting for the lock
	other := req("a1", "c1")
	other.Order = order(offers.Item{ProductID: "shoe", Quantity: 1, UnitAmount: 9000})
	keyed := req("k1", "c2")
	keyed.IdempotencyKey = "key-1"
	keyed2 := req("k2", "c3")
	keyed2.IdempotencyKey = "key-1"
	hold := req("h1", "c5")
	hold.Hold = true
	reqs := []checkout.RedeemRequest{
		req("a1", "c1"),   // 0: created (slot 3 of 5)
		req("a1", "c1"),   // 1: identical: the same redemption, replayed
		other,             // 2: same order, another request: next batch, 409
		req("b1", "c1"),   // 3: customer_limit (c1 has a1)
		keyed,             // 4: created (slot 4)
		keyed2,            // 5: same key, another request: next batch, 409
		hold,              // 6: a hold (slot 5)
		req("c1", "c4"),   // 7: exhausted
		req("pre", "zed"), // 8: replay of the order redeemed before
		req("pre", "amy"), // 9: same order as 8, another request: next batch, 409
		req("d1", "c6"),   // 10: exhausted
	}
	wait := e.queue(svc, g, 0, reqs)
	release()
	lo := lead()
	if lo.err != nil || lo.r.Status != checkout.StatusSucceeded {
		t.Fatalf("lead: %+v", lo)
	}
	got := wait()
	check := func(i int, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("request %d: %s; got %+v (reason %q)", i, what, got[i], got[i].reason())
		}
	}
	check(0, got[0].err == nil && !got[0].replayed && got[0].r.Status == checkout.StatusSucceeded, "created")
	check(1, got[1].err == nil && got[1].replayed && got[0].r != nil && got[1].r.ID == got[0].r.ID, "a replay of request 0")
	check(2, errors.Is(got[2].err, checkout.ErrOrderConflict), "an order conflict")
	check(3, got[3].reason() == offers.ReasonCustomerLimit, "customer_limit")
	check(4, got[4].err == nil && got[4].r.Status == checkout.StatusSucceeded, "created")
	check(5, errors.Is(got[5].err, checkout.ErrKeyConflict), "a key conflict")
	check(6, got[6].err == nil && got[6].r.Status == checkout.StatusPending && got[6].r.HoldExpiresAt != nil, "a hold")
	check(7, got[7].reason() == offers.ReasonExhausted, "exhausted")
	check(8, got[8].err == nil && got[8].replayed && got[8].r.ID == pre.ID, "a replay of the earlier order")
	check(9, errors.Is(got[9].err, checkout.ErrOrderConflict), "an order conflict")
	check(10, got[10].reason() == offers.ReasonExhausted, "exhausted")
	e.checkCounters(g)
	if used, _ := e.counters(g); used != 5 {
		t.Errorf("%d slots used, want the cap 5", used)
	}
	var failed []string
	e.db.Select(&failed, `SELECT order_id || ':' || reason FROM redemptions WHERE group_id = $1 AND status = 'failed' ORDER BY id`, g)
	if fmt.Sprint(failed) != "[b1:customer_limit c1:exhausted d1:exhausted]" {
		t.Errorf("failed rows %v", failed)
	}
	// The hold confirms and the group's counters still equal the rows.
	if _, err := svc.Confirm(ctx, got[6].r.ID); err != nil {
		t.Fatal(err)
	}
	e.checkCounters(g)
	// Batches: the first order's, the lead's, the queued requests' (7 of the 11: one
	// followed, three waited), and the one of the three that waited.
	if b, items := checkout.Batches(svc); b != 4 || items != 1+1+7+3 {
		t.Errorf("%d batches of %d items, want 4 of 12", b, items)
	}

	// The budget, item by item: 600 does not fit after 600, 300 still does.
	bg := e.group(groupOpts{kind: "shared", terms: `{"type":"percent","percent_off":10,"currency":"EUR"}`, budget: ptr[int64](1000)})
	e.promoCode(bg, "BUDGETED", promoOpts{})
	breq := func(o string, amount int64) checkout.RedeemRequest {
		return checkout.RedeemRequest{Code: "BUDGETED", CustomerID: "cust-" + o, OrderID: o,
			Order: order(offers.Item{ProductID: "shoe", Quantity: 1, UnitAmount: amount})}
	}
	release = e.blockGroup(bg)
	lead = start(svc, breq("b-lead", 1000)) // 100
	e.waitQueued(svc, bg, 0)
	wait = e.queue(svc, bg, 0, []checkout.RedeemRequest{breq("b-0", 6000), breq("b-1", 6000), breq("b-2", 3000), breq("b-3", 1000)})
	release()
	if lo := lead(); lo.err != nil {
		t.Fatal(lo.err)
	}
	got = wait()
	if got[0].err != nil || got[1].reason() != offers.ReasonBudgetExhausted || got[2].err != nil || got[3].reason() != offers.ReasonBudgetExhausted {
		t.Errorf("budget: %+v / %q / %+v / %q", got[0], got[1].reason(), got[2], got[3].reason())
	}
	if _, discounted := e.counters(bg); discounted != 100+600+300 {
		t.Errorf("budget: %d discounted, want 1000", discounted)
	}
	e.checkCounters(bg)
}

// TestCancelledRedeem: a request whose context ends while it is queued behind a running
// batch is answered at once with the context's error and is never recorded (the order
// is free: the same request later makes a new redemption). A request whose context ends
// while its own batch runs is answered at once too (the batch is not tied to it and
// finishes), and its redemption is recorded: the same request again is a replay of it.
// Neither holds up the other requests.
func TestCancelledRedeem(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	svc := e.svc
	g := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](10)})
	e.promoCode(g, "CANCEL", promoOpts{})
	req := func(order string) checkout.RedeemRequest {
		return checkout.RedeemRequest{Code: "CANCEL", CustomerID: "c-" + order, OrderID: order, Order: cart}
	}
	release := e.blockGroup(g)

	// In flight: its batch waits for the lock when its context ends.
	flightCtx, cancelFlight := context.WithCancel(context.Background())
	flight := make(chan outcome, 1)
	go func() {
		r, replayed, err := svc.Redeem(flightCtx, req("flight"))
		flight <- outcome{r, replayed, err}
	}()
	e.waitQueued(svc, g, 0)
	// Queued behind it: a request that gives up, and one that waits.
	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	queued := make(chan outcome, 1)
	go func() {
		r, replayed, err := svc.Redeem(queuedCtx, req("queued"))
		queued <- outcome{r, replayed, err}
	}()
	e.waitQueued(svc, g, 1)
	wait := e.queue(svc, g, 1, []checkout.RedeemRequest{req("patient")})

	cancelQueued()
	select {
	case o := <-queued:
		if !errors.Is(o.err, context.Canceled) {
			t.Fatalf("queued and cancelled: %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled queued request was not answered while the batch before it waited")
	}
	e.waitQueued(svc, g, 1) // only the patient one is left
	cancelFlight()
	select {
	case o := <-flight:
		if !errors.Is(o.err, context.Canceled) {
			t.Fatalf("in flight and cancelled: %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled request in a running batch was not answered")
	}
	release()
	if o := wait()[0]; o.err != nil || o.r.Status != checkout.StatusSucceeded {
		t.Fatalf("the patient request: %+v", o)
	}
	// The batch in flight committed without its requester.
	var flightRows, queuedRows int
	e.db.Get(&flightRows, `SELECT count(*) FROM redemptions WHERE order_id = 'flight' AND status = 'succeeded'`)
	e.db.Get(&queuedRows, `SELECT count(*) FROM redemptions WHERE order_id = 'queued'`)
	if flightRows != 1 || queuedRows != 0 {
		t.Fatalf("rows: flight %d (want 1), queued %d (want 0)", flightRows, queuedRows)
	}
	ctx := context.Background()
	if r, replayed, err := svc.Redeem(ctx, req("flight")); err != nil || !replayed {
		t.Fatalf("the cancelled in-flight request again: %+v %v %v", r, replayed, err)
	}
	if r, replayed, err := svc.Redeem(ctx, req("queued")); err != nil || replayed || r.Status != checkout.StatusSucceeded {
		t.Fatalf("the cancelled queued request again: %+v %v %v", r, replayed, err)
	}
	e.checkCounters(g)
	if pending, running := checkout.Queued(svc, g); pending != 0 || running {
		t.Fatalf("the group's queue did not drain: %d pending, running %v", pending, running)
	}
}

// TestHotCodeTwoServices: two checkout services (two processes' worth) redeem one capped
// code from 32 goroutines each, with per-customer caps in play: exactly the cap succeeds,
// every other attempt is refused with its reason, the counters equal the rows, and the
// services combined requests (more items than batches).
func TestHotCodeTwoServices(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	second, err := checkout.New(checkout.Config{Now: e.clock.now}, checkout.Deps{DB: e.db.DB, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const capTotal, attempts = 150, 600
	g := e.group(groupOpts{kind: "shared", terms: `{"type":"fixed","amount_off":500,"currency":"EUR"}`,
		maxTotal: ptr[int64](capTotal), maxPer: ptr[int64](2)})
	e.promoCode(g, "HOT", promoOpts{})
	e.db.SetMaxOpenConns(80)
	var next, ok, exhausted, perCustomer atomic.Int64
	var wg sync.WaitGroup
	for w := range 64 {
		svc := []*checkout.Service{e.svc, second}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > attempts {
					return
				}
				// Every customer tries three orders: the third is over the per-customer
				// cap unless the total cap came first.
				_, _, err := svc.Redeem(context.Background(), checkout.RedeemRequest{Code: "HOT",
					CustomerID: fmt.Sprint("c", i%200), OrderID: fmt.Sprint("o", i), Order: cart})
				var re *checkout.RefusedError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &re) && re.Reason == offers.ReasonExhausted:
					exhausted.Add(1)
				case errors.As(err, &re) && re.Reason == offers.ReasonCustomerLimit:
					perCustomer.Add(1)
				default:
					t.Errorf("order %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != capTotal || ok.Load()+exhausted.Load()+perCustomer.Load() != attempts {
		t.Fatalf("%d succeeded, %d exhausted, %d customer_limit; want %d succeeded of %d", ok.Load(), exhausted.Load(), perCustomer.Load(), capTotal, attempts)
	}
	var rows, over int64
	e.db.Get(&rows, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'succeeded'`, g)
	e.db.Get(&over, `SELECT count(*) FROM (SELECT customer_id FROM redemptions WHERE group_id = $1 AND status = 'succeeded' GROUP BY 1 HAVING count(*) > 2) x`, g)
	if rows != capTotal || over != 0 {
		t.Fatalf("%d succeeded rows (want %d), %d customers over their cap", rows, capTotal, over)
	}
	e.checkCounters(g)
	b1, i1 := checkout.Batches(e.svc)
	b2, i2 := checkout.Batches(second)
	if i1+i2 != attempts || b1+b2 >= attempts {
		t.Fatalf("batches %d+%d of %d+%d items: nothing was combined", b1, b2, i1, i2)
	}
	t.Logf("%d attempts in %d batches (%d and %d)", attempts, b1+b2, b1, b2)
}

// TestCodeMovedGroups: the process remembers each code's group to queue its redemptions
// before reading the offer (the batch reads the offers of all its items at once). A code
// found in another group than remembered goes back to its request, which reads its offer
// and redeems it in the right group; a code that no longer exists is refused not_found.
func TestCodeMovedGroups(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	g1 := e.group(groupOpts{kind: "shared", terms: euro20, status: "paused"})
	g2 := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](10)})
	code := e.promoCode(g1, "MOVING", promoOpts{})
	req := func(order string) checkout.RedeemRequest {
		return checkout.RedeemRequest{Code: "moving", CustomerID: "c-" + order, OrderID: order, Order: cart}
	}
	// Refused (paused), and the process now knows the code as g1's.
	if _, _, err := e.svc.Redeem(ctx, req("m1")); !reasonIs(err, offers.ReasonPaused) {
		t.Fatalf("first: %v", err)
	}
	// Refused again, by the batch's read of the offer this time.
	if _, _, err := e.svc.Redeem(ctx, req("m1b")); !reasonIs(err, offers.ReasonPaused) {
		t.Fatalf("second: %v", err)
	}
	// A promotion code without a redemption may move to another group.
	e.db.MustExec(`UPDATE promotion_codes SET group_id = $2 WHERE code_id = $1`, code, g2)
	if r, _, err := e.svc.Redeem(ctx, req("m2")); err != nil || *r.GroupID != g2 {
		t.Fatalf("after the move: %+v %v", r, err)
	}
	if r, _, err := e.svc.Redeem(ctx, req("m3")); err != nil || *r.GroupID != g2 {
		t.Fatalf("again: %+v %v", r, err)
	}
	e.db.MustExec(`UPDATE redemption_code_counts SET used = 0 WHERE code_id = $1`, code)
	e.db.MustExec(`DELETE FROM promotion_codes WHERE code_id = $1`, code)
	e.db.MustExec(`DELETE FROM codes WHERE id = $1`, code)
	if _, _, err := e.svc.Redeem(ctx, req("m4")); !reasonIs(err, offers.ReasonNotFound) {
		t.Fatalf("a removed code: %v", err)
	}
	var inG1, inG2 int
	e.db.Get(&inG1, `SELECT count(*) FROM redemptions WHERE group_id = $1`, g1)
	e.db.Get(&inG2, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'succeeded'`, g2)
	if inG1 != 2 || inG2 != 2 {
		t.Fatalf("%d rows in g1 (want the 2 refusals), %d succeeded in g2 (want 2)", inG1, inG2)
	}
}
