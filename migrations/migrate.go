// Package migrations holds promopool's database schema as numbered SQL files embedded in
// the binary, applies them (each in its own transaction, recorded in schema_migrations,
// under an advisory lock so two processes can migrate at once) and tells a process
// whether the schema it is about to use is current.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

//go:embed *.sql
var files embed.FS

// lockKey is the pg_advisory_lock key that serialises migrations ("promopool" in hex-ish).
const lockKey = 0x70726f6d6f706f

// ErrSchemaBehind is returned by Check when the database lacks migrations this binary has.
var ErrSchemaBehind = errors.New("database schema is behind: run `promopool migrate`")

// ErrSchemaAhead is returned by Check when the database has migrations this binary lacks
// (an older binary against a newer schema).
var ErrSchemaAhead = errors.New("database schema is newer than this binary: deploy the newer promopool")

// Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, rest, ok := strings.Cut(e.Name(), "_")
		if !ok {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration file %q: version: %w", e.Name(), err)
		}
		body, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(rest, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

// Latest is the highest embedded migration version.
func Latest() int {
	all, err := All()
	if err != nil || len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies every embedded migration the database lacks and returns the versions
// it applied. It holds a session advisory lock for the duration, so concurrent callers
// wait for each other and the second finds nothing left to do.
func Migrate(ctx context.Context, db *sqlx.DB) ([]int, error) {
	return MigrateTo(ctx, db, math.MaxInt)
}

// MigrateTo is Migrate up to version (included): tests use it to seed data a later
// migration must carry over.
func MigrateTo(ctx context.Context, db *sqlx.DB, version int) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrating: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return nil, fmt.Errorf("migrating: taking the migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)

	if _, err := conn.ExecContext(ctx, createVersionTable); err != nil {
		return nil, fmt.Errorf("migrating: creating schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range all {
		if m.Version > version {
			break
		}
		done, err := applyOne(ctx, conn, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// applyOne runs one migration in its own transaction unless it is already recorded.
func applyOne(ctx context.Context, conn *sqlx.Conn, m Migration) (bool, error) {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version); err != nil {
		return false, fmt.Errorf("migration %d: %w", m.Version, err)
	}
	if exists {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return false, fmt.Errorf("migration %d: recording: %w", m.Version, err)
	}
	return true, tx.Commit()
}

// Current returns the highest applied version (0 for an empty database).
func Current(ctx context.Context, db *sqlx.DB) (int, error) {
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT to_regclass('schema_migrations') IS NOT NULL`); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := db.GetContext(ctx, &v, `SELECT coalesce(max(version), 0) FROM schema_migrations`); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

// Check returns nil when the database has every embedded migration applied and none
// this binary does not know, and an error wrapping ErrSchemaBehind or ErrSchemaAhead
// otherwise. It compares the sets of versions, not only the highest: migrations written
// on parallel branches can land out of order (0024 merged after 0025), and a database
// migrated by the binary that had 0025 but not 0024 is at the highest version yet lacks
// 0024. Processes call it before they start serving.
func Check(ctx context.Context, db *sqlx.DB) error {
	all, err := All()
	if err != nil {
		return err
	}
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT to_regclass('schema_migrations') IS NOT NULL`); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	applied := map[int]bool{}
	if exists {
		var versions []int
		if err := db.SelectContext(ctx, &versions, `SELECT version FROM schema_migrations`); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		for _, v := range versions {
			applied[v] = true
		}
	}
	known := map[int]bool{}
	var missing []int
	for _, m := range all {
		known[m.Version] = true
		if !applied[m.Version] {
			missing = append(missing, m.Version)
		}
	}
	var unknown []int
	for v := range applied {
		if !known[v] {
			unknown = append(unknown, v)
		}
	}
	sort.Ints(unknown)
	switch {
	case len(unknown) > 0:
		return fmt.Errorf("schema has migrations %v this binary does not know (it knows up to %d): %w", unknown, Latest(), ErrSchemaAhead)
	case len(missing) > 0:
		return fmt.Errorf("schema lacks migrations %v this binary needs (run `promopool migrate`): %w", missing, ErrSchemaBehind)
	}
	return nil
}

// CaseCollisions counts the stored codes that differ only in case from an earlier code
// (codes.case_dup > 0): data from before codes compared case-insensitively, kept by
// migration 0024 and listed by the view code_case_collisions for a person to resolve.
func CaseCollisions(ctx context.Context, db *sqlx.DB) (int64, error) {
	var n int64
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM code_case_collisions WHERE case_dup > 0`); err != nil {
		return 0, fmt.Errorf("counting codes that differ only in case: %w", err)
	}
	return n, nil
}
