package mailer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileTransport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool", "nested")
	tr, err := NewFile(FileConfig{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	msgs := []Message{
		testMessage(t, "mailing-1/c1", msgOpts{}),
		testMessage(t, "../escape", msgOpts{}),
		testMessage(t, "bad", msgOpts{Subject: "x\r\nBcc: y@example.com"}),
	}
	res := sendOK(t, tr, msgs)
	if res[0].Outcome != Sent || res[1].Outcome != Sent || res[2].Outcome != Rejected {
		t.Fatalf("results %+v", res)
	}
	checkFiles(t, dir, "%2E%2E%2Fescape.eml", "mailing-1%2Fc1.eml")
	raw, err := os.ReadFile(tr.Path(&msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	checkMIME(t, raw, msgs[0])

	// A resend replaces the file instead of adding one.
	again := testMessage(t, "mailing-1/c1", msgOpts{Subject: "second try"})
	sendOK(t, tr, []Message{again})
	checkFiles(t, dir, "%2E%2E%2Fescape.eml", "mailing-1%2Fc1.eml")
	raw, _ = os.ReadFile(tr.Path(&again))
	if !strings.Contains(string(raw), "Subject: second try") {
		t.Error("resend did not overwrite the file")
	}
}

// checkFiles asserts that dir holds exactly the named files, no temporary
// leftovers.
func checkFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("files %v, want %v", got, want)
	}
}

func TestNullTransport(t *testing.T) {
	tr := NewNull(nil)
	for range 3 {
		res := sendOK(t, tr, make([]Message, 4))
		for _, r := range res {
			if r.Outcome != Sent {
				t.Fatal(r)
			}
		}
	}
	if n := tr.Count(); n != 12 {
		t.Errorf("Count = %d, want 12", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"null", Config{Kind: "null"}, false},
		{"file", Config{Kind: "file", File: FileConfig{Dir: t.TempDir()}}, false},
		{"smtp", Config{Kind: "smtp", SMTP: SMTPConfig{Host: "mail.example"}}, false},
		{"webhook", Config{Kind: "webhook", Webhook: WebhookConfig{URL: "https://sender.example/send"}}, false},
		{"no kind", Config{}, true},
		{"unknown kind", Config{Kind: "pigeon"}, true},
		{"smtp without host", Config{Kind: "smtp"}, true},
		{"smtp bad tls", Config{Kind: "smtp", SMTP: SMTPConfig{Host: "h", TLS: "ssl"}}, true},
		{"smtp password only", Config{Kind: "smtp", SMTP: SMTPConfig{Host: "h", Password: "p"}}, true},
		{"webhook ftp", Config{Kind: "webhook", Webhook: WebhookConfig{URL: "ftp://x/y"}}, true},
		{"file without dir", Config{Kind: "file"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v does not wrap ErrConfig", err)
				}
				return
			}
			tr.Close()
			if _, err := tr.Send(context.Background(), nil); tt.name != "null" && tt.name != "file" && !errors.Is(err, ErrClosed) {
				t.Errorf("Send after Close: %v, want ErrClosed", err)
			}
		})
	}
}
