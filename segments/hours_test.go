package segments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"promopool/internal/testdb"
	"promopool/migrations"
	"promopool/segments"
)

// TestHoursMigrationOnFoldedHistory: migration 0031 runs on a database whose history is
// folded up to a watermark: it backfills segment_hours with the live issues below the
// watermark only (the later ones, and the released ones, are not), and the next folds
// add the rest, so that the rows summed per key equal a recount of the live issues — and a windowed
// count read from them agrees with the history.
func TestHoursMigrationOnFoldedHistory(t *testing.T) {
	ctx := context.Background()
	db := testdb.Empty(t)
	before := 0
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Name == "segment_hours" {
			break
		}
		before = m.Version
	}
	if _, err := migrations.MigrateTo(ctx, db.DB, before); err != nil {
		t.Fatal(err)
	}
	var g1, g2 int64
	db.Get(&g1, `INSERT INTO groups (name) VALUES ('A') RETURNING id`)
	db.Get(&g2, `INSERT INTO groups (name) VALUES ('B') RETURNING id`)
	now := time.Now().UTC().Truncate(time.Second)
	// 300 issues over 10 days, some in the same hour of the same customer, some released;
	// the watermark half way.
	for i := range 300 {
		kind := "initial"
		if i%7 == 0 {
			kind = "repeat"
		}
		at := now.Add(-time.Duration(300-i) * 47 * time.Minute)
		db.MustExec(`INSERT INTO customers (id) VALUES ($1) ON CONFLICT DO NOTHING`, "c"+string(rune('a'+i%9)))
		db.MustExec(`INSERT INTO issues (customer_id, group_id, code_id, scope, kind, issued_at, released_at)
			VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN $6::timestamptz END)`,
			"c"+string(rune('a'+i%9)), []int64{g1, g2}[i%2], 1000+i, fmt.Sprintf("s%d", i), kind, at, kind == "initial" && i%11 == 0)
	}
	watermark := now.Add(-150 * 47 * time.Minute).Add(13 * time.Minute)
	db.MustExec(`UPDATE segment_fold SET folded_to = $1`, watermark)
	if _, err := migrations.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	var below, above int
	db.Get(&below, `SELECT count(*) FROM issues WHERE issued_at < $1 AND released_at IS NULL`, watermark)
	db.Get(&above, `SELECT coalesce(sum(n_initial + n_repeat), 0) FROM segment_hours`)
	if below == 0 || above != below {
		t.Fatalf("backfill: %d issues in segment_hours, want the %d live ones below the watermark", above, below)
	}
	svc := segments.New(db.DB, segments.Config{Now: func() time.Time { return now }})
	if _, err := svc.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	var diff int
	err = db.Get(&diff, `
		WITH want AS (
			SELECT i.group_id, segment_hour(i.issued_at) AS hour, c.num AS cust,
			       count(*) FILTER (WHERE kind = 'initial') AS n_initial, count(*) FILTER (WHERE kind = 'repeat') AS n_repeat
			FROM issues i JOIN customers c ON c.id = i.customer_id WHERE i.released_at IS NULL GROUP BY 1, 2, 3)
		, got AS (
			SELECT group_id, hour, cust, sum(n_initial) AS n_initial, sum(n_repeat) AS n_repeat FROM segment_hours
			GROUP BY 1, 2, 3 HAVING sum(n_initial) <> 0 OR sum(n_repeat) <> 0)
		SELECT count(*) FROM ((SELECT * FROM want EXCEPT ALL SELECT * FROM got)
		                      UNION ALL (SELECT * FROM got EXCEPT ALL SELECT * FROM want)) d`)
	if err != nil || diff != 0 {
		t.Fatalf("segment_hours differs from a recount of the live issues in %d rows (%v)", diff, err)
	}
	from, to := now.Add(-200*47*time.Minute+5*time.Minute), now.Add(-20*47*time.Minute-5*time.Minute)
	f := &segments.Filter{Quantity: &segments.Quantity{Op: "gte", Value: new(int64(3)), Groups: []segments.GroupRef{{ID: g1}},
		Kind: "all", Window: &segments.Window{From: &from, To: &to}}}
	c, err := svc.Count(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	db.Get(&want, `SELECT count(*) FROM (SELECT customer_id FROM issues WHERE group_id = $1 AND released_at IS NULL
		AND issued_at >= $2 AND issued_at < $3 GROUP BY 1 HAVING count(*) >= 3) x`, g1, from, to)
	if want == 0 || c.Count != want {
		t.Fatalf("count %d, want %d", c.Count, want)
	}
}
