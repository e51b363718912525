package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/groups"
	"promopool/postgres"
)

// ClaimConfig configures `promopool bench claim`.
type ClaimConfig struct {
	// URL is the benchmark database (created when missing; never "postgres").
	URL string
	// History is how many issue rows the history holds before the claims are measured
	// (0: a fresh history). Loaded server-side with indexes dropped, then re-indexed.
	History int64
	// HistoryCustomers is how many distinct customers the history spreads over.
	HistoryCustomers int64
	// Batch is the customers per claim (default 1000).
	Batch int
	// Batches is how many batches each worker configuration claims in all (default 200).
	Batches int
	// Workers lists the concurrent worker counts to measure (default 1, 2, 4).
	Workers []int
	// Naive is how long the naive one-code-per-transaction baseline runs (default 5s).
	Naive time.Duration
	// RepeatBatches is how many repeat lookups of Batch customers to time (default 50).
	RepeatBatches int
	// Keep keeps the schema (its name is logged) to inspect plans afterwards, or for a
	// later Reuse.
	Keep bool
	// Reuse times only the repeat lookups, on a schema kept by an earlier run.
	Reuse string
	// Log receives progress lines.
	Log io.Writer
}

// ClaimRun is one measured configuration.
type ClaimRun struct {
	Name    string
	Workers int
	Codes   int64
	Elapsed time.Duration
}

// Rate is codes (or customers) per second.
func (r ClaimRun) Rate() float64 { return float64(r.Codes) / r.Elapsed.Seconds() }

// ClaimResult holds the figures.
type ClaimResult struct {
	Settings    string
	History     int64
	HistoryLoad time.Duration
	Runs        []ClaimRun
	Naive       ClaimRun
	Raw         ClaimRun
	// RawHistory is how many history rows the raw design's table held before it was
	// timed: a copy of promopool's loaded history (same customers, scopes, code ids).
	RawHistory int64
	// Indexes are the sizes of the issue history's indexes after the claims.
	Indexes []IndexSize
	Repeats []ClaimRun
	Reused  string // the schema, when only the repeats ran on a kept one
}

// Print writes the report.
func (r *ClaimResult) Print(w io.Writer) {
	fmt.Fprintf(w, "postgres: %s\n", r.Settings)
	if r.Reused != "" {
		fmt.Fprintf(w, "history (schema %s reused): %d issue rows\n", r.Reused, r.History)
	} else {
		fmt.Fprintf(w, "history before claims: %d issue rows (loaded and indexed in %.1f s)\n", r.History, r.HistoryLoad.Seconds())
	}
	var two float64
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%-34s workers %d: %8d codes in %6.2f s  %9.0f codes/s\n", run.Name, run.Workers, run.Codes, run.Elapsed.Seconds(), run.Rate())
		if run.Workers == 2 && two == 0 {
			two = run.Rate()
		}
	}
	if r.Naive.Codes > 0 {
		fmt.Fprintf(w, "%-34s workers %d: %8d codes in %6.2f s  %9.0f codes/s\n", r.Naive.Name, r.Naive.Workers, r.Naive.Codes, r.Naive.Elapsed.Seconds(), r.Naive.Rate())
	}
	if r.Naive.Rate() > 0 && two > 0 {
		fmt.Fprintf(w, "claim (2 workers) / naive (2 workers): %.1fx\n", two/r.Naive.Rate())
	}
	if r.Raw.Codes > 0 {
		fmt.Fprintf(w, "raw design's history before its claims: %d rows (a copy of the history above)\n", r.RawHistory)
		fmt.Fprintf(w, "%-34s workers %d: %8d codes in %6.2f s  %9.0f codes/s\n", r.Raw.Name, r.Raw.Workers, r.Raw.Codes, r.Raw.Elapsed.Seconds(), r.Raw.Rate())
		if two > 0 {
			fmt.Fprintf(w, "claim (2 workers) / raw cursor design (2 workers): %.0f%%\n", 100*two/r.Raw.Rate())
		}
	}
	for _, ix := range r.Indexes {
		fmt.Fprintf(w, "issues index %-28s %8.1f MB\n", ix.Name, float64(ix.Bytes)/1e6)
	}
	for _, run := range r.Repeats {
		fmt.Fprintf(w, "%-57s workers %d: %8d customers in %6.2f s  %9.0f customers/s\n", run.Name, run.Workers, run.Codes, run.Elapsed.Seconds(), run.Rate())
	}
}

