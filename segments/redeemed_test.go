package segments_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"promopool/segments"
)

// use is a succeeded redemption as the raw rows hold it.
type use struct {
	Customer string    `db:"customer_id"`
	Group    int64     `db:"group_id"`
	At       time.Time `db:"created_at"`
}

// redeem writes a redemption of a group's code as checkout leaves it (status
// succeeded, pending or failed) made daysAgo days before now, and returns its id.
func (h *history) redeem(customer, group, status string, daysAgo float64) int64 {
	h.t.Helper()
	id, err := h.tryRedeem(customer, group, status, daysAgo)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// orders numbers the test's redemptions (writers run on several goroutines).
var orders atomic.Int64

// tryRedeem is redeem for a goroutine of its own: it returns the error.
func (h *history) tryRedeem(customer, group, status string, daysAgo float64) (int64, error) {
	code := orders.Add(1)
	at := h.now.Add(-time.Duration(daysAgo * float64(24*time.Hour)))
	var reason, hold any
	switch status {
	case "failed":
		reason = "exhausted"
	case "pending":
		hold = h.now.Add(time.Hour)
	}
	discount := int64(500)
	if status == "failed" {
		discount = 0
	}
	hash := sha256.Sum256(fmt.Appendf(nil, "o%d", code))
	var id int64
	err := h.db.Get(&id, `INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, request_hash, status, reason,
		currency, order_amount, discount_amount, snapshot, hold_expires_at, created_at, updated_at)
		VALUES ($1, $2, $3, 'unique', $4, $5, $6, $7, $8, 'EUR', 5000, $9, '{}', $10, $11, $11) RETURNING id`,
		h.groups[group], code, fmt.Sprintf("R%d", code), customer, fmt.Sprintf("o%d", code), hash[:],
		status, reason, discount, hold, at)
	return id, err
}

// move takes a redemption to its next state as checkout does: a hold confirmed or
// cancelled, a use refunded (an impossible move changes nothing).
func (h *history) move(id int64, to string) {
	h.t.Helper()
	if err := h.tryMove(id, to); err != nil {
		h.t.Fatal(err)
	}
}

// tryMove is move for a goroutine of its own: it returns the error.
func (h *history) tryMove(id int64, to string) error {
	var err error
	switch to {
	case "succeeded":
		_, err = h.db.Exec(`UPDATE redemptions SET status = 'succeeded', hold_expires_at = NULL WHERE id = $1 AND status = 'pending'`, id)
	case "cancelled":
		_, err = h.db.Exec(`UPDATE redemptions SET status = 'cancelled' WHERE id = $1 AND status = 'pending'`, id)
	case "refunded":
		_, err = h.db.Exec(`UPDATE redemptions SET status = 'refunded', refunded_amount = discount_amount WHERE id = $1 AND status = 'succeeded'`, id)
	}
	return err
}

// loadUses recounts the uses from the raw redemptions, and marks their customers as
// known: a customer whose redemption was ever a use has a row (the fold gives it one).
func (h *history) loadUses() {
	h.t.Helper()
	h.uses = nil
	if err := h.db.Select(&h.uses, `SELECT customer_id, group_id, created_at FROM redemptions WHERE status = 'succeeded'`); err != nil {
		h.t.Fatal(err)
	}
	var ever []string
	if err := h.db.Select(&ever, `SELECT DISTINCT customer_id FROM redemptions WHERE status IN ('succeeded', 'refunded')`); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range ever {
		h.known[c] = true
	}
}

// matchesRedeemed is the model of a redeemed node over the recount.
func (h *history) matchesRedeemed(r *segments.Redeemed, c string, in func(*segments.Window, time.Time) bool) bool {
	var n int64
	for _, u := range h.uses {
		if u.Customer == c && in(r.Window, u.At) &&
			(r.Groups == nil || slices.ContainsFunc(r.Groups, func(g segments.GroupRef) bool { return g.ID == u.Group })) {
			n++
		}
	}
	switch r.Op {
	case "eq":
		return n == *r.Value
	case "ne":
		return n != *r.Value
	case "lt":
		return n < *r.Value
	case "lte":
		return n <= *r.Value
	case "gt":
		return n > *r.Value
	case "gte":
		return n >= *r.Value
	}
	return n >= *r.Min && n <= *r.Max
}

func TestRedeemedFilters(t *testing.T) {
	h := newHistory(t, "Spring", "Summer")
	h.customers("c1", "c2", "c3", "c4")
	h.issue("c1", "Spring", "initial", 3)
	h.issue("c2", "Spring", "initial", 5)
	h.issue("c3", "Spring", "initial", 20)
	h.issue("c4", "Summer", "initial", 2)
	h.redeem("c1", "Spring", "succeeded", 1)
	h.redeem("c3", "Spring", "succeeded", 10)
	r := h.redeem("c4", "Summer", "succeeded", 1)
	h.redeem("c4", "Summer", "succeeded", 0.5)
	h.redeem("c2", "Spring", "failed", 1)
	hold := h.redeem("c2", "Spring", "pending", 1)
	h.redeem("c9", "Summer", "succeeded", 30) // never upserted: the fold gives c9 a row
	h.move(r, "refunded")
	for _, tc := range []struct{ filter, want string }{
		// The reminder: issued from Spring in the last 14 days and not redeemed since.
		{`{"and":[{"issued_from":{"groups":["Spring"],"window":{"last_days":14}}},{"not":{"redeemed":{"groups":["Spring"],"window":{"last_days":14}}}}]}`, "c2"},
		{`{"redeemed":{}}`, "c1 c3 c4 c9"},
		{`{"redeemed":{"groups":["Spring"]}}`, "c1 c3"},
		{`{"redeemed":{"groups":["Summer"],"op":"gte","value":2}}`, ""},
		{`{"redeemed":{"op":"eq","value":0}}`, "c2"},
		{`{"redeemed":{"groups":["Spring"],"window":{"last_days":7}}}`, "c1"},
		{`{"not":{"redeemed":{"window":{"last_days":7}}}}`, "c2 c3 c9"},
		{`{"and":[{"issued_from":{"groups":["Spring"]}},{"not":{"redeemed":{"groups":["Spring"]}}}]}`, "c2"},
	} {
		got := h.answer(h.parse(tc.filter))
		if s := fmt.Sprint(got); s != "["+tc.want+"]" {
			t.Errorf("%s: got %v, want [%s]", tc.filter, got, tc.want)
		}
	}
	// A confirmed hold becomes a use; the next answer folds it.
	h.move(hold, "succeeded")
	if got := h.answer(h.parse(`{"and":[{"issued_from":{"groups":["Spring"],"window":{"last_days":14}}},{"not":{"redeemed":{"groups":["Spring"],"window":{"last_days":14}}}}]}`)); len(got) != 0 {
		t.Errorf("after c2's hold was confirmed: %v, want nobody", got)
	}
	c, err := h.svc.Count(context.Background(), h.parse(`{"redeemed":{}}`))
	if err != nil || c.Count != 5 || time.Since(c.AsOf) > time.Minute {
		t.Errorf("count %+v, %v: want 5 as of now", c, err)
	}
}

// TestRedeemedFiltersMatchModel: random issues and redemptions — written on four
// connections while the redemption fold runs beside them, held, confirmed, cancelled,
// refunded — then random filters mixing redeemed with the issue filters, and filters the
// bitmaps answer, each compared with a recount of the raw rows.
func TestRedeemedFiltersMatchModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 23))
	names := []string{"G0", "G1", "G2"}
	h := newHistory(t, names...)
	var custs []string
	for i := range 24 {
		custs = append(custs, fmt.Sprintf("m%02d", i))
	}
	h.customers(custs[:16]...) // the others only appear in issues or redemptions
	for range 120 {
		h.issue(custs[rng.IntN(len(custs))], names[rng.IntN(len(names))], "initial", rng.Float64()*40)
	}
	ctx := context.Background()
	for step := range 3 {
		stop := make(chan struct{})
		var folder sync.WaitGroup
		folder.Add(1)
		go func() {
			defer folder.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := h.svc.FoldRedemptions(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		var writers sync.WaitGroup
		for w := range 4 {
			writers.Add(1)
			wseed := rng.Uint64()
			go func() {
				defer writers.Done()
				rng := rand.New(rand.NewPCG(wseed, uint64(w)))
				var mine []int64
				for range 25 {
					if len(mine) > 0 && rng.IntN(3) == 0 {
						if err := h.tryMove(mine[rng.IntN(len(mine))], []string{"succeeded", "cancelled", "refunded"}[rng.IntN(3)]); err != nil {
							t.Error(err)
							return
						}
						continue
					}
					status := []string{"succeeded", "succeeded", "pending", "failed"}[rng.IntN(4)]
					id, err := h.tryRedeem(custs[rng.IntN(len(custs))], names[rng.IntN(len(names))], status, rng.Float64()*40)
					if err != nil {
						t.Error(err)
						return
					}
					mine = append(mine, id)
				}
			}()
		}
		writers.Wait()
		close(stop)
		folder.Wait()
		if t.Failed() {
			return
		}
		h.loadUses()
		for range 24 {
			f := randomRedeemedFilter(rng, names, h.now, 0)
			b, _ := json.Marshal(f)
			pf := h.parse(string(b))
			if got, want := h.answer(pf), h.model(pf); !slices.Equal(got, want) {
				t.Fatalf("step %d: %s\n sql: %v\nrecount: %v", step, b, got, want)
			}
		}
		for range 12 {
			f := randomRedeemedBitFilter(rng, names, 0)
			b, _ := json.Marshal(f)
			pf := h.parse(string(b))
			q, err := h.svc.Prepare(ctx, pf)
			if err != nil || !q.FromBitmaps() {
				t.Fatalf("%s: prepared %v, from bitmaps %v; want the bitmaps", b, err, err == nil && q.FromBitmaps())
			}
			if got, want := h.answer(pf), h.model(pf); !slices.Equal(got, want) {
				t.Fatalf("step %d (bitmaps): %s\n sql: %v\nrecount: %v", step, b, got, want)
			}
		}
	}
}

// randomRedeemedFilter is randomFilter with redeemed nodes among its leaves.
func randomRedeemedFilter(rng *rand.Rand, names []string, now time.Time, depth int) *segments.Filter {
	if depth < 3 {
		switch rng.IntN(6) {
		case 0, 1:
			f := &segments.Filter{}
			for range 1 + rng.IntN(3) {
				f.And = append(f.And, randomRedeemedFilter(rng, names, now, depth+1))
			}
			if rng.IntN(2) == 0 {
				f.Or, f.And = f.And, nil
			}
			return f
		case 2:
			return &segments.Filter{Not: randomRedeemedFilter(rng, names, now, depth+1)}
		}
	}
	if rng.IntN(3) > 0 {
		return &segments.Filter{Redeemed: randomRedeemed(rng, names, now, true)}
	}
	return randomFilter(rng, names, now, nil, 3)
}

// randomRedeemed draws a redeemed node: groups or none, a comparison or the default,
// a window (last days, bounded, since, until) or none.
func randomRedeemed(rng *rand.Rand, names []string, now time.Time, windows bool) *segments.Redeemed {
	r := &segments.Redeemed{}
	if rng.IntN(3) > 0 {
		r.Groups = pickGroups(rng, names, 2)
	}
	v, w := int64(rng.IntN(4)), int64(rng.IntN(4))
	switch rng.IntN(4) {
	case 0: // the default: at least once
	case 1:
		lo, hi := min(v, w), max(v, w)
		r.Op, r.Min, r.Max = "between", &lo, &hi
	default:
		r.Op, r.Value = []string{"eq", "ne", "lt", "lte", "gt", "gte"}[rng.IntN(6)], &v
	}
	if windows {
		switch rng.IntN(5) {
		case 0:
			r.Window = &segments.Window{LastDays: 1 + rng.IntN(40)}
		case 1:
			from := now.AddDate(0, 0, -rng.IntN(40))
			to := from.Add(time.Duration(1+rng.IntN(20*24)) * time.Hour)
			r.Window = &segments.Window{From: &from, To: &to}
		case 2:
			from := now.AddDate(0, 0, -rng.IntN(40))
			r.Window = &segments.Window{From: &from}
		case 3:
			to := now.AddDate(0, 0, -rng.IntN(40))
			r.Window = &segments.Window{To: &to}
		}
	}
	return r
}

// randomRedeemedBitFilter makes a filter the bitmaps answer, with redeemed leaves
// (without a window: over all groups with counts within the buckets, or "at least once"
// or "never" from some groups) beside the issue leaves of randomBitFilter, under AND, OR
// and NOT anywhere.
func randomRedeemedBitFilter(rng *rand.Rand, names []string, depth int) *segments.Filter {
	return randomBitTree(rng, depth, func() *segments.Filter {
		switch rng.IntN(3) {
		case 0:
			return randomBitFilter(rng, names, 2)
		case 1:
			r := &segments.Redeemed{Groups: pickGroups(rng, names, 2)}
			switch rng.IntN(4) {
			case 0:
				zero := int64(0)
				r.Op, r.Value = "eq", &zero
			case 1:
				one := int64(1)
				r.Op, r.Value = "lt", &one
			}
			return &segments.Filter{Redeemed: r}
		}
		r := &segments.Redeemed{}
		r.Op, r.Value, r.Min, r.Max = randomBucketCount(rng)
		return &segments.Filter{Redeemed: r}
	})
}
