package segments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"promopool/internal/testdb"
	"promopool/segments"
)

// history is a small issue history written straight into the tables, with a model of
// it the tests compute expected answers from.
type history struct {
	t      *testing.T
	db     *testdb.DB
	svc    *segments.Service
	now    time.Time
	groups map[string]int64
	code   int64
	issues []issue
	known  map[string]bool // customers with a row (upserted or folded)
	folded bool
	uses   []use // succeeded redemptions, recounted from the raw rows (loadUses)
}

type issue struct {
	id       int64
	customer string
	group    int64
	kind     string
	at       time.Time
	released bool
}

func newHistory(t *testing.T, groupNames ...string) *history {
	t.Helper()
	db := testdb.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	h := &history{t: t, db: db, now: now, groups: map[string]int64{}, known: map[string]bool{}}
	h.svc = segments.New(db.DB, segments.Config{Now: func() time.Time { return now }, FoldBatch: 7})
	for _, n := range groupNames {
		var id int64
		if err := db.Get(&id, `INSERT INTO groups (name) VALUES ($1) RETURNING id`, n); err != nil {
			t.Fatal(err)
		}
		h.groups[n] = id
	}
	return h
}

func (h *history) customers(ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		if _, err := h.db.Exec(`INSERT INTO customers (id) VALUES ($1) ON CONFLICT DO NOTHING`, id); err != nil {
			h.t.Fatal(err)
		}
		h.known[id] = true
	}
}

// issue records an issue daysAgo days before now. Only issues before the first query
// may be back-dated (the fold's watermark is time: in production every issue is stamped
// with the clock); after it, pass a negative daysAgo for the clock's time.
func (h *history) issue(customer, group, kind string, daysAgo float64) int64 {
	h.t.Helper()
	h.code++
	var at any
	if daysAgo >= 0 {
		at = h.now.Add(-time.Duration(daysAgo * float64(24*time.Hour)))
	}
	var row struct {
		ID int64     `db:"id"`
		At time.Time `db:"issued_at"`
	}
	err := h.db.Get(&row, `INSERT INTO issues (customer_id, group_id, code_id, scope, kind, issued_at)
		VALUES ($1, $2, $3, $4, $5, coalesce($6, clock_timestamp())) RETURNING id, issued_at`,
		customer, h.groups[group], h.code, fmt.Sprintf("s%d", h.code), kind, at)
	if err != nil {
		h.t.Fatal(err)
	}
	h.issues = append(h.issues, issue{row.ID, customer, h.groups[group], kind, row.At, false})
	h.known[customer] = true
	return row.ID
}

func (h *history) release(id int64) {
	h.t.Helper()
	if _, err := h.db.Exec(`UPDATE issues SET released_at = now() WHERE id = $1`, id); err != nil {
		h.t.Fatal(err)
	}
	for i := range h.issues {
		if h.issues[i].id == id {
			h.issues[i].released = true
		}
	}
}

func (h *history) parse(s string) *segments.Filter {
	h.t.Helper()
	f, err := segments.Parse(strings.NewReader(s))
	if err != nil {
		h.t.Fatalf("parse %s: %v", s, err)
	}
	return f
}

