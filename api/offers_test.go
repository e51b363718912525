package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"promopool/api"
)

// TestCapsNeverBelowUsedOverHTTP: a PATCH lowering a cap or the budget below what
// checkout's counters say is used is 400 invalid_field naming the field and the used
// figure, nothing stored and nothing logged; down to the used figure it passes and the
// activity log has its before and after; a refund gives back the per-customer slot and
// the budget (so they may go lower), never the total's slot.
func TestCapsNeverBelowUsedOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	status, v := c.json("POST", "/v1/groups", `{"name":"G-CAPS20","kind":"shared",
		"terms":{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000},
		"limits":{"max_redemptions":10,"max_per_customer":5,"budget":100000}}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, v)
	}
	g := int64(v["id"].(float64))
	c.db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, 'CAPS20')`, (int64(1)<<50)+g)
	c.db.MustExec(`INSERT INTO promotion_codes (code_id, group_id) VALUES ($1, $2)`, (int64(1)<<50)+g, g)
	path := "/v1/groups/" + strconv.FormatInt(g, 10)
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":2,"unit_amount":3000},{"product_id":"sock","quantity":1,"unit_amount":1000}]`
	ids := map[string]string{}
	for _, r := range []struct{ customer, order string }{{"ann", "o-1"}, {"ann", "o-2"}, {"bob", "o-3"}} {
		status, v := c.send(mustReq(c, `{"code":"CAPS20","customer_id":"`+r.customer+`","order_id":"`+r.order+`",`+cart+`}`, ""))
		if status != 201 || v["discount_amount"] != 1400.0 {
			t.Fatalf("redeem %s: %d %v", r.order, status, v)
		}
		ids[r.order] = jsonNum(v["id"])
	}
	// Used: 3 redemptions, ann has 2, 42 EUR discounted.
	activity := func() []any {
		t.Helper()
		status, v := c.do("GET", path+"/activity?limit=100", "", nil)
		if status != 200 {
			t.Fatalf("activity: %d %v", status, v)
		}
		return v["activity"].([]any)
	}
	logged := len(activity())
	refuse := []struct{ body, field, figure string }{
		{`{"limits":{"max_redemptions":2}}`, "limits.max_redemptions", "below 3"},
		{`{"limits":{"max_per_customer":1}}`, "limits.max_per_customer", "below 2"},
		{`{"limits":{"budget":4199}}`, "limits.budget", "42 EUR"},
		// One bad field refuses the whole edit: the good one is not stored either.
		{`{"name":"renamed","limits":{"max_redemptions":10,"budget":100}}`, "limits.budget", "42 EUR"},
	}
	for _, r := range refuse {
		status, v := c.json("PATCH", path, r.body)
		e, _ := v["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != 400 || errCode(v) != "invalid_field" || e["field"] != r.field || !strings.Contains(msg, r.figure) {
			t.Errorf("%s: %d %v, want invalid_field %s saying %q", r.body, status, v, r.field, r.figure)
		}
	}
	if n := len(activity()); n != logged {
		t.Fatalf("refused edits were logged: %d entries, had %d", n, logged)
	}
	_, got := c.do("GET", path, "", nil)
	if l := got["limits"].(map[string]any); got["name"] != "G-CAPS20" || l["max_redemptions"] != 10.0 || l["budget"] != 100000.0 || l["max_per_customer"] != 5.0 {
		t.Fatalf("a refused edit changed the group: %v", got)
	}

	// Down to exactly what is used passes, and is logged with before and after.
	status, v = c.json("PATCH", path, `{"limits":{"max_redemptions":3,"max_per_customer":2,"budget":4200}}`)
	if status != 200 {
		t.Fatalf("lowering to the used figures: %d %v", status, v)
	}
	acts := activity()
	if len(acts) != logged+1 {
		t.Fatalf("activity: %d entries, want %d", len(acts), logged+1)
	}
	last := acts[0].(map[string]any)
	before, _ := last["before"].(map[string]any)["limits"].(map[string]any)
	after, _ := last["after"].(map[string]any)["limits"].(map[string]any)
	if last["action"] != "update" || before["max_redemptions"] != 10.0 || before["budget"] != 100000.0 || before["max_per_customer"] != 5.0 ||
		after["max_redemptions"] != 3.0 || after["budget"] != 4200.0 || after["max_per_customer"] != 2.0 {
		t.Fatalf("activity entry: %v", last)
	}
	// The lowered cap holds at checkout.
	status, v = c.send(mustReq(c, `{"code":"CAPS20","customer_id":"cy","order_id":"o-4",`+cart+`}`, ""))
	if e, _ := v["error"].(map[string]any); status != 422 || e["reason"] != "exhausted" {
		t.Fatalf("redeem past the lowered cap: %d %v", status, v)
	}

	// A refund gives the customer's slot and the discount back, not the total's slot.
	if status, v := c.json("POST", "/v1/redemptions/"+ids["o-2"]+"/refund", `{"refund_id":"rf-1"}`); status != 200 || v["status"] != "refunded" {
		t.Fatalf("refund: %d %v", status, v)
	}
	if status, v := c.json("PATCH", path, `{"limits":{"max_per_customer":1,"budget":2800}}`); status != 200 {
		t.Fatalf("lowering after the refund: %d %v", status, v)
	}
	if status, v := c.json("PATCH", path, `{"limits":{"max_redemptions":2}}`); status != 400 || !strings.Contains(v["error"].(map[string]any)["message"].(string), "below 3") {
		t.Fatalf("the total's slot came back with the refund: %d %v", status, v)
	}
	if status, v := c.json("PATCH", path, `{"limits":{"budget":2799}}`); status != 400 || v["error"].(map[string]any)["field"] != "limits.budget" {
		t.Fatalf("budget below the discount left: %d %v", status, v)
	}
	// Removing a cap is always allowed.
	if status, v := c.json("PATCH", path, `{"limits":{"max_redemptions":null,"budget":null}}`); status != 200 {
		t.Fatalf("removing the caps: %d %v", status, v)
	}
}

