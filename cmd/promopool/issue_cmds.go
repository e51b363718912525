package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"time"

	"promopool/bench"
	"promopool/customers"
)

// customersCmd is `promopool customers import [-format jsonl|csv] FILE`.
func (m *Main) customersCmd(ctx context.Context, args []string) error {
	const use = "usage: promopool customers import [-format jsonl|csv] FILE (FILE may be - for stdin)"
	if len(args) == 0 || args[0] != "import" {
		return errors.New(use)
	}
	fs := flag.NewFlagSet("customers import", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	format := fs.String("format", "", "jsonl or csv (default: from the file's extension, else jsonl)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(use)
	}
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	path := fs.Arg(0)
	in, closeIn, err := m.openInput(path)
	if err != nil {
		return err
	}
	defer closeIn()
	f := customers.Format(*format)
	if f == "" {
		f = customers.FormatJSONLines
		if strings.EqualFold(filepath.Ext(path), ".csv") {
			f = customers.FormatCSV
		}
	}
	rep, err := customers.NewStore(db).Upsert(ctx, f, in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
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
