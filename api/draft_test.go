package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// Issue 17 item 4, a draft group ("saved, not usable: no macros, no issue, no
// redemption") over HTTP: validate warns (group_not_active) about promocode of a draft
// or paused group and not about last_promocode of a paused one; a render drawing from
// the draft is refused (409 group_draft) and issues nothing; a mailing drawing from it
// waits (pause_kind group, reason group_draft) without sending or failing anybody, and
// the group's activation resumes it; it then delivers one code per customer.
func TestDraftGroupEndToEnd(t *testing.T) {
	s := newSending(t)
	s.customers(2)
	if status, body := s.json("POST", "/v1/groups", `{"name":"Launch","status":"draft"}`); status != 201 || body["status"] != "draft" {
		t.Fatalf("draft group: %d %v", status, body)
	}
	if status, body := s.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("L-1\nL-2\n")); status != 201 {
		t.Fatalf("codes: %d %v", status, body)
	}
	if status, body := s.json("POST", "/v1/groups", `{"name":"Spring"}`); status != 201 {
		t.Fatalf("group: %d %v", status, body)
	}

	warnings := func(text string) []map[string]any {
		t.Helper()
		status, body := s.json("POST", "/v1/templates/validate", fmt.Sprintf(`{"text":%q}`, text))
		if status != 200 || body["valid"] != true {
			t.Fatalf("validate %q: %d %v", text, status, body)
		}
		var out []map[string]any
		for _, w := range body["warnings"].([]any) {
			out = append(out, w.(map[string]any))
		}
		return out
	}
	w := warnings("A {{client.promocode('launch')}} B {{client.promocode('Launch')}}")
	if len(w) != 1 || w[0]["code"] != "group_not_active" || w[0]["column"] != 3.0 ||
		!strings.Contains(fmt.Sprint(w[0]["message"]), `group "launch" is a draft`) || !strings.Contains(fmt.Sprint(w[0]["fix"]), "activate") {
		t.Fatalf("promocode of a draft group: %v", w)
	}
	if w := warnings("{{client.promocode('Spring')}}"); len(w) != 0 {
		t.Fatalf("promocode of an active group: %v", w)
	}
	if status, body := s.json("POST", "/v1/groups/2/pause", ""); status != 200 {
		t.Fatalf("pause: %d %v", status, body)
	}
	if w := warnings("{{client.promocode('Spring')}}"); len(w) != 1 || w[0]["code"] != "group_not_active" || !strings.Contains(fmt.Sprint(w[0]["message"]), "is paused") {
		t.Fatalf("promocode of a paused group: %v", w)
	}
	if w := warnings("{{client.last_promocode('Spring')}}"); len(w) != 0 {
		t.Fatalf("last_promocode of a paused group still renders the customer's code: %v", w)
	}

	status, body := s.json("POST", "/v1/render", `{"scope":"crm-1","template":{"Subject":"Hi","Text":"{{client.promocode('Launch')}}"},"customer_ids":["c1"]}`)
	if status != 409 || errCode(body) != "group_draft" {
		t.Fatalf("render from a draft group: %d %v", status, body)
	}
	if status, body := s.json("GET", "/v1/customers/c1/promocodes", ""); status != 200 || strings.Contains(fmt.Sprint(body), "L-") {
		t.Fatalf("the refused render issued a code: %d %v", status, body)
	}

	path := s.mailing(2, `"text":"Your code: {{client.promocode('Launch')}}"`)
	m := s.run(path)
	progress := m["progress"].(map[string]any)
	if m["status"] != "paused" || m["pause_kind"] != "group" || !strings.Contains(fmt.Sprint(m["pause_reason"]), `group_draft: group "Launch" is a draft`) ||
		progress["queued"] != 2.0 || progress["sent"] != 0.0 || progress["failed"] != 0.0 || len(s.smtp.Messages()) != 0 {
		t.Fatalf("with the group a draft: %v", m)
	}
	if status, body := s.json("POST", "/v1/groups/1/activate", ""); status != 200 || body["status"] != "active" {
		t.Fatalf("activate: %d %v", status, body)
	}
	if m = s.run(path); m["status"] != "finished" || m["progress"].(map[string]any)["sent"] != 2.0 {
		t.Fatalf("after the activation: %v", m)
	}
	seen := map[string]bool{}
	for to, p := range s.parts() {
		code := strings.TrimSpace(strings.TrimPrefix(p[0], "Your code: "))
		if (code != "L-1" && code != "L-2") || seen[code] {
			t.Fatalf("message to %s: %q", to, p[0])
		}
		seen[code] = true
	}
	if len(seen) != 2 {
		t.Fatalf("%d messages delivered, want 2", len(seen))
	}
}
