package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"promopool/api"
)

// sharedCode stores a shared group with 20% off (at most 100 EUR) and a cap, and its
// promotion code.
func (c *client) sharedCode(code string, maxTotal int64) int64 {
	c.t.Helper()
	var g int64
	if err := c.db.Get(&g, `INSERT INTO groups (name, kind, terms, max_redemptions) VALUES ($1, 'shared', $2, $3) RETURNING id`,
		"G-"+code, `{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000}`, maxTotal); err != nil {
		c.t.Fatal(err)
	}
	c.db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, $2)`, (int64(1)<<50)+g, code)
	c.db.MustExec(`INSERT INTO promotion_codes (code_id, group_id) VALUES ($1, $2)`, (int64(1)<<50)+g, g)
	return g
}

func mustReq(c *client, body, key string) *http.Request {
	req, _ := http.NewRequest("POST", c.srv.URL+"/v1/redemptions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req
}

// TestCheckoutOverHTTP: validate (POST and GET), redeem, replay, conflict, refusal and
// reading a redemption, every exchange checked against api/openapi.json.
func TestCheckoutOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	c.sharedCode("NEWS10", 1)
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":2,"unit_amount":3000},{"product_id":"sock","quantity":1,"unit_amount":1000}]`

	status, v := c.json("POST", "/v1/validate", `{"code":"news10","customer_id":"ann",`+cart+`}`)
	d, _ := v["discount"].(map[string]any)
	if status != 200 || v["valid"] != true || d["amount"] != 1400.0 || v["total_after"] != 5600.0 || v["terms_summary"] != "20% off, at most 100 EUR" {
		t.Fatalf("validate: %d %v", status, v)
	}
	status, v = c.json("POST", "/v1/validate", `{"code":"NOPE",`+cart+`}`)
	if status != 200 || v["valid"] != false || v["reason"] != "not_found" || v["message"] != "This code is not valid." || v["group"] != nil {
		t.Fatalf("validate a miss: %d %v", status, v)
	}
	status, v = c.json("POST", "/v1/validate", `{"code":"NEWS10","currency":"EUR","items":[{"product_id":"a","quantity":0,"unit_amount":5}]}`)
	if status != 400 || errCode(v) != "invalid_field" || !strings.Contains(v["error"].(map[string]any)["message"].(string), "items[0].quantity") {
		t.Fatalf("bad quantity: %d %v", status, v)
	}
	req, _ := http.NewRequest("GET", c.srv.URL+"/v1/validate?code=NEWS10", nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=30") {
		t.Fatalf("GET validate: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}

	body := `{"code":"NEWS10","customer_id":"ann","order_id":"o-1",` + cart + `}`
	status, r1 := c.send(mustReq(c, body, ""))
	if status != 201 || r1["status"] != "succeeded" || r1["discount_amount"] != 1400.0 || len(r1["per_item"].([]any)) != 2 {
		t.Fatalf("redeem: %d %v", status, r1)
	}
	status, r2 := c.send(mustReq(c, body, ""))
	if status != 200 || r2["id"] != r1["id"] {
		t.Fatalf("replay: %d %v", status, r2)
	}
	status, e := c.send(mustReq(c, strings.Replace(body, `"quantity":2`, `"quantity":3`, 1), ""))
	if status != 409 || errCode(e) != "order_conflict" {
		t.Fatalf("conflict: %d %v", status, e)
	}
	status, e = c.send(mustReq(c, strings.Replace(body, "o-1", "o-2", 1), "key-2"))
	er, _ := e["error"].(map[string]any)
	if status != 422 || errCode(e) != "redemption_refused" || er["reason"] != "exhausted" || er["redemption_id"] == nil {
		t.Fatalf("over the cap: %d %v", status, e)
	}
	status, e = c.send(mustReq(c, strings.Replace(body, "o-1", "o-3", 1), "key-2"))
	if status != 409 || errCode(e) != "idempotency_key_conflict" {
		t.Fatalf("another request under a key: %d %v", status, e)
	}
	status, got := c.do("GET", "/v1/redemptions/"+jsonNum(r1["id"]), "", nil)
	if status != 200 || got["order_id"] != "o-1" || got["terms_summary"] != "20% off, at most 100 EUR" {
		t.Fatalf("get: %d %v", status, got)
	}
	if status, e := c.do("GET", "/v1/redemptions/999999", "", nil); status != 404 || errCode(e) != "redemption_not_found" {
		t.Fatalf("get unknown: %d %v", status, e)
	}
	// The redemption's terms stay what they were after the group changes.
	c.db.MustExec(`UPDATE groups SET terms = '{"type":"percent","percent_off":50}'`)
	if _, got := c.do("GET", "/v1/redemptions/"+jsonNum(r1["id"]), "", nil); got["terms_summary"] != "20% off, at most 100 EUR" || got["discount_amount"] != 1400.0 {
		t.Fatalf("snapshot changed with the group: %v", got)
	}
}

// TestCheckoutLifecycleOverHTTP: hold, confirm, refund by items, cancel, the histories
// (by customer, by group, the profile tab) and the CSV, through the document's wrapper.
func TestCheckoutLifecycleOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	g := c.sharedCode("NEWS10", 10)
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":2,"unit_amount":3000},{"product_id":"sock","quantity":1,"unit_amount":1000}]`
	status, h := c.send(mustReq(c, `{"code":"NEWS10","customer_id":"ann","order_id":"o-1","hold":true,`+cart+`}`, ""))
	if status != 201 || h["status"] != "pending" || h["hold_expires_at"] == nil {
		t.Fatalf("hold: %d %v", status, h)
	}
	id := jsonNum(h["id"])
	if status, r := c.json("POST", "/v1/redemptions/"+id+"/confirm", ""); status != 200 || r["status"] != "succeeded" {
		t.Fatalf("confirm: %d %v", status, r)
	}
	if status, r := c.json("POST", "/v1/redemptions/"+id+"/cancel", ""); status != 409 || errCode(r) != "invalid_state" {
		t.Fatalf("cancel a succeeded one: %d %v", status, r)
	}
	if status, r := c.json("POST", "/v1/redemptions/"+id+"/refund", `{"refund_id":"rf-1","items":["sock"]}`); status != 200 || r["refunded_amount"] != 200.0 || r["status"] != "succeeded" {
		t.Fatalf("refund sock: %d %v", status, r)
	}
	if status, r := c.json("POST", "/v1/redemptions/"+id+"/refund", `{"refund_id":"rf-1"}`); status != 409 || errCode(r) != "refund_conflict" {
		t.Fatalf("refund id reused: %d %v", status, r)
	}
	if status, r := c.json("POST", "/v1/redemptions/"+id+"/refund", `{"refund_id":"rf-2"}`); status != 200 || r["status"] != "refunded" || r["refunded_amount"] != 1400.0 {
		t.Fatalf("refund the rest: %d %v", status, r)
	}
	status, h2 := c.send(mustReq(c, `{"code":"NEWS10","customer_id":"ann","order_id":"o-2","hold":true,`+cart+`}`, ""))
	if status != 201 {
		t.Fatalf("second hold: %d %v", status, h2)
	}
	if status, r := c.json("POST", "/v1/redemptions/"+jsonNum(h2["id"])+"/cancel", ""); status != 200 || r["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", status, r)
	}
	c.send(mustReq(c, `{"code":"WRONG","customer_id":"ann","order_id":"o-3",`+cart+`}`, ""))
	status, page := c.do("GET", "/v1/redemptions?customer_id=ann&limit=2", "", nil)
	list, _ := page["redemptions"].([]any)
	if status != 200 || len(list) != 2 || list[0].(map[string]any)["reason"] != "not_found" || page["next_before"] == nil {
		t.Fatalf("history by customer: %d %v", status, page)
	}
	status, page = c.do("GET", "/v1/redemptions?customer_id=ann&before="+jsonNum(page["next_before"]), "", nil)
	if list, _ := page["redemptions"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["status"] != "refunded" {
		t.Fatalf("second page: %d %v", status, page)
	}
	status, page = c.do("GET", "/v1/groups/"+strconv.FormatInt(g, 10)+"/redemptions", "", nil)
	if list, _ := page["redemptions"].([]any); status != 200 || len(list) != 2 {
		t.Fatalf("group history: %d %v", status, page)
	}
	status, page = c.do("GET", "/v1/customers/ann/redemptions", "", nil)
	if list, _ := page["redemptions"].([]any); status != 200 || len(list) != 3 {
		t.Fatalf("profile tab: %d %v", status, page)
	}
	status, csv := c.get("/v1/groups/" + strconv.FormatInt(g, 10) + "/redemptions.csv")
	if status != 200 || strings.Count(csv, "\n") != 3 || !strings.Contains(csv, ",refunded,,NEWS10,ann,o-1,EUR,7000,1400,1400,") {
		t.Fatalf("csv: %d %q", status, csv)
	}
	if status, body := c.do("GET", "/v1/groups/999999/redemptions.csv", "", nil); status != 404 || errCode(body) != "group_not_found" {
		t.Fatalf("csv of no group: %d %v", status, body)
	}
}

