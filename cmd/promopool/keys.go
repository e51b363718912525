package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"promopool/auth"
)

// keysUsage is the keys command's usage line.
const keysUsage = "usage: promopool keys create NAME -scopes render,issue | keys scopes NAME SCOPES | keys revoke NAME | keys list" +
	" (scopes: render, issue, checkout, read, export, write, admin)"

// keys is `promopool keys create NAME -scopes LIST | scopes NAME LIST | revoke NAME |
// list`: the API keys kept in the database (a key is printed once and stored as its
// SHA-256, with its scopes).
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
	fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tBY\tREVOKED")
	for _, k := range list {
		rev := ""
		if k.RevokedAt != nil {
			rev = k.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.Format("2006-01-02 15:04"), k.CreatedBy.Label(), rev)
	}
	return tw.Flush()
}
