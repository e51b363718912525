package groups_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"promopool/groups"
)

// The lookups other packages make instead of reading the groups table: live ids by
// name, existence, names by id, and a segment's references.
func TestLookups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	spring, summer := f.group(t, "Spring"), f.group(t, "Summer")
	old := f.group(t, "Old")
	f.load(t, old.ID, groups.FormatPlain, "O1\n")
	f.claim(t, old.ID, "m", "a") // issued: deleting archives it
	if _, err := f.store.Delete(ctx, "t", old.ID); err != nil {
		t.Fatal(err)
	}
	live := f.group(t, "old") // a live group of the archived one's name

	ids, err := f.store.LiveIDs(ctx, []string{"SPRING", "summer", "Old", "nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"spring": spring.ID, "summer": summer.ID, "old": live.ID}; !maps.Equal(ids, want) {
		t.Fatalf("LiveIDs: %v, want %v", ids, want)
	}
	found, err := f.store.GroupsExist(ctx, []string{"sPrInG", "nothing", "OLD"})
	if err != nil || !slices.Equal(found, []bool{true, false, true}) {
		t.Fatalf("GroupsExist: %v %v", found, err)
	}

	if err := f.store.Exists(ctx, old.ID); err != nil {
		t.Fatalf("an archived group exists: %v", err)
	}
	if err := f.store.Exists(ctx, live.ID+100); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("Exists of no group: %v", err)
	}

	names, err := f.store.Names(ctx, []int64{spring.ID, old.ID, live.ID + 100})
	if want := map[int64]string{spring.ID: "Spring", old.ID: "Old"}; err != nil || !maps.Equal(names, want) {
		t.Fatalf("Names: %v %v, want %v", names, err, want)
	}

	byID, byName, err := f.store.Resolve(ctx, []int64{summer.ID, old.ID, live.ID + 100}, []string{" Spring ", "OLD", "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int64]bool{summer.ID: true, old.ID: true}; !maps.Equal(byID, want) {
		t.Fatalf("Resolve ids: %v, want %v", byID, want)
	}
	if want := map[string]int64{"spring": spring.ID, "old": live.ID}; !maps.Equal(byName, want) {
		t.Fatalf("Resolve names: %v, want %v (the live group of a name before the archived one)", byName, want)
	}
	if _, err := f.store.Delete(ctx, "t", live.ID); err != nil { // nothing issued: removed
		t.Fatal(err)
	}
	if _, byName, _ = f.store.Resolve(ctx, nil, []string{"old"}); byName["old"] != old.ID {
		t.Fatalf("Resolve of a name whose only group is archived: %v, want %d", byName, old.ID)
	}
}

// Balances and Snapshot count the way Get does, and list the codes about to expire.
func TestBalancesAndSnapshot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, empty := f.group(t, "G"), f.group(t, "Empty")
	soon, later := f.now.Add(24*time.Hour), f.now.Add(10*24*time.Hour)
	for _, up := range []struct {
		body string
		exp  time.Time
	}{{"S1\nS2\nS3\n", soon}, {"L1\n", later}, {"P1\n", f.now.Add(-time.Hour)}} {
		exp := up.exp
		if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceAPI,
			Actor: "t", ExpiresAt: &exp}, strings.NewReader(up.body)); err != nil {
			t.Fatal(err)
		}
	}
	f.claim(t, g.ID, "m", "a")
	window := f.now.Add(7 * 24 * time.Hour)

	list, err := f.store.Balances(ctx, f.now, window)
	if err != nil || len(list) != 2 {
		t.Fatalf("Balances: %d groups, %v", len(list), err)
	}
	got, gotEmpty := list[0], list[1]
	if got.ID != g.ID || got.Total != 5 || got.Active != 3 || got.Issued != 1 || got.Expired != 1 {
		t.Fatalf("Balances of G: %+v", got.Group)
	}
	if got.SoonestExpiry == nil || !got.SoonestExpiry.Equal(soon) {
		t.Fatalf("soonest expiry %v, want %v", got.SoonestExpiry, soon)
	}
	if gotEmpty.ID != empty.ID || gotEmpty.Total != 0 || gotEmpty.SoonestExpiry != nil || gotEmpty.State != groups.StateEmpty {
		t.Fatalf("Balances of an empty group: %+v", gotEmpty)
	}

	snap, err := f.store.Snapshot(ctx, nil, g.ID, f.now, window)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.store.Get(ctx, g.ID)
	if snap.Active != want.Active || snap.Total != want.Total || snap.Name != "G" {
		t.Fatalf("Snapshot %+v, Get %+v", snap.Group, want)
	}
	if len(snap.Expiring) != 1 || !snap.Expiring[0].ExpiresAt.Equal(soon) || snap.Expiring[0].Count != 2 {
		t.Fatalf("expiring within the window: %+v, want the 2 active codes of %v", snap.Expiring, soon)
	}
	tx := f.db.MustBegin()
	defer tx.Rollback()
	if _, err := f.store.Snapshot(ctx, tx, g.ID+100, f.now, window); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("Snapshot of no group: %v", err)
	}
}
