package groups_test

import (
	"context"
	"errors"
	"testing"

	"promopool/groups"
)

func TestDirectIssueKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, h := f.group(t, "G"), f.group(t, "H")
	f.load(t, g.ID, groups.FormatPlain, "D1\nD2\n")
	first, err := f.store.IssueDirect(ctx, g.ID, "a", "key-1")
	if err != nil || first.Code != "D1" || first.Replayed {
		t.Fatalf("first %+v %v", first, err)
	}
	again, err := f.store.IssueDirect(ctx, g.ID, "a", "key-1")
	if err != nil || again.Code != "D1" || !again.Replayed {
		t.Fatalf("replay %+v %v", again, err)
	}
	if _, err := f.store.IssueDirect(ctx, g.ID, "b", "key-1"); !errors.Is(err, groups.ErrIdempotencyConflict) {
		t.Fatalf("other customer: %v", err)
	}
	if _, err := f.store.IssueDirect(ctx, h.ID, "a", "key-1"); !errors.Is(err, groups.ErrIdempotencyConflict) {
		t.Fatalf("other group: %v", err)
	}
	if r, _ := f.store.IssueDirect(ctx, g.ID, "a", "key-2"); r.Code != "D2" {
		t.Fatalf("second key %+v", r)
	}
	if _, err := f.store.IssueDirect(ctx, g.ID, "a", "key-3"); !errors.Is(err, groups.ErrPoolExhausted) {
		t.Fatalf("exhausted: %v", err)
	}
	if gr := f.balanced(t, g.ID); gr.Issued != 2 {
		t.Fatalf("issued %d", gr.Issued)
	}
}
