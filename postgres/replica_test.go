package postgres_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"promopool/internal/pgcluster"
	"promopool/internal/syncbuf"
	"promopool/internal/testdb"
	"promopool/postgres"
)

// servedBy says which side a heavy read of pool runs on: "replica" or "primary".
func servedBy(t *testing.T, pool *postgres.ReadPool) string {
	t.Helper()
	tx, err := pool.BeginTxx(context.Background(), &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		t.Fatalf("a heavy read failed: %v", err)
	}
	defer tx.Rollback()
	var standby bool
	if err := tx.Get(&standby, `SELECT pg_is_in_recovery()`); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.QueryContext(context.Background(), `SELECT pg_is_in_recovery()`)
	if err != nil {
		t.Fatalf("a heavy query failed: %v", err)
	}
	defer rows.Close()
	var q bool
	for rows.Next() {
		rows.Scan(&q)
	}
	if q != standby {
		t.Fatalf("BeginTxx read from the standby: %v, QueryContext: %v", standby, q)
	}
	if standby {
		return "replica"
	}
	return "primary"
}

func waitStatus(t *testing.T, pool *postgres.ReadPool, what string, cond func(postgres.ReplicaStatus) bool) postgres.ReplicaStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := pool.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s (status %+v)", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadPool runs a real streaming standby: reads go to it while it keeps up; a
// standby whose replay is paused falls behind by the measured lag and, past MaxLag,
// reads go to the primary; resumed, they come back; a stopped standby sends reads to
// the primary at once, with a logged warning and no error.
func TestReadPool(t *testing.T) {
	ctx := context.Background()
	p := pgcluster.Primary(t, pgcluster.Options{})
	s := p.Standby(t, pgcluster.Options{})
	pdb, sdb := p.Open("postgres"), s.Open("postgres")
	logs := &syncbuf.Buffer{}
	pool, err := postgres.OpenReadPool(ctx, pdb, postgres.ReplicaConfig{URL: s.URL("postgres"), MaxLag: 1500 * time.Millisecond,
		CheckInterval: 100 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if st := pool.Status(); !st.Usable || st.Lag != 0 {
		t.Fatalf("a caught-up standby: %+v", st)
	}
	if got := servedBy(t, pool); got != "replica" {
		t.Fatalf("a healthy standby: reads served by the %s", got)
	}

	if _, err := sdb.Exec(`SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	if _, err := pdb.Exec(`CREATE TABLE t (v int)`); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, pool, "a paused standby lags", func(st postgres.ReplicaStatus) bool { return st.Lag > 0 })
	if !st.Usable {
		t.Fatalf("lag %s under MaxLag but not usable: %+v", st.Lag, st)
	}
	st = waitStatus(t, pool, "a standby behind MaxLag is left", func(st postgres.ReplicaStatus) bool { return !st.Usable })
	if st.Lag < 1500*time.Millisecond || !strings.Contains(st.Reason, "behind the primary") {
		t.Fatalf("left for %q at lag %s", st.Reason, st.Lag)
	}
	if got := servedBy(t, pool); got != "primary" {
		t.Fatalf("a lagging standby: reads served by the %s", got)
	}
	if _, err := sdb.Exec(`SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, pool, "a resumed standby is used again", func(st postgres.ReplicaStatus) bool { return st.Usable })
	if got := servedBy(t, pool); got != "replica" {
		t.Fatalf("a resumed standby: reads served by the %s", got)
	}

	s.Stop("immediate")
	if got := servedBy(t, pool); got != "primary" {
		t.Fatalf("a stopped standby: reads served by the %s", got)
	}
	if n := strings.Count(logs.String(), "read replica not used"); n < 2 {
		t.Fatalf("want a warning when the standby lagged and when it stopped, logs:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "read replica in use") {
		t.Fatalf("no note when the standby came back:\n%s", logs)
	}
}

// TestReadPoolUnreachable: a replica that never answers is no error at start; every
// read goes to the primary.
func TestReadPoolUnreachable(t *testing.T) {
	primary, err := postgres.Open(context.Background(), postgres.Config{URL: testdb.URL(), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	logs := &syncbuf.Buffer{}
	pool, err := postgres.OpenReadPool(context.Background(), primary, postgres.ReplicaConfig{
		URL: "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if st := pool.Status(); st.Usable || !strings.Contains(st.Reason, "unreachable") {
		t.Fatalf("status %+v", st)
	}
	if got := servedBy(t, pool); got != "primary" {
		t.Fatalf("served by the %s", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("no warning at start:\n%s", logs)
	}
}
