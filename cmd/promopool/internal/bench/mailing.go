package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"promopool/groups"
	"promopool/macros"
	"promopool/mailings"
	"promopool/segments"
	"promopool/worker"
)

// MailingConfig configures `promopool bench mailing`.
type MailingConfig struct {
	URL      string // benchmark database
	RedisURL string // a Redis database the benchmark may flush
	Exe      string // the promopool binary whose workers are measured
	N        int    // recipients (default 1,000,000)
	Workers  int    // worker processes (default 2)
	// Concurrency is each worker's WORKER_CONCURRENCY (default 8).
	Concurrency int
	BatchSize   int // recipients per task (default 1000)
	// Profile is a directory the workers write CPU profiles to (worker-N.cpu.pprof);
	// empty: none.
	Profile string
}

// MailingResult holds the figures.
type MailingResult struct {
	N               int
	Setup, EndToEnd time.Duration
	// Start is how long Service.Start took: the outbox written in chunks, each chunk's
	// batches enqueued as it commits and sent while the next is written (part of EndToEnd).
	Start     time.Duration
	Sent      int64
	WorkerRSS []int64
	RawRate   float64 // claim + record + render, messages/s, no queue or transport
	Settings  string

	// Issues is how many issue rows the mailing wrote (initial and repeat).
	Issues int64
	// FoldIssues and FoldTime are what the workers' segment folders folded during the
	// run and the time they spent folding (their /metrics): FoldIssues/FoldTime is the
	// fold's rate while it works, to hold against the mailing's issue rate.
	FoldIssues float64
	FoldTime   time.Duration
	// MaxLag is the largest as_of lag of the segment summaries (now − folded_to) seen
	// from the start until the fold caught up with the mailing's last issue, MaxLagAt
	// when it was seen, CatchUp how long after the last message the fold caught up.
	MaxLag, MaxLagAt, CatchUp time.Duration
	// Waits are the worker backends' wait events (pg_stat_activity every 250 ms), by
	// share of the active samples; WaitSamples how many samples, MeanActive the mean
	// number of active worker backends per sample.
	Waits       []WaitShare
	Statements  []WaitShare // the statements active, by share of the samples
	WaitSamples int
	MeanActive  float64
	// Profiles are the workers' CPU profiles (with MailingConfig.Profile).
	Profiles []string
	// Tables are the sizes and row writes of the tables a mailing writes, and of each of
	// their indexes, after the run (before the raw baseline).
	Tables []TableStats
}

// TableStats is a table's size and writes, with its indexes' sizes.
type TableStats struct {
	Name                          string
	Bytes                         int64
	Inserted, Updated, HOTUpdated int64
	Indexes                       []IndexSize
}

// mailingTables are the tables a mailing and the segment fold write.
var mailingTables = []string{"issues", "mailing_recipients", "mailing_batches", "segment_customers", "segment_groups", "segment_bits", "segment_hours", "customers"}

// tableStats reads the size, the row writes (pg_stat_user_tables) and the index sizes of
// the tables of the schema of db that exist among names.
func tableStats(ctx context.Context, db *sqlx.DB, names []string) ([]TableStats, error) {
	// The statistics collector reports a backend's counts when its transaction ends
	// (at most every PGSTAT_MIN_INTERVAL, 1 s): wait for the last ones.
	time.Sleep(1100 * time.Millisecond)
	var rows []struct {
		Table  string `db:"tbl"`
		Bytes  int64  `db:"bytes"`
		Ins    int64  `db:"ins"`
		Upd    int64  `db:"upd"`
		HOT    int64  `db:"hot"`
		Index  string `db:"idx"`
		IBytes int64  `db:"ibytes"`
	}
	err := db.SelectContext(ctx, &rows, `
		SELECT t.relname AS tbl, pg_table_size(t.relid) AS bytes, t.n_tup_ins AS ins, t.n_tup_upd AS upd, t.n_tup_hot_upd AS hot,
		       coalesce(i.indexrelname, '') AS idx, coalesce(pg_relation_size(i.indexrelid), 0) AS ibytes
		FROM pg_stat_user_tables t LEFT JOIN pg_stat_user_indexes i ON i.relid = t.relid
		WHERE t.schemaname = current_schema() AND t.relname = ANY ($1)
		ORDER BY array_position($1, t.relname::text), pg_relation_size(i.indexrelid) DESC`, pq.Array(names))
	if err != nil {
		return nil, err
	}
	var out []TableStats
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Name != r.Table {
			out = append(out, TableStats{Name: r.Table, Bytes: r.Bytes, Inserted: r.Ins, Updated: r.Upd, HOTUpdated: r.HOT})
		}
		if r.Index != "" {
			t := &out[len(out)-1]
			t.Indexes = append(t.Indexes, IndexSize{Name: r.Index, Bytes: r.IBytes})
		}
	}
	return out, nil
}

