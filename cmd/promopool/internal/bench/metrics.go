package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/checkout"
	"promopool/groups"
	"promopool/offers"
	"promopool/reports"
	"promopool/segments"
)

// MetricsConfig sizes `bench metrics`.
type MetricsConfig struct {
	URL         string
	Groups      int   // default 50
	Customers   int64 // default 1,000,000
	Issues      int64 // default 10,000,000
	Redemptions int64 // default 2,000,000
	Repeats     int   // timed runs of each report, median reported (default 9)
	// Redeem phases: Clients concurrent redemptions of distinct orders of one code for
	// Phase each, Rounds rounds of the three trigger modes (defaults 32, 5 s, 3).
	Clients int
	Phase   time.Duration
	Rounds  int
	Keep    bool   // keep the schema for a later -reuse
	Reuse   string // time on a schema kept earlier: no load
	Log     func(string, ...any)
}

// Redeem modes: how the figures are kept while checkout redeems.
const (
	modeNone  = "no figures (triggers off)"
	modeQueue = "0023: change queue + folds"
	modeOld   = "0019: rollups in the statement"
)

// MetricsResult holds the figures.
type MetricsResult struct {
	Cfg                        MetricsConfig
	Schema, Settings           string
	Load, IssueFold, RedFold   time.Duration
	Group, Daily               int64 // the group timed and its 90-day chart's days
	GroupTimes, PortfolioTimes []time.Duration
	GroupFigures               string
	Rounds                     []map[string]rate
	Waits                      map[string]map[string]int
	Samples                    map[string]int
	TriggerPlans               map[string]string
	QueueFoldChanges           int
	QueueFold                  time.Duration
}

// Metrics seeds the history (groups with terms, customers, issues by mailings and direct
// over a year, redemptions), folds it, times a group's report over 90 days (its headline
// figures and daily chart) and the portfolio over every group, then measures a
// redemption at checkout (distinct orders of one code, concurrent clients) with the
// figures kept by the change queue of migration 0023 and its folds, with 0019's in-statement
// rollups recreated for comparison, and with no figures at all, alternating in one run.
func Metrics(ctx context.Context, cfg MetricsConfig) (*MetricsResult, error) {
	cfg.Groups = cmpOr(cfg.Groups, 50)
	cfg.Customers = cmpOr(cfg.Customers, 1_000_000)
	cfg.Issues = cmpOr(cfg.Issues, 10_000_000)
	cfg.Redemptions = cmpOr(cfg.Redemptions, 2_000_000)
	cfg.Repeats = cmpOr(cfg.Repeats, 9)
	cfg.Clients = cmpOr(cfg.Clients, 32)
	cfg.Phase = cmpOr(cfg.Phase, 5*time.Second)
	cfg.Rounds = cmpOr(cfg.Rounds, 3)
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	env, done, err := openEnv(ctx, cfg.URL, cfg.Reuse, cfg.Keep)
	if err != nil {
		return nil, err
	}
	defer done()
	db := env.DB
	db.SetMaxOpenConns(cfg.Clients + 8)
	res := &MetricsResult{Cfg: cfg, Schema: env.Schema, Waits: map[string]map[string]int{}, Samples: map[string]int{}, TriggerPlans: map[string]string{}}
	if res.Settings, err = Settings(ctx, db); err != nil {
		return nil, err
	}
	store := groups.NewStore(db, groups.Config{})
	rep, err := reports.New(reports.Config{}, reports.Deps{DB: db, Groups: store})
	if err != nil {
		return nil, err
	}
	seg := segments.New(db, segments.Config{})
	if cfg.Reuse == "" {
		if err := loadMetricsHistory(ctx, db, rep, seg, cfg, res); err != nil {
			return nil, err
		}
	}
	if err := timeReports(ctx, db, rep, cfg, res); err != nil {
		return nil, err
	}
	if err := redeemModes(ctx, db, rep, seg, cfg, res); err != nil {
		return nil, err
	}
	return res, nil
}

