package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/api"
	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/segments"
)

// SegmentsConfig sizes the segment benchmark.
type SegmentsConfig struct {
	URL       string
	Customers int64 // default 1,000,000
	Issues    int64 // default 10,000,000
	// Redemptions are the redemptions in the history (default 2,000,000; -1 for none).
	Redemptions int64
	Groups      int    // default 50
	Repeats     int    // timed runs per filter, median reported (default 7)
	Explain     bool   // print EXPLAIN (ANALYZE, BUFFERS) of each filter's count
	Keep        bool   // keep the schema (its name is printed) for a later -reuse
	Reuse       string // time the filters on a schema kept earlier: no load, no fold
	Log         func(string, ...any)
}

// SegmentTiming is one filter's figures.
type SegmentTiming struct {
	Name   string
	Filter string
	Count  int64
	Median time.Duration
	Max    time.Duration
	Plan   string
	// Bitmaps says the count came from segment_bits; SQLTime is then how long the same
	// count took through the filter's SQL (once), which must give the same number.
	Bitmaps bool
	SQLTime time.Duration
}

// SegmentsResult is what the segment benchmark measured.
type SegmentsResult struct {
	Schema                string
	Settings              string
	Customers, Issues     int64
	Load, Fold            time.Duration
	Filters               []SegmentTiming
	StreamFilter          string
	StreamIDs             int64
	StreamGo, StreamHTTP  time.Duration
	IncrementalIssues     int
	IncrementalFold       time.Duration
	SummaryRows, GroupRow int64
	// Redemptions: how many, the first fold of their change queue, and an incremental
	// fold of new ones (the redemption summaries behind the redeemed filter).
	Redemptions            int64
	RedemptionFold         time.Duration
	RedeemerRows           int64
	IncrementalRedemptions int
	IncrementalRedemption  time.Duration
}

