package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"
)

// EnsureDatabase creates the database a postgres:// URL names when it does not exist,
// connecting for that to the server's postgres database with the same credentials and
// parameters. Tests and benchmarks call it for their own databases; it refuses an empty
// name and the postgres database itself, which they must never write to.
func EnsureDatabase(ctx context.Context, url string) error {
	i := strings.LastIndex(url, "/")
	if i < 0 {
		return fmt.Errorf("cannot find the database name in %q", Redact(url))
	}
	name, rest, _ := strings.Cut(url[i+1:], "?")
	if name == "" || name == "postgres" {
		return fmt.Errorf("refusing to use database %q for benchmarks or tests", name)
	}
	adminURL := url[:i+1] + "postgres"
	if rest != "" {
		adminURL += "?" + rest
	}
	admin, err := Open(ctx, Config{URL: adminURL, MaxConns: 1})
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return fmt.Errorf("looking for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	// An identifier cannot be a placeholder: the name goes in quoted, its quotes doubled.
	_, err = admin.ExecContext(ctx, `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, `""`)+`"`)
	// Two test binaries may create it at once: the loser sees 42P04 (duplicate_database) or,
	// when both passed the catalog check together, 23505 on pg_database's name index.
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && (pqErr.Code == "42P04" || pqErr.Code == "23505") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}