// TestGroupStatusAndLockOverHTTP (issue 17 items 3 and 4 over HTTP): GET /v1/groups
// filters by status with counts per status (archived only under all/archived); a
// paused group's shared code answers "This code is paused." at validate; a PATCH of
// the terms of a group with an issued code is 409 terms_locked naming the fields and
// stores nothing, while its name and limits stay editable; and validations leave no
// row in the redemption history (issue 18 item 7).
func TestGroupStatusAndLockOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	create := func(body string) string {
		t.Helper()
		status, v := c.json("POST", "/v1/groups", body)
		if status != 201 {
			t.Fatalf("create %s: %d %v", body, status, v)
		}
		return "/v1/groups/" + jsonNum(v["id"])
	}
	spring := create(`{"name":"Spring","terms":{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000}}`)
	create(`{"name":"Draft","status":"draft"}`)
	create(`{"name":"Ended","limits":{"ends_at":"2020-01-01T00:00:00Z"}}`)
	news := c.createShared(`{"name":"Newsletter","kind":"shared","terms":{"type":"fixed","amount_off":1000,"currency":"EUR"}}`)
	if status, v := c.promo(news, "", `{"code":"NEWS10"}`); status != 201 {
		t.Fatalf("NEWS10: %d %v", status, v)
	}
	old := create(`{"name":"Old"}`)
	c.upload(old, "OLD-1\n")
	c.upload(spring, "SPRING-1\nSPRING-2\n")
	for _, g := range []string{old, spring} {
		req, _ := http.NewRequest("POST", c.srv.URL+g+"/issue", strings.NewReader(`{"customer_id":"ann","create_customer":true}`))
		req.Header.Set("Authorization", "Bearer "+c.key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k"+g)
		if status, v := c.send(req); status != 201 {
			t.Fatalf("issue from %s: %d %v", g, status, v)
		}
	}
	if status, v := c.json("DELETE", old, ""); status != 200 || v["archived"] != true {
		t.Fatalf("delete a group with an issued code: %d %v", status, v)
	}
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]`
	if status, v := c.json("POST", "/v1/validate", `{"code":"news10","customer_id":"ann",`+cart+`}`); status != 200 || v["valid"] != true {
		t.Fatalf("validate before the pause: %d %v", status, v)
	}
	if status, v := c.json("POST", news+"/pause", ""); status != 200 || v["status"] != "paused" {
		t.Fatalf("pause: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"NEWS10","customer_id":"ann",`+cart+`}`); status != 200 || v["valid"] != false ||
		v["reason"] != "paused" || v["message"] != "This code is paused." {
		t.Fatalf("validate a paused group's code: %d %v", status, v)
	}
	// Validations, good or refused, are not redemptions.
	if status, v := c.do("GET", news+"/redemptions", "", nil); status != 200 || len(v["redemptions"].([]any)) != 0 {
		t.Fatalf("validations in the redemption history: %d %v", status, v)
	}

	list := func(query string) (string, map[string]any) {
		t.Helper()
		status, v := c.do("GET", "/v1/groups"+query, "", nil)
		if status != 200 {
			t.Fatalf("GET /v1/groups%s: %d %v", query, status, v)
		}
		var names []string
		for _, g := range v["groups"].([]any) {
			names = append(names, g.(map[string]any)["name"].(string))
		}
		return strings.Join(names, ","), v["counts"].(map[string]any)
	}
	wantCounts := map[string]float64{"all": 5, "active": 1, "draft": 1, "paused": 1, "expired": 1, "archived": 1}
	for query, want := range map[string]string{
		"":                 "Draft,Ended,Newsletter,Spring",
		"?status=all":      "Draft,Ended,Newsletter,Old,Spring",
		"?status=active":   "Spring",
		"?status=draft":    "Draft",
		"?status=paused":   "Newsletter",
		"?status=expired":  "Ended",
		"?status=archived": "Old",
	} {
		names, counts := list(query)
		if names != want {
			t.Errorf("GET /v1/groups%s: %s, want %s", query, names, want)
		}
		for k, n := range wantCounts {
			if counts[k] != n {
				t.Errorf("GET /v1/groups%s: counts %v, want %v", query, counts, wantCounts)
				break
			}
		}
	}
	if status, v := c.do("GET", "/v1/groups?status=live", "", nil); status != 400 || errCode(v) != "invalid_field" {
		t.Fatalf("an unknown status filter: %d %v", status, v)
	}
	if status, v := c.json("POST", old+"/activate", ""); status != 409 || errCode(v) != "group_archived" {
		t.Fatalf("activate an archived group: %d %v", status, v)
	}

	// Spring issued a code: its terms are locked, its name and limits are not.
	status, v := c.json("PATCH", spring, `{"name":"Spring 25%","terms":{"type":"percent","percent_off":25,"currency":"EUR","max_discount":10000}}`)
	e, _ := v["error"].(map[string]any)
	if status != 409 || errCode(v) != "terms_locked" || fmt.Sprint(e["fields"]) != "[percent_off]" {
		t.Fatalf("PATCH locked terms: %d %v", status, v)
	}
	if _, g := c.do("GET", spring, "", nil); g["name"] != "Spring" || g["terms"].(map[string]any)["percent_off"] != 20.0 || g["terms_locked_at"] == nil {
		t.Fatalf("a refused edit changed the group: %v", g)
	}
	if status, v := c.json("PATCH", spring, `{"name":"Spring 20%","limits":{"max_redemptions":100}}`); status != 200 || v["name"] != "Spring 20%" ||
		v["limits"].(map[string]any)["max_redemptions"] != 100.0 || v["terms_summary"] != "20% off, at most 100 EUR" {
		t.Fatalf("PATCH name and limits of a locked group: %d %v", status, v)
	}
}