// Claim runs the claim benchmark: Store.Claim for batches of customers with 1, 2 and 4
// concurrent workers (each on its own connection), the naive baseline (one UPDATE …
// LIMIT 1 … RETURNING per customer, autocommit) and Store.Repeat over the history.
func Claim(ctx context.Context, cfg ClaimConfig) (*ClaimResult, error) {
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	if cfg.Batches == 0 {
		cfg.Batches = 200
	}
	if len(cfg.Workers) == 0 {
		cfg.Workers = []int{1, 2, 4}
	}
	if cfg.Naive == 0 {
		cfg.Naive = 5 * time.Second
	}
	if cfg.RepeatBatches == 0 {
		cfg.RepeatBatches = 50
	}
	if cfg.HistoryCustomers == 0 {
		cfg.HistoryCustomers = max(cfg.History/10, 100_000)
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	env, done, err := openEnv(ctx, cfg.URL, cfg.Reuse, cfg.Keep)
	if err != nil {
		return nil, err
	}
	defer done()
	if cfg.Keep || cfg.Reuse != "" {
		logf("keeping schema %s", env.Schema)
	}
	res := &ClaimResult{History: cfg.History}
	if res.Settings, err = Settings(ctx, env.DB); err != nil {
		return nil, err
	}
	store := groups.NewStore(env.DB, groups.Config{})
	if cfg.Reuse != "" {
		res.Reused = cfg.Reuse
		var groupID int64
		if err := env.DB.GetContext(ctx, &groupID, `SELECT id FROM groups WHERE name = 'bench'`); err != nil {
			return nil, fmt.Errorf("schema %s: no bench group: %w", cfg.Reuse, err)
		}
		if err := env.DB.GetContext(ctx, &res.History, `SELECT count(*) FROM issues`); err != nil {
			return nil, err
		}
		res.Repeats, err = repeatRuns(ctx, env.DB, store, groupID, cfg)
		return res, err
	}

	// The pool: enough codes for every configuration, in one range, loaded server-side.
	perRun := int64(cfg.Batch * cfg.Batches)
	total := perRun * int64(len(cfg.Workers)+1)
	name := "bench"
	g, err := store.Create(ctx, "bench", groups.Input{Name: &name})
	if err != nil {
		return nil, err
	}
	logf("loading %d codes", total)
	if err := loadCodes(ctx, env.DB, g.ID, total, "BC"); err != nil {
		return nil, err
	}
	if cfg.History > 0 {
		logf("loading %d history rows over %d customers", cfg.History, cfg.HistoryCustomers)
		start := time.Now()
		if err := loadHistory(ctx, env.DB, g.ID, cfg.History, cfg.HistoryCustomers, logf); err != nil {
			return nil, err
		}
		res.HistoryLoad = time.Since(start)
	}

	// Each batch is a new scope, as a mailing batch's first delivery is: its claims skip
	// the re-claim check (FirstClaim). One more run at 2 workers keeps the check, as a
	// redelivered batch does.
	type config struct {
		workers int
		checked bool
	}
	configs := []config{}
	for _, w := range cfg.Workers {
		configs = append(configs, config{w, false})
	}
	configs = append(configs, config{2, true})
	batchNo := atomic.Int64{}
	for _, conf := range configs {
		workers := conf.workers
		var next, codes atomic.Int64
		elapsed, err := onConnections(ctx, env, workers, 2, func(_ int, db *sqlx.DB) error {
			st := groups.NewStore(db, groups.Config{})
			for next.Add(1) <= int64(cfg.Batches) {
				b := batchNo.Add(1)
				r, err := st.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: fmt.Sprintf("bench:%d", b),
					CustomerIDs: benchCustomers(b, cfg.Batch, cfg.HistoryCustomers), FirstClaim: !conf.checked})
				if err == nil && len(r.Uncovered) > 0 {
					err = fmt.Errorf("pool ran out")
				}
				if err != nil {
					return err
				}
				codes.Add(int64(len(r.Codes)))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		run := ClaimRun{Name: fmt.Sprintf("claim+record (batch %d)", cfg.Batch), Workers: workers, Codes: codes.Load(), Elapsed: elapsed}
		if conf.checked {
			run.Name = fmt.Sprintf("claim+record (batch %d, checked)", cfg.Batch)
		}
		logf("%s workers %d: %.0f codes/s", run.Name, workers, run.Rate())
		res.Runs = append(res.Runs, run)
	}

	if res.Indexes, err = indexSizes(ctx, env.DB, "issues"); err != nil {
		return nil, err
	}
	logf("raw cursor design, plain SQL")
	if res.Raw, res.RawHistory, err = rawCursor(ctx, env, 2, cfg.Batches, cfg.Batch, cfg.HistoryCustomers, cfg.History > 0, logf); err != nil {
		return nil, err
	}
	logf("naive baseline for %s", cfg.Naive)
	if res.Naive, err = naive(ctx, env, 2, cfg.Naive); err != nil {
		return nil, err
	}
	// A repeat mailing comes after the mailing that issued the codes; by then
	// autovacuum has set the visibility map over them (migration 0011 makes it vacuum
	// issues after 1% new rows), so the lookup's index-only scan stays index-only.
	logf("vacuuming issues, as autovacuum would after the claims")
	if _, err := env.DB.ExecContext(ctx, `VACUUM issues`); err != nil {
		return nil, err
	}
	if err := checkpoint(ctx, env.DB, logf); err != nil {
		return nil, err
	}
	res.Repeats, err = repeatRuns(ctx, env.DB, store, g.ID, cfg)
	return res, err
}

// repeatRuns times the repeat lookups over customers that hold codes from the group:
// the lookup alone (last_promocode in a preview, and the figure PERFORMANCE.md
// measures), then lookup + record (a mailing's repeat issue), each in two orders:
//
//   - mailing order: each batch is consecutive customer ids, as a mailing forms its
//     batches (its outbox is written in customer id order);
//   - random: each batch is customers drawn at random, the worst case (an explicit
//     id list, or a sparse segment), where every customer is a page of its own.
//
// Every run looks up customers of its own (the mailing-order runs a contiguous id
// range of the first half, the random ones a sample of the second), so no run finds
// its pages warm from another; each lookup-only run is then repeated on the same
// customers, warm.
func repeatRuns(ctx context.Context, db *sqlx.DB, store *groups.Store, groupID int64, cfg ClaimConfig) ([]ClaimRun, error) {
	// Customers holding a real code (the claims gave them one; the loaded history's
	// code ids are synthetic and have no codes row, so a repeat of those finds nothing
	// to re-insert and would flatter the lookup).
	var holders []string
	if err := db.SelectContext(ctx, &holders, `
		SELECT i.customer_id FROM codes c JOIN issues i ON i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL AND NOT i.shared
		WHERE i.group_id = $1 GROUP BY i.customer_id ORDER BY i.customer_id`, groupID); err != nil {
		return nil, err
	}
	runs := 2 * 2 * len(cfg.Workers)
	per := min(len(holders)/runs, cfg.Batch*cfg.RepeatBatches)
	if per < cfg.Batch {
		return nil, fmt.Errorf("only %d customers hold codes: too few for %d repeat runs of %d", len(holders), runs, cfg.Batch)
	}
	half := len(holders) / 2
	sample := slices.Clone(holders[half:])
	rand.Shuffle(len(sample), func(i, j int) { sample[i], sample[j] = sample[j], sample[i] })
	var out []ClaimRun
	k := 0
	for _, order := range []string{"mailing order", "random"} {
		for _, record := range []bool{false, true} {
			for _, workers := range cfg.Workers {
				custs := holders[k*per : (k+1)*per]
				if order == "random" {
					custs = sample[(k-runs/2)*per : (k-runs/2+1)*per]
				}
				run, err := repeatRun(ctx, store, groupID, custs, cfg.Batch, workers, record)
				if err != nil {
					return nil, err
				}
				run.Name += ", " + order
				out = append(out, run)
				if !record {
					// The same customers again: their pages are now in PostgreSQL's
					// buffers where they fit (PERFORMANCE.md's "warm").
					if run, err = repeatRun(ctx, store, groupID, custs, cfg.Batch, workers, false); err != nil {
						return nil, err
					}
					run.Name += ", " + order + ", again"
					out = append(out, run)
				}
				k++
			}
		}
	}
	return out, nil
}

// repeatRun times Store.Repeat (lookup + record) or, without record, Store.LastCodes
// (the lookup alone) over batches of holders, split between workers goroutines; each
// batch has its own scope, so every batch records its repeats.
func repeatRun(ctx context.Context, store *groups.Store, groupID int64, holders []string, batch, workers int, record bool) (ClaimRun, error) {
	var next, n, looked atomic.Int64
	errs := make(chan error, workers)
	nonce := time.Now().UnixNano() // a rerun on a kept schema records under new scopes
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(int64(batch))) - batch
				if i+batch > len(holders) {
					return
				}
				var got map[string]string
				var err error
				if record {
					got, err = store.Repeat(ctx, groups.RepeatRequest{GroupID: groupID, Scope: fmt.Sprintf("repeat:%d:%d:%d", nonce, workers, i), CustomerIDs: holders[i : i+batch]})
				} else {
					got, err = store.LastCodes(ctx, groupID, holders[i:i+batch])
				}
				if err != nil {
					errs <- err
					return
				}
				n.Add(int64(len(got)))
				looked.Add(int64(batch))
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return ClaimRun{}, err
	}
	if n.Load() != looked.Load() {
		return ClaimRun{}, fmt.Errorf("repeat found codes for %d of %d customers: the sample is wrong", n.Load(), looked.Load())
	}
	name := fmt.Sprintf("repeat lookup only (batch %d)", batch)
	if record {
		name = fmt.Sprintf("repeat lookup+record (batch %d)", batch)
	}
	return ClaimRun{Name: name, Workers: workers, Codes: n.Load(), Elapsed: time.Since(start)}, nil
}

