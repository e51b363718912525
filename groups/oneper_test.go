package groups_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"promopool/groups"
)

// Issue 21 item 4: a one_per_customer group gives a customer who holds a live code of
// it that code again, recorded as a repeat, in any scope (mailing, render, direct
// issue), also under concurrent claims; the group_customer_codes primary key enforces
// it; a released code frees the customer for a new one.
func TestOnePerCustomer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", groups.Input{Name: ptr("Keyed"), OnePerCustomer: ptr(true)})
	if err != nil || !g.OnePerCustomer {
		t.Fatalf("create: %+v %v", g, err)
	}
	var codes strings.Builder
	for i := range 50 {
		fmt.Fprintf(&codes, "K%02d\n", i)
	}
	f.load(t, g.ID, groups.FormatPlain, codes.String())
	first, err := f.store.IssueDirect(ctx, g.ID, "a", "key-1")
	if err != nil || first.Repeat {
		t.Fatalf("first issue: %+v %v", first, err)
	}
	again, err := f.store.IssueDirect(ctx, g.ID, "a", "key-2")
	if err != nil || again.Code != first.Code || !again.Repeat || again.Replayed {
		t.Fatalf("another key, same customer: %+v %v (first %s)", again, err, first.Code)
	}
	res, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "mailing:7", CustomerIDs: []string{"a", "b"}})
	if err != nil || res.Codes["a"] != first.Code || len(res.Repeated) != 1 || res.Issued() != 1 || res.Codes["b"] == "" {
		t.Fatalf("claim: %+v %v", res, err)
	}
	// Ten scopes claim for a new customer at once: one code, the others repeat it.
	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: fmt.Sprintf("render:s%d", i), CustomerIDs: []string{"c"}})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r.Codes["c"]
		}()
	}
	wg.Wait()
	for _, c := range got {
		if c == "" || c != got[0] {
			t.Fatalf("concurrent scopes got %q", got)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'initial' AND released_at IS NULL AND customer_id = 'c'`, g.ID); n != 1 {
		t.Fatalf("customer c holds %d live codes", n)
	}
	if n := f.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'repeat' AND customer_id = 'c'`, g.ID); n != 9 {
		t.Fatalf("%d repeats recorded for c, want 9", n)
	}
	if gr := f.balanced(t, g.ID); gr.Issued != 3 {
		t.Fatalf("issued %d, want 3 (a, b, c)", gr.Issued)
	}
	// The constraint, not the lookup alone.
	if _, err := f.db.Exec(`INSERT INTO group_customer_codes (group_id, customer_id, code_id) SELECT $1, 'a', id FROM codes WHERE code = 'K49'`, g.ID); err == nil {
		t.Fatal("a second code for customer a was accepted")
	}
	// Released (a definitive send rejection): a gets a code drawn afresh next time (the
	// released one went back to the pool and is drawn first).
	if n, err := f.store.Release(ctx, g.ID, "direct:key-1", []string{"a"}); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	next, err := f.store.IssueDirect(ctx, g.ID, "a", "key-3")
	if err != nil || next.Repeat || f.count(t, `SELECT count(*) FROM issues WHERE scope = 'direct:key-3' AND kind = 'initial'`) != 1 {
		t.Fatalf("after the release: %+v %v", next, err)
	}
	// Switched off: a second live code is possible again; switched on, the latest stays.
	if _, err := f.store.Update(ctx, "t", g.ID, groups.Input{OnePerCustomer: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	other, _ := f.store.IssueDirect(ctx, g.ID, "a", "key-4")
	if other.Code == next.Code {
		t.Fatalf("off: got the same code %s", other.Code)
	}
	if _, err := f.store.Update(ctx, "t", g.ID, groups.Input{OnePerCustomer: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.store.IssueDirect(ctx, g.ID, "a", "key-5"); r.Code != other.Code || !r.Repeat {
		t.Fatalf("on again: %+v, want the latest code %s", r, other.Code)
	}
}
