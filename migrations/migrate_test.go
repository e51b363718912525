package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lib/pq"

	"promopool/internal/testdb"
	"promopool/migrations"
)

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	db := testdb.Empty(t)
	ctx := context.Background()
	if err := migrations.Check(ctx, db.DB); !errors.Is(err, migrations.ErrSchemaBehind) {
		t.Fatalf("empty schema: got %v, want ErrSchemaBehind", err)
	}
	var wg sync.WaitGroup
	applied := make([][]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = migrations.Migrate(ctx, db.DB)
		}()
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != len(must(migrations.All())) {
		t.Fatalf("four concurrent migrators applied %d migrations in all, want each once (%d)", total, len(must(migrations.All())))
	}
	if err := migrations.Check(ctx, db.DB); err != nil {
		t.Fatalf("after migrate: %v", err)
	}
	again, err := migrations.Migrate(ctx, db.DB)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, %v", again, err)
	}
}

func TestCheckRefusesSchemaBehindAndAhead(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = $1`, migrations.Latest()); err != nil {
		t.Fatal(err)
	}
	err := migrations.Check(ctx, db.DB)
	if !errors.Is(err, migrations.ErrSchemaBehind) {
		t.Fatalf("got %v, want ErrSchemaBehind", err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name) VALUES ($1, 'a'), ($2, 'future')`, migrations.Latest(), migrations.Latest()+1); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Check(ctx, db.DB); !errors.Is(err, migrations.ErrSchemaAhead) {
		t.Fatalf("got %v, want ErrSchemaAhead", err)
	}
}

// TestCheckFindsAGapBelowTheLatest: a database at the highest version that lacks an
// earlier migration (branches landed out of order) is behind, and names the migration.
func TestCheckFindsAGapBelowTheLatest(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	all := must(migrations.All())
	if len(all) < 2 {
		t.Fatal("need two migrations")
	}
	gap := all[len(all)-2]
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = $1`, gap.Version); err != nil {
		t.Fatal(err)
	}
	if cur := must(migrations.Current(ctx, db.DB)); cur != migrations.Latest() {
		t.Fatalf("current %d, want %d: the gap must be below the highest version", cur, migrations.Latest())
	}
	err := migrations.Check(ctx, db.DB)
	if !errors.Is(err, migrations.ErrSchemaBehind) || !strings.Contains(err.Error(), fmt.Sprint(gap.Version)) {
		t.Fatalf("got %v, want ErrSchemaBehind naming %d", err, gap.Version)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestOutboxParentCheck: mailing_recipients.mailing_id keeps a foreign key's rules,
// checked once per statement (0007): no recipient of a missing mailing, no recipient
// moved to another mailing, and deleting a mailing deletes its recipients.
func TestOutboxParentCheck(t *testing.T) {
	db := testdb.New(t)
	var m1, m2 int64
	for _, id := range []*int64{&m1, &m2} {
		if err := db.Get(id, `INSERT INTO mailings (name, sender, subject, audience, created_by)
			VALUES ('m', 'a@example.com', 's', '{"all": true}', 'test') RETURNING id`); err != nil {
			t.Fatal(err)
		}
	}
	fkViolation := func(err error) bool {
		var pe *pq.Error
		return errors.As(err, &pe) && pe.Code == "23503"
	}
	if _, err := db.Exec(`INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
		SELECT $1, 'c' || i, 0 FROM generate_series(1, 3) i`, m1); err != nil {
		t.Fatalf("recipients of an existing mailing: %v", err)
	}
	_, err := db.Exec(`INSERT INTO mailing_recipients (mailing_id, customer_id, batch) VALUES ($1, 'x', 0), ($2, 'y', 0)`, m2, m2+1000)
	if !fkViolation(err) {
		t.Fatalf("a recipient of a missing mailing: got %v, want a foreign key violation", err)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1`, m2); err != nil || n != 0 {
		t.Fatalf("the failed statement left %d rows of mailing %d (%v); want none", n, m2, err)
	}
	if _, err := db.Exec(`UPDATE mailing_recipients SET mailing_id = $1 WHERE mailing_id = $2`, m2, m1); !fkViolation(err) {
		t.Fatalf("moving recipients to another mailing: got %v, want a foreign key violation", err)
	}
	if _, err := db.Exec(`UPDATE mailing_recipients SET status = 'sent' WHERE mailing_id = $1`, m1); err != nil {
		t.Fatalf("recording outcomes: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM mailings WHERE id = $1`, m1); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&n, `SELECT count(*) FROM mailing_recipients`); err != nil || n != 0 {
		t.Fatalf("deleting the mailing left %d recipients (%v); want none", n, err)
	}
}

// The history and the segment summaries are read through index-only scans, which stay
// index-only only while vacuum keeps their visibility maps current: the migrations set
// each table's autovacuum thresholds far below PostgreSQL's defaults.
func TestAutovacuumThresholds(t *testing.T) {
	db := testdb.New(t)
	want := map[string][]string{
		"issues":            {"autovacuum_vacuum_insert_scale_factor=0.01"},
		"segment_customers": {"autovacuum_vacuum_scale_factor=0.01", "autovacuum_vacuum_insert_scale_factor=0.01"},
		"segment_groups":    {"autovacuum_vacuum_scale_factor=0.01", "autovacuum_vacuum_insert_scale_factor=0.01"},
		"segment_bits":      {"autovacuum_vacuum_scale_factor=0.01"},
	}
	for table, opts := range want {
		var got []string
		if err := db.QueryRow(`SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass`, table).Scan(pq.Array(&got)); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for _, o := range opts {
			if !slices.Contains(got, o) {
				t.Errorf("%s: reloptions %v lack %s", table, got, o)
			}
		}
	}
}
