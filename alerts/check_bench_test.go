package alerts_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"promopool/alerts"
	"promopool/groups"
	"promopool/internal/testdb"
)

// BenchmarkCheck times one scheduler tick in the steady state (every alert already
// raised, nothing to send), and reports the first tick, which raises 2,000 alerts and
// counts the week's issues, over 1,000 groups with thresholds, 3 expiring ranges each,
// and an issue history of ALERTS_BENCH_ISSUES rows (default 2,000,000) spread over 30
// days, so the forecast counts about 7/30 of them. Like BenchmarkList it writes range
// rows instead of codes: the check never reads codes.
func BenchmarkCheck(b *testing.B) {
	issues, _ := strconv.Atoi(os.Getenv("ALERTS_BENCH_ISSUES"))
	if issues <= 0 {
		issues = 2_000_000
	}
	db := testdb.New(b)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `
		INSERT INTO issues (customer_id, group_id, code_id, scope, kind, issued_at)
		SELECT 'c' || i, 1 + i % 1000, i, 'bench', 'initial', now() - interval '30 days' + i * (interval '30 days' / $1)
		FROM generate_series(1, $1) i`, issues)
	if err != nil {
		b.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `
		INSERT INTO groups (name, low_balance_threshold, alert_emails)
		SELECT 'group ' || g, 8000, '{}' FROM generate_series(1, 1000) g;
		INSERT INTO uploads (group_id, actor, source, format, lines, accepted, duplicates, invalid)
		SELECT g, 'bench', 'api', 'plain', 10000, 10000, 0, 0 FROM generate_series(1, 1000) g;
		INSERT INTO code_ranges (group_id, upload_id, expires_at, first_id, last_id, next_id, total, taken)
		SELECT u.group_id, u.id, now() + (e * 5 || ' days')::interval, u.id << 32, (u.id << 32) + 3333, (u.id << 32) + 1000, 3334, 1000
		FROM uploads u, generate_series(1, 3) e;
		ANALYZE`)
	if err != nil {
		b.Fatal(err)
	}
	c, err := alerts.New(alerts.Config{}, alerts.Deps{DB: db.DB, Groups: groups.NewStore(db.DB, groups.Config{})})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	res, err := c.Check(ctx, time.Now()) // raises every group's threshold and expiry alerts once
	first := time.Since(start)
	if err != nil || res.Raised != 2000 {
		b.Fatalf("first tick: %+v %v", res, err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Check(ctx, time.Now())
		if err != nil || res.Groups != 1000 || res.Raised != 0 {
			b.Fatalf("tick: %+v %v", res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/tick")
	b.ReportMetric(float64(first.Milliseconds()), "ms/first-tick")
}
