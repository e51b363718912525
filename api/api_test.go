package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"promopool/api"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/internal/apitest"
	"promopool/internal/testdb"
)

const staticKey = "test-key-0123456789abcdef"

type client struct {
	t   *testing.T
	api *api.Server
	srv *httptest.Server
	db  *testdb.DB
	key string
	log *bytes.Buffer
}

// newClient serves the API over a fresh schema; wire sets optional services (Alerts,
// Segments…) in the deps before the server is built.
func newClient(t *testing.T, cfg api.Config, wire ...func(d *api.Deps, db *testdb.DB)) *client {
	t.Helper()
	db := testdb.New(t)
	keys, err := auth.NewKeys(db.DB, "tests:"+staticKey+":admin")
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	deps := api.Deps{Groups: groups.NewStore(db.DB, groups.Config{Usage: checkout.Usage, CodeRedemptions: checkout.CodeRedemptions}), Customers: customers.NewStore(db.DB), Keys: keys,
		Log: slog.New(slog.NewTextHandler(logs, nil)), Ready: map[string]api.Pinger{"postgres": api.PingFunc(db.PingContext)}}
	svc, err := checkout.New(checkout.Config{}, checkout.Deps{DB: db.DB, Log: deps.Log, CustomerByEmail: customers.NewStore(db.DB).IDByEmail})
	if err != nil {
		t.Fatal(err)
	}
	deps.Checkout = svc
	for _, w := range wire {
		w(&deps, db)
	}
	s, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.Handler(t, s))
	t.Cleanup(srv.Close)
	return &client{t: t, api: s, srv: srv, db: db, key: staticKey, log: logs}
}

// do sends a request and returns the status and the decoded JSON body.
func (c *client) do(method, path, ctype string, body io.Reader) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (c *client) json(method, path, body string) (int, map[string]any) {
	return c.do(method, path, "application/json", strings.NewReader(body))
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestAuth(t *testing.T) {
	c := newClient(t, api.Config{})
	keys, _ := auth.NewKeys(c.db.DB, "")
	stored, err := keys.Create(context.Background(), "marketing", []auth.Scope{auth.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	var hash []byte
	c.db.Get(&hash, `SELECT key_hash FROM api_keys WHERE name = 'marketing'`)
	if bytes.Contains(hash, []byte(stored)) || len(hash) != 32 {
		t.Fatal("the key must be stored as its SHA-256 only")
	}
	for _, tc := range []struct {
		name, key string
		want      int
	}{
		{"missing", "", 401},
		{"wrong", "nope-nope-nope-nope", 401},
		{"static", staticKey, 200},
		{"stored", stored, 200},
	} {
		c.key = tc.key
		status, body := c.do("GET", "/v1/groups", "", nil)
		if status != tc.want {
			t.Errorf("%s key: status %d, want %d", tc.name, status, tc.want)
		}
		if tc.want == 401 && errCode(body) != "unauthorized" {
			t.Errorf("%s key: error %v", tc.name, body)
		}
	}
	if err := keys.Revoke(context.Background(), "marketing"); err != nil {
		t.Fatal(err)
	}
	c.key = stored
	if status, _ := c.do("GET", "/v1/groups", "", nil); status != 401 {
		t.Fatalf("revoked key: status %d, want 401", status)
	}
	// Health and the OpenAPI document need no key.
	c.key = ""
	if status, _ := c.do("GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("healthz %d", status)
	}
	if status, body := c.do("GET", "/readyz", "", nil); status != 200 || body["postgres"] != "ok" {
		t.Fatalf("readyz %d %v", status, body)
	}
	if status, body := c.do("GET", "/v1/openapi.json", "", nil); status != 200 || body["openapi"] != "3.1.0" {
		t.Fatalf("openapi %d", status)
	}
}

func TestGroupsOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{})
	status, g := c.json("POST", "/v1/groups", `{"name":"Spring","low_balance_threshold":2}`)
	if status != 201 || g["name"] != "Spring" {
		t.Fatalf("create: %d %v", status, g)
	}
	id := int64(g["id"].(float64))
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/v1/groups", `{"name":"spring"}`, 409, "name_taken"},
		{"POST", "/v1/groups", `{"name":""}`, 400, "invalid_field"},
		{"POST", "/v1/groups", `{"name":"x","colour":"red"}`, 400, "invalid_json"},
		{"POST", "/v1/groups", `{"name":5}`, 400, "invalid_json"},
		{"POST", "/v1/groups", `{"name":"x"`, 400, "invalid_json"},
		{"POST", "/v1/groups", ``, 400, "invalid_json"},
		{"GET", "/v1/groups/abc", ``, 400, "invalid_id"},
		{"GET", "/v1/groups/999999", ``, 404, "group_not_found"},
		{"PATCH", "/v1/groups/999999", `{"name":"x"}`, 404, "group_not_found"},
		{"DELETE", "/v1/uploads/999999", ``, 404, "upload_not_found"},
		{"GET", "/v1/nothing-here", ``, 404, "not_found"},
		{"PUT", "/v1/groups", ``, 405, "method_not_allowed"},
	} {
		status, body := c.json(tc.method, tc.path, tc.body)
		if status != tc.status || errCode(body) != tc.code {
			t.Errorf("%s %s %s: %d %v, want %d %s", tc.method, tc.path, tc.body, status, body, tc.status, tc.code)
		}
	}
	path := fmt.Sprintf("/v1/groups/%d", id)
	status, up := c.do("POST", path+"/codes", "text/plain; charset=utf-8", strings.NewReader("A\nB\nC\nA\nbad\x01\n"))
	if status != 201 || up["accepted"] != 3.0 || up["duplicates"] != 1.0 || up["invalid"] != 1.0 {
		t.Fatalf("upload: %d %v", status, up)
	}
	status, up2 := c.do("POST", path+"/codes?expires_at=2099-01-01", "text/csv", strings.NewReader("code\nD\nE\n"))
	if status != 201 || up2["accepted"] != 2.0 {
		t.Fatalf("csv upload: %d %v", status, up2)
	}
	status, up3 := c.do("POST", path+"/codes", "application/json", strings.NewReader(`["F"]`))
	if status != 201 || up3["accepted"] != 1.0 {
		t.Fatalf("json upload: %d %v", status, up3)
	}
	if status, body := c.do("POST", path+"/codes", "application/xml", strings.NewReader("<a/>")); status != 415 || errCode(body) != "unsupported_media_type" {
		t.Fatalf("xml upload: %d %v", status, body)
	}
	if status, body := c.do("POST", path+"/codes", "text/csv", strings.NewReader("x,y\n1,2\n")); status != 400 || errCode(body) != "invalid_upload" {
		t.Fatalf("csv without code column: %d %v", status, body)
	}
	status, got := c.do("GET", path, "", nil)
	if status != 200 || got["total"] != 6.0 || got["active"] != 6.0 || got["issued"] != 0.0 || got["balance_state"] != "ok" {
		t.Fatalf("group after uploads: %v", got)
	}
	status, list := c.do("GET", path+"/uploads", "", nil)
	if status != 200 || len(list["uploads"].([]any)) != 3 {
		t.Fatalf("uploads: %v", list)
	}
	first := list["uploads"].([]any)[2].(map[string]any)
	if first["actor"] != "tests" || first["source"] != "api" {
		t.Fatalf("upload record: %v", first)
	}
	status, undone := c.do("DELETE", fmt.Sprintf("/v1/uploads/%d", int64(first["id"].(float64))), "", nil)
	if status != 200 || undone["removed"] != 3.0 {
		t.Fatalf("undo: %d %v", status, undone)
	}
	if status, body := c.do("DELETE", fmt.Sprintf("/v1/uploads/%d", int64(first["id"].(float64))), "", nil); status != 409 || errCode(body) != "upload_already_undone" {
		t.Fatalf("second undo: %d %v", status, body)
	}
	status, g2 := c.json("PATCH", path, `{"low_balance_threshold": 5}`)
	if status != 200 || g2["balance_state"] != "low" {
		t.Fatalf("patch: %d %v", status, g2)
	}
	status, acts := c.do("GET", path+"/activity", "", nil)
	if status != 200 || len(acts["activity"].([]any)) != 6 {
		t.Fatalf("activity: %v", acts)
	}
	status, del := c.do("DELETE", path, "", nil)
	if status != 200 || del["archived"] != false || del["removed_codes"] != 3.0 {
		t.Fatalf("delete: %d %v", status, del)
	}
	// No code ever reaches the log.
	for _, code := range []string{"\nA", "=A ", "\"A\"", "D", "E"} {
		if strings.Contains(c.log.String(), code+"\n") || strings.Contains(c.log.String(), "code="+strings.TrimSpace(code)) {
			t.Fatalf("the log mentions a code: %s", c.log.String())
		}
	}
}

