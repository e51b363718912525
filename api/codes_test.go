package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"promopool/api"
	"promopool/auth"
)

// upload posts text/plain codes to a group and returns the report.
func (c *client) upload(group, body string) map[string]any {
	c.t.Helper()
	status, v := c.do("POST", group+"/codes", "text/plain", strings.NewReader(body))
	if status != 201 {
		c.t.Fatalf("upload to %s: %d %v", group, status, v)
	}
	return v
}

// duplicateLines maps each duplicate example's line to its reason.
func duplicateLines(rep map[string]any) map[float64]string {
	out := map[float64]string{}
	ex, _ := rep["duplicate_examples"].([]any)
	for _, e := range ex {
		m := e.(map[string]any)
		out[m["line"].(float64)] = m["code"].(string) + ": " + m["reason"].(string)
	}
	return out
}

// TestCodesCaseInsensitiveOverHTTP (issue 17 item 6): codes differing only in case are
// one code at upload (within the file, across groups, against promotion codes), at
// validate and at redeem, and the stored spelling is the uploaded one.
func TestCodesCaseInsensitiveOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	status, g1 := c.json("POST", "/v1/groups", `{"name":"Spring","code_binding":"bearer","terms":{"type":"fixed","amount_off":500,"currency":"EUR"}}`)
	if status != 201 {
		t.Fatalf("group: %d %v", status, g1)
	}
	p1 := "/v1/groups/" + jsonNum(g1["id"])
	if status, v := c.json("POST", "/v1/groups", `{"name":"Summer"}`); status != 201 {
		t.Fatalf("group: %d %v", status, v)
	}

	// Within one file: the first line of a code wins, whatever its case.
	rep := c.upload(p1, "new-00001\nNEW-00001\nMixed-AbC\nmixed-abc\nMIXED-ABC\nplain\n")
	if rep["accepted"] != 3.0 || rep["duplicates"] != 3.0 || rep["invalid"] != 0.0 {
		t.Fatalf("mixed-case upload: %v", rep)
	}
	dups := duplicateLines(rep)
	for line, want := range map[float64]string{
		2: `NEW-00001: repeats line 1 as "new-00001"`,
		4: `mixed-abc: repeats line 3 as "Mixed-AbC"`,
		5: `MIXED-ABC: repeats line 3 as "Mixed-AbC"`,
	} {
		if !strings.HasPrefix(dups[line], want) {
			t.Errorf("duplicate at line %v: %q, want %q…", line, dups[line], want)
		}
	}
	// Across the account: another group, and the same spelling (no "as" then).
	rep = c.upload("/v1/groups/2", "fresh\nNew-00001\nPLAIN\nplain\n")
	if rep["accepted"] != 1.0 || rep["duplicates"] != 3.0 {
		t.Fatalf("second group's upload: %v", rep)
	}
	dups = duplicateLines(rep)
	for line, want := range map[float64]string{
		2: `New-00001: already stored in group "Spring" as "new-00001"`,
		3: `PLAIN: already stored in group "Spring" as "plain"`,
		4: `plain: already stored in group "Spring"`,
	} {
		if !strings.HasPrefix(dups[line], want) {
			t.Errorf("duplicate at line %v: %q, want %q…", line, dups[line], want)
		}
	}
	if strings.Contains(dups[4], " as ") {
		t.Errorf("same spelling reported as another: %q", dups[4])
	}

	// Shared promotion codes are in the same code space: a string taken in any case is
	// code_taken, and an upload meets a promotion code in any case.
	shared := c.createShared(`{"name":"Newsletter","kind":"shared","terms":{"type":"fixed","amount_off":1000,"currency":"EUR"}}`)
	if status, v := c.promo(shared, "", `{"code":"FRESH"}`); status != 409 || errCode(v) != "code_taken" {
		t.Fatalf("promotion code FRESH over uploaded fresh: %d %v", status, v)
	}
	if status, v := c.promo(shared, "", `{"code":"News10"}`); status != 201 || v["code"] != "News10" {
		t.Fatalf("promotion code News10: %d %v", status, v)
	}
	// The same string in another case is not a retry of it: it is taken.
	if status, v := c.promo(shared, "", `{"code":"NEWS10"}`); status != 409 || errCode(v) != "code_taken" {
		t.Fatalf("promotion code NEWS10 over News10: %d %v", status, v)
	}
	rep = c.upload(p1, "news10\n")
	if dups = duplicateLines(rep); rep["accepted"] != 0.0 || !strings.HasPrefix(dups[1], `news10: already stored in group "Newsletter" as "News10"`) {
		t.Fatalf("upload over a promotion code: %v", rep)
	}

	// Validate and redeem find a code in any case, and answer its stored spelling.
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]`
	for _, typed := range []string{"NEW-00001", "New-00001", "new-00001", "mIXED-aBc"} {
		status, v := c.json("POST", "/v1/validate", `{"code":"`+typed+`","customer_id":"ann",`+cart+`}`)
		if status != 200 || v["valid"] != true {
			t.Errorf("validate %q: %d %v", typed, status, v)
		}
	}
	for _, typed := range []string{"NEWS10", "news10"} {
		if status, v := c.json("POST", "/v1/validate", `{"code":"`+typed+`","customer_id":"ann",`+cart+`}`); status != 200 || v["valid"] != true {
			t.Errorf("validate the promotion code as %q: %d %v", typed, status, v)
		}
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"NEW-00002",`+cart+`}`); status != 200 || v["reason"] != "not_found" {
		t.Errorf("validate a miss: %d %v", status, v)
	}
	status, red := c.json("POST", "/v1/redemptions", `{"code":"NEW-00001","customer_id":"ann","order_id":"o-1",`+cart+`}`)
	if status != 201 || red["status"] != "succeeded" || red["code"] != "new-00001" {
		t.Fatalf("redeem NEW-00001: %d %v", status, red)
	}
	// The same order with the code in yet another case is the same request (a replay).
	if status, v := c.json("POST", "/v1/redemptions", `{"code":"New-00001","customer_id":"ann","order_id":"o-1",`+cart+`}`); status != 200 || v["id"] != red["id"] {
		t.Fatalf("replay in another case: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"new-00001","customer_id":"bob",`+cart+`}`); status != 200 || v["reason"] != "already_redeemed" {
		t.Fatalf("validate the redeemed code in its stored case: %d %v", status, v)
	}
	status, v := c.json("POST", "/v1/redemptions", `{"code":"NEWS10","customer_id":"ann","order_id":"o-2",`+cart+`}`)
	if status != 201 || v["code"] != "News10" {
		t.Fatalf("redeem NEWS10: %d %v", status, v)
	}
	if status, v := c.do("GET", "/v1/redemptions?code=NEW-00001", "", nil); status != 200 || len(v["redemptions"].([]any)) != 1 {
		t.Fatalf("history by code in another case: %d %v", status, v)
	}

	// The stored spelling is the uploaded one.
	status, unused := c.get(p1 + "/unused.csv")
	if status != 200 || !strings.Contains(unused, "Mixed-AbC") || !strings.Contains(unused, "plain") || strings.Contains(unused, "mixed-abc") {
		t.Fatalf("unused codes: %d %q", status, unused)
	}
	var spellings []string
	if err := c.db.Select(&spellings, `SELECT code FROM codes ORDER BY code`); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(spellings, " "); got != "Mixed-AbC News10 fresh new-00001 plain" {
		t.Fatalf("stored codes: %s", got)
	}
}

