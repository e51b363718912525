package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"promopool/api"
	"promopool/checkout"
	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/segments"
)

// createShared makes a shared group over HTTP and returns its path.
func (c *client) createShared(body string) string {
	c.t.Helper()
	status, v := c.json("POST", "/v1/groups", body)
	if status != 201 || v["kind"] != "shared" {
		c.t.Fatalf("creating a shared group: %d %v", status, v)
	}
	return "/v1/groups/" + jsonNum(v["id"])
}

// promo posts a promotion code (with an Idempotency-Key when key is set).
func (c *client) promo(group, key, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.srv.URL+group+"/promotion-codes", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return c.send(req)
}

// TestPromotionCodesOverHTTP: create (named, generated, retried), the refusals, the
// cursor-paged list, archive/unarchive, and the lock of a redeemed code's restrictions.
func TestPromotionCodesOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	g := c.createShared(`{"name":"Newsletter","kind":"shared","terms":{"type":"fixed","amount_off":1000,"currency":"EUR"}}`)

	status, news := c.promo(g, "", `{"code":"  NEWS10 ","max_redemptions":2,"min_order":2000,"expires_at":"2030-01-01T00:00:00Z"}`)
	if status != 201 || news["code"] != "NEWS10" || news["active"] != true || news["max_redemptions"] != 2.0 || news["locked"] != false {
		t.Fatalf("create NEWS10: %d %v", status, news)
	}
	// Without a key, the same code and settings again is a retry; other settings are taken.
	if status, again := c.promo(g, "", `{"code":"NEWS10","max_redemptions":2,"min_order":2000,"expires_at":"2030-01-01T00:00:00Z"}`); status != 200 || again["id"] != news["id"] {
		t.Fatalf("retry NEWS10: %d %v", status, again)
	}
	if status, v := c.promo(g, "", `{"code":"NEWS10"}`); status != 409 || errCode(v) != "code_taken" {
		t.Fatalf("NEWS10 with other settings: %d %v", status, v)
	}
	// A generated code: crypto/rand over the unambiguous alphabet; the key makes it retryable.
	status, gen := c.promo(g, "k-1", `{"code":"","customer_id":"ann","first_time_only":true}`)
	if status != 201 || !regexp.MustCompile(`^[`+groups.GeneratedCodeAlphabet+`]{10}$`).MatchString(gen["code"].(string)) {
		t.Fatalf("generated: %d %v", status, gen)
	}
	if status, again := c.promo(g, "k-1", `{"customer_id":"ann","first_time_only":true}`); status != 200 || again["code"] != gen["code"] {
		t.Fatalf("retry under the key: %d %v", status, again)
	}
	if status, v := c.promo(g, "k-1", `{"customer_id":"bob"}`); status != 409 || errCode(v) != "idempotency_key_conflict" {
		t.Fatalf("the key with other settings: %d %v", status, v)
	}
	status, third := c.promo(g, "", `{"code":"MARIA15"}`)
	if status != 201 {
		t.Fatalf("MARIA15: %d %v", status, third)
	}

	// Bad input and the wrong kind of group.
	for _, tc := range []struct{ body, field string }{
		{`{"code":"BAD\u0007"}`, "code"},
		{`{"max_redemptions":0}`, "max_redemptions"},
		{`{"min_order":-1}`, "min_order"},
		{`{"customer_id":""}`, "customer_id"},
	} {
		if status, v := c.promo(g, "", tc.body); status != 400 || v["error"].(map[string]any)["field"] != tc.field {
			t.Errorf("%s: %d %v, want invalid_field %s", tc.body, status, v, tc.field)
		}
	}
	if status, v := c.json("POST", "/v1/groups", `{"name":"Unique"}`); status != 201 {
		t.Fatal(v)
	} else if status, v := c.promo("/v1/groups/"+jsonNum(v["id"]), "", `{"code":"X1"}`); status != 409 || errCode(v) != "group_not_shared" {
		t.Fatalf("promotion code in a unique group: %d %v", status, v)
	}
	if status, v := c.do("POST", g+"/codes", "text/plain", strings.NewReader("A1\nA2\n")); status != 409 || errCode(v) != "group_shared" {
		t.Fatalf("upload into a shared group: %d %v", status, v)
	}
	if status, v := c.promo("/v1/groups/99999", "", `{"code":"X2"}`); status != 404 || errCode(v) != "group_not_found" {
		t.Fatalf("no group: %d %v", status, v)
	}

	// The list, two per page.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		status, page := c.do("GET", g+"/promotion-codes?limit=2&cursor="+cursor, "", nil)
		if status != 200 || pages > 2 {
			t.Fatalf("list: %d %v", status, page)
		}
		for _, p := range page["promotion_codes"].([]any) {
			seen = append(seen, p.(map[string]any)["code"].(string))
		}
		if cursor = page["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint([]string{"NEWS10", gen["code"].(string), "MARIA15"}) {
		t.Fatalf("listed %v", seen)
	}
	if status, v := c.do("GET", g+"/promotion-codes?cursor=abc", "", nil); status != 400 || errCode(v) != "invalid_field" {
		t.Fatalf("a bad cursor: %d %v", status, v)
	}
	_, grp := c.do("GET", g, "", nil)
	if grp["promotion_codes"] != 3.0 || grp["promotion_codes_active"] != 3.0 {
		t.Fatalf("group counters: %v", grp)
	}

	// Edits before a redemption change anything; after one, only active.
	news10 := g + "/promotion-codes/" + jsonNum(news["id"])
	if status, v := c.json("PATCH", news10, `{"max_redemptions":3,"min_order":null}`); status != 200 || v["max_redemptions"] != 3.0 || v["min_order"] != nil {
		t.Fatalf("edit before a redemption: %d %v", status, v)
	}
	if status, v := c.json("PATCH", news10, `{"code":"OTHER"}`); status != 400 || v["error"].(map[string]any)["field"] != "code" {
		t.Fatalf("renaming a code: %d %v", status, v)
	}
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]`
	if status, v := c.send(mustReq(c, `{"code":"NEWS10","customer_id":"cy","order_id":"o-1",`+cart+`}`, "")); status != 201 {
		t.Fatalf("redeem: %d %v", status, v)
	}
	status, v := c.json("PATCH", news10, `{"max_redemptions":10,"first_time_only":true,"active":true}`)
	fields, _ := v["error"].(map[string]any)["fields"].([]any)
	if status != 409 || errCode(v) != "terms_locked" || fmt.Sprint(fields) != "[first_time_only max_redemptions]" {
		t.Fatalf("edit after a redemption: %d %v", status, v)
	}
	// The database holds the rule too, whatever writes the row.
	if _, err := c.db.Exec(`UPDATE promotion_codes SET max_redemptions = 10 WHERE id = $1`, int64(news["id"].(float64))); err == nil || !strings.Contains(err.Error(), "only active may change") {
		t.Fatalf("the trigger let a redeemed code's cap change: %v", err)
	}
	if status, v := c.json("POST", news10+"/archive", ""); status != 200 || v["active"] != false || v["locked"] != true || v["redemptions"] != 1.0 {
		t.Fatalf("archive: %d %v", status, v)
	}
	if status, v := c.json("POST", "/v1/validate", `{"code":"NEWS10","customer_id":"dee",`+cart+`}`); status != 200 || v["reason"] != "voided" {
		t.Fatalf("validate an archived code: %d %v", status, v)
	}
	if status, v := c.json("POST", news10+"/unarchive", ""); status != 200 || v["active"] != true {
		t.Fatalf("unarchive: %d %v", status, v)
	}
	if status, v := c.json("POST", g+"/promotion-codes/99999/archive", ""); status != 404 || errCode(v) != "promotion_code_not_found" {
		t.Fatalf("archive no code: %d %v", status, v)
	}
	// Every change is in the activity log.
	_, act := c.do("GET", g+"/activity?limit=50", "", nil)
	var actions []string
	for _, a := range act["activity"].([]any) {
		actions = append(actions, a.(map[string]any)["action"].(string))
	}
	want := "[promotion_code_unarchive promotion_code_archive promotion_code_update promotion_code_create promotion_code_create promotion_code_create create]"
	if fmt.Sprint(actions) != want {
		t.Fatalf("activity %v, want %s", actions, want)
	}
}

// TestPromotionCodeRestrictionsAtCheckout: validate and redeem honour each restriction
// of a promotion code — first time only, one customer, its own cap, expiry, minimum order.
func TestPromotionCodeRestrictionsAtCheckout(t *testing.T) {
	c := newClient(t, api.Config{})
	g := c.createShared(`{"name":"Partners","kind":"shared","terms":{"type":"percent","percent_off":10,"currency":"EUR"}}`)
	for _, body := range []string{
		`{"code":"FIRST","first_time_only":true}`,
		`{"code":"ANNONLY","customer_id":"ann"}`,
		`{"code":"TWICE","max_redemptions":2}`,
		`{"code":"GONE","expires_at":"2020-01-01T00:00:00Z"}`,
		`{"code":"BIG","min_order":10000}`,
	} {
		if status, v := c.promo(g, "", body); status != 201 {
			t.Fatalf("%s: %d %v", body, status, v)
		}
	}
	cart := func(amount int) string {
		return fmt.Sprintf(`"currency":"EUR","items":[{"product_id":"p","quantity":1,"unit_amount":%d}]`, amount)
	}
	validate := func(code, customer string, amount int) string {
		t.Helper()
		status, v := c.json("POST", "/v1/validate", fmt.Sprintf(`{"code":%q,"customer_id":%q,%s}`, code, customer, cart(amount)))
		if status != 200 {
			t.Fatalf("validate %s: %d %v", code, status, v)
		}
		if v["valid"] == true {
			return "valid"
		}
		return v["reason"].(string)
	}
	order := 0
	redeem := func(code, customer string, amount int) string {
		t.Helper()
		order++
		status, v := c.send(mustReq(c, fmt.Sprintf(`{"code":%q,"customer_id":%q,"order_id":"o-%d",%s}`, code, customer, order, cart(amount)), ""))
		switch status {
		case 201:
			return "succeeded"
		case 422:
			return v["error"].(map[string]any)["reason"].(string)
		}
		t.Fatalf("redeem %s: %d %v", code, status, v)
		return ""
	}
	steps := []struct {
		name, op, code, customer string
		amount                   int
		want                     string
	}{
		{"first time: a new customer", "validate", "FIRST", "bob", 5000, "valid"},
		{"first time: bob redeems", "redeem", "FIRST", "bob", 5000, "succeeded"},
		{"first time: bob has redeemed", "validate", "FIRST", "bob", 5000, "first_time_only"},
		{"first time: refused at redeem too", "redeem", "FIRST", "bob", 5000, "first_time_only"},
		{"one customer: ann", "validate", "ANNONLY", "ann", 5000, "valid"},
		{"one customer: someone else", "validate", "ANNONLY", "cy", 5000, "customer_restricted"},
		{"one customer: someone else redeems", "redeem", "ANNONLY", "cy", 5000, "customer_restricted"},
		{"cap: first", "redeem", "TWICE", "cy", 5000, "succeeded"},
		{"cap: second", "redeem", "TWICE", "dee", 5000, "succeeded"},
		{"cap: third is refused", "redeem", "TWICE", "eve", 5000, "exhausted"},
		{"cap: and validate says so", "validate", "TWICE", "eve", 5000, "exhausted"},
		{"expired", "validate", "GONE", "cy", 5000, "expired"},
		{"expired at redeem", "redeem", "GONE", "cy", 5000, "expired"},
		{"min order: below", "validate", "BIG", "cy", 9999, "min_order"},
		{"min order: below at redeem", "redeem", "BIG", "cy", 9999, "min_order"},
		{"min order: reached", "redeem", "BIG", "cy", 10000, "succeeded"},
	}
	for _, s := range steps {
		var got string
		if s.op == "validate" {
			got = validate(s.code, s.customer, s.amount)
		} else {
			got = redeem(s.code, s.customer, s.amount)
		}
		if got != s.want {
			t.Errorf("%s: %s %s by %s: %s, want %s", s.name, s.op, s.code, s.customer, got, s.want)
		}
	}
}

// TestSharedCodeInTemplate: {{client.promocode('Newsletter')}} on a shared group
// inserts its first active code for every customer and records the issue like any
// other: the profile and the segment filters see it, a retry under the scope gets the
// same code, an archived code is skipped, and with no code in use the customer is left
// uncovered.
func TestSharedCodeInTemplate(t *testing.T) {
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		d.Segments = segments.New(db.DB, segments.Config{})
		d.Mailings = mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB,
			Groups:   groups.NewStore(db.DB, groups.Config{Usage: checkout.Usage, CodeRedemptions: checkout.CodeRedemptions}),
			Segments: d.Segments, Log: log})
	})
	g := c.createShared(`{"name":"Newsletter","kind":"shared"}`)
	var ids []string
	for _, code := range []string{"NEWS10", "NEWS20"} {
		_, v := c.promo(g, "", `{"code":"`+code+`"}`)
		ids = append(ids, jsonNum(v["id"]))
	}
	// A code for one customer only is not handed to the others.
	c.promo(g, "", `{"code":"ANN5","customer_id":"ann"}`)
	c.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(`{"id":"ann"}`+"\n"+`{"id":"bob"}`+"\n"+`{"id":"cy"}`+"\n"))
	render := func(scope string, customers ...string) map[string]string {
		t.Helper()
		status, v := c.json("POST", "/v1/render", `{"scope":"`+scope+`","template":{"Subject":"Hi","Text":"{{client.promocode('Newsletter')}}"},"customer_ids":["`+strings.Join(customers, `","`)+`"]}`)
		if status != 200 {
			t.Fatalf("render: %d %v", status, v)
		}
		out := map[string]string{}
		for _, m := range v["messages"].([]any) {
			m := m.(map[string]any)
			out[m["customer_id"].(string)] = m["text"].(string)
		}
		return out
	}
	if got := render("crm-1", "ann", "bob"); got["ann"] != "NEWS10" || got["bob"] != "NEWS10" {
		t.Fatalf("rendered %v, want NEWS10 for both", got)
	}
	c.json("POST", g+"/promotion-codes/"+ids[0]+"/archive", "")
	if got := render("crm-1", "ann", "bob", "cy"); got["ann"] != "NEWS10" || got["bob"] != "NEWS10" || got["cy"] != "NEWS20" {
		t.Fatalf("rendered again under the scope %v: ann and bob keep NEWS10, cy gets NEWS20", got)
	}
	// The profile shows the issue.
	status, prof := c.do("GET", "/v1/customers/bob/promocodes", "", nil)
	if status != 200 || !strings.Contains(fmt.Sprint(prof), "NEWS10") || !strings.Contains(fmt.Sprint(prof), "Newsletter") {
		t.Fatalf("profile: %d %v", status, prof)
	}
	// So do the segment filters.
	if status, v := c.json("POST", "/v1/segments/count", `{"filter":{"issued_from":{"groups":["Newsletter"],"window":{"last_days":1}}}}`); status != 200 || v["count"] != 3.0 {
		t.Fatalf("segment count: %d %v", status, v)
	}
	// No code in use: the customer is left uncovered (the mailing's on_exhaustion applies).
	c.json("POST", g+"/promotion-codes/"+ids[1]+"/archive", "")
	status, v := c.json("POST", "/v1/render", `{"scope":"crm-2","template":{"Subject":"Hi","Text":"{{client.promocode('Newsletter')}}"},"customer_ids":["cy"]}`)
	if status == 200 && len(v["messages"].([]any)) != 0 {
		t.Fatalf("rendered with every code archived: %d %v", status, v)
	}
	// ann still gets her own code.
	if got := render("crm-3", "ann"); got["ann"] != "ANN5" {
		t.Fatalf("ann's own code: %v", got)
	}
}