// answer returns the sorted ids matching f, checking that Count, every Page and Stream
// agree.
func (h *history) answer(f *segments.Filter) []string {
	h.t.Helper()
	ctx := context.Background()
	if !h.folded {
		// The worker's first fold; later answers fold their short tail themselves.
		if _, err := h.svc.Fold(ctx); err != nil {
			h.t.Fatal(err)
		}
		h.folded = true
	}
	c, err := h.svc.Count(ctx, f)
	if err != nil {
		h.t.Fatalf("count: %v", err)
	}
	var paged []string
	cursor := ""
	for {
		p, err := h.svc.Page(ctx, f, cursor, 6)
		if err != nil {
			h.t.Fatalf("page: %v", err)
		}
		if p.Count.Count != c.Count {
			h.t.Fatalf("page count %d, count %d", p.Count.Count, c.Count)
		}
		paged = append(paged, p.CustomerIDs...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	var streamed []string
	err = h.svc.Stream(ctx, f, func(sc segments.Count) error {
		if sc.Count != c.Count {
			return fmt.Errorf("stream count %d, count %d", sc.Count, c.Count)
		}
		return nil
	}, func(id string) error { streamed = append(streamed, id); return nil })
	if err != nil {
		h.t.Fatalf("stream: %v", err)
	}
	if !slices.Equal(paged, streamed) {
		h.t.Fatalf("pages %v, stream %v", paged, streamed)
	}
	if int64(len(paged)) != c.Count {
		h.t.Fatalf("count %d, %d ids", c.Count, len(paged))
	}
	sort.Strings(paged)
	return paged
}

func TestFilters(t *testing.T) {
	h := newHistory(t, "Spring", "Summer", "Autumn")
	h.customers("c1", "c2", "c3", "c4", "c5")
	h.issue("c1", "Spring", "initial", 1)
	h.issue("c1", "Spring", "initial", 2)
	h.issue("c1", "Summer", "initial", 40)
	h.issue("c2", "Spring", "initial", 10)
	h.issue("c2", "Spring", "repeat", 5)
	h.issue("c3", "Summer", "initial", 100)
	h.issue("c3", "Autumn", "initial", 3)
	h.issue("c3", "Autumn", "initial", 4)
	h.issue("c3", "Autumn", "initial", 5)
	h.release(h.issue("c5", "Spring", "initial", 1)) // released before any fold
	h.issue("c6", "Summer", "initial", 2)            // never upserted as a customer
	// Autumn is archived: its issues stay on the profiles and filters still find it by name.
	if _, err := h.db.Exec(`UPDATE groups SET archived_at = now() WHERE name = 'Autumn'`); err != nil {
		t.Fatal(err)
	}
	// Initial counts: c1 3, c2 1, c3 4, c4 0, c5 0, c6 1; all: c2 2.
	from := h.now.AddDate(0, 0, -20).Format(time.RFC3339)
	to := h.now.AddDate(0, 0, -3).Add(time.Hour).Format(time.RFC3339)
	cases := []struct {
		name, filter string
		want         string
	}{
		{"eq", `{"quantity":{"op":"eq","value":1}}`, "c2 c6"},
		{"eq zero includes never issued", `{"quantity":{"op":"=","value":0}}`, "c4 c5"},
		{"ne", `{"quantity":{"op":"≠","value":1}}`, "c1 c3 c4 c5"},
		{"lt 1 includes never issued", `{"quantity":{"op":"lt","value":1}}`, "c4 c5"},
		{"lt 0 is empty", `{"quantity":{"op":"<","value":0}}`, ""},
		{"lte", `{"quantity":{"op":"lte","value":1}}`, "c2 c4 c5 c6"},
		{"gt", `{"quantity":{"op":">","value":3}}`, "c3"},
		{"gte", `{"quantity":{"op":">=","value":3}}`, "c1 c3"},
		{"between", `{"quantity":{"op":"between","min":1,"max":3}}`, "c1 c2 c6"},
		{"between from zero", `{"quantity":{"op":"between","min":0,"max":1}}`, "c2 c4 c5 c6"},
		{"kind all", `{"quantity":{"op":"gte","value":2,"kind":"all"}}`, "c1 c2 c3"},
		{"groups", `{"quantity":{"op":"gte","value":2,"groups":["Spring"]}}`, "c1"},
		{"groups zero", `{"quantity":{"op":"eq","value":0,"groups":["spring","Summer"]}}`, "c4 c5"},
		{"groups kind all", `{"quantity":{"op":"eq","value":2,"groups":["Spring"],"kind":"all"}}`, "c1 c2"},
		{"last days", `{"quantity":{"op":"gte","value":2,"window":{"last_days":7}}}`, "c1 c3"},
		{"last days exact", `{"quantity":{"op":"eq","value":3,"window":{"last_days":7}}}`, "c3"},
		{"last days zero", `{"quantity":{"op":"eq","value":0,"window":{"last_days":7}}}`, "c2 c4 c5"},
		{"last days past kept times", `{"quantity":{"op":"gte","value":6,"window":{"last_days":7}}}`, ""},
		{"absolute window", `{"quantity":{"op":"gte","value":1,"window":{"from":"` + from + `","to":"` + to + `"}}}`, "c2 c3"},
		{"window kind all", `{"quantity":{"op":"eq","value":2,"kind":"all","window":{"last_days":12}}}`, "c1 c2"},
		{"window groups", `{"quantity":{"op":"gte","value":1,"groups":["Summer"],"window":{"last_days":50}}}`, "c1 c6"},
		{"issued from any", `{"issued_from":{"groups":["Spring","Autumn"]}}`, "c1 c2 c3"},
		{"issued from all", `{"issued_from":{"groups":["Spring","Summer"],"match":"all"}}`, "c1"},
		{"issued from window, initial only", `{"issued_from":{"groups":["Spring"],"window":{"last_days":7}}}`, "c1"},
		{"issued from window, repeat counts with kind all", `{"issued_from":{"groups":["Spring"],"kind":"all","window":{"last_days":7}}}`, "c1 c2"},
		{"issued from window", `{"issued_from":{"groups":["Summer"],"window":{"last_days":30}}}`, "c6"},
		{"issued from bounded window", `{"issued_from":{"groups":["Spring","Summer"],"match":"all","window":{"from":"` + h.now.AddDate(0, 0, -50).Format(time.RFC3339) + `","to":"` + to + `"}}}`, ""},
		{"and not", `{"and":[{"issued_from":{"groups":["Spring"]}},{"not":{"issued_from":{"groups":["Summer"]}}}]}`, "c2"},
		{"not", `{"not":{"issued_from":{"groups":["Spring"]}}}`, "c3 c4 c5 c6"},
		{"and of nots", `{"and":[{"not":{"issued_from":{"groups":["Spring"]}}},{"not":{"issued_from":{"groups":["Autumn"]}}}]}`, "c4 c5 c6"},
		{"or", `{"or":[{"quantity":{"op":"between","min":2,"max":3}},{"issued_from":{"groups":["Autumn","Summer"]}}]}`, "c1 c3 c6"},
		{"nested", `{"or":[{"and":[{"quantity":{"op":"gte","value":1}},{"not":{"or":[{"issued_from":{"groups":["Summer"]}},{"issued_from":{"groups":["Autumn"]}}]}}]},{"quantity":{"op":"eq","value":0}}]}`, "c2 c4 c5"},
		{"double not", `{"not":{"not":{"quantity":{"op":"gt","value":2}}}}`, "c1 c3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			got := strings.Join(h.answer(h.parse(tc.filter)), " ")
			if got != tc.want {
				t.Fatalf("%s\n got: %q\nwant: %q", tc.filter, got, tc.want)
			}
		})
	}
}

func TestInvalidFilters(t *testing.T) {
	h := newHistory(t, "Spring")
	cases := []struct{ filter, path, reason string }{
		{`{"quantity":{"op":"like","value":1}}`, "$.quantity.op", "not an operator"},
		{`{"quantity":{"op":"between","min":1}}`, "$.quantity", "both min and max"},
		{`{"quantity":{"op":"between","min":3,"max":1}}`, "$.quantity.max", "less than min"},
		{`{"quantity":{"op":"gte"}}`, "$.quantity.value", "required"},
		{`{"quantity":{"op":"gte","value":-1}}`, "$.quantity.value", "0 or more"},
		{`{"and":[{"quantity":{"op":"gte","value":1}},{"issued_from":{"groups":[]}}]}`, "$.and[1].issued_from.groups", "at least one group"},
		{`{"or":[{"not":{"issued_from":{"groups":["Nope"]}}}]}`, "$.or[0].not.issued_from.groups[0]", `no group named "Nope"`},
		{`{"issued_from":{"groups":[99999]}}`, "$.issued_from.groups[0]", "no group with id 99999"},
		{`{"issued_from":{"groups":["Spring"],"match":"some"}}`, "$.issued_from.match", "not any or all"},
		{`{"quantity":{"op":"gte","value":1,"kind":"repeat"}}`, "$.quantity.kind", "not initial or all"},
		{`{"quantity":{"op":"gte","value":1,"window":{}}}`, "$.quantity.window", "last_days or from"},
		{`{"quantity":{"op":"gte","value":1,"window":{"from":"2026-02-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}}}`, "$.quantity.window.to", "after from"},
		{`{"and":[]}`, "$.and", "at least one"},
		{`{"not":{"quantity":{"op":"gte","value":1}},"or":[]}`, "$", "exactly one"},
		{`{"quantity":{"op":"gte","value":1,"colour":"red"}}`, "$", "unknown field"},
		{`{"quantity":{"op":"gte","value":"three"}}`, "$.quantity.value", "must be an integer, not string"},
		{strings.Repeat(`{"not":`, 40) + `{"quantity":{"op":"gte","value":1}}` + strings.Repeat(`}`, 40), "$" + strings.Repeat(".not", 32), "deeper than 32"},
	}
	for _, tc := range cases {
		f, err := segments.Parse(strings.NewReader(tc.filter))
		if err == nil {
			err = h.svc.Check(context.Background(), f)
		}
		var ie *segments.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want an InvalidError", tc.filter, err)
			continue
		}
		if ie.Path != tc.path || !strings.Contains(ie.Reason, tc.reason) {
			t.Errorf("%s: got %s: %s; want %s: …%s…", tc.filter, ie.Path, ie.Reason, tc.path, tc.reason)
		}
	}
	if _, err := h.svc.Page(context.Background(), h.parse(`{"quantity":{"op":"gte","value":0}}`), "bogus", 10); !errors.Is(err, segments.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// TestFoldIncrementalAndRelease: issues arriving after a fold, and releases of issues
// already folded, show in the next answer.
func TestFoldIncrementalAndRelease(t *testing.T) {
	h := newHistory(t, "A", "B")
	h.customers("x", "y")
	first := h.issue("x", "A", "initial", 3)
	h.issue("x", "A", "initial", 2)
	gte2 := h.parse(`{"quantity":{"op":"gte","value":2,"window":{"last_days":7}}}`)
	if got := h.answer(gte2); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("before release: %v", got)
	}
	h.release(first) // folded already: the trigger rebuilds x
	if got := h.answer(gte2); len(got) != 0 {
		t.Fatalf("after release: %v", got)
	}
	h.issue("y", "B", "initial", -1)
	h.issue("y", "B", "initial", -1)
	h.issue("x", "A", "initial", -1)
	if got := h.answer(gte2); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("after new issues: %v", got)
	}
	var counts string
	h.db.Get(&counts, `SELECT string_agg(n_initial::text || '/' || cardinality(recent_initial), ',' ORDER BY cust) FROM segment_customers`)
	if counts != "2/2,2/2" {
		t.Fatalf("summaries %s", counts)
	}
}

