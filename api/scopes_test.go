package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"promopool/alerts"
	"promopool/api"
	"promopool/auth"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/reports"
	"promopool/segments"
)

// everything wires every optional service, so the server registers every route.
func everything(d *api.Deps, db *testdb.DB) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d.Mailings = mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB, Groups: d.Groups, Log: log})
	d.Segments = segments.New(db.DB, segments.Config{})
	checker, err := alerts.New(alerts.Config{}, alerts.Deps{DB: db.DB, Groups: d.Groups, Log: log})
	if err != nil {
		panic(err)
	}
	d.Alerts = checker
	if d.Reports, err = reports.New(reports.Config{}, reports.Deps{DB: db.DB, Groups: d.Groups, Mailings: d.Mailings}); err != nil {
		panic(err)
	}
}

// metricsStub stands in for the metrics handler.
var metricsStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "{}")
})

// withScopedKeys adds a static key per scope (scopeKey) to the admin test key.
func withScopedKeys(d *api.Deps, db *testdb.DB) {
	spec := []string{"tests:" + staticKey + ":admin"}
	for _, s := range auth.Scopes {
		spec = append(spec, string(s)+":"+scopeKey(s)+":"+string(s))
	}
	k, err := auth.NewKeys(db.DB, strings.Join(spec, ","))
	if err != nil {
		panic(err)
	}
	d.Keys = k
}

// scopeKey is the static key holding only s.
func scopeKey(s auth.Scope) string { return "key-for-" + string(s) + "-0123456789" }

// TestRoutesMatchOpenAPI: every route the server registers is in api/openapi.json with
// the scope it needs as its security requirement — for an API key (bearer) and, the
// same scope, for a person's platform JWT (platformJWT) — and every operation the
// document marks as needing a key is a registered route. An undocumented or unscoped
// route fails here (and register refuses one without a known scope).
func TestRoutesMatchOpenAPI(t *testing.T) {
	c := newClient(t, api.Config{Metrics: metricsStub}, everything)
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op struct {
				Security  *[]map[string][]string
				Responses map[string]json.RawMessage
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if op.Security != nil && len(*op.Security) == 0 {
				continue // no key needed: health, readiness, this document
			}
			pattern := strings.ToUpper(method) + " " + path
			if op.Security == nil || len(*op.Security) != 2 || len((*op.Security)[0]["bearer"]) != 1 ||
				!slices.Equal((*op.Security)[1]["platformJWT"], (*op.Security)[0]["bearer"]) {
				t.Errorf("%s: the document does not name one scope, for a key and for a platform JWT alike (security %v)", pattern, op.Security)
				continue
			}
			if _, ok := op.Responses["403"]; !ok {
				t.Errorf("%s: no 403 insufficient_scope answer documented", pattern)
			}
			documented[pattern] = (*op.Security)[0]["bearer"][0]
		}
	}
	routes := c.api.Routes()
	if len(routes) < 25 {
		t.Fatalf("only %d routes registered: the optional services are not wired", len(routes))
	}
	for _, r := range routes {
		got, ok := documented[r.Pattern]
		switch {
		case !ok:
			t.Errorf("%s (scope %s) is served but not in api/openapi.json", r.Pattern, r.Scope)
		case got != string(r.Scope):
			t.Errorf("%s needs %s, the document says %s", r.Pattern, r.Scope, got)
		}
		delete(documented, r.Pattern)
	}
	for p := range documented {
		t.Errorf("%s is documented but not served", p)
	}
}

// TestScopes: a key lacking a route's scope gets 403 insufficient_scope naming it, for
// every route; the key holding just that scope, and an admin key, get past the check.
func TestScopes(t *testing.T) {
	c := newClient(t, api.Config{Metrics: metricsStub}, everything, withScopedKeys)
	if status, body := c.json("POST", "/v1/groups", `{"name": "G"}`); status != 201 {
		t.Fatal(status, body)
	}
	for _, r := range c.api.Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = strings.ReplaceAll(path, "{id}", "1")
		ctype := "application/json"
		if r.Pattern == "PUT /v1/customers" {
			ctype = "application/x-ndjson"
		}
		for _, s := range auth.Scopes {
			c.key = scopeKey(s)
			status, body := c.do(method, path, ctype, strings.NewReader(`{}`))
			e, _ := body["error"].(map[string]any)
			allowed := s == r.Scope || s == auth.ScopeAdmin
			switch {
			case allowed && (status == 401 || status == 403):
				t.Errorf("%s with a %s key: %d %v, want past the scope check", r.Pattern, s, status, body)
			case !allowed && (status != 403 || e["code"] != "insufficient_scope" || e["scope"] != string(r.Scope)):
				t.Errorf("%s with a %s key: %d %v, want 403 insufficient_scope naming %q", r.Pattern, s, status, body, r.Scope)
			}
		}
	}
	// The refusal happens before the handler: the keys without write changed nothing
	// (the admin and write keys deleted group 1 and failed to create one without a name).
	var n int
	c.db.Get(&n, `SELECT count(*) FROM groups`)
	if n != 0 {
		t.Errorf("%d groups after the scope probes, want 0", n)
	}
	// A stored key's scopes come from its row.
	c.key = staticKey
	if status, body := c.json("POST", "/v1/groups", `{"name": "H"}`); status != 201 || body["id"] != 2.0 {
		t.Fatal(status, body)
	}
	ks, _ := auth.NewKeys(c.db.DB, "")
	stored, err := ks.Create(t.Context(), "mailer", []auth.Scope{auth.ScopeRender})
	if err != nil {
		t.Fatal(err)
	}
	c.key = stored
	if status, body := c.do("GET", "/v1/groups/2/unused.csv", "", nil); status != 403 || errCode(body) != "insufficient_scope" {
		t.Fatalf("a render key downloading unused.csv: %d %v", status, body)
	}
	if err := ks.SetScopes(t.Context(), "mailer", []auth.Scope{auth.ScopeRender, auth.ScopeExport}); err != nil {
		t.Fatal(err)
	}
	if status, _ := c.get("/v1/groups/2/unused.csv"); status != 200 {
		t.Fatalf("after adding export: %d", status)
	}
}

