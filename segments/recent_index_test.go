package segments_test

import (
	"context"
	"strings"
	"testing"

	"promopool/segments"
)

// TestRecentCountsUseThePartialIndexes: "at least k initial issues in the last N days"
// is answered from segment_customers_recent{k}, which since migration 0016 index only
// the customers who have a k-th issue time; the filter's condition must still let the
// planner use them (it proves recent_initial[k] >= T implies IS NOT NULL), and the
// count must be right.
func TestRecentCountsUseThePartialIndexes(t *testing.T) {
	h := newHistory(t, "Spring")
	h.customers("c1", "c2", "c3")
	for range 3 {
		h.issue("c1", "Spring", "initial", 1)
	}
	h.issue("c2", "Spring", "initial", 1)
	h.issue("c2", "Spring", "initial", 40)
	h.issue("c2", "Spring", "initial", 2)
	h.issue("c3", "Spring", "initial", 3)
	ctx := context.Background()
	f := &segments.Filter{Quantity: &segments.Quantity{Op: "gte", Value: new(int64(3)), Kind: "initial",
		Window: &segments.Window{LastDays: 30}}}
	n, err := h.svc.Count(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if n.Count != 1 {
		t.Fatalf("%d customers with 3 initial issues in 30 days, want 1 (c1)", n.Count)
	}
	q, err := h.svc.Prepare(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	sql, args := q.SQL()
	tx, err := h.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	if err := tx.Select(&plan, `EXPLAIN `+sql, args...); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "segment_customers_recent3") {
		t.Fatalf("the count does not read segment_customers_recent3:\n%s", p)
	}
}
