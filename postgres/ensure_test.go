package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"promopool/internal/testdb"
	"promopool/postgres"
)

func TestEnsureDatabase(t *testing.T) {
	ctx := context.Background()
	base := testdb.URL()
	i := strings.LastIndex(base, "/")
	_, params, _ := strings.Cut(base[i+1:], "?")
	b := make([]byte, 4)
	rand.Read(b)
	name := "promopool_ensure_" + hex.EncodeToString(b)
	url := base[:i+1] + name + "?" + params

	// Twice: the second call finds the database and leaves it.
	for range 2 {
		if err := postgres.EnsureDatabase(ctx, url); err != nil {
			t.Fatalf("EnsureDatabase(%s): %v", name, err)
		}
	}
	// The test database holds the connection that checks and drops the new one.
	if err := postgres.EnsureDatabase(ctx, base); err != nil {
		t.Fatal(err)
	}
	admin, err := postgres.Open(ctx, postgres.Config{URL: base, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
		admin.Close()
	})
	var exists bool
	if err := admin.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		t.Fatal(err)
	}
	if !exists {
		t.Fatalf("database %s was not created", name)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatalf("connecting to the new database: %v", err)
	}
	db.Close()

	for _, bad := range []string{base[:i+1] + "postgres?" + params, base[:i+1] + "?" + params, "no-slash"} {
		if err := postgres.EnsureDatabase(ctx, bad); err == nil {
			t.Errorf("EnsureDatabase(%q) = nil, want a refusal", bad)
		}
	}
}
