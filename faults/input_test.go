package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// answer is the decoded error (or report) of one request.
type answer struct {
	status int
	code   string
	body   map[string]any
	raw    []byte
}

func (h *harness) send(method, path, ctype string, body []byte, key string) answer {
	h.t.Helper()
	st, b := h.do(method, path, ctype, bytes.NewReader(body), key)
	a := answer{status: st, raw: b}
	json.Unmarshal(b, &a.body)
	if e, ok := a.body["error"].(map[string]any); ok {
		a.code, _ = e["code"].(string)
	}
	return a
}

// storedCodes is how many codes the schema holds, and uploads recorded.
func (h *harness) stored() (codes, uploads int) {
	h.db.Get(&codes, `SELECT count(*) FROM codes`)
	h.db.Get(&uploads, `SELECT count(*) FROM uploads`)
	return
}

func (h *harness) up() bool {
	st, _ := h.do("GET", "/healthz", "", nil, "")
	return st == 200 && h.web.alive()
}

// TestBadInput sends every kind of bad input the issue lists; each must get its expected
// answer with a stable error code, store nothing half-way, and leave the server up.
func TestBadInput(t *testing.T) {
	h := newHarness(t)
	h.startWeb()
	gid := h.createGroup("Input")
	other := h.createGroup("Other")
	up := fmt.Sprintf("/v1/groups/%d/codes", gid)
	type upCase struct {
		name    string
		ctype   string
		body    []byte
		status  int
		code    string
		stored  int // codes stored by it
		invalid int64
	}
	big := bytes.Repeat([]byte("A"), 10<<20)
	oversized := bytes.Repeat([]byte("FLTX-00000000\n"), 17<<20/14+1) // over MAX_UPLOAD_BYTES (16 MiB) in this harness
	dups := []byte("FLTD-00000001\nFLTD-00000002\n")
	cases := []upCase{
		{"upload with a NUL byte in a line", "text/plain", []byte("FLTN-00000001\nFLTN-0000\x000002\nFLTN-00000003\n"), 201, "", 2, 1},
		{"upload with invalid UTF-8", "text/plain", []byte("FLTU-00000001\nFLTU-\xff\xfe000002\n"), 201, "", 1, 1},
		{"upload with a BOM", "text/plain", []byte("\ufeffFLTB-00000001\nFLTB-00000002\n"), 201, "", 2, 0},
		{"upload with CRLF endings", "text/plain", []byte("FLTC-00000001\r\nFLTC-00000002\r\n"), 201, "", 2, 0},
		{"upload with a 10 MB line", "text/plain", append(append([]byte("FLTL-00000001\n"), big...), "\nFLTL-00000002\n"...), 201, "", 2, 1},
		{"CSV upload with a 10 MB line", "text/csv", append([]byte("code\nFLTV-00000001\n"), big...), 400, "invalid_upload", 0, 0},
		{"JSON upload that does not parse", "application/json", []byte(`["FLTJ-00000001", `), 400, "invalid_upload", 0, 0},
		{"JSON upload with wrong types", "application/json", []byte(`{"codes": 5}`), 400, "invalid_upload", 0, 0},
		{"oversized body (17 MiB with MAX_UPLOAD_BYTES=16 MiB; stands in for 2 GB)", "text/plain", oversized, 413, "body_too_large", 0, 0},
		{"upload of an unsupported type", "application/xml", []byte("<codes/>"), 415, "unsupported_media_type", 0, 0},
		{"100% duplicates (first upload)", "text/plain", dups, 201, "", 2, 0},
		{"100% duplicates", "text/plain", dups, 201, "", 0, 0},
	}
	for _, tc := range cases {
		c := newChecks(t, tc.name)
		c.tried = 1
		codes0, uploads0 := h.stored()
		a := h.send("POST", up, tc.ctype, tc.body, "default")
		codes1, uploads1 := h.stored()
		c.check("status", a.status == tc.status && a.code == tc.code, "got %d %q, want %d %q: %.300s", a.status, a.code, tc.status, tc.code, a.raw)
		c.check("nothing stored half-way", codes1-codes0 == tc.stored, "%d codes stored, want %d", codes1-codes0, tc.stored)
		if tc.status >= 400 {
			c.check("no upload recorded", uploads1 == uploads0, "%d uploads recorded", uploads1-uploads0)
			c.lost += codes1 - codes0
		} else {
			inv, _ := a.body["invalid"].(float64)
			c.check("invalid lines counted", int64(inv) == tc.invalid, "invalid %v, want %d", a.body["invalid"], tc.invalid)
		}
		c.check("server up", h.up(), "web down")
		c.done()
	}
	// The BOM and CR are not part of the codes stored.
	c := newChecks(t, "BOM and CR stripped from stored codes")
	var n int
	h.db.Get(&n, `SELECT count(*) FROM codes WHERE code IN ('FLTB-00000001', 'FLTC-00000001', 'FLTC-00000002')`)
	c.tried = 1
	c.check("exact codes", n == 3, "%d of 3 stored exactly", n)
	c.done()

	// JSON bodies with wrong types, huge numbers, deep nesting, trailing data.
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	jsonCases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"JSON: wrong type", "POST", "/v1/groups", `{"name": 5}`, 400, "invalid_json"},
		{"JSON: huge number", "PATCH", fmt.Sprintf("/v1/groups/%d", gid), `{"low_balance_threshold": 1e400}`, 400, "invalid_json"},
		{"JSON: number past int64", "PATCH", fmt.Sprintf("/v1/groups/%d", gid), `{"low_balance_threshold": 99999999999999999999}`, 400, "invalid_json"},
		{"JSON: negative threshold", "PATCH", fmt.Sprintf("/v1/groups/%d", gid), `{"low_balance_threshold": -1}`, 400, "invalid_field"},
		{"JSON: deep nesting (100,000 levels)", "POST", "/v1/groups", deep, 400, "invalid_json"},
		{"JSON: deep nesting in a field", "POST", "/v1/mailings", `{"name":` + deep + `}`, 400, "invalid_json"},
		{"JSON: unknown field", "POST", "/v1/groups", `{"name": "x", "admin": true}`, 400, "invalid_json"},
		{"JSON: two objects", "POST", "/v1/groups", `{"name": "x"}{"name": "y"}`, 400, "invalid_json"},
		{"JSON: empty body", "POST", "/v1/groups", ``, 400, "invalid_json"},
		{"JSON: over 1 MiB", "POST", "/v1/groups", `{"name": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "body_too_large"},
		{"JSON: customer_ids of wrong type", "POST", "/v1/render", `{"scope": "s", "template": {"text": "x"}, "customer_ids": [1, 2]}`, 400, "invalid_json"},
	}
	var groupsBefore int
	h.db.Get(&groupsBefore, `SELECT count(*) FROM groups`)
	for _, tc := range jsonCases {
		c := newChecks(t, tc.name)
		c.tried = 1
		a := h.send(tc.method, tc.path, "application/json", []byte(tc.body), "default")
		c.check("status", a.status == tc.status && a.code == tc.code, "got %d %q, want %d %q: %.300s", a.status, a.code, tc.status, tc.code, a.raw)
		c.check("server up", h.up(), "web down")
		c.done()
	}
	var groupsAfter int
	h.db.Get(&groupsAfter, `SELECT count(*) FROM groups`)
	if groupsAfter != groupsBefore {
		t.Errorf("bad JSON created %d groups", groupsAfter-groupsBefore)
	}

	// Group names with quotes, SQL and HTML are stored and returned exactly, and work in
	// macros (quotes escaped); nothing they contain is executed.
	c = newChecks(t, "group names with quotes, SQL and HTML")
	for _, name := range []string{`Mother's day "2026"`, `x'); DROP TABLE codes; --`, `<script>alert(1)</script>`, `\'}}{{client.email}}`, "Ω ünïcode 🎁"} {
		c.tried++
		g := struct{ ID int64 }{h.createGroup(name)}
		a := h.send("GET", fmt.Sprintf("/v1/groups/%d", g.ID), "", nil, "default")
		got, _ := a.body["name"].(string)
		c.check("name kept exactly", got == name, "stored %q, want %q", got, name)
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/groups/%d", h.webURL, g.ID), nil)
		req.Header.Set("Authorization", "Bearer "+h.key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			c.check("served as JSON, never sniffed as HTML", strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") &&
				resp.Header.Get("X-Content-Type-Options") == "nosniff", "headers %v", resp.Header)
		}
	}
	var tables int
	h.db.Get(&tables, `SELECT count(*) FROM codes`)
	c.check("codes table still there", tables > 0, "")
	c.check("server up", h.up(), "web down")
	c.done()

	// Customer fields with <script> and macro text: escaped in HTML, never expanded.
	c = newChecks(t, "customer fields with <script> and macro text")
	c.tried = 1
	nd := `{"id":"evil","email":"evil@example.com","first_name":"<script>alert(1)</script>","last_name":"{{client.promocode('Input')}}"}` + "\n"
	a := h.send("PUT", "/v1/customers", "application/x-ndjson", []byte(nd), "default")
	c.check("customer stored", a.status == 200, "%d %s", a.status, a.raw)
	var active0 int64
	h.db.Get(&active0, `SELECT coalesce(sum(total - taken), 0) FROM code_ranges WHERE group_id = $1`, gid)
	pv := h.send("POST", "/v1/templates/preview", "application/json",
		[]byte(`{"subject":"Hi {{client.first_name}}","html":"<p>{{client.first_name}} {{client.last_name}}</p>","text":"{{client.last_name}}","customer_id":"evil"}`), "default")
	html, _ := pv.body["html"].(string)
	text, _ := pv.body["text"].(string)
	c.check("preview answers", pv.status == 200, "%d %s", pv.status, pv.raw)
	c.check("HTML escaped", strings.Contains(html, "&lt;script&gt;") && !strings.Contains(html, "<script>"), "html %q", html)
	c.check("macro text not expanded", strings.Contains(text, "{{client.promocode('Input')}}"), "text %q", text)
	var active1 int64
	h.db.Get(&active1, `SELECT coalesce(sum(total - taken), 0) FROM code_ranges WHERE group_id = $1`, gid)
	c.check("no code consumed", active1 == active0, "active %d → %d", active0, active1)
	c.done()

	// Templates from a fuzzer: random mixes of macro fragments, quotes and bytes. Each
	// gets 200 (valid) or 400 invalid_template, never a 5xx, and the server stays up.
	c = newChecks(t, "fuzzed templates → /v1/templates/validate")
	frags := []string{"{{", "}}", "client.", "promocode", "last_promocode", "(", ")", "'", `"`, "\\", "Input", "Other",
		"attr", "email", " ", "\n", "\x00", "\xff", "“", "”", "{{client.promocode('Input')}}", "{", "}", "%", "<", ">", "&"}
	rng := rand.New(rand.NewPCG(9, 9))
	tries := 400
	if long {
		tries = 5000
	}
	bad5xx := 0
	seen := map[int]int{}
	for range tries {
		var sb strings.Builder
		for range rng.IntN(30) {
			sb.WriteString(frags[rng.IntN(len(frags))])
		}
		body, _ := json.Marshal(map[string]any{"subject": "s", "text": sb.String(), "html": sb.String()})
		a := h.send("POST", "/v1/templates/validate", "application/json", body, "default")
		seen[a.status]++
		if a.status >= 500 || (a.status == 400 && a.code != "invalid_template" && a.code != "invalid_json") || (a.status != 200 && a.status != 400) {
			bad5xx++
			t.Logf("template %q: %d %s", sb.String(), a.status, a.raw)
		}
		c.tried++
	}
	c.check("only 200 or 400 invalid_template", bad5xx == 0, "%d unexpected answers", bad5xx)
	c.check("server up", h.up(), "web down")
	c.note("answers %v", seen)
	c.done()

	h.authChecks(gid, other)
	c = newChecks(t, "leak scan after the bad input")
	h.checkLeaks(c)
	c.done()
}

