package postgres_test

import (
	"context"
	"strings"
	"testing"

	"promopool/internal/testdb"
	"promopool/postgres"
)

// TestSettingsWarnings: a warning names each setting that is off on the server, and
// none that is on. The server's own settings decide which branch runs here (this
// machine's PostgreSQL ships with autovacuum off), so the expectation is read from it.
func TestSettingsWarnings(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	w, err := postgres.SettingsWarnings(ctx, db.DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"autovacuum", "track_counts"} {
		var v string
		if err := db.Get(&v, `SELECT current_setting($1)`, name); err != nil {
			t.Fatal(err)
		}
		warned := false
		for _, s := range w {
			if strings.Contains(s, name+" = off") {
				warned = true
			}
		}
		if warned != (v != "on") {
			t.Errorf("%s = %s, warned %v: %q", name, v, warned, w)
		}
	}
}
