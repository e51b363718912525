package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"promopool/api"
	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/segments"
)

// Issue 21 items 2 and 3 over HTTP: on_exhaustion is chosen at creation and shown;
// fallback without a fallback text is refused; an upload to a group whose mailing
// paused for lack of codes resumes it, and the mailing's events say why.
func TestMailingExhaustionOptionsOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		d.Mailings = mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB, Groups: d.Groups,
			Segments: segments.New(db.DB, segments.Config{}), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	})
	if status, body := c.json("POST", "/v1/groups", `{"name":"Spring"}`); status != 201 {
		t.Fatalf("group: %d %v", status, body)
	}
	if status, body := c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("S1\nS2\n")); status != 201 {
		t.Fatalf("codes: %d %v", status, body)
	}
	customers := `{"id":"c1","email":"c1@example.com"}` + "\n" + `{"id":"c2","email":"c2@example.com"}` + "\n"
	if status, body := c.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(customers)); status != 200 {
		t.Fatalf("customers: %d %v", status, body)
	}
	mailing := func(text, onExhaustion string) string {
		return fmt.Sprintf(`{"name":"M","sender":"shop@example.com","subject":"Hi","text":%q,"audience":{"customer_ids":["c1","c2"]},"on_exhaustion":%q}`, text, onExhaustion)
	}
	status, body := c.json("POST", "/v1/mailings", mailing("{{client.promocode('Spring')}}", "fallback"))
	if status != 400 || errCode(body) != "invalid_field" || !strings.Contains(fmt.Sprint(body), "fallback='…'") {
		t.Fatalf("fallback without a fallback text: %d %v", status, body)
	}
	status, body = c.json("POST", "/v1/mailings", mailing("{{client.promocode('Spring', fallback='See the shop')}}", "fallback"))
	if status != 201 || body["on_exhaustion"] != "fallback" {
		t.Fatalf("fallback: %d %v", status, body)
	}
	status, body = c.json("POST", "/v1/mailings", mailing("{{client.promocode('Spring')}}", "skip"))
	if status != 201 || body["on_exhaustion"] != "skip" {
		t.Fatalf("skip: %d %v", status, body)
	}
	status, body = c.json("POST", "/v1/mailings", mailing("{{client.promocode('Spring')}}", "pause"))
	if status != 201 || body["on_exhaustion"] != "pause" {
		t.Fatalf("pause: %d %v", status, body)
	}
	id := int64(body["id"].(float64))
	path := fmt.Sprintf("/v1/mailings/%d", id)
	if status, body := c.json("POST", path+"/start", `{}`); status != 200 {
		t.Fatalf("start: %d %v", status, body)
	}
	// Its batch found the group empty (as a worker would have recorded it).
	if _, err := c.db.Exec(`UPDATE mailings SET status = 'paused', pause_kind = 'exhausted', pause_reason = 'group "Spring" ran out of codes' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.db.Exec(`UPDATE code_ranges SET taken = total, next_id = last_id + 1`); err != nil {
		t.Fatal(err)
	}
	status, body = c.json("GET", path, "")
	if status != 200 || body["status"] != "paused" || body["pause_kind"] != "exhausted" {
		t.Fatalf("paused: %d %v", status, body)
	}
	if status, body := c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("S3\nS4\nS5\n")); status != 201 {
		t.Fatalf("upload: %d %v", status, body)
	}
	status, body = c.json("GET", path, "")
	events := body["events"].([]any)
	last := events[len(events)-1].(map[string]any)
	if status != 200 || body["status"] != "running" || body["pause_kind"] != nil || last["action"] != "resume" ||
		!strings.Contains(fmt.Sprint(last["detail"]), "added 3 codes") || last["who"].(map[string]any)["kind"] != "system" {
		t.Fatalf("after the upload: %d %v", status, body)
	}
	if status, body := c.json("GET", "/v1/groups/1/activity", ""); status != 200 || !strings.Contains(fmt.Sprint(body), "mailing_resumed") {
		t.Fatalf("activity: %d %v", status, body)
	}
	_ = groups.ActionMailingResumed
}
