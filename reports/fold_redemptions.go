package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/postgres"
)

// foldRedemptionsSQL consumes the queued redemption changes (migration 0023) and adds
// them to the redemption rollups (and to 0027's per-group days and customers' last days
// and 0028's spans), in one statement: the changes are deleted as they are folded, so
// each is folded exactly once, and a change not yet committed is not seen (the next
// fold takes it). It returns how many changes it folded and the start of the
// statement: every change committed before it is folded.
//
// Each rollup is updated where its key has a row and inserted where not (an upsert
// would check its proposed row, whose net change may be negative, against the CHECKs;
// the spans have none, and take an upsert);
// report_redeemer_days keeps a row while its uses are positive, so a key whose uses
// fall to 0 is deleted. Every part acts on disjoint rows of one snapshot, and only the
// folder (holding report_redemption_fold) writes these tables.
const foldRedemptionsSQL = `
WITH d AS MATERIALIZED (
    DELETE FROM report_redemption_changes RETURNING *
), agg AS MATERIALIZED (
    SELECT a.*, EXISTS (SELECT 1 FROM report_redemption_days r
                        WHERE r.group_id = a.group_id AND r.day = a.day AND r.mailing_id = a.mailing_id
                          AND r.code_id = a.code_id AND r.utm_source = a.utm_source AND r.currency = a.currency) AS had
    FROM (SELECT group_id, day, mailing_id, code_id, utm_source, currency,
                 sum(uses) AS uses, sum(revenue) AS revenue, sum(discount) AS discount,
                 sum(refunds) AS refunds, sum(refunded) AS refunded, sum(failed) AS failed
          FROM d GROUP BY 1, 2, 3, 4, 5, 6) a
), days_up AS (
    UPDATE report_redemption_days r SET uses = r.uses + a.uses, revenue = r.revenue + a.revenue,
           discount = r.discount + a.discount, refunds = r.refunds + a.refunds,
           refunded = r.refunded + a.refunded, failed = r.failed + a.failed
    FROM agg a
    WHERE a.had AND r.group_id = a.group_id AND r.day = a.day AND r.mailing_id = a.mailing_id
      AND r.code_id = a.code_id AND r.utm_source = a.utm_source AND r.currency = a.currency
    RETURNING 1
), days_new AS (
    INSERT INTO report_redemption_days (group_id, day, mailing_id, code_id, utm_source, currency,
                                        uses, revenue, discount, refunds, refunded, failed)
    SELECT group_id, day, mailing_id, code_id, utm_source, currency, uses, revenue, discount, refunds, refunded, failed
    FROM agg WHERE NOT had ORDER BY 1, 2, 3, 4, 5, 6
    RETURNING 1
), gagg AS MATERIALIZED (
    SELECT a.*, EXISTS (SELECT 1 FROM report_redemption_group_days r
                        WHERE r.group_id = a.group_id AND r.day = a.day AND r.currency = a.currency) AS had
    FROM (SELECT group_id, day, currency, sum(uses) AS uses, sum(revenue) AS revenue, sum(discount) AS discount,
                 sum(refunds) AS refunds, sum(refunded) AS refunded, sum(failed) AS failed
          FROM agg GROUP BY 1, 2, 3) a
), gdays_up AS (
    UPDATE report_redemption_group_days r SET uses = r.uses + a.uses, revenue = r.revenue + a.revenue,
           discount = r.discount + a.discount, refunds = r.refunds + a.refunds,
           refunded = r.refunded + a.refunded, failed = r.failed + a.failed
    FROM gagg a
    WHERE a.had AND r.group_id = a.group_id AND r.day = a.day AND r.currency = a.currency
    RETURNING 1
), gdays_new AS (
    INSERT INTO report_redemption_group_days (group_id, day, currency, uses, revenue, discount, refunds, refunded, failed)
    SELECT group_id, day, currency, uses, revenue, discount, refunds, refunded, failed
    FROM gagg WHERE NOT had ORDER BY 1, 2, 3
    RETURNING 1
), spans AS (
    INSERT INTO report_redemption_spans AS s (group_id, level, block, mailing_id, code_id, utm_source, uses, revenue, discount)
    SELECT group_id, k, report_block(day, k), mailing_id, code_id, utm_source, sum(uses), sum(revenue), sum(discount)
    FROM agg CROSS JOIN generate_series(1, 10) k WHERE mailing_id <> 0 OR code_id <> 0
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (group_id, level, block, mailing_id, code_id, utm_source) DO UPDATE SET
        uses = s.uses + excluded.uses, revenue = s.revenue + excluded.revenue, discount = s.discount + excluded.discount
    RETURNING 1
), who AS MATERIALIZED (
    SELECT w.group_id, w.day, w.customer_id, w.n, x.uses AS had
    FROM (SELECT group_id, day, customer_id, sum(uses) AS n FROM d WHERE uses <> 0
          GROUP BY 1, 2, 3 HAVING sum(uses) <> 0) w
    LEFT JOIN report_redeemer_days x ON x.group_id = w.group_id AND x.day = w.day AND x.customer_id = w.customer_id
), who_gone AS (
    DELETE FROM report_redeemer_days r USING who w
    WHERE w.had + w.n = 0 AND r.group_id = w.group_id AND r.day = w.day AND r.customer_id = w.customer_id
    RETURNING 1
), who_up AS (
    UPDATE report_redeemer_days r SET uses = r.uses + w.n FROM who w
    WHERE w.had + w.n > 0 AND r.group_id = w.group_id AND r.day = w.day AND r.customer_id = w.customer_id
    RETURNING 1
), who_new AS (
    INSERT INTO report_redeemer_days (group_id, day, customer_id, uses)
    SELECT group_id, day, customer_id, n FROM who WHERE had IS NULL ORDER BY 1, 2, 3
    RETURNING 1
), lastc AS MATERIALIZED (
    -- Each touched customer's last day of use before this fold, and after it: the
    -- latest touched day left with uses, or else the latest day it did not touch.
    SELECT t.group_id,
           (SELECT max(x.day) FROM report_redeemer_days x
            WHERE x.customer_id = t.customer_id AND x.group_id = t.group_id) AS old_last,
           greatest(t.touched_last,
                    (SELECT x.day FROM report_redeemer_days x
                     WHERE x.customer_id = t.customer_id AND x.group_id = t.group_id AND x.day <> ALL (t.days)
                     ORDER BY x.day DESC LIMIT 1)) AS new_last
    FROM (SELECT group_id, customer_id, max(day) FILTER (WHERE coalesce(had, 0) + n > 0) AS touched_last,
                 array_agg(day) AS days
          FROM who GROUP BY 1, 2) t
), lastd AS MATERIALIZED (
    SELECT e.group_id, e.day, sum(e.n) AS n,
           EXISTS (SELECT 1 FROM report_redeemer_last_days l WHERE l.group_id = e.group_id AND l.day = e.day) AS had
    FROM (SELECT group_id, old_last AS day, -1 AS n FROM lastc
          WHERE old_last IS NOT NULL AND old_last IS DISTINCT FROM new_last
          UNION ALL
          SELECT group_id, new_last, 1 FROM lastc
          WHERE new_last IS NOT NULL AND old_last IS DISTINCT FROM new_last) e
    GROUP BY 1, 2 HAVING sum(e.n) <> 0
), last_up AS (
    UPDATE report_redeemer_last_days l SET customers = l.customers + d.n FROM lastd d
    WHERE d.had AND l.group_id = d.group_id AND l.day = d.day
    RETURNING 1
), last_new AS (
    INSERT INTO report_redeemer_last_days (group_id, day, customers)
    SELECT group_id, day, n FROM lastd WHERE NOT had ORDER BY 1, 2
    RETURNING 1
), lag AS MATERIALIZED (
    SELECT w.group_id, w.day, w.mailing_id, w.micros, w.n, x.uses AS had
    FROM (SELECT d.group_id, d.day, d.mailing_id, (extract(epoch FROM d.created_at - i.issued_at) * 1000000)::bigint AS micros,
                 sum(d.uses) AS n
          FROM d JOIN issues i ON i.id = d.issue_id
          WHERE d.uses <> 0 AND d.mailing_id <> 0
          GROUP BY 1, 2, 3, 4 HAVING sum(d.uses) <> 0) w
    LEFT JOIN report_redemption_delays x
      ON x.group_id = w.group_id AND x.day = w.day AND x.mailing_id = w.mailing_id AND x.micros = w.micros
), lag_gone AS (
    DELETE FROM report_redemption_delays r USING lag w
    WHERE w.had + w.n = 0 AND r.group_id = w.group_id AND r.day = w.day AND r.mailing_id = w.mailing_id AND r.micros = w.micros
    RETURNING 1
), lag_up AS (
    UPDATE report_redemption_delays r SET uses = r.uses + w.n FROM lag w
    WHERE w.had + w.n > 0 AND r.group_id = w.group_id AND r.day = w.day AND r.mailing_id = w.mailing_id AND r.micros = w.micros
    RETURNING 1
), lag_new AS (
    INSERT INTO report_redemption_delays (group_id, day, mailing_id, micros, uses)
    SELECT group_id, day, mailing_id, micros, n FROM lag WHERE had IS NULL ORDER BY 1, 2, 3, 4
    RETURNING 1
)
SELECT (SELECT count(*) FROM d) AS n, statement_timestamp() AS started,
       (SELECT count(*) FROM days_up) + (SELECT count(*) FROM days_new) + (SELECT count(*) FROM who_gone)
     + (SELECT count(*) FROM who_up) + (SELECT count(*) FROM who_new)
     + (SELECT count(*) FROM lag_gone) + (SELECT count(*) FROM lag_up) + (SELECT count(*) FROM lag_new)
     + (SELECT count(*) FROM gdays_up) + (SELECT count(*) FROM gdays_new)
     + (SELECT count(*) FROM last_up) + (SELECT count(*) FROM last_new) + (SELECT count(*) FROM spans) AS rows`

