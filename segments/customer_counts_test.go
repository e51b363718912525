package segments_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"promopool/segments"
)

// TestCustomerCountsMatchCustomers: complements are counted as every customer minus
// some bits, and "every customer" is the sum of segment_customer_counts (migration
// 0031), not a scan of customers. Four connections insert customers as the application
// does — plain inserts, ON CONFLICT DO NOTHING, upserts that update existing rows,
// rolled-back inserts — while folds compact the counts; in the end (and in every answer
// on the way) the sum equals count(*), and a NOT at the top counts every customer it
// should.
func TestCustomerCountsMatchCustomers(t *testing.T) {
	h := newHistory(t, "A")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				id := fmt.Sprintf("w%d-%d", w, i%40) // a third of them again: conflicts
				var err error
				switch i % 4 {
				case 0:
					_, err = h.db.ExecContext(ctx, `INSERT INTO customers (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, id)
				case 1:
					_, err = h.db.ExecContext(ctx, `INSERT INTO customers (id, email) SELECT $1 || '-' || g, 'x' FROM generate_series(1, 3) g
						ON CONFLICT (id) DO UPDATE SET email = 'y'`, id)
				case 2:
					_, err = h.db.ExecContext(ctx, `INSERT INTO customers (id, email) VALUES ($1, 'a') ON CONFLICT (id) DO UPDATE SET email = 'b'`, id)
				default:
					tx, e := h.db.BeginTxx(ctx, nil)
					if e != nil {
						errs <- e
						return
					}
					_, err = tx.ExecContext(ctx, `INSERT INTO customers (id) VALUES ($1 || '-rolled-back')`, id)
					tx.Rollback()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the folder, compacting the counts
		defer wg.Done()
		for range 30 {
			if _, err := h.svc.Fold(ctx); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var sum, n, rows int64
		h.db.Get(&sum, `SELECT coalesce(sum(n), 0) FROM segment_customer_counts`)
		h.db.Get(&rows, `SELECT count(*) FROM segment_customer_counts`)
		h.db.Get(&n, `SELECT count(*) FROM customers`)
		if sum != n || n == 0 {
			t.Fatalf("%s: segment_customer_counts sums to %d (%d rows), customers has %d", when, sum, rows, n)
		}
		notA := &segments.Filter{Not: &segments.Filter{IssuedFrom: &segments.IssuedFrom{Groups: []segments.GroupRef{{Name: "A"}}}}}
		c, err := h.svc.Count(ctx, notA)
		if err != nil || c.Count != n {
			t.Fatalf("%s: not from A: %d (%v), want every one of the %d customers", when, c.Count, err, n)
		}
	}
	check("before the last compaction")
	if _, err := h.svc.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	var rows int
	h.db.Get(&rows, `SELECT count(*) FROM segment_customer_counts`)
	if rows != 1 {
		t.Fatalf("%d rows after a compaction, want 1", rows)
	}
	check("after it")
}
