package mailer

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsHoldNoContent checks that failures are logged with the domain but
// never the subject, body, promo code or full address.
func TestLogsHoldNoContent(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := newTestServer(t, serverOptions{})
	tr, err := NewSMTP(SMTPConfig{Host: ts.host, Port: ts.port, TLS: TLSNone}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	secret := testMessage(t, "logged", msgOpts{
		To: rcptReject + "@victim.example", Subject: "SECRET-SUBJECT", Text: "PROMO-CODE-XYZ", HTML: "<b>PROMO-CODE-XYZ</b>",
	})
	injected := secret
	injected.ID, injected.Subject = "injected", "SECRET-SUBJECT\r\nBcc: x@example.com"
	ok := secret
	ok.ID, ok.To = "fine", "bob@victim.example"
	sendOK(t, tr, []Message{secret, injected, ok})

	out := buf.String()
	for _, want := range []string{`"to_domain":"victim.example"`, `"code":550`, `"rejected":2`, `"transport":"smtp"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	for _, leak := range []string{"SECRET", "PROMO-CODE", rcptReject + "@", "bob@", "promo@shop"} {
		if strings.Contains(out, leak) {
			t.Errorf("logs contain %q:\n%s", leak, out)
		}
	}
}