// TestFoldWaitsForOlderWriter: an issue inserted by a transaction that began before a
// fold but commits after it is not skipped.
func TestFoldWaitsForOlderWriter(t *testing.T) {
	h := newHistory(t, "A")
	h.customers("early", "late")
	ctx := context.Background()
	tx, err := h.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO issues (customer_id, group_id, code_id, scope, kind) VALUES ('early', $1, 1000000, 'a', 'initial')`, h.groups["A"]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	h.issue("late", "A", "initial", -1) // committed after the open transaction began
	time.Sleep(20 * time.Millisecond)
	if _, err := h.svc.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	any1 := h.parse(`{"quantity":{"op":"gte","value":1}}`)
	if got := h.answer(any1); !slices.Equal(got, []string{"early", "late"}) {
		t.Fatalf("got %v, want both customers", got)
	}
}

// TestFiltersMatchModel compares the SQL answers with a plain computation over random
// histories and random filters, folding in several steps and releasing some issues.
func TestFiltersMatchModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	names := []string{"G0", "G1", "G2", "G3"}
	for round := 0; round < 3; round++ {
		h := newHistory(t, names...)
		var custs []string
		for i := 0; i < 25; i++ {
			custs = append(custs, fmt.Sprintf("m%02d", i))
		}
		h.customers(custs[:20]...) // five only appear in issues
		var ids []int64
		for step := 0; step < 3; step++ {
			for i := 0; i < 80; i++ {
				kind := "initial"
				if rng.IntN(4) == 0 {
					kind = "repeat"
				}
				days := rng.Float64() * 60
				if step > 0 {
					days = -1 // after the first fold, issues are stamped by the clock
				}
				ids = append(ids, h.issue(custs[rng.IntN(len(custs))], names[rng.IntN(len(names))], kind, days))
			}
			for i := 0; i < 6; i++ {
				id := ids[rng.IntN(len(ids))]
				for _, is := range h.issues {
					if is.id == id && is.kind == "initial" && !is.released {
						h.release(id)
					}
				}
			}
			// An update of issues released already releases nothing again (the release
			// trigger appends -1 to segment_hours only for a row it released).
			if _, err := h.db.Exec(`UPDATE issues SET released_at = released_at WHERE released_at IS NOT NULL`); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 25; i++ {
				f := randomFilter(rng, names, h.now, h.times(), 0)
				b, _ := json.Marshal(f)
				pf := h.parse(string(b))
				got := h.answer(pf)
				want := h.model(pf)
				if !slices.Equal(got, want) {
					t.Fatalf("round %d step %d: %s\n sql: %v\nmodel: %v", round, step, b, got, want)
				}
			}
			// Filters the bitmaps answer: their count (segment_bits) must agree with the
			// model and with the ids listed by their SQL (answer checks both).
			for i := 0; i < 25; i++ {
				f := randomBitFilter(rng, names, 0)
				b, _ := json.Marshal(f)
				pf := h.parse(string(b))
				q, err := h.svc.Prepare(context.Background(), pf)
				if err != nil || !q.FromBitmaps() {
					t.Fatalf("%s: prepared %v, from bitmaps %v; want the bitmaps", b, err, err == nil && q.FromBitmaps())
				}
				if got, want := h.answer(pf), h.model(pf); !slices.Equal(got, want) {
					t.Fatalf("round %d step %d (bitmaps): %s\n sql: %v\nmodel: %v", round, step, b, got, want)
				}
			}
		}
	}
}

// times are the instants of the history's issues.
func (h *history) times() []time.Time {
	var ts []time.Time
	for _, is := range h.issues {
		ts = append(ts, is.at)
	}
	return ts
}

// randomFilter draws a filter over names. Its windows count back from now, or start
// and end at or near the instants of anchors (issues: the partial hours at a window's
// ends are read from the history, its whole hours from segment_hours), or on hour
// boundaries.
func randomFilter(rng *rand.Rand, names []string, now time.Time, anchors []time.Time, depth int) *segments.Filter {
	pick := func() []segments.GroupRef { return pickGroups(rng, names, 3) }
	near := func() time.Time {
		t := anchors[rng.IntN(len(anchors))]
		return t.Add([]time.Duration{0, 0, -time.Microsecond, time.Microsecond, -30 * time.Minute, 30 * time.Minute, -90 * time.Minute}[rng.IntN(7)])
	}
	window := func() *segments.Window {
		if len(anchors) > 0 && rng.IntN(2) == 0 {
			from, to := near(), near()
			switch rng.IntN(4) {
			case 0:
				from = from.Truncate(time.Hour)
			case 1:
				to = to.Truncate(time.Hour)
			case 2:
				return &segments.Window{From: &from}
			}
			if to.Before(from) {
				from, to = to, from
			}
			if !from.Before(to) {
				to = from.Add(time.Microsecond)
			}
			if rng.IntN(5) == 0 {
				return &segments.Window{To: &to}
			}
			return &segments.Window{From: &from, To: &to}
		}
		switch rng.IntN(4) {
		case 0:
			return &segments.Window{LastDays: 1 + rng.IntN(60)}
		case 1:
			from := now.AddDate(0, 0, -rng.IntN(60))
			to := from.Add(time.Duration(1+rng.IntN(40*24)) * time.Hour)
			return &segments.Window{From: &from, To: &to}
		case 2:
			from := now.AddDate(0, 0, -rng.IntN(60))
			return &segments.Window{From: &from}
		}
		return nil
	}
	kind := func() string { return []string{"", "initial", "all"}[rng.IntN(3)] }
	if depth < 3 {
		switch rng.IntN(6) {
		case 0, 1:
			f := &segments.Filter{}
			for i := 0; i < 1+rng.IntN(3); i++ {
				f.And = append(f.And, randomFilter(rng, names, now, anchors, depth+1))
			}
			if rng.IntN(2) == 0 {
				f.Or, f.And = f.And, nil
			}
			return f
		case 2:
			return &segments.Filter{Not: randomFilter(rng, names, now, anchors, depth+1)}
		}
	}
	if rng.IntN(2) == 0 {
		return &segments.Filter{IssuedFrom: &segments.IssuedFrom{Groups: pick(), Match: []string{"any", "all"}[rng.IntN(2)], Kind: kind(), Window: window()}}
	}
	q := &segments.Quantity{Op: []string{"eq", "ne", "lt", "lte", "gt", "gte", "between"}[rng.IntN(7)], Kind: kind(), Window: window()}
	v, w := int64(rng.IntN(7)), int64(rng.IntN(7))
	if q.Op == "between" {
		lo, hi := min(v, w), max(v, w)
		q.Min, q.Max = &lo, &hi
	} else {
		q.Value = &v
	}
	if rng.IntN(2) == 0 {
		q.Groups = pick()
	}
	return &segments.Filter{Quantity: q}
}

// pickGroups draws each of names with a chance of one in oneIn, and one of them when
// none was drawn.
func pickGroups(rng *rand.Rand, names []string, oneIn int) []segments.GroupRef {
	var gs []segments.GroupRef
	for _, n := range names {
		if rng.IntN(oneIn) == 0 {
			gs = append(gs, segments.GroupRef{Name: n})
		}
	}
	if len(gs) == 0 {
		gs = append(gs, segments.GroupRef{Name: names[rng.IntN(len(names))]})
	}
	return gs
}

// randomBitFilter makes a filter segment_bits answers: issued_from without a window
// (initial issues), quantities without a window or groups that exclude zero, and ANDs
// (with NOTs beside a positive part) and ORs of them.
func randomBitFilter(rng *rand.Rand, names []string, depth int) *segments.Filter {
	return randomBitTree(rng, depth, func() *segments.Filter {
		if rng.IntN(2) == 0 {
			return &segments.Filter{IssuedFrom: &segments.IssuedFrom{Groups: pickGroups(rng, names, 2), Match: []string{"any", "all"}[rng.IntN(2)]}}
		}
		q := &segments.Quantity{Kind: []string{"", "initial", "all"}[rng.IntN(3)]}
		q.Op, q.Value, q.Min, q.Max = randomBucketCount(rng)
		return &segments.Filter{Quantity: q}
	})
}

// randomBitTree combines leaves with AND, OR and NOT anywhere (a NOT at the top, an AND
// of NOTs only, an OR with a NOT in it): the bitmaps answer every such tree.
func randomBitTree(rng *rand.Rand, depth int, leaf func() *segments.Filter) *segments.Filter {
	maybeNot := func(f *segments.Filter) *segments.Filter {
		if rng.IntN(3) == 0 {
			return &segments.Filter{Not: f}
		}
		return f
	}
	if depth < 2 && rng.IntN(2) == 0 {
		f := &segments.Filter{}
		for range 1 + rng.IntN(3) {
			f.And = append(f.And, maybeNot(randomBitTree(rng, depth+1, leaf)))
		}
		if rng.IntN(2) == 0 {
			f.Or, f.And = f.And, nil
		}
		if depth == 0 {
			return maybeNot(f)
		}
		return f
	}
	if depth == 0 {
		return maybeNot(leaf())
	}
	return leaf()
}

// randomBucketCount draws a comparison whose accepted counts, or the counts it rejects
// when it accepts zero, lie within the bitmaps' buckets — and that leaves some counts
// out and takes some in (so the filter reads a bitmap at all).
func randomBucketCount(rng *rand.Rand) (op string, value, lo, hi *int64) {
	v, w := int64(rng.IntN(7)), int64(rng.IntN(7))
	switch o := []string{"between", "eq", "ne", "lt", "lte", "gt", "gte"}[rng.IntN(7)]; o {
	case "between":
		a, b := min(v, w), max(v, w)
		return o, nil, &a, &b
	case "lt", "gte":
		v = max(v, 1) // lt 0 takes nobody, gte 0 everybody
		return o, &v, nil, nil
	default:
		return o, &v, nil, nil
	}
}

// model evaluates f over the in-memory history.
func (h *history) model(f *segments.Filter) []string {
	var all []string
	for c := range h.known {
		all = append(all, c)
	}
	sort.Strings(all)
	var out []string
	for _, c := range all {
		if h.matches(f, c) {
			out = append(out, c)
		}
	}
	return out
}

func (h *history) matches(f *segments.Filter, c string) bool {
	switch {
	case f.And != nil:
		for _, x := range f.And {
			if !h.matches(x, c) {
				return false
			}
		}
		return true
	case f.Or != nil:
		for _, x := range f.Or {
			if h.matches(x, c) {
				return true
			}
		}
		return false
	case f.Not != nil:
		return !h.matches(f.Not, c)
	}
	in := func(w *segments.Window, at time.Time) bool {
		if w == nil {
			return true
		}
		if w.LastDays > 0 {
			return !at.Before(h.now.AddDate(0, 0, -w.LastDays))
		}
		return (w.From == nil || !at.Before(*w.From)) && (w.To == nil || at.Before(*w.To))
	}
	count := func(gs []segments.GroupRef, kind string, w *segments.Window) map[int64]int64 {
		n := map[int64]int64{}
		for _, is := range h.issues {
			if is.customer != c || is.released || (kind == "initial" && is.kind != "initial") || !in(w, is.at) {
				continue
			}
			if gs == nil || slices.ContainsFunc(gs, func(g segments.GroupRef) bool { return g.ID == is.group }) {
				n[is.group]++
			}
		}
		return n
	}
	if q := f.Quantity; q != nil {
		var n int64
		for _, k := range count(q.Groups, q.Kind, q.Window) {
			n += k
		}
		switch q.Op {
		case "eq":
			return n == *q.Value
		case "ne":
			return n != *q.Value
		case "lt":
			return n < *q.Value
		case "lte":
			return n <= *q.Value
		case "gt":
			return n > *q.Value
		case "gte":
			return n >= *q.Value
		}
		return n >= *q.Min && n <= *q.Max
	}
	if r := f.Redeemed; r != nil {
		return h.matchesRedeemed(r, c, in)
	}
	is := f.IssuedFrom
	per := count(is.Groups, is.Kind, is.Window)
	if is.Match == "all" {
		for _, g := range is.Groups {
			if per[g.ID] == 0 {
				return false
			}
		}
		return true
	}
	return len(per) > 0
}
