package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"promopool/cmd/promopool/internal/bench"
)

// bench is `promopool bench upload|claim|mailing|segments|checkout|metrics [flags]`: the benchmark
// commands, each against BENCH_DATABASE_URL (a fresh schema per run).
func (m *Main) bench(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: promopool bench upload|claim|mailing|segments|checkout|metrics [flags] (-h for each)")
	}
	benchURL := cmp.Or(m.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/promopool_bench?sslmode=disable")
	switch args[0] {
	case "mailing":
		fs := flag.NewFlagSet("bench mailing", flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		n := fs.Int("n", 1_000_000, "recipients")
		workers := fs.String("workers", "2", "worker processes, or a list (1,2,4): one run per count and a table")
		conc := fs.Int("concurrency", 8, "WORKER_CONCURRENCY of each worker")
		batch := fs.Int("batch", 1000, "recipients per task")
		profile := fs.String("profile", "", "a directory the workers write CPU profiles to (worker-N.cpu.pprof)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *profile != "" {
			if err := os.MkdirAll(*profile, 0o755); err != nil {
				return err
			}
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		counts, err := parseCounts(*workers)
		if err != nil {
			return err
		}
		redisURL := cmp.Or(m.Getenv("BENCH_REDIS_URL"), "redis://127.0.0.1:6379/13")
		cfg := bench.MailingConfig{URL: benchURL, RedisURL: redisURL, Exe: exe, N: *n,
			Workers: counts[0], Concurrency: *conc, BatchSize: *batch, Profile: *profile}
		if len(counts) > 1 {
			return m.benchMailingWorkers(ctx, cfg, counts)
		}
		res, err := bench.Mailing(ctx, cfg)
		if err != nil {
			return err
		}
		res.Print(m.Stdout)
		return nil
	case "claim":
		return m.benchClaim(ctx, benchURL, args[1:])
	case "checkout":
		fs := flag.NewFlagSet("bench checkout", flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		d := fs.Duration("d", 5*time.Second, "how long each timed phase runs")
		clients := fs.Int("clients", 32, "concurrent clients of the validate and redeem phases")
		hotClients := fs.Int("hot-clients", 64, "concurrent clients on the hot code")
		hotAttempts := fs.Int("hot-attempts", 20000, "attempts on the hot code (its cap is half)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := bench.Checkout(ctx, bench.CheckoutConfig{URL: benchURL, Duration: *d, Clients: *clients,
			HotClients: *hotClients, HotAttempts: *hotAttempts})
		if err != nil {
			return err
		}
		res.Print(m.Stdout)
		return nil
	case "segments":
		fs := flag.NewFlagSet("bench segments", flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		custs := fs.Int64("customers", 1_000_000, "customers")
		issues := fs.Int64("issues", 10_000_000, "issues in the history")
		redemptions := fs.Int64("redemptions", 2_000_000, "redemptions in the history (-1: none)")
		explain := fs.Bool("explain", false, "print EXPLAIN ANALYZE of each filter")
		keep := fs.Bool("keep", false, "keep the benchmark schema for a later -reuse")
		reuse := fs.String("reuse", "", "time the filters on a schema kept by -keep (no load, no fold)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := bench.Segments(ctx, bench.SegmentsConfig{URL: benchURL, Customers: *custs, Issues: *issues, Redemptions: *redemptions, Explain: *explain, Keep: *keep, Reuse: *reuse,
			Log: func(f string, a ...any) { m.log.Info(fmt.Sprintf(f, a...)) }})
		if err != nil {
			return err
		}
		res.Print(m.Stdout)
		return nil
	case "metrics":
		fs := flag.NewFlagSet("bench metrics", flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		cfg := bench.MetricsConfig{URL: benchURL, Log: func(f string, a ...any) { m.log.Info(fmt.Sprintf(f, a...)) }}
		fs.IntVar(&cfg.Groups, "groups", 50, "groups")
		fs.Int64Var(&cfg.Customers, "customers", 1_000_000, "customers")
		fs.Int64Var(&cfg.Issues, "issues", 10_000_000, "issues in the history")
		fs.Int64Var(&cfg.Redemptions, "redemptions", 2_000_000, "redemptions in the history")
		fs.IntVar(&cfg.Clients, "clients", 32, "concurrent clients of the redeem phases")
		fs.DurationVar(&cfg.Phase, "d", 5*time.Second, "how long each redeem phase runs")
		fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds of the redeem phases (each mode once per round)")
		fs.BoolVar(&cfg.Keep, "keep", false, "keep the benchmark schema for a later -reuse")
		fs.StringVar(&cfg.Reuse, "reuse", "", "time on a schema kept by -keep (no load)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := bench.Metrics(ctx, cfg)
		if err != nil {
			return err
		}
		res.Print(m.Stdout)
		return nil
	case "upload":
		fs := flag.NewFlagSet("bench upload", flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		n := fs.Int("n", 10_000_000, "lines to upload")
		dup := fs.Int("dup-every", 20, "every K-th line repeats an earlier code (20 = 5% duplicates)")
		cols := fs.Int("columns", 0, "upload a CSV with this many extra columns per code (0: plain text, no columns)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		res, err := bench.Upload(ctx, bench.UploadConfig{URL: benchURL, Exe: exe, N: *n, DupEvery: *dup, Columns: *cols})
		if err != nil {
			return err
		}
		res.Print(m.Stdout)
		return nil
	}
	return errors.New("usage: promopool bench upload|claim|mailing|segments|checkout|metrics [flags] (-h for each)")
}

// benchClaim is `promopool bench claim [flags]`.
func (m *Main) benchClaim(ctx context.Context, url string, args []string) error {
	fs := flag.NewFlagSet("bench claim", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	history := fs.Int64("history", 0, "issue rows in the history before the claims (e.g. 50000000)")
	histCust := fs.Int64("history-customers", 0, "distinct customers in the history (default history/10, at least 100000)")
	batch := fs.Int("batch", 1000, "customers per claim")
	batches := fs.Int("batches", 200, "batches per worker configuration")
	naive := fs.Duration("naive", 5*time.Second, "how long to run the naive baseline")
	keep := fs.Bool("keep", false, "keep the benchmark schema (its name is printed) to inspect plans afterwards or for -reuse")
	reuse := fs.String("reuse", "", "time only the repeat lookups, on a schema kept by -keep")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := bench.Claim(ctx, bench.ClaimConfig{URL: url, History: *history, HistoryCustomers: *histCust,
		Batch: *batch, Batches: *batches, Naive: *naive, Keep: *keep, Reuse: *reuse, Log: m.Stderr})
	if err != nil {
		return err
	}
	res.Print(m.Stdout)
	return nil
}
