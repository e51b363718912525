package mailer

import (
	"bytes"
	"errors"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestMessageBytesMultipart(t *testing.T) {
	m := testMessage(t, "m-1", msgOpts{Subject: "Ünïcödé subject — " + strings.Repeat("длинная тема ", 12)})
	raw, err := m.Bytes(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkMIME(t, raw, m)
	header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(header), "\r\n") {
		if len(line) > 78 {
			t.Errorf("header line of %d characters: %q", len(line), line)
		}
	}
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF in message")
	}
}

func TestMessageBytesSinglePart(t *testing.T) {
	tests := []struct {
		name, html, text, ctype, body string
	}{
		{"text only", "", "Код: ABC\nbye", "text/plain", "Код: ABC\r\nbye"},
		{"html only", "<p>Код</p>", "", "text/html", "<p>Код</p>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Message{ID: "x", From: "a@shop.example", To: "b@example.com", Subject: "s", HTML: tt.html, Text: tt.text}
			raw, err := m.Bytes(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			pm, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			ct, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
			if ct != tt.ctype || params["charset"] != "utf-8" || pm.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
				t.Errorf("headers %v", pm.Header)
			}
			var body bytes.Buffer
			body.ReadFrom(pm.Body)
			// Decode through the standard library to compare.
			dec, err := decodeQP(body.String())
			if err != nil || dec != tt.body {
				t.Errorf("body %q (%v), want %q", dec, err, tt.body)
			}
		})
	}
}

func TestMessageIDStable(t *testing.T) {
	m := testMessage(t, "mailing 3/customer:9", msgOpts{})
	a, _ := m.Bytes(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	b, _ := m.Bytes(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	id := func(raw []byte) string {
		pm, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return pm.Header.Get("Message-Id")
	}
	if id(a) != id(b) || id(a) != "<mailing%203%2Fcustomer%3A9@shop.example>" {
		t.Errorf("Message-IDs %q and %q", id(a), id(b))
	}
	other := testMessage(t, "mailing 3/customer:10", msgOpts{})
	if other.MessageID() == m.MessageID() {
		t.Error("different IDs give the same Message-ID")
	}
}

func TestMessageRejectsInjection(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Message)
	}{
		{"CRLF in subject", func(m *Message) { m.Subject = "Hi\r\nBcc: all@example.com" }},
		{"LF in subject", func(m *Message) { m.Subject = "Hi\nBcc: all@example.com" }},
		{"CR in from", func(m *Message) { m.From = "a@shop.example\rBcc: x@example.com" }},
		{"LF in to", func(m *Message) { m.To = "b@example.com\nBcc: x@example.com" }},
		{"LF in ID", func(m *Message) { m.ID = "x\n" }},
		{"CRLF in header value", func(m *Message) { m.Headers = map[string]string{"List-Unsubscribe": "<u>\r\nBcc: x@example.com"} }},
		{"colon in header name", func(m *Message) { m.Headers = map[string]string{"X-A: b\r\nBcc": "x"} }},
		{"reserved header", func(m *Message) { m.Headers = map[string]string{"bcc": "x@example.com"} }},
		{"overridden content type", func(m *Message) { m.Headers = map[string]string{"Content-Type": "text/plain"} }},
		{"no body", func(m *Message) { m.HTML, m.Text = "", "" }},
		{"no ID", func(m *Message) { m.ID = "" }},
		{"two recipients", func(m *Message) { m.To = "a@example.com, b@example.com" }},
		{"bad from", func(m *Message) { m.From = "not an address" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage(t, "x", msgOpts{})
			tt.change(&m)
			raw, err := m.Bytes(time.Now())
			if !errors.Is(err, ErrInvalidMessage) || raw != nil {
				t.Fatalf("Bytes = %d bytes, %v; want ErrInvalidMessage", len(raw), err)
			}
			if strings.Contains(err.Error(), "all@example.com") || strings.Contains(err.Error(), "Hi") {
				t.Errorf("error quotes the value: %v", err)
			}
		})
	}
}

func TestEscapeID(t *testing.T) {
	tests := []struct{ id, want string }{
		{"mailing-1_c2", "mailing-1_c2"},
		{"../../etc/passwd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"},
		{"a b", "a%20b"},
		{"100%", "100%25"},
	}
	for _, tt := range tests {
		if got := escapeID(tt.id); got != tt.want {
			t.Errorf("escapeID(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if long := escapeID(strings.Repeat("é", 200)); len(long) > 160 || long == escapeID(strings.Repeat("é", 201)) {
		t.Errorf("long IDs: %q", long)
	}
}

func decodeQP(s string) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(quotedprintable.NewReader(strings.NewReader(s)))
	return b.String(), err
}