// loadCodes adds an upload of n generated codes to a group, with its one range.
func loadCodes(ctx context.Context, db *sqlx.DB, groupID, n int64, prefix string) error {
	var up int64
	err := db.GetContext(ctx, &up, `INSERT INTO uploads (group_id, actor, source, format, lines, accepted, duplicates, invalid)
		VALUES ($1, 'bench', 'cli', 'plain', $2, $2, 0, 0) RETURNING id`, groupID, n)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO codes (id, code) SELECT ($1::bigint << 32) + i, $3 || md5(i::text || $1::text) FROM generate_series(1, $2::bigint) i`, up, n, prefix); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT INTO code_ranges (group_id, upload_id, first_id, last_id, next_id, total)
		VALUES ($1, $2, ($2::bigint << 32) + 1, ($2::bigint << 32) + $3, ($2::bigint << 32) + 1, $3)`, groupID, up, n)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE codes`)
	return err
}

// loadHistory fills issues with n rows over the given number of customers (initial
// issues of fake code ids, a scope per "mailing"), half in the benchmark's group and
// half spread over 20 others. Indexes are dropped for the load and rebuilt after,
// which is how an operator would backfill.
func loadHistory(ctx context.Context, db *sqlx.DB, groupID, n, customers int64, logf func(string, ...any)) error {
	err := withoutIndexes(ctx, db, "issues", logf, func() error {
		const step = 2_000_000
		for from := int64(0); from < n; from += step {
			to := min(from+step, n)
			// Row i: customer i % customers, mailing i / customers (so (scope, customer) is
			// unique), a code id no real code has (upload id 2^30 + ...).
			_, err := db.ExecContext(ctx, `
				INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind, issued_at)
				SELECT 'cust' || (i % $3), CASE WHEN i % 2 = 0 THEN $4 ELSE -(i % 20) END, (1::bigint << 62) + i,
				       'mailing:' || (i / $3), i / $3, 'initial', now() - interval '1 second' * ($2 - i)
				FROM generate_series($1::bigint, $2::bigint - 1) i`, from, to, customers, groupID)
			if err != nil {
				return err
			}
			logf("history: %d rows", to)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err = db.ExecContext(ctx, `VACUUM ANALYZE issues`); err != nil {
		return err
	}
	return checkpoint(ctx, db, logf)
}

// checkpoint writes out what the load dirtied, so that the checkpoint it would start
// does not run during the timed work after it.
func checkpoint(ctx context.Context, db *sqlx.DB, logf func(string, ...any)) error {
	start := time.Now()
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("CHECKPOINT (the benchmark's role needs pg_checkpoint): %w", err)
	}
	logf("checkpoint: %.1f s", time.Since(start).Seconds())
	return nil
}

// withoutIndexes drops table's indexes (but its primary key), runs load, and builds
// them again: a bulk load into an indexed table runs several times slower.
func withoutIndexes(ctx context.Context, db *sqlx.DB, table string, logf func(string, ...any), load func() error) error {
	var defs []struct {
		Name string `db:"indexname"`
		Def  string `db:"indexdef"`
	}
	if err := db.SelectContext(ctx, &defs, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = $1 AND indexname <> $1 || '_pkey'`, table); err != nil {
		return err
	}
	for _, d := range defs {
		if _, err := db.ExecContext(ctx, `DROP INDEX `+d.Name); err != nil {
			return err
		}
	}
	if err := load(); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
		return err
	}
	for _, d := range defs {
		logf("%s: building %s", table, d.Name)
		if _, err := db.ExecContext(ctx, d.Def); err != nil {
			return err
		}
	}
	return nil
}

