package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"promopool/users"
)

// usersUsage is the users command's usage line.
const usersUsage = "usage: promopool users create EMAIL -name NAME -role viewer|marketer|admin [-password-stdin] | " +
	"users role EMAIL ROLE | users password EMAIL (reads it from stdin; empty removes it) | users disable EMAIL | users enable EMAIL | users list"

// usersCmd is `promopool users …`: the people who sign in to the admin pages (and whose
// platform JWTs the API accepts). The first admin is made here; later ones on the
// Users page too.
func (m *Main) usersCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usersUsage)
	}
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	store := users.NewStore(db)
	if args[0] == "create" {
		return m.createUser(ctx, store, args[1:])
	}
	if len(args) == 1 && args[0] == "list" {
		return m.listUsers(ctx, store)
	}
	if len(args) < 2 {
		return errors.New(usersUsage)
	}
	u, err := store.ByEmail(ctx, args[1])
	if err != nil {
		return err
	}
	switch {
	case args[0] == "role" && len(args) == 3:
		role, err := users.ParseRole(args[2])
		if err != nil {
			return err
		}
		u, err = store.SetRole(ctx, u.ID, role)
	case args[0] == "password" && len(args) == 2:
		pw, rerr := m.readPassword()
		if rerr != nil {
			return rerr
		}
		u, err = store.SetPassword(ctx, u.ID, pw)
	case args[0] == "disable" && len(args) == 2:
		u, err = store.Disable(ctx, u.ID)
	case args[0] == "enable" && len(args) == 2:
		u, err = store.Enable(ctx, u.ID)
	default:
		return errors.New(usersUsage)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s: role %s, %s\n", u.Email, u.Role, state(u))
	return nil
}

func state(u *users.User) string {
	if u.Enabled() {
		return "enabled"
	}
	return "disabled (open sessions ended)"
}

// createUser is `users create EMAIL -name NAME -role ROLE [-password-stdin]`, the
// flags before or after the email.
func (m *Main) createUser(ctx context.Context, store *users.Store, args []string) error {
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "")
	role := fs.String("role", "", "")
	pwStdin := fs.Bool("password-stdin", false, "")
	var email string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w; %s", err, usersUsage)
		}
		args = fs.Args()
		if len(args) > 0 {
			if email != "" {
				return errors.New(usersUsage)
			}
			email, args = args[0], args[1:]
		}
	}
	if email == "" || *name == "" || *role == "" {
		return errors.New(usersUsage + "; create needs EMAIL, -name and -role")
	}
	r, err := users.ParseRole(*role)
	if err != nil {
		return err
	}
	in := users.NewUser{Email: email, Name: *name, Role: r}
	if *pwStdin {
		if in.Password, err = m.readPassword(); err != nil {
			return err
		}
	}
	u, err := store.Create(ctx, in)
	if err != nil {
		return err
	}
	how := "through the identity provider (OIDC_ISSUER)"
	if u.HasPassword {
		how = "with their email and password"
	}
	fmt.Fprintf(m.Stdout, "created %s <%s>, role %s: signs in %s\n", u.Name, u.Email, u.Role, how)
	return nil
}

// readPassword reads a password from the first line of standard input.
func (m *Main) readPassword() (string, error) {
	line, err := bufio.NewReader(m.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (m *Main) listUsers(ctx context.Context, store *users.Store) error {
	list, err := store.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tROLE\tSIGN-IN\tCREATED\tDISABLED")
	for _, u := range list {
		var how []string
		if u.Linked {
			how = append(how, "oidc")
		}
		if u.HasPassword {
			how = append(how, "password")
		}
		dis := ""
		if u.DisabledAt != nil {
			dis = u.DisabledAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Email, u.Name, u.Role, strings.Join(how, "+"), u.CreatedAt.Format("2006-01-02 15:04"), dis)
	}
	return tw.Flush()
}
