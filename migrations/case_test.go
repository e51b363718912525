package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/checkout"
	"promopool/internal/testdb"
	"promopool/migrations"
	"promopool/postgres"
)

// TestCaseInsensitiveCodesOnLegacyData: migration 0024 runs on a database already
// holding codes that differ only in case (legal before it): it deletes nothing, numbers
// the later spellings in case_dup, reports them (a NOTICE, the view
// code_case_collisions, migrations.CaseCollisions), and from then on the one unique index
// refuses every new case-only duplicate while checkout finds each legacy spelling.
func TestCaseInsensitiveCodesOnLegacyData(t *testing.T) {
	ctx := context.Background()
	db := testdb.Empty(t)
	before := 0
	for _, m := range must(migrations.All()) {
		if m.Name == "codes_case_insensitive" {
			break
		}
		before = m.Version
	}
	if _, err := migrations.MigrateTo(ctx, db.DB, before); err != nil {
		t.Fatal(err)
	}

	// Two unique groups and a shared one, seeded as the application wrote them.
	var g1, g2, gs int64
	db.Get(&g1, `INSERT INTO groups (name) VALUES ('Spring') RETURNING id`)
	db.Get(&g2, `INSERT INTO groups (name) VALUES ('Summer') RETURNING id`)
	db.Get(&gs, `INSERT INTO groups (name, kind) VALUES ('News', 'shared') RETURNING id`)
	upload := func(group int64, codes ...string) int64 {
		var u int64
		if err := db.Get(&u, `INSERT INTO uploads (group_id, actor, source, format, lines, accepted, duplicates, invalid)
			VALUES ($1, 'tests', 'api', 'plain', $2, $2, 0, 0) RETURNING id`, group, len(codes)); err != nil {
			t.Fatal(err)
		}
		for i, c := range codes {
			db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, $2)`, u<<32|int64(i+1), c)
		}
		db.MustExec(`INSERT INTO code_ranges (group_id, upload_id, first_id, last_id, next_id, total)
			VALUES ($1, $2, $3, $4, $3, $5)`, group, u, u<<32|1, u<<32|int64(len(codes)), len(codes))
		return u
	}
	u1 := upload(g1, "ABC-1", "solo", "news10")
	upload(g2, "abc-1", "Abc-1", "other")
	promo := int64(1)<<62 + 1
	db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, 'NEWS10')`, promo)
	db.MustExec(`INSERT INTO promotion_codes (code_id, group_id) VALUES ($1, $2)`, promo, gs)
	var stored int
	db.Get(&stored, `SELECT count(*) FROM codes`)

	// Migrate on a connection that collects the migration's notices.
	var mu sync.Mutex
	var notices []string
	dsn, err := postgres.WithParams(db.URL, map[string]string{"search_path": db.Schema})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pq.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ndb := sqlx.NewDb(sql.OpenDB(pq.ConnectorWithNoticeHandler(conn, func(e *pq.Error) {
		mu.Lock()
		notices = append(notices, e.Message)
		mu.Unlock()
	})), "postgres")
	defer ndb.Close()
	if _, err := migrations.Migrate(ctx, ndb); err != nil {
		t.Fatalf("migrating a database with case-only collisions: %v", err)
	}
	mu.Lock()
	joined := strings.Join(notices, "\n")
	mu.Unlock()
	if !strings.Contains(joined, "0024: 3 stored codes differ only in case from an earlier code (2 strings)") {
		t.Errorf("notices %q do not report the 3 later spellings of 2 strings", joined)
	}

	// Nothing deleted; the first stored (lowest id) keeps case_dup 0.
	var after int
	db.Get(&after, `SELECT count(*) FROM codes`)
	if after != stored {
		t.Fatalf("%d codes before the migration, %d after", stored, after)
	}
	var view []string
	rows, err := db.Queryx(`SELECT code, case_dup, group_id FROM code_case_collisions ORDER BY code_key, case_dup`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var code string
		var dup, group int64
		if err := rows.Scan(&code, &dup, &group); err != nil {
			t.Fatal(err)
		}
		view = append(view, fmt.Sprintf("%s/%d/g%d", code, dup, group))
	}
	want := fmt.Sprintf("ABC-1/0/g%d abc-1/1/g%d Abc-1/2/g%d news10/0/g%d NEWS10/1/g%d", g1, g2, g2, g1, gs)
	if got := strings.Join(view, " "); got != want {
		t.Errorf("code_case_collisions:\n got %s\nwant %s", got, want)
	}
	if n, err := migrations.CaseCollisions(ctx, db.DB); err != nil || n != 3 {
		t.Errorf("CaseCollisions: %d, %v; want 3", n, err)
	}
	var dups int
	db.Get(&dups, `SELECT count(*) FROM codes WHERE case_dup <> 0 AND lower(code) NOT IN ('abc-1', 'news10')`)
	if dups != 0 {
		t.Errorf("%d codes without a collision got a case_dup", dups)
	}

	// From now on a spelling of a stored code, legacy or not, is a duplicate, and a new
	// string goes in; the unique index is the only one on code.
	for _, c := range []string{"aBc-1", "SOLO", "News10", "OTHER"} {
		res := db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, $2) ON CONFLICT (lower(code), case_dup) DO NOTHING`, u1<<32|100, c)
		if n, _ := res.RowsAffected(); n != 0 {
			t.Errorf("%s went in beside a stored spelling", c)
		}
	}
	if _, err := db.Exec(`INSERT INTO codes (id, code) VALUES ($1, 'Solo')`, u1<<32|101); err == nil || err.(*pq.Error).Code != "23505" {
		t.Errorf("a plain insert of Solo: %v, want a unique violation", err)
	}
	var indexes []string
	db.Select(&indexes, `SELECT indexdef FROM pg_indexes WHERE tablename = 'codes' AND schemaname = $1 ORDER BY indexname`, db.Schema)
	if got := strings.Join(indexes, "\n"); strings.Count(got, "UNIQUE") != 2 || !strings.Contains(got, "(lower(code), case_dup)") {
		t.Errorf("indexes of codes:\n%s\nwant the primary key and the one on (lower(code), case_dup)", got)
	}

	// Checkout finds each legacy spelling as typed, and the first stored for any other
	// case; the statement probes the index, it does not scan codes.
	svc, err := checkout.New(checkout.Config{}, checkout.Deps{DB: db.DB, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for typed, group := range map[string]int64{"ABC-1": g1, "abc-1": g2, "Abc-1": g2, "aBC-1": g1, "NEWS10": gs, "news10": g1, "nEWS10": g1, "SOLO": g1} {
		v, err := svc.Validate(ctx, checkout.ValidateRequest{Code: typed, NoOrder: true})
		if err != nil {
			t.Fatal(err)
		}
		if v.Group == nil || v.Group.ID != group {
			t.Errorf("validate %q: group %+v, want %d (%+v)", typed, v.Group, group, v)
		}
	}
}

// TestCodeLookupProbesTheIndex: the look-up checkout makes (lower($1 COLLATE "C")) is
// answered by the unique index of migration 0024, not a scan of codes. On a schema
// without legacy collisions: where 0024 rewrote rows, PostgreSQL may hide the new index
// from transactions older than it (indcheckxmin) for a while.
func TestCodeLookupProbesTheIndex(t *testing.T) {
	db := testdb.New(t)
	db.MustExec(`INSERT INTO codes (id, code) SELECT i, 'C-' || i FROM generate_series(1, 10) i`)
	// (enable_seqscan off: on ten rows a scan is cheaper; the question is whether the
	// index can answer the predicate at all.)
	tx := db.MustBegin()
	defer tx.Rollback()
	tx.MustExec(`SET LOCAL enable_seqscan = off`)
	var planRows []string
	tx.Select(&planRows, `EXPLAIN (COSTS OFF) SELECT id FROM codes WHERE lower(code) = lower($1::text COLLATE "C") ORDER BY code = $1 DESC, case_dup LIMIT 1`, "abc-1")
	if plan := strings.Join(planRows, "\n"); !strings.Contains(plan, "codes_code_ci") {
		t.Errorf("the look-up does not use the index:\n%s", plan)
	}
}
