package groups_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"promopool/groups"
)

// TestVoidUnissuedNeverIssued (issue 17 item 7): codes voided before they were issued —
// ahead of the cursor, back on the free list after a release, inside a claim's
// reservation — are never issued by the claims that then drain the whole group; a code
// voided after its issue keeps its holder; the balance counts each voided code out; the
// void is idempotent and logged; an undo still works.
func TestVoidUnissuedNeverIssued(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "Spring")
	var lines []string
	for i := 1; i <= 20; i++ {
		lines = append(lines, fmt.Sprintf("V%02d", i))
	}
	rep := f.load(t, g.ID, groups.FormatPlain, strings.Join(lines, "\n"))
	first := f.claim(t, g.ID, "mailing:1", "c1", "c2", "c3") // V01 V02 V03
	if first.Codes["c1"] != "V01" || first.Codes["c2"] != "V02" {
		t.Fatalf("first claim: %v", first.Codes)
	}
	if n, err := f.store.Release(ctx, g.ID, "mailing:1", []string{"c1"}); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err) // V01 is back on the free list
	}

	void := func(code string) *groups.CodeInfo {
		t.Helper()
		info, voided, err := f.store.VoidCode(ctx, "tester", code, "leaked")
		if err != nil || !voided || info.Status != groups.CodeVoided || info.Void == nil || info.Void.Reason != "leaked" {
			t.Fatalf("void %s: %+v %v %v", code, info, voided, err)
		}
		return info
	}
	issued := void("v02") // issued: keeps its holder; typed in another case
	if issued.Code != "V02" || issued.Holder == nil || issued.Holder.CustomerID != "c2" {
		t.Fatalf("voided issued code: %+v", issued)
	}
	void("V01")                                              // on the free list
	for _, c := range []string{"V05", "V10", "V20", "v07"} { // ahead of the cursor
		void(c)
	}
	unissued := map[string]bool{"V01": true, "V05": true, "V07": true, "V10": true, "V20": true}
	gr := f.balanced(t, g.ID)
	if gr.Total != 15 || gr.Issued != 2 || gr.Active != 13 {
		t.Fatalf("after 5 voids of unissued codes: total %d issued %d active %d, want 15 2 13", gr.Total, gr.Issued, gr.Active)
	}

	// A claim in flight whose reservation holds a code being voided: the void takes the
	// reservation back (the claim issues nothing and may be retried), the other codes
	// return to the pool.
	var inFlight *groups.CodeInfo
	restore := groups.SetClaimHooks(f.store, func() { inFlight = void("V04") }, nil)
	_, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "mailing:2", CustomerIDs: []string{"d1", "d2", "d3"}})
	restore()
	if !errors.Is(err, groups.ErrReservationLost) || inFlight == nil || inFlight.Holder != nil {
		t.Fatalf("claim whose reserved code was voided: %v (void %+v)", err, inFlight)
	}
	unissued["V04"] = true
	if gr := f.balanced(t, g.ID); gr.Total != 14 || gr.Issued != 2 || gr.Active != 12 {
		t.Fatalf("after the void in flight: total %d issued %d active %d, want 14 2 12", gr.Total, gr.Issued, gr.Active)
	}

	// Idempotent: the same answer, nothing logged twice.
	again, voided, err := f.store.VoidCode(ctx, "someone-else", "V05", "other reason")
	if err != nil || voided || again.Void.Actor != "tester" || again.Void.Reason != "leaked" {
		t.Fatalf("second void: %+v %v %v", again, voided, err)
	}
	if n := f.count(t, `SELECT count(*) FROM activity WHERE group_id = $1 AND action = 'code_void'`, g.ID); n != 7 {
		t.Fatalf("%d code_void entries in the activity log, want 7", n)
	}
	if _, _, err := f.store.VoidCode(ctx, "tester", "NOPE", ""); !errors.Is(err, groups.ErrCodeNotFound) {
		t.Fatalf("void of no code: %v", err)
	}

	// Drain the whole group, in batches and concurrently: exactly the active codes go out,
	// none of them voided.
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < 3; b++ {
				res, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "mailing:3", CustomerIDs: customers(fmt.Sprintf("w%d-%d-", w, b), 4)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for c, code := range res.Codes {
					got[c] = code
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 12 {
		t.Errorf("the drain issued %d codes, want the 12 active", len(got))
	}
	for c, code := range got {
		if unissued[code] || code == "V02" {
			t.Errorf("voided code %s issued to %s", code, c)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM issues i JOIN codes c ON c.id = i.code_id
		WHERE c.code = ANY('{V01,V04,V05,V07,V10,V20}') AND i.issued_at > (SELECT min(voided_at) FROM code_voids)`); n != 0 {
		t.Errorf("%d issues of codes voided before their issue", n)
	}
	gr = f.balanced(t, g.ID)
	if gr.Total != 14 || gr.Active != 0 || gr.Issued != 14 {
		t.Errorf("drained: total %d issued %d active %d, want 14 14 0", gr.Total, gr.Issued, gr.Active)
	}
	if held, err := f.store.ReservationsHeld(ctx, g.ID); err != nil || held {
		t.Errorf("a drained group with voided codes still looks refillable: %v %v", held, err)
	}
	// A release of the voided issued code does not put it back.
	if n, err := f.store.Release(ctx, g.ID, "mailing:1", []string{"c2"}); err != nil || n != 1 {
		t.Fatalf("release of the voided issued code: %d %v", n, err)
	}
	if n := f.count(t, `SELECT count(*) FROM returned_codes`); n != 0 {
		t.Errorf("a voided code went back to the pool")
	}
	// The profile keeps the voided code, marked.
	issues, err := f.store.CustomerIssues(ctx, "c3", 0, 10)
	if err != nil || len(issues) != 1 || issues[0].VoidedAt != nil {
		t.Fatalf("c3's profile: %+v %v", issues, err)
	}
	issues, _ = f.store.CustomerIssues(ctx, "c2", 0, 10)
	if len(issues) != 1 || issues[0].Code != "V02" || issues[0].VoidedAt == nil {
		t.Fatalf("c2's profile: %+v", issues)
	}
	// Undo: the voided codes never issued go with the upload's rest; issued ones stay.
	if _, err := f.store.Undo(ctx, "tester", rep.ID); err != nil {
		t.Fatalf("undo with voided codes: %v", err)
	}
	if _, err := f.store.LookupCode(ctx, "V20"); !errors.Is(err, groups.ErrCodeNotFound) {
		t.Errorf("V20 after the undo: %v", err)
	}
}

// TestVoidRacesClaims: voids of random codes while eight claimers drain a group. Every
// code that was unissued when its void committed is never issued, and the balance ends
// exact.
func TestVoidRacesClaims(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "Race")
	var b strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&b, "R%05d\n", i)
	}
	f.load(t, g.ID, groups.FormatPlain, b.String())
	var wg sync.WaitGroup
	var mu sync.Mutex
	issued := map[string]bool{}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				res, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "mailing:1", CustomerIDs: customers(fmt.Sprintf("w%d-%d-", w, i), 25)})
				if errors.Is(err, groups.ErrReservationLost) {
					continue // a void took the reservation back: the batch is retried
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, code := range res.Codes {
					issued[code] = true
				}
				mu.Unlock()
				if len(res.Uncovered) > 0 {
					return
				}
			}
		}()
	}
	voidedUnissued := map[string]bool{}
	for i := 0; i < 150; i++ {
		code := fmt.Sprintf("r%05d", 1+rand.IntN(2000))
		info, voided, err := f.store.VoidCode(ctx, "tester", code, "")
		if err != nil {
			t.Fatalf("void %s: %v", code, err)
		}
		if voided && info.Holder == nil {
			voidedUnissued[info.Code] = true
		}
	}
	wg.Wait()
	for code := range voidedUnissued {
		if issued[code] {
			t.Errorf("%s was voided unissued, then issued", code)
		}
	}
	gr := f.balanced(t, g.ID)
	if gr.Active != 0 || gr.Total != 2000-int64(len(voidedUnissued)) || gr.Issued != int64(len(issued)) {
		t.Errorf("after the race: total %d issued %d active %d; %d voided unissued, %d issued", gr.Total, gr.Issued, gr.Active, len(voidedUnissued), len(issued))
	}
	t.Logf("%d codes issued, %d voided before their issue", len(issued), len(voidedUnissued))
}

// TestVoidPromotionCodeConcurrently: a shared promotion code has no range to lock; five
// concurrent voids make one void, logged once, and all answer it.
func TestVoidPromotionCodeConcurrently(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "tester", groups.Input{Name: ptr("News"), Kind: ptr("shared")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.CreatePromotionCode(ctx, "tester", g.ID, "", groups.PromotionCodeInput{Code: ptr("NEWS10")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	made, answers := 0, map[string]bool{}
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, voided, err := f.store.VoidCode(ctx, fmt.Sprint("v", i), "news10", "")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if voided {
				made++
			}
			answers[info.Void.Actor+info.Void.VoidedAt.String()] = true
		}()
	}
	wg.Wait()
	if made != 1 || len(answers) != 1 {
		t.Fatalf("%d voids made, %d different answers; want 1 and 1", made, len(answers))
	}
	if n := f.count(t, `SELECT count(*) FROM activity WHERE group_id = $1 AND action = 'code_void'`, g.ID); n != 1 {
		t.Fatalf("%d code_void entries, want 1", n)
	}
}