func TestUploadBodyLimit(t *testing.T) {
	c := newClient(t, api.Config{MaxUploadBytes: 1000})
	_, g := c.json("POST", "/v1/groups", `{"name":"G"}`)
	path := fmt.Sprintf("/v1/groups/%d/codes", int64(g["id"].(float64)))
	big := strings.Repeat("CODE-0123456789\n", 200)
	status, body := c.do("POST", path, "text/plain", strings.NewReader(big))
	if status != 413 || errCode(body) != "body_too_large" {
		t.Fatalf("oversized body with length: %d %v", status, body)
	}
	// Without a Content-Length (chunked), the limit is found while streaming.
	status, body = c.do("POST", path, "text/plain", io.MultiReader(strings.NewReader(big)))
	if status != 413 || errCode(body) != "body_too_large" {
		t.Fatalf("oversized chunked body: %d %v", status, body)
	}
	var n int
	c.db.Get(&n, `SELECT count(*) FROM codes`)
	if n != 0 {
		t.Fatalf("a rejected body left %d codes", n)
	}
}

// A client that disconnects halfway through an upload leaves nothing behind.
func TestClientDisconnectMidUpload(t *testing.T) {
	c := newClient(t, api.Config{})
	_, g := c.json("POST", "/v1/groups", `{"name":"G"}`)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/v1/groups/%d/codes", c.srv.URL, int64(g["id"].(float64))), pr)
	req.Header.Set("Authorization", "Bearer "+staticKey)
	req.Header.Set("Content-Type", "text/plain")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(pw, "DISCONNECT-%06d\n", i)
	}
	// Wait until the server has staged rows, so the cut really is mid-upload.
	waitFor(t, func() bool {
		var n int
		c.db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%upload_stage%'`)
		return n > 0
	})
	cancel()
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	// The transaction must end with nothing stored.
	waitFor(t, func() bool {
		var n int
		c.db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%upload_stage%' AND state <> 'idle'`)
		return n == 0
	})
	var codes, uploads int
	c.db.Get(&codes, `SELECT count(*) FROM codes`)
	c.db.Get(&uploads, `SELECT count(*) FROM uploads`)
	if codes != 0 || uploads != 0 {
		t.Fatalf("a disconnected upload left %d codes and %d uploads", codes, uploads)
	}
}
