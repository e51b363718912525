package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// seedRedemptions writes n redemptions over the last year (as they arrive: in time
// order) by customers 'c1'…'c<customers>' (skewed: a few redeem often) of the groups
// (skewed as the issues: the first the largest): 95% succeeded, 4% refunded, 1% refused.
// It writes them with the triggers off, then queues their changes as the trigger of
// migration 0023 would (one set-based statement per queue) for the folds to consume.
func seedRedemptions(ctx context.Context, db *sqlx.DB, n, customers int64, groups int, logf func(string, ...any)) error {
	if n <= 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE redemptions DISABLE TRIGGER USER`); err != nil {
		return err
	}
	err := withoutIndexes(ctx, db, "redemptions", logf, func() error {
		const step = 500_000
		for from := int64(0); from < n; from += step {
			to := min(from+step, n)
			_, err := db.ExecContext(ctx, `
				INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, request_hash, status, reason,
				                         mailing_id, currency, order_amount, discount_amount, refunded_amount, utm_source,
				                         snapshot, created_at, updated_at)
				SELECT g, -i, 'R' || i, 'unique', 'c' || (1 + floor($3 * power(random(), 2))::bigint), 'o' || i,
				       sha256(int8send(i)), st, CASE WHEN st = 'failed' THEN 'exhausted' END,
				       CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % 200 END, 'EUR', 5000 + i % 5000,
				       CASE WHEN st = 'failed' THEN 0 ELSE 500 END, CASE WHEN st = 'refunded' THEN 500 ELSE 0 END,
				       CASE WHEN i % 7 = 0 THEN 'newsletter' ELSE '' END, '{}', at, at
				FROM (SELECT i, (SELECT min(id) FROM groups) + floor($5 * power(random(), 1.5))::bigint AS g,
				             CASE WHEN i % 25 = 0 THEN 'refunded' WHEN i % 100 = 1 THEN 'failed' ELSE 'succeeded' END AS st,
				             now() - interval '365 days' + interval '365 days' * (i::float8 / $4) AS at
				      FROM generate_series($1::bigint, $2::bigint - 1) i) x`, from, to, customers, n, groups)
			if err != nil {
				return err
			}
			logf("redemptions: %d rows", to)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, q := range []string{
		`ALTER TABLE redemptions ENABLE TRIGGER USER`,
		// What redemption_change_queue (0023) appends for each new row.
		`INSERT INTO report_redemption_changes (group_id, day, mailing_id, code_id, utm_source, currency, customer_id,
		                                        issue_id, created_at, uses, revenue, discount, refunds, refunded, failed)
		 SELECT group_id, report_day(created_at), coalesce(mailing_id, 0), CASE WHEN kind = 'shared' THEN code_id ELSE 0 END,
		        utm_source, currency, customer_id, issue_id, created_at, (status = 'succeeded')::int,
		        CASE WHEN status = 'succeeded' THEN order_amount ELSE 0 END,
		        CASE WHEN status IN ('succeeded', 'refunded') THEN discount_amount - refunded_amount ELSE 0 END,
		        (status = 'refunded')::int, CASE WHEN status IN ('succeeded', 'refunded') THEN refunded_amount ELSE 0 END,
		        (status = 'failed')::int
		 FROM redemptions WHERE group_id IS NOT NULL AND status IN ('succeeded', 'refunded', 'failed')`,
		`INSERT INTO segment_redemption_changes (group_id, customer_id, used_at, n)
		 SELECT group_id, customer_id, created_at, 1 FROM redemptions WHERE group_id IS NOT NULL AND status = 'succeeded'`,
		`VACUUM ANALYZE redemptions, report_redemption_changes, segment_redemption_changes`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seeding redemptions: %w", err)
		}
	}
	return nil
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
