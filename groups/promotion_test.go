package groups_test

import (
	"context"
	"errors"
	"testing"

	"promopool/groups"
)

// TestSharedClaim: a claim on a shared group records an initial issue of its first
// code in use for every customer (many customers, one code: the code-uniqueness index
// leaves shared issues out), once per scope; a shared group with issues is archived,
// not removed, by a delete; one without is removed with its codes.
func TestSharedClaim(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", input(t, `{"name":"News","kind":"shared"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res := f.claim(t, g.ID, "mailing:1", "a"); len(res.Uncovered) != 1 {
		t.Fatalf("a shared group without codes covered %+v", res)
	}
	code := "NEWS10"
	if _, _, err := f.store.CreatePromotionCode(ctx, "t", g.ID, "", groups.PromotionCodeInput{Code: &code}); err != nil {
		t.Fatal(err)
	}
	res := f.claim(t, g.ID, "mailing:1", "a", "b", "c")
	if len(res.Codes) != 3 || res.Codes["a"] != "NEWS10" || res.Codes["c"] != "NEWS10" || res.Issued() != 3 {
		t.Fatalf("claim: %+v", res)
	}
	again := f.claim(t, g.ID, "mailing:1", "a", "d")
	if len(again.Existing) != 1 || again.Codes["d"] != "NEWS10" || again.Issued() != 1 {
		t.Fatalf("claim again under the scope: %+v", again)
	}
	if n := f.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'initial' AND shared AND released_at IS NULL`, g.ID); n != 4 {
		t.Fatalf("%d shared issues, want 4", n)
	}
	got, err := f.store.Get(ctx, g.ID)
	if err != nil || got.TermsLockedAt == nil || !got.Covers(1_000_000) || got.PromotionCodes != 1 {
		t.Fatalf("after the issues: %v %+v", err, got)
	}
	if res, err := f.store.Delete(ctx, "t", g.ID); err != nil || !res.Archived {
		t.Fatalf("deleting a shared group with issues: %v %+v", err, res)
	}
	// Without issues it goes, with its codes (the string may be used again).
	h, _ := f.store.Create(ctx, "t", input(t, `{"name":"Empty","kind":"shared"}`))
	other := "EMPTY1"
	if _, _, err := f.store.CreatePromotionCode(ctx, "t", h.ID, "", groups.PromotionCodeInput{Code: &other}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.store.Delete(ctx, "t", h.ID); err != nil || res.Archived || res.RemovedCodes != 1 {
		t.Fatalf("deleting an unused shared group: %v %+v", err, res)
	}
	if n := f.count(t, `SELECT count(*) FROM codes WHERE code = 'EMPTY1'`); n != 0 {
		t.Fatal("the removed group's code string stayed")
	}
	// A unique group still refuses a code issued twice.
	u := f.group(t, "Unique")
	f.load(t, u.ID, groups.FormatPlain, "U1\n")
	f.claim(t, u.ID, "s", "a")
	var id int64
	f.db.Get(&id, `SELECT id FROM codes WHERE code = 'U1'`)
	if _, err := f.db.Exec(`INSERT INTO issues (customer_id, group_id, code_id, scope, kind) VALUES ('b', $1, $2, 'x', 'initial')`, u.ID, id); err == nil {
		t.Fatal("a unique code was issued to a second customer")
	}
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceAPI, Actor: "t"}, nil); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("upload into the archived group: %v", err)
	}
}

// TestGenerateCode: generated codes have the length and alphabet they promise, and
// differ.
func TestGenerateCode(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		c, err := groups.GenerateCode()
		if err != nil || len(c) != groups.GeneratedCodeLength {
			t.Fatalf("%q %v", c, err)
		}
		for _, r := range c {
			if !containsRune(groups.GeneratedCodeAlphabet, r) {
				t.Fatalf("%q has %q", c, r)
			}
		}
		if seen[c] {
			t.Fatalf("%q twice in 1000", c)
		}
		seen[c] = true
	}
}

func containsRune(s string, r rune) bool {
	for _, x := range s {
		if x == r {
			return true
		}
	}
	return false
}