// Print writes the report.
func (r *MailingResult) Print(w io.Writer) {
	rate := float64(r.Sent) / r.EndToEnd.Seconds()
	fmt.Fprintf(w, "postgres: %s\n", r.Settings)
	fmt.Fprintf(w, "setup (customers, codes, pre-issued repeat codes): %.1f s\n", r.Setup.Seconds())
	fmt.Fprintf(w, "mailing to %d recipients: %d sent in %.2f s: %.0f messages/s end to end, %.0f codes issued/s\n",
		r.N, r.Sent, r.EndToEnd.Seconds(), rate, rate)
	fmt.Fprintf(w, "  start returned after %.2f s (outbox written in chunks; the first batches were sending meanwhile)\n", r.Start.Seconds())
	for i, rss := range r.WorkerRSS {
		fmt.Fprintf(w, "worker %d peak RSS: %.1f MB\n", i+1, float64(rss)/1e6)
	}
	fmt.Fprintf(w, "raw claim+record+render (2 goroutines, batch 1000, no queue/outbox/transport): %.0f messages/s\n", r.RawRate)
	fmt.Fprintf(w, "end to end / raw: %.0f%%\n", 100*rate/r.RawRate)
	issueRate := float64(r.Issues) / r.EndToEnd.Seconds()
	foldRate := r.FoldIssues / max(r.FoldTime.Seconds(), 1e-9)
	fmt.Fprintf(w, "issues written: %d (initial and repeat): %.0f issues/s\n", r.Issues, issueRate)
	fmt.Fprintf(w, "segment fold (the workers' folders): %.0f issues in %.2f s of folding: %.0f issues/s; fold / issue rate: %.2f\n",
		r.FoldIssues, r.FoldTime.Seconds(), foldRate, foldRate/issueRate)
	fmt.Fprintf(w, "segment as_of lag: max %.1f s (at %.1f s after the start); the fold caught up %.1f s after the last message\n",
		r.MaxLag.Seconds(), r.MaxLagAt.Seconds(), r.CatchUp.Seconds())
	fmt.Fprintf(w, "worker backends' wait events (pg_stat_activity, %d samples, %.1f active backends on average):\n", r.WaitSamples, r.MeanActive)
	for _, ws := range r.Waits {
		fmt.Fprintf(w, "  %5.1f%%  %-32s %s\n", 100*ws.Share, ws.Event, strings.Join(ws.Statements, "; "))
	}
	fmt.Fprintf(w, "worker backends' statements (share of the same samples: where PostgreSQL's time goes):\n")
	for _, st := range r.Statements {
		fmt.Fprintf(w, "  %5.1f%%  %s\n", 100*st.Share, st.Event)
	}
	fmt.Fprintf(w, "tables after the mailing (rows inserted / updated / of which HOT, since the schema was made; sizes):\n")
	for _, t := range r.Tables {
		fmt.Fprintf(w, "  %-20s %9d ins %9d upd %9d HOT  %7.1f MB\n", t.Name, t.Inserted, t.Updated, t.HOTUpdated, float64(t.Bytes)/1e6)
		for _, ix := range t.Indexes {
			fmt.Fprintf(w, "    %-38s %7.1f MB\n", ix.Name, float64(ix.Bytes)/1e6)
		}
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "worker CPU profile: %s (go tool pprof -top %s)\n", p, p)
	}
}

const benchTemplate = `<html><body><p>Hello {{client.first_name}} {{client.last_name}},</p>
<p>Your spring code: <b>{{client.promocode('Spring')}}</b></p>
<p>Your autumn code, again: {{client.last_promocode('Autumn')}}</p></body></html>`