// rawCursor measures, in the same run, the raw ceiling of the design the claim builds
// on, the fastest measured on this hardware: "cursor advanced in its own short
// statement, then range read + history insert", in plain SQL on tables of its own
// (synchronous_commit on, as promopool's claims run). Its history carries the primary key and the two unique indexes the
// invariants need, (code) and (customer, scope); promopool's issues also carries the
// group, the time index the segment fold and the alerts read, a reservation to survive
// a crash between the two statements, expiry order, returned codes and the re-claim
// check. The machine's speed moves from hour to hour; the ratio to this is steadier.
//
// With history set, its history table first gets a copy of the history promopool's
// claims ran over (the loaded rows: same size, customers, scopes and code ids), loaded
// and indexed the same way, so that both insert into indexes of the same size: into an
// empty table the raw design measured a fresh-table rate (128k/s beside promopool's 42k
// over 50M rows). It returns the run and how many history rows it held.
func rawCursor(ctx context.Context, env *Env, workers, batches, batch int, customers int64, history bool, logf func(string, ...any)) (ClaimRun, int64, error) {
	for _, q := range []string{
		`CREATE TABLE raw_codes (id bigint PRIMARY KEY, code text NOT NULL)`,
		fmt.Sprintf(`INSERT INTO raw_codes SELECT i, 'RW' || md5(i::text) FROM generate_series(1, %d) i`, batches*batch),
		`CREATE TABLE raw_cursor (id int PRIMARY KEY, next_id bigint NOT NULL)`,
		`INSERT INTO raw_cursor VALUES (1, 1)`,
		`CREATE TABLE raw_issues (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id text COLLATE "C" NOT NULL,
			code_id bigint NOT NULL, scope text COLLATE "C" NOT NULL, issued_at timestamptz NOT NULL DEFAULT now())`,
		`VACUUM ANALYZE raw_codes`,
	} {
		if _, err := env.DB.ExecContext(ctx, q); err != nil {
			return ClaimRun{}, 0, fmt.Errorf("raw cursor design: %w", err)
		}
	}
	var rows int64
	if history {
		logf("raw cursor design: copying the history")
		// The loaded history's code ids are 2^62 + i (loadHistory); the claims' are not.
		res, err := env.DB.ExecContext(ctx, `INSERT INTO raw_issues (customer_id, code_id, scope, issued_at)
			SELECT customer_id, code_id, scope, issued_at FROM issues WHERE code_id >= (1::bigint << 62)`)
		if err != nil {
			return ClaimRun{}, 0, fmt.Errorf("raw cursor design, history: %w", err)
		}
		rows, _ = res.RowsAffected()
	}
	if _, err := env.DB.ExecContext(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
		return ClaimRun{}, 0, err
	}
	for _, q := range []string{
		`CREATE UNIQUE INDEX raw_issues_code ON raw_issues (code_id)`,
		`CREATE UNIQUE INDEX raw_issues_customer_scope ON raw_issues (customer_id, scope)`,
		`VACUUM ANALYZE raw_issues`,
	} {
		if _, err := env.DB.ExecContext(ctx, q); err != nil {
			return ClaimRun{}, 0, fmt.Errorf("raw cursor design: %w", err)
		}
	}
	if history {
		if err := checkpoint(ctx, env.DB, logf); err != nil {
			return ClaimRun{}, 0, err
		}
	}
	const advance = `UPDATE raw_cursor SET next_id = next_id + $1 WHERE id = 1 RETURNING next_id - $1`
	const take = `
WITH c AS (SELECT id, code FROM raw_codes WHERE id >= $2 AND id < $2 + $3),
ins AS (INSERT INTO raw_issues (customer_id, code_id, scope)
        SELECT u.customer_id, $2 + u.i - 1, $4 FROM unnest($1::text[]) WITH ORDINALITY AS u(customer_id, i))
SELECT code FROM c ORDER BY id`
	var next, codes atomic.Int64
	elapsed, err := onConnections(ctx, env, workers, 1, func(w int, db *sqlx.DB) error {
		adv, err := db.PrepareContext(ctx, advance)
		if err != nil {
			return err
		}
		tk, err := db.PrepareContext(ctx, take)
		if err != nil {
			return err
		}
		for b := next.Add(1); b <= int64(batches); b = next.Add(1) {
			var lo int64
			if err := adv.QueryRowContext(ctx, batch).Scan(&lo); err != nil {
				return err
			}
			rows, err := tk.QueryContext(ctx, pq.Array(benchCustomers(b, batch, customers)), lo, batch, fmt.Sprintf("raw:%d:%d", w, b))
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				var code string
				if err := rows.Scan(&code); err != nil {
					rows.Close()
					return err
				}
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			codes.Add(int64(n))
		}
		return nil
	})
	if err != nil {
		return ClaimRun{}, 0, fmt.Errorf("raw cursor design: %w", err)
	}
	return ClaimRun{Name: "raw cursor design (plain SQL)", Workers: workers, Codes: codes.Load(), Elapsed: elapsed}, rows, nil
}

