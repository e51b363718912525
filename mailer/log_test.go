package mailer

import (
	"log/slog"
	"strings"
	"testing"

	"promopool/internal/syncbuf"
)

type syncBuffer = syncbuf.Buffer

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
