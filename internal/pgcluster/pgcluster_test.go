package pgcluster_test

import (
	"testing"
	"time"

	"promopool/internal/pgcluster"
)

// TestStandbyStreams: a row written on the primary is read on the standby once it
// caught up, and the standby refuses writes.
func TestStandbyStreams(t *testing.T) {
	p := pgcluster.Primary(t, pgcluster.Options{})
	s := p.Standby(t, pgcluster.Options{})
	pdb, sdb := p.Open("postgres"), s.Open("postgres")
	if _, err := pdb.Exec(`CREATE TABLE t (v int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	pgcluster.WaitCaughtUp(t, pdb, sdb, 30*time.Second)
	var v int
	if err := sdb.Get(&v, `SELECT v FROM t`); err != nil || v != 42 {
		t.Fatalf("standby reads %d, %v", v, err)
	}
	if _, err := sdb.Exec(`INSERT INTO t VALUES (1)`); err == nil {
		t.Fatal("the standby accepted a write")
	}
}