func cmpOr[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// loadMetricsHistory seeds and folds the history.
func loadMetricsHistory(ctx context.Context, db *sqlx.DB, rep *reports.Service, seg *segments.Service, cfg MetricsConfig, res *MetricsResult) error {
	start := time.Now()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO groups (name, terms, budget) SELECT 'G' || lpad(g::text, 2, '0'),
			'{"type":"percent","percent_off":10,"currency":"EUR"}', CASE WHEN g %% 2 = 0 THEN 100000000 END
			FROM generate_series(0, %d - 1) g`, cfg.Groups),
		fmt.Sprintf(`INSERT INTO customers (id) SELECT 'c' || g FROM generate_series(1, %d) g`, cfg.Customers),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
	}
	err := withoutIndexes(ctx, db, "issues", cfg.Log, func() error {
		const step = 2_000_000
		for from := int64(0); from < cfg.Issues; from += step {
			to := min(from+step, cfg.Issues)
			// Over the last year in time order; customers and groups skewed; two in three
			// by one of 200 mailings; one in ten a repeat.
			if _, err := db.ExecContext(ctx, `
				INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind, issued_at)
				SELECT 'c' || (1 + floor($3 * power(random(), 2))::bigint),
				       (SELECT min(id) FROM groups) + floor($5 * power(random(), 1.5))::bigint,
				       (1::bigint << 62) + i, 'b:' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % 200 END,
				       CASE WHEN i % 10 = 9 THEN 'repeat' ELSE 'initial' END,
				       now() - interval '365 days' + interval '365 days' * (i::float8 / $4)
				FROM generate_series($1::bigint, $2::bigint - 1) i`, from, to, cfg.Customers, cfg.Issues, cfg.Groups); err != nil {
				return err
			}
			cfg.Log("issues: %d rows", to)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE issues`); err != nil {
		return err
	}
	if err := seedRedemptions(ctx, db, cfg.Redemptions, cfg.Customers, cfg.Groups, cfg.Log); err != nil {
		return err
	}
	res.Load = time.Since(start)
	cfg.Log("folding the issues into the report rollups")
	start = time.Now()
	if _, err := rep.Fold(ctx); err != nil {
		return err
	}
	res.IssueFold = time.Since(start)
	cfg.Log("folding the redemption changes into the report rollups")
	start = time.Now()
	if _, err := rep.FoldRedemptions(ctx); err != nil {
		return err
	}
	res.RedFold = time.Since(start)
	// The segment summaries' queue is consumed too, as the worker would (not timed here:
	// bench segments times it).
	if _, err := seg.FoldRedemptions(ctx); err != nil {
		return err
	}
	if _, err := rep.SnapshotBalances(ctx); err != nil {
		return err
	}
	// What autovacuum does within a minute (the queues' thresholds are 5,000 rows): the
	// emptied queues lose their dead heap, the rollups get their statistics.
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE report_issue_days, report_redemption_days, report_redeemer_days, report_balance_days,
		report_redemption_changes, segment_redemption_changes, segment_redeemers, segment_redeemer_customers`)
	return err
}

// timeReports times the largest group's report over the last 90 days and the portfolio.
func timeReports(ctx context.Context, db *sqlx.DB, rep *reports.Service, cfg MetricsConfig, res *MetricsResult) error {
	if err := db.GetContext(ctx, &res.Group, `SELECT min(id) FROM groups`); err != nil {
		return err
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	p := reports.Period{From: today.AddDate(0, 0, -89), To: today}
	for range cfg.Repeats {
		start := time.Now()
		m, err := rep.GroupMetrics(ctx, res.Group, p)
		if err != nil {
			return err
		}
		res.GroupTimes = append(res.GroupTimes, time.Since(start))
		res.Daily = int64(len(m.Daily))
		res.GroupFigures = fmt.Sprintf("uses %d, customers %d, revenue %d, discount %d, issued %d, %d mailings",
			m.Redemptions.Uses, m.Redemptions.UniqueCustomers, m.Redemptions.Revenue, m.Redemptions.Discount, m.Issues.Initial, len(m.Mailings))
	}
	for range cfg.Repeats {
		start := time.Now()
		pf, err := rep.Portfolio(ctx, p, "-uses")
		if err != nil {
			return err
		}
		res.PortfolioTimes = append(res.PortfolioTimes, time.Since(start))
		if len(pf.Groups) < cfg.Groups {
			return fmt.Errorf("portfolio: %d groups, want %d", len(pf.Groups), cfg.Groups)
		}
	}
	return nil
}

// oldTriggerSQL recreates 0019's triggers (the rollups updated in the redemption's own
// statement) under other names, for the comparison.
var oldTriggerSQL = []string{`
CREATE OR REPLACE FUNCTION bench_report_redemption_add(r redemptions, s int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k_day      date   := report_day(r.created_at);
    k_mailing  bigint := coalesce(r.mailing_id, 0);
    k_code     bigint := CASE WHEN r.kind = 'shared' THEN r.code_id ELSE 0 END;
    kept       boolean := r.status IN ('succeeded', 'refunded');
    d_uses     bigint := s * (r.status = 'succeeded')::int;
    d_revenue  bigint := s * CASE WHEN r.status = 'succeeded' THEN r.order_amount ELSE 0 END;
    d_discount bigint := s * CASE WHEN kept THEN r.discount_amount - r.refunded_amount ELSE 0 END;
    d_refunds  bigint := s * (r.status = 'refunded')::int;
    d_refunded bigint := s * CASE WHEN kept THEN r.refunded_amount ELSE 0 END;
    d_failed   bigint := s * (r.status = 'failed')::int;
BEGIN
    IF r.group_id IS NULL OR r.status NOT IN ('succeeded', 'refunded', 'failed') THEN
        RETURN;
    END IF;
    UPDATE report_redemption_days d SET uses = d.uses + d_uses, revenue = d.revenue + d_revenue,
           discount = d.discount + d_discount, refunds = d.refunds + d_refunds,
           refunded = d.refunded + d_refunded, failed = d.failed + d_failed
     WHERE d.group_id = r.group_id AND d.day = k_day AND d.mailing_id = k_mailing AND d.code_id = k_code
       AND d.utm_source = r.utm_source AND d.currency = r.currency;
    IF NOT FOUND THEN
        INSERT INTO report_redemption_days AS d (group_id, day, mailing_id, code_id, utm_source, currency,
                                                 uses, revenue, discount, refunds, refunded, failed)
        VALUES (r.group_id, k_day, k_mailing, k_code, r.utm_source, r.currency,
                d_uses, d_revenue, d_discount, d_refunds, d_refunded, d_failed)
        ON CONFLICT (group_id, day, mailing_id, code_id, utm_source, currency) DO UPDATE SET
            uses = d.uses + excluded.uses, revenue = d.revenue + excluded.revenue,
            discount = d.discount + excluded.discount, refunds = d.refunds + excluded.refunds,
            refunded = d.refunded + excluded.refunded, failed = d.failed + excluded.failed;
    END IF;
    IF r.status = 'succeeded' AND s > 0 THEN
        INSERT INTO report_redeemer_days AS d (group_id, day, customer_id, uses)
        VALUES (r.group_id, k_day, r.customer_id, 1)
        ON CONFLICT (group_id, day, customer_id) DO UPDATE SET uses = d.uses + 1;
    END IF;
END $$`, `
CREATE OR REPLACE FUNCTION bench_redemptions_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bench_report_redemption_add(NEW, 1);
    RETURN NULL;
END $$`,
	`CREATE TRIGGER bench_0019_insert AFTER INSERT ON redemptions FOR EACH ROW EXECUTE FUNCTION bench_redemptions_report()`,
}

// redeemModes measures redemptions at checkout in each mode, alternating, with the wait
// events of the active backends sampled every 10 ms and, per mode, the plan of one
// redemption insert with its trigger's time.
func redeemModes(ctx context.Context, db *sqlx.DB, rep *reports.Service, seg *segments.Service, cfg MetricsConfig, res *MetricsResult) error {
	for _, q := range append([]string{
		`INSERT INTO groups (name, kind, terms) VALUES ('bench-news', 'shared', '{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000,"duration":"once","applies_to":{}}') ON CONFLICT DO NOTHING`,
		`INSERT INTO codes (id, code) VALUES ((1::bigint << 50), 'BENCHNEWS10') ON CONFLICT DO NOTHING`,
		`INSERT INTO promotion_codes (code_id, group_id) SELECT (1::bigint << 50), id FROM groups WHERE name = 'bench-news' ON CONFLICT DO NOTHING`,
		`DROP TRIGGER IF EXISTS bench_0019_insert ON redemptions`,
	}, oldTriggerSQL...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("redeem phases: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	co, err := checkout.New(checkout.Config{}, checkout.Deps{DB: db, Log: log})
	if err != nil {
		return err
	}
	setMode := func(mode string) error {
		queue, old := "DISABLE", "DISABLE"
		switch mode {
		case modeQueue:
			queue = "ENABLE"
		case modeOld:
			old = "ENABLE"
		}
		for _, q := range []string{
			`ALTER TABLE redemptions ` + queue + ` TRIGGER redemptions_report_insert`,
			`ALTER TABLE redemptions ` + queue + ` TRIGGER redemptions_report_update`,
			`ALTER TABLE redemptions ` + old + ` TRIGGER bench_0019_insert`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
	order := offers.Order{Currency: "EUR", Items: []offers.Item{{ProductID: "shoe", Quantity: 2, UnitAmount: 3000}}}
	var seq int64
	var seqMu sync.Mutex
	next := func() int64 { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	modes := []string{modeNone, modeQueue, modeOld}
	for round := range cfg.Rounds {
		rates := map[string]rate{}
		for _, mode := range modes {
			if err := setMode(mode); err != nil {
				return err
			}
			stop := make(chan struct{})
			var bg sync.WaitGroup
			bg.Add(1)
			go func() { defer bg.Done(); sampleWaits(ctx, db, stop, mode, res) }()
			if mode == modeQueue {
				// The worker's folders, every SEGMENT_FOLD_INTERVAL (5 s), beside checkout.
				bg.Add(1)
				go func() {
					defer bg.Done()
					t := time.NewTicker(5 * time.Second)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							rep.FoldRedemptions(ctx)
							seg.FoldRedemptions(ctx)
						}
					}
				}()
			}
			r, err := loop(ctx, cfg.Clients, cfg.Phase, func(int64) error {
				i := strconv.FormatInt(next(), 10)
				_, _, err := co.Redeem(ctx, checkout.RedeemRequest{Code: "BENCHNEWS10", CustomerID: "c" + i, OrderID: "m-" + i, Order: order})
				return err
			})
			close(stop)
			bg.Wait()
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			rates[mode] = r
			cfg.Log("round %d, %s: %.0f redemptions/s", round+1, mode, r.perSec())
		}
		res.Rounds = append(res.Rounds, rates)
	}
	for _, mode := range []string{modeQueue, modeOld} {
		if err := setMode(mode); err != nil {
			return err
		}
		plan, err := triggerPlan(ctx, db)
		if err != nil {
			return err
		}
		res.TriggerPlans[mode] = plan
	}
	// The queue of the last phases, folded as the worker would.
	start := time.Now()
	n, err := rep.FoldRedemptions(ctx)
	if err != nil {
		return err
	}
	res.QueueFold, res.QueueFoldChanges = time.Since(start), n
	if _, err := seg.FoldRedemptions(ctx); err != nil {
		return err
	}
	return setMode(modeQueue)
}

// sampleWaits counts, every 10 ms until stop, what the database's active backends wait
// on (ClientRead and the like are idle time, not counted).
func sampleWaits(ctx context.Context, db *sqlx.DB, stop chan struct{}, mode string, res *MetricsResult) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var rows []struct {
			W string `db:"w"`
			N int    `db:"n"`
		}
		if err := db.SelectContext(ctx, &rows, `
			SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, count(*) AS n FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1`); err != nil {
			return
		}
		res.Samples[mode]++
		if res.Waits[mode] == nil {
			res.Waits[mode] = map[string]int{}
		}
		for _, r := range rows {
			res.Waits[mode][r.W] += r.N
		}
	}
}

// triggerPlan is EXPLAIN ANALYZE of one redemption insert, warm (the tenth of ten, each
// rolled back), to the trigger lines.
func triggerPlan(ctx context.Context, db *sqlx.DB) (string, error) {
	var lines []string
	for i := range 10 {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return "", err
		}
		lines = nil
		err = tx.SelectContext(ctx, &lines, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id,
			request_hash, status, currency, order_amount, discount_amount, snapshot)
			SELECT id, (1::bigint << 50), 'BENCHNEWS10', 'shared', 'c1', 'explain-' || $1, sha256(convert_to('explain-' || $1, 'UTF8')), 'succeeded', 'EUR', 6000, 1200, '{}'
			FROM groups WHERE name = 'bench-news'`, strconv.Itoa(i))
		tx.Rollback()
		if err != nil {
			return "", err
		}
	}
	var keep []string
	for _, l := range lines {
		if strings.Contains(l, "Trigger") || strings.Contains(l, "Execution Time") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "; "), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Print writes the figures.