func jsonNum(v any) string {
	f, _ := v.(float64)
	return strconv.FormatInt(int64(f), 10)
}

// TestValidateMissLimit: past VALIDATE_MISS_LIMIT misses, a key (or a customer) gets
// 429 too_many_misses for every validation, a found code included, with Retry-After.
func TestValidateMissLimit(t *testing.T) {
	c := newClient(t, api.Config{ValidateMissRate: api.Rate{N: 3, Per: time.Hour}, CustomerMissRate: api.Rate{N: 3, Per: time.Hour}})
	c.sharedCode("REAL10", 100)
	order := `"currency":"EUR","order_amount":5000`
	for i := 0; i < 3; i++ {
		if status, v := c.json("POST", "/v1/validate", `{"code":"GUESS-`+string(rune('A'+i))+`","customer_id":"mallory",`+order+`}`); status != 200 || v["reason"] != "not_found" {
			t.Fatalf("miss %d: %d %v", i, status, v)
		}
	}
	req, _ := http.NewRequest("POST", c.srv.URL+"/v1/validate", strings.NewReader(`{"code":"REAL10","customer_id":"mallory",`+order+`}`))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after the misses a found code got %d (Retry-After %q)", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The key's bucket is empty too: another customer from the same key waits.
	if status, v := c.json("POST", "/v1/validate", `{"code":"REAL10","customer_id":"someone",`+order+`}`); status != 429 || errCode(v) != "too_many_misses" {
		t.Fatalf("same key, another customer: %d %v", status, v)
	}
	// Found codes cost nothing: a fresh limiter lets many hits through.
	c2 := newClient(t, api.Config{ValidateMissRate: api.Rate{N: 1, Per: time.Hour}, CustomerMissRate: api.Rate{N: 1, Per: time.Hour}})
	c2.sharedCode("REAL10", 100)
	for i := 0; i < 10; i++ {
		if status, v := c2.json("POST", "/v1/validate", `{"code":"REAL10",`+order+`}`); status != 200 || v["valid"] != true {
			t.Fatalf("hit %d: %d %v", i, status, v)
		}
	}
}

