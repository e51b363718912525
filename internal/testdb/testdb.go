// Package testdb gives each test a PostgreSQL schema of its own in the test database
// (TEST_DATABASE_URL, default promopool_test on 127.0.0.1), migrated to the latest
// version and dropped when the test ends. Tests never touch the postgres database.
package testdb

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"promopool/migrations"
	"promopool/postgres"
)

// URL is the test database's connection string.
func URL() string {
	return cmp.Or(os.Getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/promopool_test?sslmode=disable")
}

// RedisURL is the test Redis (TEST_REDIS_URL, default DB 15 on 127.0.0.1).
func RedisURL() string {
	return cmp.Or(os.Getenv("TEST_REDIS_URL"), "redis://127.0.0.1:6379/15")
}

var ensure sync.Once
var ensureErr error

// DB is a test's database: a migrated schema of its own.
type DB struct {
	*sqlx.DB
	URL    string
	Schema string
}

// Env returns the environment variables that point a promopool process at this schema.
func (d *DB) Env() []string {
	return []string{"DATABASE_URL=" + d.URL, "DATABASE_SEARCH_PATH=" + d.Schema}
}

// New returns a fresh migrated schema, dropped at the end of the test.
func New(t testing.TB) *DB {
	t.Helper()
	d := Empty(t)
	if _, err := migrations.Migrate(context.Background(), d.DB); err != nil {
		t.Fatalf("migrating test schema: %v", err)
	}
	return d
}

// Empty returns a fresh schema with no migration applied, dropped at the end of the test.
func Empty(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	ensure.Do(func() { ensureErr = postgres.EnsureDatabase(ctx, URL()) })
	if ensureErr != nil {
		t.Fatalf("test database: %v", ensureErr)
	}
	return emptyAt(t, URL())
}

// NewAt is New in the existing database url (a cluster of the test's own).
func NewAt(t testing.TB, url string) *DB {
	t.Helper()
	d := emptyAt(t, url)
	if _, err := migrations.Migrate(context.Background(), d.DB); err != nil {
		t.Fatalf("migrating test schema: %v", err)
	}
	return d
}

func emptyAt(t testing.TB, url string) *DB {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: url, SearchPath: schema, MaxConns: 20})
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	})
	return &DB{DB: db, URL: url, Schema: schema}
}

// Reopen opens another connection pool on d's schema (for tests that need separate
// connections), closed at the end of the test.
func Reopen(t testing.TB, d *DB) *sqlx.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Config{URL: d.URL, SearchPath: d.Schema, MaxConns: 2})
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
