package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"promopool/auth"
	"promopool/groups"
)

const keysUsage = "usage: promopool keys create NAME -scopes render,issue | keys scopes NAME SCOPES | keys revoke NAME | keys list" +
	" (scopes: render, issue, checkout, read, export, write, admin)"

func (m *Main) keys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	keys, err := auth.NewKeys(db, "")
	if err != nil {
		return err
	}
	switch {
	case args[0] == "create":
		name, scopes, err := keyCreateArgs(args[1:])
		if err != nil {
			return err
		}
		key, err := keys.Create(ctx, name, scopes)
		if err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, key)
		return nil
	case len(args) == 3 && args[0] == "scopes":
		scopes, err := auth.ParseScopes(args[2], ",")
		if err != nil {
			return err
		}
		return keys.SetScopes(ctx, args[1], scopes)
	case len(args) == 2 && args[0] == "revoke":
		return keys.Revoke(ctx, args[1])
	case len(args) == 1 && args[0] == "list":
		return m.listKeys(ctx, keys)
	}
	return errors.New(keysUsage)
}

// keyCreateArgs reads NAME -scopes LIST, the flag before or after the name. A key
// without scopes is refused: there is no all-powerful default any more.
func keyCreateArgs(args []string) (string, []auth.Scope, error) {
	var name, list string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-scopes" || a == "--scopes":
			if i+1 == len(args) {
				return "", nil, errors.New(keysUsage)
			}
			i++
			list = args[i]
		case strings.HasPrefix(a, "-scopes=") || strings.HasPrefix(a, "--scopes="):
			_, list, _ = strings.Cut(a, "=")
		case name == "" && !strings.HasPrefix(a, "-"):
			name = a
		default:
			return "", nil, errors.New(keysUsage)
		}
	}
	if name == "" || list == "" {
		return "", nil, errors.New(keysUsage + "; a key needs -scopes (admin for everything)")
	}
	scopes, err := auth.ParseScopes(list, ",")
	return name, scopes, err
}

func (m *Main) listKeys(ctx context.Context, keys *auth.Keys) error {
	list, err := keys.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tREVOKED")
	for _, k := range list {
		rev := ""
		if k.RevokedAt != nil {
			rev = k.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.Format("2006-01-02 15:04"), rev)
	}
	return tw.Flush()
}

func (m *Main) groupsCmd(ctx context.Context, args []string) error {
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	store := groups.NewStore(db, groups.Config{})
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

// actor names the person running a CLI command in the activity log.
func (m *Main) actor() string {
	name := m.Getenv("USER")
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	return "cli:" + cmp.Or(name, "unknown")
}

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
	store := groups.NewStore(db, groups.Config{})
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

// openInput opens a command's input file, or standard input for "-".
func (m *Main) openInput(path string) (io.Reader, func(), error) {
	if path == "-" {
		return m.Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}
