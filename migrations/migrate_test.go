package migrations_test

import (
	"context"
	"errors"
	"sync"
	"testing"

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

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
