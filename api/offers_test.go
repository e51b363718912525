package api_test

import (
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