// TestCodeLookupAndVoidOverHTTP (issue 17 item 7): GET /v1/codes/{code} and POST
// /v1/codes/{code}/void — status, holder and redemptions; voided unissued codes never
// issued while the group is drained and counted out of its balance; a voided issued
// code stays on the profile and checkout refuses it; idempotent, logged, scoped.
func TestCodeLookupAndVoidOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	status, g := c.json("POST", "/v1/groups", `{"name":"Spring","terms":{"type":"fixed","amount_off":500,"currency":"EUR"}}`)
	if status != 201 {
		t.Fatalf("group: %d %v", status, g)
	}
	gp := "/v1/groups/" + jsonNum(g["id"])
	var codes, people []string
	for i := 1; i <= 10; i++ {
		codes = append(codes, fmt.Sprintf("S%02d", i))
		people = append(people, fmt.Sprintf(`{"id":"c%d"}`, i))
	}
	c.upload(gp, strings.Join(codes, "\n"))
	if status, v := c.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(strings.Join(people, "\n"))); status != 200 {
		t.Fatalf("customers: %d %v", status, v)
	}
	if status, v := c.issue(jsonNum(g["id"]), "k-c1", "c1"); status != 201 || v["code"] != "S01" {
		t.Fatalf("issue to c1: %d %v", status, v)
	}
	if status, v := c.issue(jsonNum(g["id"]), "k-c2", "c2"); status != 201 || v["code"] != "S02" {
		t.Fatalf("issue to c2: %d %v", status, v)
	}
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]`
	if status, v := c.json("POST", "/v1/redemptions", `{"code":"S01","customer_id":"c1","order_id":"o-1",`+cart+`}`); status != 201 {
		t.Fatalf("redeem S01: %d %v", status, v)
	}

	// Look-up, in any case: group, status, holder since when, redemptions.
	status, s01 := c.do("GET", "/v1/codes/s01", "", nil)
	holder, _ := s01["holder"].(map[string]any)
	reds, _ := s01["redemptions"].([]any)
	if status != 200 || s01["code"] != "S01" || s01["status"] != "redeemed" || holder["customer_id"] != "c1" || holder["issued_at"] == nil ||
		s01["group"].(map[string]any)["name"] != "Spring" || len(reds) != 1 || s01["void"] != nil {
		t.Fatalf("GET s01: %d %v", status, s01)
	}
	if status, v := c.do("GET", "/v1/codes/S02", "", nil); status != 200 || v["status"] != "issued" || v["holder"].(map[string]any)["customer_id"] != "c2" {
		t.Fatalf("GET S02: %d %v", status, v)
	}
	if status, v := c.do("GET", "/v1/codes/S03", "", nil); status != 200 || v["status"] != "active" || v["holder"] != nil {
		t.Fatalf("GET S03: %d %v", status, v)
	}
	if status, v := c.do("GET", "/v1/codes/NOPE-1", "", nil); status != 404 || errCode(v) != "code_not_found" {
		t.Fatalf("GET NOPE-1: %d %v", status, v)
	}

	// Void two unissued codes (one without a body) and one issued, unredeemed.
	status, s03 := c.json("POST", "/v1/codes/s03/void", `{"reason":"leaked on a coupon site"}`)
	void, _ := s03["void"].(map[string]any)
	if status != 200 || s03["status"] != "voided" || void["reason"] != "leaked on a coupon site" || void["actor"] != "tests" {
		t.Fatalf("void s03: %d %v", status, s03)
	}
	if status, v := c.do("POST", "/v1/codes/S07/void", "", nil); status != 200 || v["status"] != "voided" {
		t.Fatalf("void S07 without a body: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/codes/S02/void", `{}`); status != 200 || v["status"] != "voided" || v["holder"].(map[string]any)["customer_id"] != "c2" {
		t.Fatalf("void S02: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/codes/S04/void", `{"why":"x"}`); status != 400 || errCode(v) != "invalid_json" {
		t.Fatalf("void with an unknown field: %d %v", status, v)
	}
	// Idempotent: a second void answers the same.
	if status, again := c.json("POST", "/v1/codes/S03/void", `{"reason":"another"}`); status != 200 || fmt.Sprint(again["void"]) != fmt.Sprint(s03["void"]) {
		t.Fatalf("second void: %d %v, want %v", status, again, s03["void"])
	}
	// The unused codes leave them out, and the balance counts them out: 8 codes, 2
	// issued, 6 active.
	if status, unused := c.get(gp + "/unused.csv"); status != 200 || strings.Contains(unused, "S03") || strings.Contains(unused, "S07") || !strings.Contains(unused, "S04") {
		t.Fatalf("unused.csv after the voids: %d %q", status, unused)
	}
	if status, v := c.do("GET", gp, "", nil); status != 200 || v["total"] != 8.0 || v["issued"] != 2.0 || v["active"] != 6.0 {
		t.Fatalf("group after the voids: %d total %v issued %v active %v", status, v["total"], v["issued"], v["active"])
	}

	// Issue over the whole group: six codes go out, none voided, then the pool is empty.
	for i := 3; i <= 10; i++ {
		status, v := c.issue(jsonNum(g["id"]), fmt.Sprintf("k-c%d", i), fmt.Sprintf("c%d", i))
		switch {
		case i <= 8 && (status != 201 || v["code"] == "S03" || v["code"] == "S07"):
			t.Fatalf("issue to c%d: %d %v", i, status, v)
		case i > 8 && (status != 409 || errCode(v) != "pool_exhausted"):
			t.Fatalf("issue to c%d once drained: %d %v", i, status, v)
		}
	}
	if status, v := c.do("GET", gp, "", nil); status != 200 || v["total"] != 8.0 || v["issued"] != 8.0 || v["active"] != 0.0 || v["balance_state"] != "empty" {
		t.Fatalf("group drained: %d %v", status, v)
	}

	// The voided issued code: on the profile marked voided; checkout refuses it.
	status, prof := c.do("GET", "/v1/customers/c2/promocodes", "", nil)
	list, _ := prof["promocodes"].([]any)
	if status != 200 || len(list) != 1 || list[0].(map[string]any)["code"] != "S02" || list[0].(map[string]any)["voided_at"] == nil {
		t.Fatalf("c2's profile: %d %v", status, prof)
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"s02","customer_id":"c2",`+cart+`}`); status != 200 || v["reason"] != "voided" {
		t.Fatalf("validate the voided code: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/redemptions", `{"code":"S02","customer_id":"c2","order_id":"o-2",`+cart+`}`); status != 422 || v["error"].(map[string]any)["reason"] != "voided" {
		t.Fatalf("redeem the voided code: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"S03",`+cart+`}`); status != 200 || v["reason"] != "voided" {
		t.Fatalf("validate a voided unissued code: %d %v", status, v)
	}

	// A shared promotion code is voided the same way.
	shared := c.createShared(`{"name":"Newsletter","kind":"shared","terms":{"type":"fixed","amount_off":1000,"currency":"EUR"}}`)
	if status, v := c.promo(shared, "", `{"code":"NEWS10"}`); status != 201 {
		t.Fatalf("NEWS10: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/codes/news10/void", `{"reason":"ended"}`); status != 200 || v["status"] != "voided" || v["group"].(map[string]any)["kind"] != "shared" {
		t.Fatalf("void news10: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"NEWS10",`+cart+`}`); status != 200 || v["reason"] != "voided" {
		t.Fatalf("validate the voided promotion code: %d %v", status, v)
	}

	// Logged in the group's activity, with who.
	status, act := c.do("GET", gp+"/activity", "", nil)
	var voids []string
	for _, e := range act["activity"].([]any) {
		if m := e.(map[string]any); m["action"] == "code_void" {
			voids = append(voids, fmt.Sprint(m["after"].(map[string]any)["code"], "/", m["who"].(map[string]any)["name"]))
		}
	}
	if status != 200 || strings.Join(voids, " ") != "S02/tests S07/tests S03/tests" {
		t.Fatalf("activity: %d %v (%v)", status, voids, act)
	}

	// Scopes: a read key looks up, and may not void.
	keys, _ := auth.NewKeys(c.db.DB, "")
	reader, err := keys.Create(context.Background(), "reader", []auth.Scope{auth.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	c.key = reader
	if status, _ := c.do("GET", "/v1/codes/S04", "", nil); status != 200 {
		t.Fatalf("GET with a read key: %d", status)
	}
	if status, v := c.do("POST", "/v1/codes/S04/void", "", nil); status != 403 || errCode(v) != "insufficient_scope" {
		t.Fatalf("void with a read key: %d %v", status, v)
	}
}