// Print writes the figures.
func (r *SegmentsResult) Print(w io.Writer) {
	fmt.Fprintf(w, "postgres: %s\nschema: %s\n", r.Settings, r.Schema)
	if r.Fold > 0 {
		fmt.Fprintf(w, "history: %d customers, %d issues over a year (COPY-speed load %.1f s)\n", r.Customers, r.Issues, r.Load.Seconds())
		fmt.Fprintf(w, "first fold of the whole history: %.1f s (%.0f issues/s) -> %d customer rows, %d (group, customer) rows\n",
			r.Fold.Seconds(), float64(r.Issues)/r.Fold.Seconds(), r.SummaryRows, r.GroupRow)
		fmt.Fprintf(w, "incremental fold of %d new issues: %.0f ms\n", r.IncrementalIssues, float64(r.IncrementalFold.Microseconds())/1000)
	} else {
		fmt.Fprintf(w, "history (reused): %d customers, %d issues\n", r.Customers, r.Issues)
	}
	if r.RedemptionFold > 0 {
		fmt.Fprintf(w, "%d redemptions: fold of their %d-change queue %.1f s (%.0f changes/s) -> %d (group, customer) rows; incremental fold of %d new changes: %.0f ms\n",
			r.Redemptions, r.Redemptions*96/100, r.RedemptionFold.Seconds(), float64(r.Redemptions*96/100)/r.RedemptionFold.Seconds(), r.RedeemerRows,
			r.IncrementalRedemptions, float64(r.IncrementalRedemption.Microseconds())/1000)
	}
	for _, f := range r.Filters {
		how := "sql"
		if f.Bitmaps {
			how = fmt.Sprintf("bitmaps; the same count by its SQL: %.0f ms", float64(f.SQLTime.Microseconds())/1000)
		}
		fmt.Fprintf(w, "count %-44s %8d customers  median %7.1f ms  max %7.1f ms  (%s)\n", f.Name, f.Count,
			float64(f.Median.Microseconds())/1000, float64(f.Max.Microseconds())/1000, how)
		if f.Plan != "" {
			fmt.Fprintf(w, "  filter: %s\n%s\n", f.Filter, indent(f.Plan))
		}
	}
	fmt.Fprintf(w, "stream %s: %d ids in-process %.0f ms, over HTTP (NDJSON) %.0f ms\n", r.StreamFilter, r.StreamIDs,
		float64(r.StreamGo.Microseconds())/1000, float64(r.StreamHTTP.Microseconds())/1000)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// Segments loads a history into a schema of its own, folds it, and times typical
// filters and the streaming of a ~100,000-customer answer.
func Segments(ctx context.Context, cfg SegmentsConfig) (*SegmentsResult, error) {
	if cfg.Customers <= 0 {
		cfg.Customers = 1_000_000
	}
	if cfg.Issues <= 0 {
		cfg.Issues = 10_000_000
	}
	if cfg.Groups <= 0 {
		cfg.Groups = 50
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = 7
	}
	if cfg.Redemptions == 0 {
		cfg.Redemptions = 2_000_000
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	env, done, err := openEnv(ctx, cfg.URL, cfg.Reuse, cfg.Keep)
	if err != nil {
		return nil, err
	}
	defer done()
	db := env.DB
	res := &SegmentsResult{Customers: cfg.Customers, Issues: cfg.Issues, Schema: env.Schema}
	if res.Settings, err = Settings(ctx, db); err != nil {
		return nil, err
	}
	svc := segments.New(db, segments.Config{})
	if cfg.Reuse == "" {
		if err := loadSegmentHistory(ctx, db, svc, cfg, res); err != nil {
			return nil, err
		}
		if err := loadSegmentRedemptions(ctx, db, svc, cfg, res); err != nil {
			return nil, err
		}
	} else {
		db.GetContext(ctx, &res.Customers, `SELECT count(*) FROM customers`)
		db.GetContext(ctx, &res.Issues, `SELECT count(*) FROM issues`)
		db.GetContext(ctx, &res.Redemptions, `SELECT count(*) FROM redemptions`)
	}
	if err := timeFilters(ctx, db, svc, cfg, res); err != nil {
		return nil, err
	}
	return res, nil
}

// loadSegmentHistory loads and folds the history, timing the folds.
func loadSegmentHistory(ctx context.Context, db *sqlx.DB, svc *segments.Service, cfg SegmentsConfig, res *SegmentsResult) error {
	start := time.Now()
	if _, err := db.ExecContext(ctx, `INSERT INTO groups (name) SELECT 'G' || lpad(g::text, 2, '0') FROM generate_series(0, $1 - 1) g`, cfg.Groups); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO customers (id, email) SELECT 'c' || g, 'c' || g || '@example.com' FROM generate_series(1, $1) g`, cfg.Customers); err != nil {
		return err
	}
	// Issues in time order over the last year (as they arrive); customers skewed (a few
	// get many codes, most a few), groups skewed (G00 the largest); one in ten a repeat.
	err := withoutIndexes(ctx, db, "issues", cfg.Log, func() error {
		const step = 2_000_000
		for from := int64(0); from < cfg.Issues; from += step {
			to := min(from+step, cfg.Issues)
			_, err := db.ExecContext(ctx, `
				INSERT INTO issues (customer_id, group_id, code_id, scope, kind, issued_at)
				SELECT 'c' || (1 + floor($3 * power(random(), 2))::bigint),
				       (SELECT min(id) FROM groups) + floor($5 * power(random(), 1.5))::bigint,
				       (1::bigint << 62) + i, 'b:' || i, CASE WHEN random() < 0.1 THEN 'repeat' ELSE 'initial' END,
				       now() - interval '365 days' + interval '365 days' * (i::float8 / $4)
				FROM generate_series($1::bigint, $2::bigint - 1) i`, from, to, cfg.Customers, cfg.Issues, cfg.Groups)
			if err != nil {
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
	res.Load = time.Since(start)

	cfg.Log("folding")
	start = time.Now()
	if _, err := svc.Fold(ctx); err != nil {
		return err
	}
	res.Fold = time.Since(start)
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE segment_customers, segment_groups, customers`); err != nil {
		return err
	}
	db.GetContext(ctx, &res.SummaryRows, `SELECT count(*) FROM segment_customers`)
	db.GetContext(ctx, &res.GroupRow, `SELECT count(*) FROM segment_groups`)

	// New issues after the fold, as a mailing would add them; the next fold adds them.
	var gid int64
	db.GetContext(ctx, &gid, `SELECT min(id) FROM groups`)
	res.IncrementalIssues = 20_000
	if _, err := db.ExecContext(ctx, `INSERT INTO issues (customer_id, group_id, code_id, scope, kind)
		SELECT 'c' || (1 + (i * 7919) % $1), $2, (1::bigint << 61) + i, 'n:' || i, 'initial'
		FROM generate_series(1, $3) i`, cfg.Customers, gid, res.IncrementalIssues); err != nil {
		return err
	}
	start = time.Now()
	if _, err := svc.Fold(ctx); err != nil {
		return err
	}
	res.IncrementalFold = time.Since(start)
	// What autovacuum does soon after on a summary table this busy: without it the
	// updated pages drop out of the visibility map and index-only scans read the heap
	// (counts 2-3x slower right after a large fold; measured).
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE segment_customers, segment_groups`); err != nil {
		return err
	}

	return nil
}

// loadSegmentRedemptions adds the redemptions to the history, folds their change queue
// into the redemption summaries, then folds a batch of new ones as checkout adds them.
func loadSegmentRedemptions(ctx context.Context, db *sqlx.DB, svc *segments.Service, cfg SegmentsConfig, res *SegmentsResult) error {
	if cfg.Redemptions < 0 {
		return nil
	}
	res.Redemptions = cfg.Redemptions
	if err := seedRedemptions(ctx, db, cfg.Redemptions, cfg.Customers, cfg.Groups, cfg.Log); err != nil {
		return err
	}
	cfg.Log("folding the redemptions")
	start := time.Now()
	if _, err := svc.FoldRedemptions(ctx); err != nil {
		return err
	}
	res.RedemptionFold = time.Since(start)
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE segment_redeemers, segment_redeemer_customers, segment_bits, segment_redemption_changes`); err != nil {
		return err
	}
	db.GetContext(ctx, &res.RedeemerRows, `SELECT count(*) FROM segment_redeemers`)
	// New redemptions through the trigger, as checkout makes them, then the next fold.
	res.IncrementalRedemptions = 2_000
	if _, err := db.ExecContext(ctx, `
		INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, request_hash, status, currency,
		                         order_amount, discount_amount, snapshot)
		SELECT (SELECT min(id) FROM groups) + i % $3, -(1::bigint << 40) - i, 'N' || i, 'unique', 'c' || (1 + (i * 7919) % $1),
		       'n' || i, sha256(int8send(-i)), 'succeeded', 'EUR', 5000, 500, '{}'
		FROM generate_series(1, $2) i`, cfg.Customers, res.IncrementalRedemptions, cfg.Groups); err != nil {
		return err
	}
	start = time.Now()
	if _, err := svc.FoldRedemptions(ctx); err != nil {
		return err
	}
	res.IncrementalRedemption = time.Since(start)
	_, err := db.ExecContext(ctx, `VACUUM ANALYZE segment_redeemers, segment_redeemer_customers, segment_redemption_changes`)
	return err
}

