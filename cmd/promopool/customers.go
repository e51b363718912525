package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"strings"

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