// Mailing runs the mailing benchmark.
func Mailing(ctx context.Context, cfg MailingConfig) (*MailingResult, error) {
	cfg.N = max(cfg.N, 1)
	cfg.Workers = max(cfg.Workers, 1)
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 8
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1000
	}
	env, err := NewEnv(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	res := &MailingResult{N: cfg.N}
	if res.Settings, err = Settings(ctx, env.DB); err != nil {
		return nil, err
	}
	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := groups.NewStore(env.DB, groups.Config{})

	setup := time.Now()
	if _, err := env.DB.ExecContext(ctx, `
		INSERT INTO customers (id, email, first_name, last_name)
		SELECT 'b' || g, 'b' || g || '@example.com', 'First' || g, 'Last' || g FROM generate_series(1, $1) g`, cfg.N); err != nil {
		return nil, err
	}
	// Spring holds a code for every recipient and for every customer of the raw
	// baseline after the mailing, so both issue a code per customer. (Before 2026-12-06
	// it held N + N/10 + 2,000: the baseline, claiming after the mailing, found the pool
	// nearly empty and "issued" 22,000 of its 200,000 codes, which inflated it.)
	spring, err := benchGroup(ctx, store, "Spring", cfg.N+rawCustomers(cfg.N)+2000, "S")
	if err != nil {
		return nil, err
	}
	autumn, err := benchGroup(ctx, store, "Autumn", cfg.N/10+1, "A")
	if err != nil {
		return nil, err
	}
	// A tenth of the audience holds an Autumn code, for last_promocode to find.
	for lo := 1; lo <= cfg.N/10; lo += 5000 {
		ids := make([]string, 0, 5000)
		for i := lo; i < lo+5000 && i <= cfg.N/10; i++ {
			ids = append(ids, fmt.Sprintf("b%d", i*10))
		}
		if _, err := store.Claim(ctx, groups.ClaimRequest{GroupID: autumn.ID, Scope: "earlier", CustomerIDs: ids}); err != nil {
			return nil, err
		}
	}
	if _, err := env.DB.ExecContext(ctx, `ANALYZE`); err != nil {
		return nil, err
	}
	// The setup's issues are folded now, so that the run's fold and lag are the mailing's.
	if _, err := segments.New(env.DB, segments.Config{}).Fold(ctx); err != nil {
		return nil, err
	}
	res.Setup = time.Since(setup)

	aopt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	client := asynq.NewClient(aopt)
	defer client.Close()
	svc := mailings.New(mailings.Config{BatchSize: cfg.BatchSize}, mailings.Deps{DB: env.DB, Groups: store, Enqueuer: worker.Enqueuer{Client: client}, Log: log})
	m, err := svc.Create(ctx, "bench", mailings.Input{Name: "bench", Sender: "Shop <shop@example.com>", Subject: "Hi {{client.first_name}}",
		HTML: benchTemplate, Audience: mailings.Audience{All: true}, BatchSize: cfg.BatchSize})
	if err != nil {
		return nil, err
	}
	var procs []*Process
	var addrs []string
	for i := range cfg.Workers {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		penv := []string{"DATABASE_URL=" + cfg.URL, "DATABASE_SEARCH_PATH=" + env.Schema,
			"REDIS_URL=" + cfg.RedisURL, "MAILER_URL=null://", fmt.Sprintf("WORKER_CONCURRENCY=%d", cfg.Concurrency), "LOG_LEVEL=error",
			"METRICS_ADDR=" + addr}
		if cfg.Profile != "" {
			path, err := filepath.Abs(filepath.Join(cfg.Profile, fmt.Sprintf("worker-%d.cpu.pprof", i+1)))
			if err != nil {
				return nil, err
			}
			penv = append(penv, "CPU_PROFILE="+path)
			res.Profiles = append(res.Profiles, path)
		}
		p, err := StartProcess(ctx, cfg.Exe, penv, "worker")
		if err != nil {
			return nil, err
		}
		defer p.Stop()
		procs = append(procs, p)
		addrs = append(addrs, addr)
	}
	watch := watchFold(ctx, env.DB, 250*time.Millisecond)
	defer watch.stop()
	start := time.Now()
	if _, err := svc.Start(ctx, m.ID, false); err != nil {
		return nil, err
	}
	res.Start = time.Since(start)
	var finished time.Time
	for {
		got, err := svc.Get(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		if got.Status == mailings.StatusFinished {
			res.EndToEnd = got.FinishedAt.Sub(*got.StartedAt)
			res.Sent = got.Progress.Sent
			finished = *got.FinishedAt
			break
		}
		if time.Since(start) > 30*time.Minute {
			return nil, fmt.Errorf("mailing not finished after 30 minutes: %+v", got.Progress)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The lag is watched until the fold has caught up with the mailing's last issue.
	for {
		var caught bool
		if err := env.DB.GetContext(ctx, &caught, `SELECT folded_to >= $1 FROM segment_fold`, finished); err != nil {
			return nil, err
		}
		if caught {
			res.CatchUp = time.Since(finished)
			break
		}
		if time.Since(finished) > 15*time.Minute {
			return nil, errors.New("the segment fold did not catch up with the mailing in 15 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	watch.stop()
	res.MaxLag, res.MaxLagAt = watch.lag()
	res.WaitSamples, res.MeanActive, res.Waits = watch.report(8)
	res.Statements = watch.statements(12)
	if err := env.DB.GetContext(ctx, &res.Issues, `SELECT count(*) FROM issues WHERE mailing_id = $1`, m.ID); err != nil {
		return nil, err
	}
	for _, addr := range addrs {
		got, err := scrape(ctx, addr, "promopool_segment_fold_issues_total", "promopool_segment_fold_seconds_total")
		if err != nil {
			return nil, fmt.Errorf("reading a worker's metrics: %w", err)
		}
		res.FoldIssues += got["promopool_segment_fold_issues_total"]
		res.FoldTime += time.Duration(got["promopool_segment_fold_seconds_total"] * float64(time.Second))
	}
	for _, p := range procs {
		rss, err := p.PeakRSS()
		if err != nil {
			return nil, err
		}
		res.WorkerRSS = append(res.WorkerRSS, rss)
		p.Stop()
	}
	if res.Tables, err = tableStats(ctx, env.DB, mailingTables); err != nil {
		return nil, err
	}
	if res.RawRate, err = rawClaimRender(ctx, store, spring.ID, autumn.ID, rawCustomers(cfg.N)); err != nil {
		return nil, err
	}
	return res, nil
}

// benchGroup creates a group holding n generated codes.
func benchGroup(ctx context.Context, store *groups.Store, name string, n int, prefix string) (*groups.Group, error) {
	g, err := store.Create(ctx, "bench", groups.Input{Name: &name})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%s%09d\n", prefix, i)
			if b.Len() > 60000 {
				if _, err := io.WriteString(pw, b.String()); err != nil {
					return
				}
				b.Reset()
			}
		}
		io.WriteString(pw, b.String())
		pw.Close()
	}()
	_, err = store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceCLI, Actor: "bench"}, pr)
	return g, err
}

// rawCustomers is how many customers the raw baseline claims for, after a mailing to n.
func rawCustomers(n int) int { return min(n, 200_000) }

// rawClaimRender is the ceiling: 2 goroutines claim (and record) a code per customer in
// batches of 1000, look up the repeat codes, and render the same template — no queue,
// outbox or transport. Every customer must get a code: a claim that finds the pool
// empty is an error, not a fast "success".
func rawClaimRender(ctx context.Context, store *groups.Store, spring, autumn int64, n int) (float64, error) {
	t, err := macros.Parse(macros.Source{Subject: "Hi {{client.first_name}}", HTML: benchTemplate})
	if err != nil {
		return 0, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	start := time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := &macros.Values{NewCodes: make([]string, 1), LastCodes: make([]string, 1)}
			var buf []byte
			for {
				lo := int(next.Add(1000)) - 1000
				if lo >= n {
					return
				}
				ids := make([]string, 0, 1000)
				for i := lo; i < min(lo+1000, n); i++ {
					ids = append(ids, fmt.Sprintf("b%d", i+1))
				}
				// Each customer once, as a mailing batch's first delivery claims them.
				res, err := store.Claim(ctx, groups.ClaimRequest{GroupID: spring, Scope: "raw", CustomerIDs: ids, FirstClaim: true})
				if err == nil && len(res.Uncovered) > 0 {
					err = fmt.Errorf("raw baseline: the group ran out of codes (%d customers uncovered)", len(res.Uncovered))
				}
				if err != nil {
					errs <- err
					return
				}
				last, err := store.Repeat(ctx, groups.RepeatRequest{GroupID: autumn, Scope: "raw", CustomerIDs: ids})
				if err != nil {
					errs <- err
					return
				}
				for _, id := range ids {
					v.Customer = macros.Customer{ID: id, FirstName: "First", LastName: "Last"}
					v.NewCodes[0], v.LastCodes[0] = res.Codes[id], last[id]
					buf = t.AppendSubject(buf[:0], v)
					buf = t.AppendHTML(buf, v)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
