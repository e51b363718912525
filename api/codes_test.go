package api_test

import (
	"strings"
	"testing"

	"promopool/api"
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
