package reports_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/offers"
	"promopool/reports"
)

// BenchmarkRedeem measures a redemption through checkout with the report counters kept
// (the triggers of migration 0019) and without them (triggers disabled), in one run:
//
//	go test ./reports -run '^$' -bench BenchmarkRedeem -benchtime 2000x -count 3
func BenchmarkRedeem(b *testing.B) {
	f := newFixture(b, 0, 0, reports.Config{})
	co, err := checkout.New(checkout.Config{}, checkout.Deps{DB: f.db.DB, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	var g int64
	f.db.Get(&g, `INSERT INTO groups (name, kind, terms) VALUES ('P', 'shared', '{"type":"percent","percent_off":10,"currency":"EUR"}') RETURNING id`)
	f.db.MustExec(`INSERT INTO codes (id, code) VALUES (1, 'NEWS10')`)
	f.db.MustExec(`INSERT INTO promotion_codes (code_id, group_id) VALUES (1, $1)`, g)
	order := offers.Order{Currency: "EUR", Items: []offers.Item{{ProductID: "p", Quantity: 1, UnitAmount: 5000}}}
	n := 0
	for _, mode := range []string{"rollups", "without", "rollups-again"} {
		b.Run(mode, func(b *testing.B) {
			action := "ENABLE"
			if mode == "without" {
				action = "DISABLE"
			}
			for _, trg := range []string{"redemptions_report_insert", "redemptions_report_update"} {
				f.db.MustExec(fmt.Sprintf(`ALTER TABLE redemptions %s TRIGGER %s`, action, trg))
			}
			for b.Loop() {
				n++
				if _, _, err := co.Redeem(context.Background(), checkout.RedeemRequest{Code: "NEWS10", CustomerID: fmt.Sprintf("c%d", n%5000),
					OrderID: fmt.Sprintf("o%d", n), Order: order, UTMSource: "news"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupMetrics measures a group's report over 90 days and the portfolio over
// 50 groups on rollups of a year: 1M issues, 200k redemptions by 100k customers,
// written straight into the history (checkout's triggers fill the redemption rollups):
//
//	go test ./reports -run '^$' -bench BenchmarkGroupMetrics -benchtime 50x
func BenchmarkGroupMetrics(b *testing.B) {
	f := newFixture(b, 50, 10, reports.Config{})
	ctx := context.Background()
	start := time.Now()
	f.db.MustExec(`INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind, issued_at)
		SELECT 'c' || (i % 100000), 1 + i % 50, -i, 's' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % 200 END,
		       'initial', now() - (i % 365) * interval '1 day'
		FROM generate_series(1, 1000000) i`)
	f.db.MustExec(`INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, request_hash, status,
		mailing_id, currency, order_amount, discount_amount, utm_source, snapshot, created_at, updated_at)
		SELECT 1 + i % 50, -i, 'C' || i, 'unique', 'c' || (i % 100000), 'o' || i, sha256(('o' || i)::bytea),
		       CASE WHEN i % 20 = 0 THEN 'refunded' ELSE 'succeeded' END,
		       1 + i % 200, 'EUR', 5000 + i % 5000, 500, '', '{}', now() - (i % 365) * interval '1 day', now()
		FROM generate_series(1, 200000) i`)
	if _, err := f.svc.Fold(ctx); err != nil {
		b.Fatal(err)
	}
	f.db.MustExec(`VACUUM ANALYZE`)
	b.Logf("seeded in %s", time.Since(start).Round(time.Millisecond))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	p := reports.Period{From: today.AddDate(0, 0, -89), To: today}
	b.Run("group-90d", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.svc.GroupMetrics(ctx, f.groups[7], p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("portfolio-50-90d", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.svc.Portfolio(ctx, p, "-uses"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
