package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"

	"promopool/api"
	"promopool/internal/smtptest"
	"promopool/internal/testdb"
	"promopool/mailer"
	"promopool/mailings"
	"promopool/segments"
)

// sending is an API client whose mailings service sends through the test SMTP server;
// run plays the worker: it runs a mailing's open batches once each.
type sending struct {
	*client
	smtp *smtptest.Server
	svc  *mailings.Service
}

func newSending(t *testing.T) *sending {
	t.Helper()
	s := &sending{smtp: smtptest.Start(t)}
	tcfg, err := mailer.ParseURL(s.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mailer.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	s.client = newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		s.svc = mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB, Groups: d.Groups, Sender: tr,
			Segments: segments.New(db.DB, segments.Config{}), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		d.Mailings = s.svc
	})
	return s
}

// setup creates the customers c1…cn (cN@example.com).
func (s *sending) customers(n int) {
	s.t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"id":"c%d","email":"c%d@example.com","first_name":"Name%d"}`+"\n", i, i, i)
	}
	if status, body := s.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(b.String())); status != 200 {
		s.t.Fatalf("customers: %d %v", status, body)
	}
}

// mailing creates and starts a mailing to c1…cn with the templates (JSON members) and
// returns its path.
func (s *sending) mailing(n int, templates string) string {
	s.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("c%d", i+1))
	}
	status, body := s.json("POST", "/v1/mailings", fmt.Sprintf(`{"name":"M","sender":"shop@example.com","subject":"Hi",%s,"audience":{"customer_ids":[%s]},"batch_size":2}`,
		templates, strings.Join(ids, ",")))
	if status != 201 {
		s.t.Fatalf("mailing: %d %v", status, body)
	}
	path := fmt.Sprintf("/v1/mailings/%d", int64(body["id"].(float64)))
	if status, body := s.json("POST", path+"/start", `{}`); status != 200 {
		s.t.Fatalf("start: %d %v", status, body)
	}
	return path
}

// run runs the open batches of the mailing at path once each, as a worker would.
func (s *sending) run(path string) map[string]any {
	s.t.Helper()
	var id int64
	fmt.Sscanf(path, "/v1/mailings/%d", &id)
	var batches []int
	if err := s.db.Select(&batches, `SELECT batch FROM mailing_batches WHERE mailing_id = $1 AND done_at IS NULL ORDER BY batch`, id); err != nil {
		s.t.Fatal(err)
	}
	for _, b := range batches {
		if err := s.svc.ProcessBatch(context.Background(), id, b); err != nil && !errors.Is(err, mailings.ErrTransient) {
			s.t.Fatalf("batch %d: %v", b, err)
		}
	}
	status, body := s.json("GET", path, "")
	if status != 200 {
		s.t.Fatalf("mailing: %d %v", status, body)
	}
	return body
}

// parts returns the decoded text and HTML parts of each message delivered, by recipient.
func (s *sending) parts() map[string][2]string {
	s.t.Helper()
	out := map[string][2]string{}
	for _, m := range s.smtp.Messages() {
		if _, dup := out[m.To[0]]; dup {
			s.t.Fatalf("%s got two messages", m.To[0])
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			s.t.Fatal(err)
		}
		mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			s.t.Fatal(err)
		}
		var p [2]string
		if !strings.HasPrefix(mt, "multipart/") {
			b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
			p[0] = string(b)
			if mt == "text/html" {
				p = [2]string{"", string(b)}
			}
			out[m.To[0]] = p
			continue
		}
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(part)
			if strings.HasPrefix(part.Header.Get("Content-Type"), "text/html") {
				p[1] = string(b)
			} else {
				p[0] = string(b)
			}
		}
		out[m.To[0]] = p
	}
	return out
}

// Issue 17 item 4 end to end: over HTTP, a running mailing whose group is paused
// (POST /v1/groups/{id}/pause) waits — pause_kind group, reason group_paused naming
// the group, nothing sent or failed — and the group's activation resumes it by itself;
// it then delivers through SMTP one code per customer, and its history and the group's
// activity say so.
func TestGroupPauseMailingEndToEnd(t *testing.T) {
	s := newSending(t)
	s.customers(3)
	if status, body := s.json("POST", "/v1/groups", `{"name":"Spring"}`); status != 201 {
		t.Fatalf("group: %d %v", status, body)
	}
	if status, body := s.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("S-1\nS-2\nS-3\n")); status != 201 {
		t.Fatalf("codes: %d %v", status, body)
	}
	path := s.mailing(3, `"text":"Your code: {{client.promocode('Spring')}}"`)
	if status, body := s.json("POST", "/v1/groups/1/pause", ""); status != 200 || body["status"] != "paused" {
		t.Fatalf("pause: %d %v", status, body)
	}
	m := s.run(path)
	progress := m["progress"].(map[string]any)
	if m["status"] != "paused" || m["pause_kind"] != "group" || !strings.Contains(fmt.Sprint(m["pause_reason"]), `group_paused: group "Spring" is paused`) ||
		progress["queued"] != 3.0 || progress["sent"] != 0.0 || progress["failed"] != 0.0 || len(s.smtp.Messages()) != 0 {
		t.Fatalf("with the group paused: %v", m)
	}
	if status, body := s.json("POST", "/v1/groups/1/activate", ""); status != 200 || body["status"] != "active" {
		t.Fatalf("activate: %d %v", status, body)
	}
	_, m = s.json("GET", path, "")
	events := m["events"].([]any)
	last := events[len(events)-1].(map[string]any)
	if m["status"] != "running" || last["action"] != "resume" || last["who"].(map[string]any)["kind"] != "system" ||
		!strings.Contains(fmt.Sprint(last["detail"]), `group "Spring" was activated by`) {
		t.Fatalf("after the activation: %v", m)
	}
	m = s.run(path)
	if m["status"] != "finished" || m["progress"].(map[string]any)["sent"] != 3.0 {
		t.Fatalf("after the resume: %v", m)
	}
	seen := map[string]bool{}
	for to, p := range s.parts() {
		code := strings.TrimSpace(strings.TrimPrefix(p[0], "Your code: "))
		if !strings.HasPrefix(code, "S-") || seen[code] {
			t.Fatalf("message to %s: %q", to, p[0])
		}
		seen[code] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d messages delivered, want 3", len(seen))
	}
	if status, body := s.json("GET", "/v1/groups/1/activity", ""); status != 200 || !strings.Contains(fmt.Sprint(body), "mailing_resumed") {
		t.Fatalf("activity: %d %v", status, body)
	}
}
