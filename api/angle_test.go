package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// Issue 21 item 1 end to end: the design card's <<…>> form is a macro like {{…}} at
// validate (its groups listed, no warning), at mailing creation and in the mail sent
// through SMTP (the customer gets a code and their name, never the macro as text);
// <<client.unknown>> is refused at validate and at mailing creation, and a near miss
// (<<cleint.email>>) is a warning with its fix.
func TestAngleDelimitersEndToEnd(t *testing.T) {
	s := newSending(t)
	s.customers(2)
	if status, body := s.json("POST", "/v1/groups", `{"name":"Spring 30%"}`); status != 201 {
		t.Fatalf("group: %d %v", status, body)
	}
	codes := []string{"SPRING-0001", "SPRING-0002"}
	if status, body := s.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader(strings.Join(codes, "\n")+"\n")); status != 201 || body["accepted"] != 2.0 {
		t.Fatalf("codes: %d %v", status, body)
	}
	text := "Hi <<client.first_name>>, your code: <<client.promocode('Spring 30%')>>"
	html := "<p>Hi <<client.first_name>>, your code: <b><<client.promocode('Spring 30%')>></b></p>"

	status, body := s.json("POST", "/v1/templates/validate", fmt.Sprintf(`{"text":%q,"html":%q}`, text, html))
	if w, _ := body["warnings"].([]any); status != 200 || body["valid"] != true || fmt.Sprint(body["new_code_groups"]) != "[Spring 30%]" || len(w) != 0 {
		t.Fatalf("validate <<…>>: %d %v", status, body)
	}
	status, body = s.json("POST", "/v1/templates/validate", `{"text":"Hi <<client.unknown>>"}`)
	if e, _ := body["error"].(map[string]any); status != 400 || errCode(body) != "invalid_template" || len(e["problems"].([]any)) != 1 {
		t.Fatalf("validate <<client.unknown>>: %d %v", status, body)
	}
	status, body = s.json("POST", "/v1/templates/validate", `{"text":"Hi <<cleint.email>>"}`)
	w, _ := body["warnings"].([]any)
	if status != 200 || len(w) != 1 || w[0].(map[string]any)["code"] != "looks_like_macro" || !strings.Contains(fmt.Sprint(w[0].(map[string]any)["fix"]), "<<client.email>>") {
		t.Fatalf("validate <<cleint.email>>: %d %v", status, body)
	}
	status, body = s.json("POST", "/v1/mailings", `{"name":"Bad","sender":"shop@example.com","subject":"Hi","text":"<<client.unknown>>","audience":{"customer_ids":["c1"]}}`)
	if status != 400 || errCode(body) != "invalid_template" {
		t.Fatalf("a mailing with <<client.unknown>>: %d %v", status, body)
	}

	path := s.mailing(2, fmt.Sprintf(`"text":%q,"html":%q`, text, html))
	if m := s.run(path); m["status"] != "finished" || m["progress"].(map[string]any)["sent"] != 2.0 {
		t.Fatalf("mailing: %v", m)
	}
	delivered := s.parts()
	if len(delivered) != 2 {
		t.Fatalf("%d messages, want 2", len(delivered))
	}
	seen := map[string]bool{}
	for to, p := range delivered {
		n := strings.TrimSuffix(strings.TrimPrefix(to, "c"), "@example.com")
		code := strings.TrimPrefix(strings.TrimSpace(p[0]), "Hi Name"+n+", your code: ")
		if seen[code] || (code != codes[0] && code != codes[1]) {
			t.Fatalf("text part to %s: %q", to, p[0])
		}
		seen[code] = true
		if !strings.Contains(p[1], "<p>Hi Name"+n+", your code: <b>"+code+"</b></p>") {
			t.Fatalf("HTML part to %s: %q, want the code %s", to, p[1], code)
		}
		for _, part := range p {
			if strings.Contains(part, "<<") || strings.Contains(part, "&lt;&lt;") || strings.Contains(part, "client.") {
				t.Fatalf("a macro reached %s as text: %q", to, part)
			}
		}
	}
}