// timeFilters times the typical filters and the streaming of a large answer.
func timeFilters(ctx context.Context, db *sqlx.DB, svc *segments.Service, cfg SegmentsConfig, res *SegmentsResult) error {
	// Bounded windows of the history (loaded over the year before now), not on hour
	// boundaries: the partial hours at their ends are read from the history.
	day := func(d int) string { return time.Now().AddDate(0, 0, d).UTC().Format(time.RFC3339) }
	q1From, q1To, q2From, q2To, weekTo := day(-365), day(-270), day(-270), day(-180), day(-263)
	filters := []struct{ name, json string }{
		{"count >= 3 in the last 30 days", `{"quantity":{"op":"gte","value":3,"window":{"last_days":30}}}`},
		{"issued from G01 and not from G02", `{"and":[{"issued_from":{"groups":["G01"]}},{"not":{"issued_from":{"groups":["G02"]}}}]}`},
		{"(between 2 and 5) or from any of G10, G20, G30", `{"or":[{"quantity":{"op":"between","min":2,"max":5}},{"issued_from":{"groups":["G10","G20","G30"]}}]}`},
		{">= 5 codes from any group", `{"quantity":{"op":"gte","value":5}}`},
		{"never issued a code (= 0)", `{"quantity":{"op":"eq","value":0}}`},
		{"not issued from G01 (a NOT at the top)", `{"not":{"issued_from":{"groups":["G01"]}}}`},
		{"at most 2 codes, or not from G02 (zero accepted, NOT under OR)", `{"or":[{"quantity":{"op":"lte","value":2}},{"not":{"issued_from":{"groups":["G02"]}}}]}`},
		{"from all of G03, G04 in the last 90 days", `{"issued_from":{"groups":["G03","G04"],"match":"all","window":{"last_days":90}}}`},
		{"count >= 2 of G05 in Q1 of the history (bounded)", fmt.Sprintf(`{"quantity":{"op":"gte","value":2,"groups":["G05"],"window":{"from":%q,"to":%q}}}`,
			q1From, q1To)},
		// Windows the per-customer summaries do not answer (migration 0031 reads their
		// whole hours from segment_hours): the largest group, every group, kind all, more
		// than five issues, a bounded issued_from, a NOT of a window.
		{"count >= 2 of G00 (largest) in the last 90 days", `{"quantity":{"op":"gte","value":2,"groups":["G00"],"window":{"last_days":90}}}`},
		{"issued from G01 or G02 in Q2 of the history (bounded)", fmt.Sprintf(`{"issued_from":{"groups":["G01","G02"],"window":{"from":%q,"to":%q}}}`, q2From, q2To)},
		{"count = 0 of G03 in the last 30 days (zero: a complement)", `{"quantity":{"op":"eq","value":0,"groups":["G03"],"window":{"last_days":30}}}`},
		{"count >= 2, all kinds, in the last 30 days (all groups)", `{"quantity":{"op":"gte","value":2,"kind":"all","window":{"last_days":30}}}`},
		{"count >= 6 in the last 90 days (all groups)", `{"quantity":{"op":"gte","value":6,"window":{"last_days":90}}}`},
		{"count >= 2 in Q1 of the history (all groups, bounded)", fmt.Sprintf(`{"quantity":{"op":"gte","value":2,"window":{"from":%q,"to":%q}}}`, q1From, q1To)},
		{"count >= 2 in one bounded week (all groups)", fmt.Sprintf(`{"quantity":{"op":"gte","value":2,"window":{"from":%q,"to":%q}}}`, q2From, weekTo)},
	}
	if res.Redemptions > 0 {
		filters = append(filters, []struct{ name, json string }{
			{"reminder: from G01 in 14 days, not redeemed G01 since", `{"and":[{"issued_from":{"groups":["G01"],"window":{"last_days":14}}},{"not":{"redeemed":{"groups":["G01"],"window":{"last_days":14}}}}]}`},
			{"reminder: from G00 in 14 days, not redeemed G00 since", `{"and":[{"issued_from":{"groups":["G00"],"window":{"last_days":14}}},{"not":{"redeemed":{"groups":["G00"],"window":{"last_days":14}}}}]}`},
			{"issued from G01, never redeemed G01", `{"and":[{"issued_from":{"groups":["G01"]}},{"not":{"redeemed":{"groups":["G01"]}}}]}`},
			{"redeemed from G01 or G02", `{"redeemed":{"groups":["G01","G02"]}}`},
			{"redeemed >= 3 times (all groups)", `{"redeemed":{"op":"gte","value":3}}`},
			{"redeemed in the last 30 days (all groups)", `{"redeemed":{"window":{"last_days":30}}}`},
			{"redeemed G05 >= 2 times in the last 90 days", `{"redeemed":{"groups":["G05"],"op":"gte","value":2,"window":{"last_days":90}}}`},
			{"redeemed G03 or G04 twice+ in Q1 (bounded)", fmt.Sprintf(`{"redeemed":{"groups":["G03","G04"],"op":"gte","value":2,"window":{"from":%q,"to":%q}}}`,
				q1From, q1To)},
			{"never redeemed (= 0)", `{"redeemed":{"op":"eq","value":0}}`},
		}...)
	}
	for _, f := range filters {
		cfg.Log("filter %s", f.name)
		t := SegmentTiming{Name: f.name, Filter: f.json}
		var times []time.Duration
		for i := 0; i < cfg.Repeats; i++ {
			flt, err := segments.Parse(strings.NewReader(f.json))
			if err != nil {
				return err
			}
			start := time.Now()
			c, err := svc.Count(ctx, flt)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			times = append(times, time.Since(start))
			t.Count = c.Count
		}
		slices.Sort(times)
		t.Median, t.Max = times[len(times)/2], times[len(times)-1]
		// A count from the bitmaps is checked against the filter's SQL at this scale.
		flt, _ := segments.Parse(strings.NewReader(f.json))
		q, err := svc.Prepare(ctx, flt)
		if err != nil {
			return err
		}
		if t.Bitmaps = q.FromBitmaps(); t.Bitmaps {
			sel, args := q.SQL()
			var n int64
			start := time.Now()
			if err := db.GetContext(ctx, &n, `SELECT count(*) FROM (`+sel+`) s`, args...); err != nil {
				return err
			}
			t.SQLTime = time.Since(start)
			if n != t.Count {
				return fmt.Errorf("%s: %d customers from the bitmaps, %d from the SQL", f.name, t.Count, n)
			}
		}
		if cfg.Explain {
			flt, _ := segments.Parse(strings.NewReader(f.json))
			q, err := svc.Prepare(ctx, flt)
			if err != nil {
				return err
			}
			countSQL, args := q.CountSQL()
			var lines []string
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				return err
			}
			// As the service reads answers (segments.Service.readTx).
			_, err = tx.ExecContext(ctx, `SET LOCAL work_mem = '64MB'`)
			if err == nil {
				err = tx.SelectContext(ctx, &lines, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) `+countSQL, args...)
			}
			tx.Rollback()
			if err != nil {
				return err
			}
			t.Plan = strings.Join(lines, "\n")
		}
		res.Filters = append(res.Filters, t)
	}

	// Streaming: the first "issued from G01 in the last N days" with ≥ 100,000 customers.
	var stream *segments.Filter
	for _, days := range []int{7, 14, 30, 60, 90, 180, 365} {
		res.StreamFilter = fmt.Sprintf(`{"issued_from":{"groups":["G01"],"window":{"last_days":%d}}}`, days)
		stream, _ = segments.Parse(strings.NewReader(res.StreamFilter))
		c, err := svc.Count(ctx, stream)
		if err != nil {
			return err
		}
		if c.Count >= 100_000 {
			break
		}
	}
	start := time.Now()
	err := svc.Stream(ctx, stream, func(segments.Count) error { return nil }, func(string) error { res.StreamIDs++; return nil })
	if err != nil {
		return err
	}
	res.StreamGo = time.Since(start)

	keys, err := auth.NewKeys(db, "bench:bench-key-0123456789abcdef:admin")
	if err != nil {
		return err
	}
	h, err := api.New(api.Config{}, api.Deps{Groups: groups.NewStore(db, groups.Config{}), Customers: customers.NewStore(db),
		Keys: keys, Segments: svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/segments/query", strings.NewReader(`{"filter":`+res.StreamFilter+`}`))
	req.Header.Set("Authorization", "Bearer bench-key-0123456789abcdef")
	req.Header.Set("Accept", "application/x-ndjson")
	start = time.Now()
	resp, err := srv.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines int64
	for sc.Scan() {
		lines++
	}
	res.StreamHTTP = time.Since(start)
	if resp.StatusCode != 200 || lines != res.StreamIDs {
		return fmt.Errorf("HTTP stream: status %d, %d lines, want %d", resp.StatusCode, lines, res.StreamIDs)
	}
	return nil
}