func (r *MetricsResult) Print(w io.Writer) {
	c := r.Cfg
	fmt.Fprintf(w, "bench metrics: %d groups, %d customers, %d issues, %d redemptions\npostgres: %s\nschema: %s\n",
		c.Groups, c.Customers, c.Issues, c.Redemptions, r.Settings, r.Schema)
	if r.Load > 0 {
		fmt.Fprintf(w, "load %.1f s; fold of the issues into the rollups %.1f s; fold of the %d-redemption change queue %.1f s\n",
			r.Load.Seconds(), r.IssueFold.Seconds(), c.Redemptions, r.RedFold.Seconds())
	}
	fmt.Fprintf(w, "group %d, last 90 days (headline figures + %d-day chart): median %s, max %s  [%s]  (target <= 50 ms)\n",
		r.Group, r.Daily, ms(median(r.GroupTimes)), ms(slices.Max(r.GroupTimes)), r.GroupFigures)
	fmt.Fprintf(w, "portfolio of %d groups, last 90 days: median %s, max %s  (target <= 200 ms)\n",
		c.Groups, ms(median(r.PortfolioTimes)), ms(slices.Max(r.PortfolioTimes)))
	fmt.Fprintf(w, "redeem at checkout: %d clients, distinct orders of one shared code, %s per phase, %d rounds\n", c.Clients, c.Phase, len(r.Rounds))
	modes := []string{modeNone, modeQueue, modeOld}
	fmt.Fprintf(w, "%-34s", "round")
	for _, m := range modes {
		fmt.Fprintf(w, " %32s", m)
	}
	fmt.Fprintln(w)
	med := map[string]float64{}
	for i, rr := range r.Rounds {
		fmt.Fprintf(w, "%-34d", i+1)
		for _, m := range modes {
			fmt.Fprintf(w, " %30.0f/s", rr[m].perSec())
		}
		fmt.Fprintln(w)
	}
	for _, m := range modes {
		var xs []float64
		for _, rr := range r.Rounds {
			xs = append(xs, rr[m].perSec())
		}
		sort.Float64s(xs)
		med[m] = xs[len(xs)/2]
	}
	fmt.Fprintf(w, "%-34s", "median")
	for _, m := range modes {
		fmt.Fprintf(w, " %30.0f/s", med[m])
	}
	fmt.Fprintln(w)
	for _, m := range []string{modeQueue, modeOld} {
		fmt.Fprintf(w, "%s: %.1f%% slower than no figures (target <= 10%% for the kept design)\n", m, 100*(1-med[m]/med[modeNone]))
	}
	for _, m := range modes {
		type kv struct {
			k string
			v int
		}
		var top []kv
		total := 0
		for k, v := range r.Waits[m] {
			top = append(top, kv{k, v})
			total += v
		}
		sort.Slice(top, func(i, j int) bool { return top[i].v > top[j].v })
		var parts []string
		for _, t := range top[:min(len(top), 5)] {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", t.k, 100*float64(t.v)/float64(max(total, 1))))
		}
		fmt.Fprintf(w, "waits of active backends, %s (%d samples, %.1f active on average): %s\n", m, r.Samples[m],
			float64(total)/float64(max(r.Samples[m], 1)), strings.Join(parts, ", "))
	}
	for _, m := range []string{modeQueue, modeOld} {
		fmt.Fprintf(w, "one redemption insert, %s: %s\n", m, r.TriggerPlans[m])
	}
	fmt.Fprintf(w, "fold of the queue the redeem phases left: %d changes in %s\n", r.QueueFoldChanges, ms(r.QueueFold))
}
