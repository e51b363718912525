package groups_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/groups"
	"promopool/offers"
)

// input decodes a JSON request body into an Input, the way the API reads it.
func input(t *testing.T, body string) groups.Input {
	t.Helper()
	var in groups.Input
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return in
}

// storedTerms reads groups.terms as stored (NULL is "").
func (f *fixture) storedTerms(t *testing.T, id int64) string {
	t.Helper()
	var s *string
	if err := f.db.Get(&s, `SELECT terms::text FROM groups WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

func TestOfferTermsAndLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A group without terms keeps working as before: no terms, empty summary, no limits.
	plain := f.group(t, "Plain")
	if plain.Terms != nil || plain.TermsSummary != "" || plain.Kind != groups.KindUnique || plain.Status != groups.StatusActive ||
		plain.CodeBinding != groups.BindingHolder || plain.Limits.MaxRedemptions != nil {
		t.Fatalf("plain group: %+v", plain.Limits)
	}
	g, err := f.store.Create(ctx, "alice", input(t, `{"name":"Spring 20%",
		"terms":{"type":"percent","percent_off":20,"currency":"eur","max_discount":10000,"min_order":5000},
		"limits":{"max_redemptions":1000,"max_per_customer":1,"starts_at":"2026-03-01T00:00:00Z","ends_at":"2026-09-01T00:00:00Z","budget":500000}}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.TermsSummary != "20% off, at most 100 EUR, orders from 50 EUR" {
		t.Fatalf("summary %q", g.TermsSummary)
	}
	if g.Terms.Currency != "EUR" || g.Terms.Duration != offers.DurationOnce || *g.Limits.MaxRedemptions != 1000 ||
		*g.Limits.Budget != 500000 || !g.Limits.EndsAt.Equal(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("stored terms %+v limits %+v", g.Terms, g.Limits)
	}
	// The columns the checkout reads hold the same.
	var cols struct {
		Max    int64  `db:"max_redemptions"`
		Budget int64  `db:"budget"`
		Type   string `db:"type"`
	}
	if err := f.db.Get(&cols, `SELECT max_redemptions, budget, terms->>'type' AS type FROM groups WHERE id = $1`, g.ID); err != nil ||
		cols.Max != 1000 || cols.Budget != 500000 || cols.Type != "percent" {
		t.Fatalf("columns %+v %v", cols, err)
	}
	fixed, err := f.store.Create(ctx, "alice", input(t, `{"name":"Fifteen","terms":{"type":"fixed","amount_off":1500,"currency":"EUR"}}`))
	if err != nil || fixed.TermsSummary != "15 EUR off once" {
		t.Fatalf("fixed: %v %+v", err, fixed)
	}
	// PATCH: only what is sent changes; null removes a limit; a cap may be raised and
	// lowered; the window moves.
	g2, err := f.store.Update(ctx, "bob", g.ID, input(t, `{"limits":{"max_redemptions":50,"max_per_customer":null,"ends_at":"2026-12-01T00:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if *g2.Limits.MaxRedemptions != 50 || g2.Limits.MaxPerCustomer != nil || *g2.Limits.Budget != 500000 ||
		!g2.Limits.EndsAt.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || g2.TermsSummary != g.TermsSummary {
		t.Fatalf("after PATCH: %+v", g2.Limits)
	}
	// Terms change freely while nothing was issued.
	g3, err := f.store.Update(ctx, "bob", g.ID, input(t, `{"terms":{"type":"percent","percent_off":12.5,"currency":"EUR","applies_to":{"products":["sku-1"]},"duration":"repeating","duration_in_months":3}}`))
	if err != nil || g3.TermsSummary != "12.5% off selected products for 3 months" {
		t.Fatalf("new terms: %v %q", err, g3.TermsSummary)
	}
	// Every change is in the activity log with before and after.
	acts, err := f.store.ActivityPage(ctx, g.ID, 0, 10)
	if err != nil || len(acts) != 3 {
		t.Fatalf("activity %v %d", err, len(acts))
	}
	// jsonb stores its own spacing; compare without it.
	compact := func(b []byte) string { return strings.ReplaceAll(string(b), " ", "") }
	if !strings.Contains(compact(acts[0].Before), `"percent_off":20`) || !strings.Contains(compact(acts[0].After), `"percent_off":12.5`) ||
		!strings.Contains(compact(acts[1].Before), `"max_redemptions":1000`) || !strings.Contains(compact(acts[1].After), `"max_redemptions":50`) {
		t.Fatalf("activity: %s -> %s; %s -> %s", acts[0].Before, acts[0].After, acts[1].Before, acts[1].After)
	}
	// Caps never go below what is used (the checkout's usage).
	used := offers.Usage{Redemptions: 40, MaxPerCustomer: 2, Discounted: 300000}
	us := groups.NewStore(f.db.DB, groups.Config{Now: func() time.Time { return f.now },
		Usage: func(ctx context.Context, q sqlx.QueryerContext, id int64) (offers.Usage, error) { return used, nil }})
	for body, field := range map[string]string{
		`{"limits":{"max_redemptions":39}}`:   "limits.max_redemptions",
		`{"limits":{"max_per_customer":1}}`:   "limits.max_per_customer",
		`{"limits":{"budget":299999}}`:        "limits.budget",
		`{"limits":{"max_redemptions":1000}}`: "",
		`{"limits":{"max_redemptions":40}}`:   "",
		`{"limits":{"budget":300000}}`:        "",
	} {
		_, err := us.Update(ctx, "bob", g.ID, input(t, body))
		var inv *offers.InvalidError
		if field == "" && err != nil || field != "" && (!errors.As(err, &inv) || inv.Field != field) {
			t.Errorf("%s: %v, want field %q", body, err, field)
		}
	}
	// Removing the terms and the budget gives back a plain group.
	g4, err := f.store.Update(ctx, "bob", g.ID, input(t, `{"terms":null,"limits":{"budget":null}}`))
	if err != nil || g4.Terms != nil || g4.TermsSummary != "" || f.storedTerms(t, g.ID) != "" {
		t.Fatalf("removing terms: %v %+v", err, g4)
	}
}

func TestOfferBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", input(t, `{"name":"Held","terms":{"type":"fixed","amount_off":500,"currency":"EUR"},"limits":{"starts_at":"2026-01-01T00:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	before := f.storedTerms(t, g.ID)
	cases := []struct{ name, body, field string }{
		{"percent over 100", `{"terms":{"type":"percent","percent_off":100.5}}`, "terms.percent_off"},
		{"percent under 1", `{"terms":{"type":"percent","percent_off":0.5}}`, "terms.percent_off"},
		{"fixed without currency", `{"terms":{"type":"fixed","amount_off":500}}`, "terms.currency"},
		{"unknown currency", `{"terms":{"type":"fixed","amount_off":500,"currency":"EUX"}}`, "terms.currency"},
		{"negative amount", `{"terms":{"type":"fixed","amount_off":-5,"currency":"EUR"}}`, "terms.amount_off"},
		{"negative min order", `{"terms":{"type":"fixed","amount_off":5,"currency":"EUR","min_order":-1}}`, "terms.min_order"},
		{"max_discount on fixed", `{"terms":{"type":"fixed","amount_off":500,"currency":"EUR","max_discount":100}}`, "terms.max_discount"},
		{"unknown type", `{"terms":{"type":"bogo"}}`, "terms.type"},
		{"repeating without months", `{"terms":{"type":"percent","percent_off":5,"duration":"repeating"}}`, "terms.duration_in_months"},
		{"ends before starts", `{"limits":{"ends_at":"2025-12-31T00:00:00Z"}}`, "limits.ends_at"},
		{"ends at starts", `{"limits":{"ends_at":"2026-01-01T00:00:00Z"}}`, "limits.ends_at"},
		{"zero cap", `{"limits":{"max_redemptions":0}}`, "limits.max_redemptions"},
		{"negative per-customer cap", `{"limits":{"max_per_customer":-1}}`, "limits.max_per_customer"},
		{"budget without currency", `{"terms":{"type":"percent","percent_off":5},"limits":{"budget":100}}`, "limits.budget"},
		{"negative budget", `{"limits":{"budget":-100}}`, "limits.budget"},
		{"unknown status", `{"status":"live"}`, "status"},
		{"expired is derived", `{"status":"expired"}`, "status"},
		{"archived is a delete", `{"status":"archived"}`, "status"},
		{"kind after create", `{"kind":"shared"}`, "kind"},
		{"unknown binding", `{"code_binding":"anyone"}`, "code_binding"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.store.Update(ctx, "t", g.ID, input(t, c.body))
			var oie *offers.InvalidError
			var gie *groups.InvalidError
			switch {
			case errors.As(err, &oie):
				if oie.Field != c.field {
					t.Fatalf("field %q (%v), want %q", oie.Field, err, c.field)
				}
			case errors.As(err, &gie):
				if gie.Field != c.field {
					t.Fatalf("field %q (%v), want %q", gie.Field, err, c.field)
				}
			default:
				t.Fatalf("got %v, want an invalid field %s", err, c.field)
			}
			if got := f.storedTerms(t, g.ID); got != before {
				t.Fatalf("terms changed to %s", got)
			}
		})
	}
	// On create too, nothing is stored.
	for _, body := range []string{`{"name":"x","terms":{"type":"percent","percent_off":101}}`, `{"name":"x","kind":"both"}`,
		`{"name":"x","limits":{"budget":5}}`} {
		if _, err := f.store.Create(ctx, "t", input(t, body)); err == nil {
			t.Errorf("create %s: accepted", body)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM groups`); n != 1 {
		t.Fatalf("%d groups stored, want 1", n)
	}
	// A percentage with three decimals is refused as it is read.
	var in groups.Input
	if err := json.Unmarshal([]byte(`{"terms":{"type":"percent","percent_off":12.345}}`), &in); err == nil || !strings.Contains(err.Error(), "two decimal") {
		t.Fatalf("three decimals: %v", err)
	}
	// An unknown field inside terms is refused.
	if err := json.Unmarshal([]byte(`{"terms":{"type":"percent","percent_off":12,"percentoff":3}}`), &in); err == nil || !strings.Contains(err.Error(), "percentoff") {
		t.Fatalf("unknown terms field: %v", err)
	}
}

func TestOfferTermsLock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", input(t, `{"name":"Locked","terms":{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000},"limits":{"max_redemptions":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	f.load(t, g.ID, groups.FormatPlain, "L1\nL2\nL3\n")
	if g, _ = f.store.Get(ctx, g.ID); g.TermsLockedAt != nil || g.Locked() {
		t.Fatal("locked before any issue")
	}
	// Uploading does not lock; issuing does, in the issuing statement itself.
	f.claim(t, g.ID, "mailing:1", "c1")
	if g, _ = f.store.Get(ctx, g.ID); g.TermsLockedAt == nil {
		t.Fatal("issuing a code did not set terms_locked_at")
	}
	first := *g.TermsLockedAt
	f.claim(t, g.ID, "mailing:2", "c2")
	if g, _ = f.store.Get(ctx, g.ID); !g.TermsLockedAt.Equal(first) {
		t.Fatal("a later issue moved terms_locked_at")
	}
	terms := f.storedTerms(t, g.ID)
	for body, want := range map[string][]string{
		`{"terms":{"type":"percent","percent_off":25,"currency":"EUR","max_discount":10000}}`:                                        {"percent_off"},
		`{"terms":{"type":"fixed","amount_off":500,"currency":"EUR"}}`:                                                               {"type", "percent_off", "amount_off", "max_discount"},
		`{"terms":{"type":"percent","percent_off":20,"currency":"USD","max_discount":10000}}`:                                        {"currency"},
		`{"terms":{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000,"duration":"forever"}}`:                   {"duration"},
		`{"terms":{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000,"applies_to":{"exclude":["gift-card"]}}}`: {"applies_to"},
		`{"terms":null}`: {"type", "percent_off", "currency", "max_discount", "duration"},
	} {
		_, err := f.store.Update(ctx, "t", g.ID, input(t, body))
		var le *offers.LockedError
		if !errors.As(err, &le) || !errors.Is(err, offers.ErrTermsLocked) || !slices.Equal(le.Fields, want) {
			t.Errorf("%s: %v, want terms_locked on %v", body, err, want)
		}
	}
	if got := f.storedTerms(t, g.ID); got != terms {
		t.Fatalf("locked terms changed: %s -> %s", terms, got)
	}
	// What stays editable: name, description, status, caps, window, budget; and the
	// same terms sent again (no locked field changes).
	g2, err := f.store.Update(ctx, "t", g.ID, input(t, `{"name":"Locked 2","description":"d","status":"paused",
		"terms":{"type":"percent","percent_off":20,"currency":"eur","max_discount":10000},
		"limits":{"max_redemptions":5,"ends_at":"2027-01-01T00:00:00Z","budget":100000}}`))
	if err != nil || g2.Name != "Locked 2" || g2.Status != groups.StatusPaused || *g2.Limits.MaxRedemptions != 5 || *g2.Limits.Budget != 100000 {
		t.Fatalf("editable fields: %v %+v", err, g2)
	}
	// Back to draft is refused once codes were issued.
	var inv *groups.InvalidError
	if _, err := f.store.Update(ctx, "t", g.ID, input(t, `{"status":"draft"}`)); !errors.As(err, &inv) || inv.Field != "status" {
		t.Fatalf("draft after issue: %v", err)
	}
	// A group whose codes were issued before terms existed (terms_locked_at NULL) is
	// locked too: adding terms would change what its holders have.
	old := f.group(t, "Old")
	f.load(t, old.ID, groups.FormatPlain, "O1\n")
	f.claim(t, old.ID, "mailing:1", "c1")
	f.db.MustExec(`UPDATE groups SET terms_locked_at = NULL WHERE id = $1`, old.ID)
	if _, err := f.store.Update(ctx, "t", old.ID, input(t, `{"terms":{"type":"percent","percent_off":5}}`)); !errors.Is(err, offers.ErrTermsLocked) {
		t.Fatalf("terms on a group issued before terms: %v", err)
	}
	// The direct issue locks too.
	d, err := f.store.Create(ctx, "t", input(t, `{"name":"Direct","terms":{"type":"percent","percent_off":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	f.load(t, d.ID, groups.FormatPlain, "D1\n")
	if _, err := f.store.IssueDirect(ctx, d.ID, "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	if d, _ = f.store.Get(ctx, d.ID); d.TermsLockedAt == nil {
		t.Fatal("a direct issue did not lock the terms")
	}
}

// TestOfferLockProperty: any sequence of edits, with a code issued at a random point,
// never changes the terms of the group once a code was issued; before that, every
// valid edit of the terms is stored as sent.
func TestOfferLockProperty(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	randTerms := func() string {
		if r.IntN(8) == 0 {
			return `null`
		}
		cur := []string{"EUR", "USD", "JPY", "eur"}[r.IntN(4)]
		dur := []string{"", `,"duration":"once"`, `,"duration":"forever"`, `,"duration":"repeating","duration_in_months":` + fmt.Sprint(1+r.IntN(12))}[r.IntN(4)]
		scope := []string{"", `,"applies_to":{"products":["a"]}`, `,"applies_to":{"exclude":["b"]}`}[r.IntN(3)]
		minOrder := []string{"", fmt.Sprintf(`,"min_order":%d`, r.IntN(3)*1000)}[r.IntN(2)]
		if r.IntN(2) == 0 {
			maxd := []string{"", fmt.Sprintf(`,"max_discount":%d`, 1+r.IntN(3)*500)}[r.IntN(2)]
			return fmt.Sprintf(`{"type":"percent","percent_off":%d.%d,"currency":%q%s%s%s%s}`, r.IntN(102), r.IntN(10), cur, maxd, minOrder, dur, scope)
		}
		return fmt.Sprintf(`{"type":"fixed","amount_off":%d,"currency":%q%s%s%s}`, r.IntN(3)*700-1, cur, minOrder, dur, scope)
	}
	randEdit := func() string {
		var parts []string
		if r.IntN(2) == 0 {
			parts = append(parts, `"terms":`+randTerms())
		}
		if r.IntN(3) == 0 {
			parts = append(parts, fmt.Sprintf(`"name":"G %d"`, r.IntN(1000)))
		}
		if r.IntN(3) == 0 {
			parts = append(parts, fmt.Sprintf(`"limits":{"max_redemptions":%d}`, r.IntN(5)))
		}
		if r.IntN(4) == 0 {
			parts = append(parts, `"status":`+[]string{`"active"`, `"paused"`, `"draft"`}[r.IntN(3)])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	const rounds = 6
	for round := 0; round < rounds; round++ {
		// Odd rounds: a shared group, issued through its promotion code.
		var g *groups.Group
		if round%2 == 0 {
			g = f.group(t, fmt.Sprintf("Prop %d", round))
			f.load(t, g.ID, groups.FormatPlain, fmt.Sprintf("P%d-1\nP%d-2\n", round, round))
		} else {
			var err error
			if g, err = f.store.Create(ctx, "t", input(t, fmt.Sprintf(`{"name":"Prop %d","kind":"shared"}`, round))); err != nil {
				t.Fatal(err)
			}
			code := fmt.Sprintf("PROP%d", round)
			if _, _, err := f.store.CreatePromotionCode(ctx, "t", g.ID, "", groups.PromotionCodeInput{Code: &code}); err != nil {
				t.Fatal(err)
			}
		}
		issueAt := r.IntN(40)
		var locked string
		accepted, refused := 0, 0
		for step := 0; step < 60; step++ {
			if step == issueAt {
				f.db.MustExec(`UPDATE groups SET status = 'active' WHERE id = $1`, g.ID)
				if res := f.claim(t, g.ID, "mailing:p", "c1"); len(res.Codes) != 1 {
					t.Fatalf("round %d: the issue gave no code: %+v", round, res)
				}
				locked = f.storedTerms(t, g.ID)
			}
			body := randEdit()
			before := f.storedTerms(t, g.ID)
			in := input(t, body)
			_, err := f.store.Update(ctx, "t", g.ID, in)
			after := f.storedTerms(t, g.ID)
			if err != nil {
				refused++
				if after != before {
					t.Fatalf("round %d step %d: refused edit %s (%v) changed the terms %s -> %s", round, step, body, err, before, after)
				}
				continue
			}
			accepted++
			if step >= issueAt && after != locked {
				t.Fatalf("round %d step %d: edit %s changed locked terms %s -> %s", round, step, body, locked, after)
			}
			if step < issueAt && in.Terms.Set {
				// Before the lock a valid edit is stored as normalised.
				want := ""
				if in.Terms.Value != nil {
					b, _ := json.Marshal(in.Terms.Value)
					var norm map[string]any
					json.Unmarshal(b, &norm)
					b, _ = json.Marshal(norm)
					want = string(b)
				}
				var got string
				if after != "" {
					var m map[string]any
					json.Unmarshal([]byte(after), &m)
					b, _ := json.Marshal(m)
					got = string(b)
				}
				if got != want {
					t.Fatalf("round %d step %d: edit %s stored %s, want %s", round, step, body, got, want)
				}
			}
		}
		if accepted == 0 || refused == 0 {
			t.Fatalf("round %d: %d edits accepted, %d refused: the generator should produce both", round, accepted, refused)
		}
	}
}

func TestOfferStatus(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "Spring")
	f.load(t, g.ID, groups.FormatPlain, "S1\nS2\nS3\nS4\n")
	f.claim(t, g.ID, "mailing:1", "c1")

	// Paused: no claim, no direct issue; last_promocode still renders.
	p, err := f.store.Pause(ctx, "alice", g.ID)
	if err != nil || p.Status != groups.StatusPaused {
		t.Fatalf("pause: %v %+v", err, p)
	}
	if _, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "mailing:2", CustomerIDs: []string{"c2"}}); !errors.Is(err, groups.ErrGroupPaused) {
		t.Fatalf("claim of a paused group: %v", err)
	}
	if _, err := f.store.IssueDirect(ctx, g.ID, "c3", "key-3"); !errors.Is(err, groups.ErrGroupPaused) {
		t.Fatalf("direct issue of a paused group: %v", err)
	}
	last, err := f.store.Repeat(ctx, groups.RepeatRequest{GroupID: g.ID, Scope: "mailing:2", CustomerIDs: []string{"c1"}})
	if err != nil || last["c1"] != "S1" {
		t.Fatalf("last_promocode of a paused group: %v %v", last, err)
	}
	if n := f.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'initial'`, g.ID); n != 1 {
		t.Fatalf("%d initial issues, want 1", n)
	}
	// Pausing twice changes nothing; activate brings it back.
	if _, err := f.store.Pause(ctx, "alice", g.ID); err != nil {
		t.Fatal(err)
	}
	a, err := f.store.Activate(ctx, "bob", g.ID)
	if err != nil || a.Status != groups.StatusActive {
		t.Fatalf("activate: %v %+v", err, a)
	}
	if res := f.claim(t, g.ID, "mailing:2", "c2"); res.Codes["c2"] == "" {
		t.Fatal("no code after activate")
	}
	acts, _ := f.store.ActivityPage(ctx, g.ID, 0, 10)
	if acts[0].Action != groups.ActionActivate || acts[1].Action != groups.ActionPause || strings.ReplaceAll(string(acts[1].After), " ", "") != `{"status":"paused"}` {
		t.Fatalf("activity: %s %s %s", acts[0].Action, acts[1].Action, acts[1].After)
	}

	// Draft: saved, not usable until activated.
	d, err := f.store.Create(ctx, "alice", input(t, `{"name":"Draft","status":"draft","terms":{"type":"percent","percent_off":10}}`))
	if err != nil || d.Status != groups.StatusDraft {
		t.Fatalf("draft: %v %+v", err, d)
	}
	f.load(t, d.ID, groups.FormatPlain, "D1\n")
	if _, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: d.ID, Scope: "mailing:1", CustomerIDs: []string{"c1"}}); !errors.Is(err, groups.ErrGroupDraft) {
		t.Fatalf("claim of a draft: %v", err)
	}

	// Expired: derived from ends_at, or from every code having expired.
	e, err := f.store.Create(ctx, "alice", input(t, `{"name":"Ended","limits":{"ends_at":"2026-05-01T00:00:00Z"}}`))
	if err != nil || e.Status != groups.StatusExpired {
		t.Fatalf("past ends_at: %v %q", err, e.Status)
	}
	x := f.group(t, "Codes expired")
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: x.ID, Format: groups.FormatPlain, Source: groups.SourceAPI, Actor: "t",
		ExpiresAt: ptr(f.now.Add(time.Hour))}, strings.NewReader("X1\n")); err != nil {
		t.Fatal(err)
	}
	if x, _ = f.store.Get(ctx, x.ID); x.Status != groups.StatusActive {
		t.Fatalf("before expiry: %q", x.Status)
	}
	f.now = f.now.Add(2 * time.Hour)
	if x, _ = f.store.Get(ctx, x.ID); x.Status != groups.StatusExpired {
		t.Fatalf("every code expired: %q", x.Status)
	}

	// Archived: deleting a group with issued codes; never paused or activated again.
	arch := f.group(t, "Archived")
	f.load(t, arch.ID, groups.FormatPlain, "A1\n")
	f.claim(t, arch.ID, "mailing:1", "c1")
	if _, err := f.store.Delete(ctx, "alice", arch.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Activate(ctx, "alice", arch.ID); !errors.Is(err, groups.ErrGroupArchived) {
		t.Fatalf("activate archived: %v", err)
	}
	if _, err := f.store.Pause(ctx, "alice", 999999); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("pause missing: %v", err)
	}

	// The list filters by status, with counts per status.
	f.store.Pause(ctx, "alice", g.ID)
	names := func(list []groups.Group) string {
		var out []string
		for _, g := range list {
			out = append(out, g.Name)
		}
		return strings.Join(out, ",")
	}
	want := map[string]string{
		"":         "Codes expired,Draft,Ended,Spring",
		"all":      "Archived,Codes expired,Draft,Ended,Spring",
		"active":   "",
		"paused":   "Spring",
		"draft":    "Draft",
		"expired":  "Codes expired,Ended",
		"archived": "Archived",
	}
	for status, names1 := range want {
		list, counts, err := f.store.ListByStatus(ctx, status)
		if err != nil || names(list) != names1 {
			t.Errorf("status %q: %v %q, want %q", status, err, names(list), names1)
		}
		if counts != (groups.StatusCounts{All: 5, Active: 0, Draft: 1, Paused: 1, Expired: 2, Archived: 1}) {
			t.Errorf("status %q: counts %+v", status, counts)
		}
	}
	var inv *groups.InvalidError
	if _, _, err := f.store.ListByStatus(ctx, "live"); !errors.As(err, &inv) || inv.Field != "status" {
		t.Fatalf("unknown filter: %v", err)
	}
}
