package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"promopool/api"
)

func (c *client) issue(group, key, customer string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.srv.URL+"/v1/groups/"+group+"/issue", strings.NewReader(`{"customer_id": "`+customer+`"}`))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) (int, map[string]any) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s: %d, body is not JSON: %q", req.URL.Path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestDirectIssueProfileAndExports(t *testing.T) {
	c := newClient(t, api.Config{})
	if status, _ := c.json("POST", "/v1/groups", `{"name": "G"}`); status != 201 {
		t.Fatal(status)
	}
	if status, body := c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("P1\nP2\n")); status != 201 {
		t.Fatal(status, body)
	}
	status, body := c.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(`{"id": "a", "email": "a@example.com"}`+"\n"+`{"id": "b", "x": 1}`+"\n"))
	if status != 200 || body["upserted"] != 1.0 || body["invalid"] != 1.0 {
		t.Fatalf("customers: %d %v", status, body)
	}
	// Codes go to known customers: b's line was refused above, c was never sent.
	c.db.MustExec(`INSERT INTO customers (id) VALUES ('b'), ('c')`)
	if status, body := c.issue("1", "", "a"); status != 400 || errCode(body) != "missing_idempotency_key" {
		t.Fatalf("no key: %d %v", status, body)
	}
	status, body = c.issue("1", "k1", "a")
	if status != 201 || body["code"] != "P1" {
		t.Fatalf("issue: %d %v", status, body)
	}
	if status, body := c.issue("1", "k1", "a"); status != 200 || body["code"] != "P1" || body["replayed"] != true {
		t.Fatalf("replay: %d %v", status, body)
	}
	if status, body := c.issue("1", "k1", "b"); status != 409 || errCode(body) != "idempotency_key_conflict" {
		t.Fatalf("conflict: %d %v", status, body)
	}
	c.issue("1", "k2", "b")
	if status, body := c.issue("1", "k3", "c"); status != 409 || errCode(body) != "pool_exhausted" {
		t.Fatalf("exhausted: %d %v", status, body)
	}
	if status, body := c.issue("9", "k4", "c"); status != 404 || errCode(body) != "group_not_found" {
		t.Fatalf("missing group: %d %v", status, body)
	}
	status, body = c.do("GET", "/v1/customers/a/promocodes", "", nil)
	list, _ := body["promocodes"].([]any)
	if status != 200 || len(list) != 1 || list[0].(map[string]any)["group_name"] != "G" || list[0].(map[string]any)["kind"] != "initial" {
		t.Fatalf("profile: %d %v", status, body)
	}
	status, csv := c.get("/v1/groups/1/issues.csv")
	if status != 200 || !strings.Contains(csv, "a,a@example.com,P1,G,,direct:k1,") || !strings.Contains(csv, "b,,P2,G") {
		t.Fatalf("issues.csv: %d %q", status, csv)
	}
	if status, csv := c.get("/v1/groups/1/unused.csv"); status != 200 || csv != "code,expires_at,expired\n" {
		t.Fatalf("unused.csv: %d %q", status, csv)
	}
	if status, body := c.get("/v1/groups/77/unused.csv"); status != 404 || !strings.Contains(body, "group_not_found") {
		t.Fatalf("unused.csv of a missing group: %d %q", status, body)
	}
	if strings.Contains(c.log.String(), "P1") || strings.Contains(c.log.String(), "P2") {
		t.Fatal("a code reached the log")
	}
}
