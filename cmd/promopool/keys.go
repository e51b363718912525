package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"promopool/auth"
)

// keys is `promopool keys create NAME | revoke NAME | list`: the API keys kept in the
// database (a key is printed once and stored as its SHA-256).
func (m *Main) keys(ctx context.Context, args []string) error {
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	keys, err := auth.NewKeys(db, "")
	if err != nil {
		return err
	}
	switch {
	case len(args) == 2 && args[0] == "create":
		key, err := keys.Create(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, key)
		return nil
	case len(args) == 2 && args[0] == "revoke":
		return keys.Revoke(ctx, args[1])
	case len(args) == 1 && args[0] == "list":
		list, err := keys.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED\tREVOKED")
		for _, k := range list {
			rev := ""
			if k.RevokedAt != nil {
				rev = k.RevokedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Name, k.CreatedAt.Format("2006-01-02 15:04"), rev)
		}
		return tw.Flush()
	}
	return errors.New("usage: promopool keys create NAME | keys revoke NAME | keys list")
}
