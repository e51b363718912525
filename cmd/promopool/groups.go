package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"promopool/groups"
)

// groupsCmd is `promopool groups list | groups create NAME`.
func (m *Main) groupsCmd(ctx context.Context, args []string) error {
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	store := m.groupStore(db)
	switch {
	case len(args) == 1 && args[0] == "list":
		list, err := store.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "ID\tNAME\tTOTAL\tACTIVE\tISSUED\tSTATE\t")
		for _, g := range list {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t\n", g.ID, g.Name, g.Total, g.Active, g.Issued, g.State)
		}
		return tw.Flush()
	case len(args) == 2 && args[0] == "create":
		g, err := store.Create(ctx, m.actor(), groups.Input{Name: &args[1]})
		if err != nil {
			return err
		}
		return json.NewEncoder(m.Stdout).Encode(g)
	}
	return errors.New("usage: promopool groups list | groups create NAME")
}

// upload is `promopool upload [-format plain|csv|json] [-expires-at TIME] GROUP FILE`:
// a file (or standard input) loaded into a group, its report printed as JSON.
func (m *Main) upload(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	format := fs.String("format", "", "plain, csv or json (default: from the file's extension, else plain)")
	expires := fs.String("expires-at", "", "expiry for codes without their own (RFC 3339 or YYYY-MM-DD)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: promopool upload [-format plain|csv|json] [-expires-at TIME] GROUP FILE")
	}
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	store := m.groupStore(db)
	g, err := findGroup(ctx, store, fs.Arg(0))
	if err != nil {
		return err
	}
	path := fs.Arg(1)
	in, closeIn, err := m.openInput(path)
	if err != nil {
		return err
	}
	defer closeIn()
	f := groups.Format(*format)
	if f == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			f = groups.FormatCSV
		case ".json":
			f = groups.FormatJSON
		default:
			f = groups.FormatPlain
		}
	}
	req := groups.UploadRequest{GroupID: g.ID, Format: f, Source: groups.SourceCLI, Actor: m.actor(), Filename: filepath.Base(path)}
	if *expires != "" {
		t, err := groups.ParseTime(*expires)
		if err != nil {
			return fmt.Errorf("-expires-at: %w", err)
		}
		req.ExpiresAt = &t
	}
	rep, err := store.Load(ctx, req, in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// findGroup resolves a group given by id or by name.
func findGroup(ctx context.Context, store *groups.Store, ref string) (*groups.Group, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		g, err := store.Get(ctx, id)
		if err == nil || !errors.Is(err, groups.ErrGroupNotFound) {
			return g, err
		}
	}
	return store.GetByName(ctx, ref)
}