// FoldRedemptions folds every redemption change committed so far into the redemption
// rollups and returns how many it folded. Several folders may run: one folds, the
// others return at once.
func (s *Service) FoldRedemptions(ctx context.Context) (int, error) {
	return s.foldRedemptions(ctx, 0)
}

// foldRedemptions folds the queue in one transaction; with limit > 0 it leaves a queue
// longer than limit to the worker's folder (a report does not wait for a backlog).
func (s *Service) foldRedemptions(ctx context.Context, limit int) (int, error) {
	return postgres.FoldQueue(ctx, s.db, "report fold, redemptions", "report_redemption_fold", "report_redemption_changes", limit,
		func(tx *sqlx.Tx) (int, time.Time, error) {
			if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
				return 0, time.Time{}, err
			}
			var res struct {
				N       int       `db:"n"`
				Started time.Time `db:"started"`
				Rows    int       `db:"rows"`
			}
			if err := tx.GetContext(ctx, &res, foldRedemptionsSQL); err != nil {
				return 0, time.Time{}, fmt.Errorf("report fold, redemptions: %w", err)
			}
			return res.N, res.Started, nil
		})
}

// RedemptionsAsOf returns the instant the redemption rollups are complete to: every
// redemption change committed before it is counted.
func (s *Service) RedemptionsAsOf(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.db.GetContext(ctx, &t, `SELECT as_of FROM report_redemption_fold`)
	return t, err
}
