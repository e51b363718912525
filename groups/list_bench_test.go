package groups_test

import (
	"context"
	"testing"
	"time"

	"promopool/groups"
	"promopool/internal/testdb"
)

// BenchmarkList lists 100 groups holding 20,000,000 codes in all, spread over 2,000
// uploads with 3 expiries each (6,000 ranges). The list reads groups and code_ranges
// only — never codes (see selectGroups) — so range rows with those totals reproduce its
// whole cost without storing 20M code rows.
func BenchmarkList(b *testing.B) {
	db := testdb.New(b)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `
		INSERT INTO groups (name) SELECT 'group ' || g FROM generate_series(1, 100) g;
		INSERT INTO uploads (group_id, actor, source, format, lines, accepted, duplicates, invalid)
		SELECT 1 + (u % 100), 'bench', 'api', 'plain', 10000, 10000, 0, 0 FROM generate_series(1, 2000) u;
		INSERT INTO code_ranges (group_id, upload_id, expires_at, first_id, last_id, next_id, total, taken)
		SELECT u.group_id, u.id, now() + (e || ' days')::interval, u.id << 32, (u.id << 32) + 3333, (u.id << 32) + 1000, 3334, 1000
		FROM uploads u, generate_series(-1, 1) e;
		ANALYZE`)
	if err != nil {
		b.Fatal(err)
	}
	store := groups.NewStore(db.DB, groups.Config{Now: time.Now})
	var total int64
	b.ResetTimer()
	for b.Loop() {
		list, err := store.List(ctx)
		if err != nil || len(list) != 100 {
			b.Fatalf("%d groups, %v", len(list), err)
		}
		total = 0
		for _, g := range list {
			total += g.Total
		}
	}
	b.StopTimer()
	if total != 2000*3*3334 {
		b.Fatalf("total %d", total)
	}
	b.ReportMetric(float64(total), "codes")
}
