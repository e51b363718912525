package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"os"

	"promopool/bench"
)

func (m *Main) bench(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: promopool bench upload [-n N] [-dup-every K]")
	}
	benchURL := cmp.Or(m.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/promopool_bench?sslmode=disable")
	switch args[0] {
	case "claim":
		return m.benchClaim(ctx, benchURL, args[1:])
	case "upload":
		fs := flag.NewFlagSet("bench upload", flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		n := fs.Int("n", 10_000_000, "lines to upload")
		dup := fs.Int("dup-every", 20, "every K-th line repeats an earlier code (20 = 5% duplicates)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		res, err := bench.Upload(ctx, bench.UploadConfig{URL: benchURL, Exe: exe, N: *n, DupEvery: *dup})
		if err != nil {
			return err
		}
		res.Print(m.Stdout)
		return nil
	}
	return errors.New("usage: promopool bench upload [-n N] [-dup-every K]")
}