// TestStaticKeysNeedScopes: API_KEYS entries name their scopes; the old name:key form
// is refused with a message saying how to keep such a key.
func TestStaticKeysNeedScopes(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"crm:0123456789abcdef", "write name:key:admin to keep this key all-powerful"},
		{"crm:0123456789abcdef:everything", `unknown scope "everything"`},
		{"crm:short:admin", "at least 16 characters"},
		{"crm:0123456789abcdef:", "no scope given"},
	} {
		_, err := auth.NewKeys(nil, tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
	k, err := auth.NewKeys(nil, "mailer:0123:456789abcdef:render+issue, ops:fedcba9876543210:admin")
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Authenticate(t.Context(), "0123:456789abcdef")
	if err != nil || p.Name != "mailer" || !slices.Equal(p.Scopes, []auth.Scope{auth.ScopeRender, auth.ScopeIssue}) || p.Has(auth.ScopeExport) {
		t.Fatalf("a key with a colon: %+v %v", p, err)
	}
	if p, err := k.Authenticate(t.Context(), "fedcba9876543210"); err != nil || !p.Has(auth.ScopeExport) {
		t.Fatalf("admin implies export: %+v %v", p, err)
	}
}

// TestDirectIssueKnownCustomersOnly: a direct issue to an id no customer has is 404
// customer_not_found and takes no code, unless it asks to create the customer.
func TestDirectIssueKnownCustomersOnly(t *testing.T) {
	c := newClient(t, api.Config{})
	c.json("POST", "/v1/groups", `{"name": "G"}`)
	c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("K1\nK2\nK3\n"))
	for i, id := range []string{"nobody", "nobody-2", "nobody-3"} {
		if status, body := c.issue("1", "k"+id, id); status != 404 || errCode(body) != "customer_not_found" {
			t.Fatalf("unknown customer %d: %d %v", i, status, body)
		}
	}
	var issued int
	c.db.Get(&issued, `SELECT count(*) FROM issues`)
	if issued != 0 {
		t.Fatalf("%d codes issued to unknown customers", issued)
	}
	req, _ := http.NewRequest("POST", c.srv.URL+"/v1/groups/1/issue", strings.NewReader(`{"customer_id": "newbie", "create_customer": true}`))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Idempotency-Key", "create-1")
	if status, body := c.send(req); status != 201 || body["code"] != "K1" {
		t.Fatalf("with create_customer: %d %v", status, body)
	}
	var email string
	if err := c.db.Get(&email, `SELECT email FROM customers WHERE id = 'newbie'`); err != nil || email != "" {
		t.Fatalf("created customer: %q %v", email, err)
	}
	// The issue route reads a small body only.
	req, _ = http.NewRequest("POST", c.srv.URL+"/v1/groups/1/issue", strings.NewReader(`{"customer_id": "`+strings.Repeat("x", 8<<10)+`"}`))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Idempotency-Key", "big")
	if status, body := c.send(req); status != 413 || errCode(body) != "body_too_large" {
		t.Fatalf("8 KiB issue body: %d %v", status, body)
	}
}

// TestIssueRateLimit: past its per-key limit a key gets 429 rate_limited with a
// Retry-After; another key is not slowed by it.
func TestIssueRateLimit(t *testing.T) {
	c := newClient(t, api.Config{IssueRate: api.Rate{N: 3, Per: 60 * 1e9}})
	c.json("POST", "/v1/groups", `{"name": "G"}`)
	c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("R1\nR2\nR3\nR4\nR5\n"))
	c.db.Exec(`INSERT INTO customers (id) VALUES ('a'), ('b'), ('c'), ('d'), ('e')`)
	for i, id := range []string{"a", "b", "c"} {
		if status, body := c.issue("1", "rl-"+id, id); status != 201 {
			t.Fatalf("issue %d: %d %v", i, status, body)
		}
	}
	req, _ := http.NewRequest("POST", c.srv.URL+"/v1/groups/1/issue", strings.NewReader(`{"customer_id": "d"}`))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Idempotency-Key", "rl-d")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), `"rate_limited"`) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth issue in a minute: %d %s (Retry-After %q)", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	keys, _ := auth.NewKeys(c.db.DB, "")
	other, _ := keys.Create(t.Context(), "other", []auth.Scope{auth.ScopeIssue})
	c.key = other
	if status, body := c.issue("1", "rl-e", "e"); status != 201 {
		t.Fatalf("another key: %d %v", status, body)
	}
	var n int
	c.db.Get(&n, `SELECT count(*) FROM issues`)
	if n != 4 {
		t.Fatalf("%d issues, want 4", n)
	}
}
