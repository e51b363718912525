package api_test

import (
	"strings"
	"testing"

	"promopool/api"
)

// Issue 21 item 4 over HTTP: one_per_customer is set at creation and by PATCH, shown on
// the group, and a second direct issue to the customer under another key answers the
// same code with repeat: true.
func TestOnePerCustomerGroupOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	status, g := c.json("POST", "/v1/groups", `{"name":"Keyed","one_per_customer":true}`)
	if status != 201 || g["one_per_customer"] != true {
		t.Fatalf("create: %d %v", status, g)
	}
	if status, body := c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("K1\nK2\nK3\n")); status != 201 {
		t.Fatalf("codes: %d %v", status, body)
	}
	if status, body := c.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(`{"id":"c1","email":"c1@example.com"}`+"\n")); status != 200 {
		t.Fatalf("customers: %d %v", status, body)
	}
	status, first := c.issue("1", "k1", "c1")
	if status != 201 && status != 200 || first["repeat"] != false {
		t.Fatalf("first issue: %d %v", status, first)
	}
	status, second := c.issue("1", "k2", "c1")
	if status != 201 && status != 200 || second["code"] != first["code"] || second["repeat"] != true || second["replayed"] != false {
		t.Fatalf("second key: %d %v (first %v)", status, second, first)
	}
	if status, body := c.json("GET", "/v1/groups/1", ""); status != 200 || body["issued"] != 1.0 {
		t.Fatalf("group: %d %v", status, body)
	}
	if status, body := c.json("PATCH", "/v1/groups/1", `{"one_per_customer":false}`); status != 200 || body["one_per_customer"] != false {
		t.Fatalf("patch: %d %v", status, body)
	}
	status, third := c.issue("1", "k3", "c1")
	if status != 201 && status != 200 || third["code"] == first["code"] || third["repeat"] != false {
		t.Fatalf("off: %d %v", status, third)
	}
}
