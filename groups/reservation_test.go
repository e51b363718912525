package groups_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"promopool/groups"
)

func TestReleaseReturnsCodeAndKeepsHistory(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	f.load(t, g.ID, groups.FormatPlain, "R1\nR2\n")
	f.claim(t, g.ID, "m", "a", "b")
	n, err := f.store.Release(ctx, g.ID, "m", []string{"a", "nobody"})
	if err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 1 || gr.Issued != 1 {
		t.Fatalf("after release active %d issued %d", gr.Active, gr.Issued)
	}
	// The returned code goes out again; the same scope may now issue "a" a new one.
	res := f.claim(t, g.ID, "m2", "c")
	if res.Codes["c"] != "R1" {
		t.Fatalf("returned code not reissued: %v", res.Codes)
	}
	hist, err := f.store.CustomerIssues(ctx, "a", 0, 0)
	if err != nil || len(hist) != 1 || hist[0].ReleasedAt == nil || hist[0].Code != "R1" {
		t.Fatalf("released history %+v %v", hist, err)
	}
	f.balanced(t, g.ID)
	// Undo removes a returned code from the pool as well.
	f.store.Release(ctx, g.ID, "m2", []string{"c"})
	var up int64
	f.db.Get(&up, `SELECT id FROM uploads WHERE group_id = $1`, g.ID)
	u, err := f.store.Undo(ctx, "t", up)
	if err != nil || *u.Removed != 1 {
		t.Fatalf("undo: %+v %v", u, err)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 0 || gr.Issued != 1 || gr.Total != 1 {
		t.Fatalf("after undo %+v", gr)
	}
}

func TestRecoverReservations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	f.load(t, g.ID, groups.FormatPlain, "V1\nV2\nV3\nV4\n")
	// Simulate a claim that died between reserving and issuing: advance the cursor by 2
	// and leave a reservation row, as reserve does.
	f.take(t, g.ID, 2)
	var first, last int64
	f.db.Get(&first, `SELECT first_id FROM code_ranges WHERE group_id = $1`, g.ID)
	f.db.Get(&last, `SELECT next_id - 1 FROM code_ranges WHERE group_id = $1`, g.ID)
	if _, err := f.db.Exec(`INSERT INTO reservations (group_id, scope, range_ids, span_lo, span_hi, free_ids, created_at)
		SELECT $1, 'm', ARRAY[id], ARRAY[$2::bigint], ARRAY[$3::bigint], '{}', $4 FROM code_ranges WHERE group_id = $1`, g.ID, first, last, f.now); err != nil {
		t.Fatal(err)
	}
	if n, err := f.store.RecoverReservations(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("young reservation recovered: %d %v", n, err)
	}
	f.now = f.now.Add(2 * time.Minute)
	n, err := f.store.RecoverReservations(ctx, time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("recover: %d %v", n, err)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 4 || gr.Issued != 0 {
		t.Fatalf("after recovery active %d issued %d", gr.Active, gr.Issued)
	}
	// The recovered codes go out first, each once.
	res := f.claim(t, g.ID, "m", "a", "b", "c", "d", "e")
	got := []string{res.Codes["a"], res.Codes["b"], res.Codes["c"], res.Codes["d"]}
	if strings.Join(got, ",") != "V1,V2,V3,V4" || len(res.Uncovered) != 1 {
		t.Fatalf("after recovery: %v", res.Codes)
	}
	f.balanced(t, g.ID)
}

// TestClaimReservationLost: a recoverer that takes a claim's reservation before the
// claim records its issues (here a trigger deleting every new reservation at once)
// makes the claim fail with ErrReservationLost and record nothing.
func TestClaimReservationLost(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	f.load(t, g.ID, groups.FormatPlain, "L1\nL2\n")
	f.db.MustExec(`
		CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN DELETE FROM reservations WHERE id = NEW.id; RETURN NULL; END $$`)
	f.db.MustExec(`CREATE TRIGGER steal AFTER INSERT ON reservations FOR EACH ROW EXECUTE FUNCTION steal()`)
	_, err := f.store.Claim(context.Background(), groups.ClaimRequest{GroupID: g.ID, Scope: "m", CustomerIDs: []string{"a", "b"}})
	if !errors.Is(err, groups.ErrReservationLost) {
		t.Fatalf("got %v, want ErrReservationLost", err)
	}
	if n := f.count(t, `SELECT count(*) FROM issues`); n != 0 {
		t.Fatalf("%d issue rows recorded for a lost reservation", n)
	}
}

// ReservationsHeld sees a claim's reservation until the claim issues it or the
// reservation is recovered, and active codes left in the pool; an empty group, and a
// group whose last code was issued, hold nothing.
func TestReservationsHeld(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, h := f.group(t, "G"), f.group(t, "H")
	f.load(t, g.ID, groups.FormatPlain, "H1\n")
	held := func(id int64) bool {
		t.Helper()
		ok, err := f.store.ReservationsHeld(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !held(g.ID) {
		t.Fatal("a group with an active code reported as holding nothing")
	}
	if held(h.ID) {
		t.Fatal("an empty group reported as holding codes")
	}
	var during bool
	restore := groups.SetClaimHooks(f.store, func() { during = held(g.ID) }, nil)
	f.claim(t, g.ID, "m", "a")
	restore()
	if !during {
		t.Fatal("no reservation held between reserving and issuing")
	}
	if held(g.ID) {
		t.Fatal("reservation still held after the claim issued the group's last code")
	}
}