// authChecks: missing, malformed, wrong and revoked keys get 401 unauthorized; a timing
// probe; ids of other or missing groups and uploads get 404 or 400 with stable codes.
func (h *harness) authChecks(gid, other int64) {
	t := h.t
	c := newChecks(t, "missing, wrong and revoked API keys")
	paths := []string{"/v1/groups", fmt.Sprintf("/v1/groups/%d/unused.csv", gid), fmt.Sprintf("/v1/groups/%d/issues.csv", gid), "/v1/mailings"}
	for _, p := range paths {
		for _, key := range []string{"", "wrong-key-0123456789abcdef", h.key + "x", h.key[:len(h.key)-1], strings.ToUpper(h.key), " "} {
			c.tried++
			a := h.send("GET", p, "", nil, key)
			c.check("401", a.status == 401 && a.code == "unauthorized", "%s with key %q: %d %s", p, key, a.status, a.raw)
			c.check("no code in a refusal", !codeToken.Match(a.raw), "%s", a.raw)
		}
		req, _ := http.NewRequest("GET", h.webURL+p, nil)
		req.Header.Set("Authorization", "Basic "+h.key)
		resp, err := http.DefaultClient.Do(req)
		c.tried++
		c.check("401 for a non-bearer scheme", err == nil && resp.StatusCode == 401, "%v", err)
		if resp != nil {
			resp.Body.Close()
		}
	}
	// A stored key works, then is revoked with the CLI and stops working at once.
	out := h.start("keys", nil, "keys", "create", "probe", "-scopes", "read")
	<-out.done
	key := strings.TrimSpace(lastLine(out.out.String()))
	st, _ := h.do("GET", "/v1/groups", "", nil, key)
	c.tried++
	c.check("a created key works", st == 200, "%d with %q", st, key)
	rv := h.start("keys", nil, "keys", "revoke", "probe")
	<-rv.done
	st, _ = h.do("GET", "/v1/groups", "", nil, key)
	c.tried++
	c.check("a revoked key is refused", st == 401, "%d", st)

	// Timing probe: a wrong key vs a key sharing all but the last character with the
	// real one. Keys are hashed (SHA-256) and looked up, so the two cost the same.
	probe := func(key string) time.Duration {
		var ds []time.Duration
		for range 150 {
			start := time.Now()
			h.do("GET", "/v1/groups", "", nil, key)
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	wrong, near := probe("zzzzzzzzzzzzzzzzzzzzzzzzzz"), probe(h.key[:len(h.key)-1]+"!")
	diff := wrong - near
	if diff < 0 {
		diff = -diff
	}
	c.tried += 300
	c.check("timing: wrong vs right-prefix key", diff < 500*time.Microsecond || float64(diff) < 0.25*float64(min(wrong, near)),
		"median %s vs %s", wrong, near)
	c.note("median wrong key %s, right prefix %s", wrong.Round(time.Microsecond), near.Round(time.Microsecond))
	c.done()

	c = newChecks(t, "guessing ids of other or missing groups and uploads")
	archived := struct{ ID int64 }{h.createGroup("Gone")}
	del, err := h.cli().DeleteGroupWithResponse(context.Background(), int(archived.ID))
	h.ok(200, del, err)
	guesses := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", fmt.Sprintf("/v1/groups/%d", archived.ID), 404, "group_not_found"},
		{"GET", fmt.Sprintf("/v1/groups/%d/unused.csv", archived.ID), 404, "group_not_found"},
		{"GET", "/v1/groups/999999999/unused.csv", 404, "group_not_found"},
		{"GET", "/v1/groups/999999999/issues.csv", 404, "group_not_found"},
		{"GET", "/v1/groups/999999999/uploads", 404, "group_not_found"},
		{"DELETE", "/v1/uploads/999999999", 404, "upload_not_found"},
		{"GET", "/v1/groups/abc", 400, "invalid_id"},
		{"GET", "/v1/groups/-1", 400, "invalid_id"},
		{"GET", "/v1/groups/99999999999999999999", 400, "invalid_id"},
		{"GET", "/v1/groups/1%27%20OR%201=1", 400, "invalid_id"},
		{"GET", "/v1/mailings/999999999", 404, "mailing_not_found"},
		{"GET", "/v1/customers/nobody/promocodes", 200, ""},
	}
	for _, g := range guesses {
		c.tried++
		hdr := "application/json"
		a := h.send(g.method, g.path, hdr, []byte(`{"customer_id":"c1"}`), "default")
		c.check("status", a.status == g.status && a.code == g.code, "%s %s: %d %q, want %d %q: %.200s", g.method, g.path, a.status, a.code, g.status, g.code, a.raw)
	}
	_ = other
	c.check("server up", h.up(), "web down")
	c.done()
}

func lastLine(s string) string {
	lines := slices.DeleteFunc(strings.Split(strings.TrimSpace(s), "\n"), func(l string) bool { return strings.Contains(l, "level=") })
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