// TestRedeemNotThrottledByValidate: VALIDATE_RATE_LIMIT and the validations' misses
// (per key and per customer) never make a redemption 429: a buyer who mistyped codes at
// validation, or a storefront that validated a lot, still gets the paid order's
// redemption. Redemptions' own misses have buckets of their own.
func TestRedeemNotThrottledByValidate(t *testing.T) {
	c := newClient(t, api.Config{ValidateRate: api.Rate{N: 2, Per: time.Hour},
		ValidateMissRate: api.Rate{N: 2, Per: time.Hour}, CustomerMissRate: api.Rate{N: 2, Per: time.Hour}})
	c.sharedCode("PAID10", 100)
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]`
	for i := 0; i < 2; i++ {
		if status, v := c.json("POST", "/v1/validate", `{"code":"TYPO`+strconv.Itoa(i)+`","customer_id":"ann",`+cart+`}`); status != 200 || v["reason"] != "not_found" {
			t.Fatalf("validate %d: %d %v", i, status, v)
		}
	}
	// Both the rate and the misses are spent: validations are 429 now.
	if status, v := c.json("POST", "/v1/validate", `{"code":"PAID10","customer_id":"ann",`+cart+`}`); status != 429 {
		t.Fatalf("validation past the limits: %d %v", status, v)
	}
	for i := 0; i < 5; i++ {
		body := `{"code":"PAID10","customer_id":"ann","order_id":"o-` + strconv.Itoa(i) + `",` + cart + `}`
		if status, r := c.send(mustReq(c, body, "")); status != 201 || r["status"] != "succeeded" {
			t.Fatalf("redemption %d after validate's limits: %d %v", i, status, r)
		}
	}
	// Redemptions' misses are limited on their own: two misses, then 429 for ann.
	for i := 0; i < 2; i++ {
		body := `{"code":"GUESS` + strconv.Itoa(i) + `","customer_id":"ann","order_id":"m-` + strconv.Itoa(i) + `",` + cart + `}`
		if status, e := c.send(mustReq(c, body, "")); status != 422 {
			t.Fatalf("redeem miss %d: %d %v", i, status, e)
		}
	}
	if status, e := c.send(mustReq(c, `{"code":"PAID10","customer_id":"ann","order_id":"o-9",`+cart+`}`, "")); status != 429 || errCode(e) != "too_many_misses" {
		t.Fatalf("redemption past its own misses: %d %v", status, e)
	}
}

// TestIdenticalRedeemsOverHTTP: 16 identical POST /v1/redemptions at once (same
// order, same body) on a code with a cap of 1: one 201, every other answer a 200
// replay of the same redemption, one row.
func TestIdenticalRedeemsOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	c.sharedCode("ONCE", 1)
	body := `{"code":"ONCE","customer_id":"ann","order_id":"o-1","currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]}`
	type answer struct {
		status int
		id     any
	}
	answers := make(chan answer, 16)
	start := make(chan struct{})
	for range 16 {
		go func() {
			<-start
			status, r := c.send(mustReq(c, body, ""))
			answers <- answer{status, r["id"]}
		}()
	}
	close(start)
	created := 0
	var first any
	for range 16 {
		a := <-answers
		if a.status == 201 {
			created++
		} else if a.status != 200 {
			t.Errorf("answer %d", a.status)
		}
		if first == nil {
			first = a.id
		}
		if a.id != first || a.id == nil {
			t.Errorf("redemption %v, another answer had %v", a.id, first)
		}
	}
	var rows int
	c.db.Get(&rows, `SELECT count(*) FROM redemptions WHERE order_id = 'o-1'`)
	if created != 1 || rows != 1 {
		t.Fatalf("%d created, %d rows (failed ones included)", created, rows)
	}
}

// TestRedeemByEmailOverHTTP: validate and redeem name the customer by email alone.
func TestRedeemByEmailOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	c.sharedCode("MAIL10", 100)
	c.db.MustExec(`INSERT INTO customers (id, email) VALUES ('ann', 'Ann@Example.com')`)
	cart := `"currency":"EUR","items":[{"product_id":"shoe","quantity":1,"unit_amount":3000}]`
	if status, v := c.json("POST", "/v1/validate", `{"code":"MAIL10","email":"ann@example.COM",`+cart+`}`); status != 200 || v["valid"] != true {
		t.Fatalf("validate by email: %d %v", status, v)
	}
	status, r := c.send(mustReq(c, `{"code":"MAIL10","email":"ANN@example.com","order_id":"o-1",`+cart+`}`, ""))
	if status != 201 || r["customer_id"] != "ann" {
		t.Fatalf("redeem by email: %d %v", status, r)
	}
	status, e := c.send(mustReq(c, `{"code":"MAIL10","email":"nobody@example.com","order_id":"o-2",`+cart+`}`, ""))
	if status != 400 || !strings.Contains(e["error"].(map[string]any)["message"].(string), "email") {
		t.Fatalf("redeem by an unknown email: %d %v", status, e)
	}
}