// IndexSize is one index and its size on disk.
type IndexSize struct {
	Name  string `db:"name"`
	Bytes int64  `db:"bytes"`
}

// indexSizes lists table's indexes with their sizes, largest first.
func indexSizes(ctx context.Context, db *sqlx.DB, table string) ([]IndexSize, error) {
	var out []IndexSize
	err := db.SelectContext(ctx, &out, `
		SELECT i.indexrelid::regclass::text AS name, pg_relation_size(i.indexrelid) AS bytes
		FROM pg_index i WHERE i.indrelid = $1::regclass ORDER BY 2 DESC, 1`, table)
	return out, err
}

// naive measures the approach the claim replaces: a codes table with an issued_to
// column and a partial index on unissued codes, one UPDATE … LIMIT 1 … RETURNING per
// customer, each its own transaction, with `workers` concurrent connections.
func naive(ctx context.Context, env *Env, workers int, d time.Duration) (ClaimRun, error) {
	_, err := env.DB.ExecContext(ctx, `
		CREATE TABLE naive_codes (id bigint PRIMARY KEY, code text NOT NULL UNIQUE, issued_to text, issued_at timestamptz);
		INSERT INTO naive_codes (id, code) SELECT i, 'NV' || md5(i::text) FROM generate_series(1, 2000000) i;
		CREATE INDEX naive_unissued ON naive_codes (id) WHERE issued_to IS NULL;
		ANALYZE naive_codes`)
	if err != nil {
		return ClaimRun{}, err
	}
	const q = `UPDATE naive_codes SET issued_to = $1, issued_at = now()
		WHERE id = (SELECT id FROM naive_codes WHERE issued_to IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING code`
	var codes atomic.Int64
	deadline := time.Now().Add(d)
	elapsed, err := onConnections(ctx, env, workers, 1, func(w int, db *sqlx.DB) error {
		var sb strings.Builder
		for i := 0; time.Now().Before(deadline); i++ {
			sb.Reset()
			fmt.Fprintf(&sb, "n%d-%d", w, i)
			var code string
			if err := db.QueryRowContext(ctx, q, sb.String()).Scan(&code); err != nil {
				return err
			}
			codes.Add(1)
		}
		return nil
	})
	if err != nil {
		return ClaimRun{}, err
	}
	return ClaimRun{Name: "naive UPDATE … LIMIT 1 per customer", Workers: workers, Codes: codes.Load(), Elapsed: elapsed}, nil
}

// onConnections runs work on workers goroutines, each with a connection pool of its own
// (at most conns connections), and returns how long the work took and the first error.
func onConnections(ctx context.Context, env *Env, workers, conns int, work func(w int, db *sqlx.DB) error) (time.Duration, error) {
	dbs := make([]*sqlx.DB, workers)
	for i := range dbs {
		db, err := postgres.Open(ctx, postgres.Config{URL: env.URL, SearchPath: env.Schema, MaxConns: conns})
		if err != nil {
			return 0, err
		}
		defer db.Close()
		dbs[i] = db
	}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(w, db); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	return elapsed, <-errs
}

// benchCustomers is batch b's customers, spread over the history's id space so that
// index inserts land anywhere in the customer-keyed indexes, as in production.
func benchCustomers(b int64, batch int, customers int64) []string {
	cust := make([]string, batch)
	for i := range cust {
		cust[i] = fmt.Sprintf("cust%d", (b*int64(batch)+int64(i))*7919%max(customers, 1))
	}
	return cust
}
