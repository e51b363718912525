package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// msgOpts overrides fields of testMessage's defaults.
type msgOpts struct {
	To, Subject, HTML, Text string
}

// testMessage returns a valid message with the given ID.
func testMessage(t *testing.T, id string, o msgOpts) Message {
	t.Helper()
	m := Message{
		ID:      id,
		From:    "Promo Team <promo@shop.example>",
		To:      cmpStr(o.To, "alice@example.com"),
		Subject: cmpStr(o.Subject, "Your code"),
		HTML:    cmpStr(o.HTML, "<p>Your code: <b>CODE-"+id+"</b></p>"),
		Text:    cmpStr(o.Text, "Your code: CODE-"+id),
		Headers: map[string]string{"List-Unsubscribe": "<https://shop.example/u/" + id + ">"},
	}
	return m
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// newTestSMTP returns a transport to ts, closed at the end of t.
func newTestSMTP(t *testing.T, ts *testServer, cfg SMTPConfig) *SMTP {
	t.Helper()
	cfg.Host = ts.host
	cfg.Port = ts.port
	if cfg.TLS == "" {
		cfg.TLS = TLSNone
	}
	cfg.Timeout = cmpDur(cfg.Timeout, 5*time.Second)
	tr, err := NewSMTP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func sendOK(t *testing.T, tr Transport, msgs []Message) []Result {
	t.Helper()
	res, err := tr.Send(context.Background(), msgs)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("got %d results for %d messages", len(res), len(msgs))
	}
	return res
}

func TestSMTPBatchOneConnection(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{Concurrency: 1})
	var msgs []Message
	for i := range 5 {
		msgs = append(msgs, testMessage(t, fmt.Sprintf("m1-c%d", i), msgOpts{To: fmt.Sprintf("c%d@example.com", i)}))
	}
	for i, r := range sendOK(t, tr, msgs) {
		if r.Outcome != Sent || r.Err != nil {
			t.Errorf("message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	// A second batch reuses the idle connection.
	sendOK(t, tr, msgs[:2])
	if got := len(ts.received()); got != 7 {
		t.Errorf("server received %d messages, want 7", got)
	}
	if n := ts.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	got := ts.received()
	for i, m := range got[:5] {
		if want := fmt.Sprintf("c%d@example.com", i); m.to != want || m.from != "promo@shop.example" {
			t.Errorf("message %d envelope %s -> %s, want promo@shop.example -> %s", i, m.from, m.to, want)
		}
	}
}

func TestSMTPConcurrencyLimit(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{Concurrency: 2})
	var msgs []Message
	for i := range 20 {
		msgs = append(msgs, testMessage(t, fmt.Sprintf("m%d", i), msgOpts{}))
	}
	// Several batches at once still share the two connections.
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			res, err := tr.Send(context.Background(), msgs)
			for _, r := range res {
				err = errors.Join(err, r.Err)
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := len(ts.received()); got != 60 {
		t.Errorf("server received %d messages, want 60", got)
	}
	if n := ts.conns.Load(); n > 2 {
		t.Errorf("%d connections, want at most 2", n)
	}
}

func TestSMTPClassification(t *testing.T) {
	tests := []struct {
		local string
		want  Outcome
		stage string
		code  int
	}{
		{"ok", Sent, "", 0},
		{rcptReject, Rejected, "rcpt", 550},
		{rcptTempfail, Temporary, "rcpt", 451},
		{rcptDrop, Ambiguous, "end", 0},
		{rcptDropMid, Ambiguous, "", 0}, // "body" or "end", depending on when the write notices
		{rcptRejectData, Rejected, "end", 554},
		{rcptTempData, Temporary, "end", 452},
	}
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{Concurrency: 1})
	// Each failure is followed by a good message that must still go out.
	var msgs []Message
	for i, tt := range tests {
		msgs = append(msgs,
			testMessage(t, fmt.Sprintf("bad%d", i), msgOpts{To: tt.local + "@example.com"}),
			testMessage(t, fmt.Sprintf("good%d", i), msgOpts{To: "after" + tt.local + "@example.com"}))
	}
	res := sendOK(t, tr, msgs)
	for i, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			r := res[2*i]
			if r.Outcome != tt.want {
				t.Fatalf("outcome %v (%v), want %v", r.Outcome, r.Err, tt.want)
			}
			if tt.want == Sent {
				return
			}
			var se *SendError
			if !errors.As(r.Err, &se) {
				t.Fatalf("error %v is not a *SendError", r.Err)
			}
			if tt.stage != "" && se.Stage != tt.stage || se.Code != tt.code {
				t.Errorf("stage %q code %d, want %q %d", se.Stage, se.Code, tt.stage, tt.code)
			}
			if next := res[2*i+1]; next.Outcome != Sent {
				t.Errorf("message after it: %v %v", next.Outcome, next.Err)
			}
		})
	}
	// Reply codes keep the connection (RSET); the two drops each cost one.
	if n := ts.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	if got := len(ts.received()); got != len(tests)+1 {
		t.Errorf("server kept %d messages, want %d", got, len(tests)+1)
	}
}

func TestSMTPReconnectsAfterServerClose(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{Concurrency: 1})
	sendOK(t, tr, []Message{testMessage(t, "a", msgOpts{})})
	ts.dropAll() // the idle connection dies
	res := sendOK(t, tr, []Message{testMessage(t, "b", msgOpts{}), testMessage(t, "c", msgOpts{})})
	for i, r := range res {
		if r.Outcome != Sent {
			t.Errorf("message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	if n := ts.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestSMTPConnectFailureFailsBatch(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there any more
	tr, err := NewSMTP(SMTPConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone, Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	msgs := []Message{testMessage(t, "a", msgOpts{}), testMessage(t, "b", msgOpts{})}
	res, err := tr.Send(context.Background(), msgs)
	if err == nil {
		t.Fatal("Send succeeded with no server")
	}
	for i, r := range res {
		if r.Outcome != Temporary {
			t.Errorf("message %d: %v, want Temporary", i, r.Outcome)
		}
	}
}

func TestSMTPTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	tests := []struct {
		name     string
		mode     string
		implicit bool
	}{
		{"starttls", TLSStartTLS, false},
		{"implicit", TLSImplicit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{tls: serverTLS, implicit: tt.implicit, user: "mailer", pass: "s3cret:pw"})
			tr := newTestSMTP(t, ts, SMTPConfig{TLS: tt.mode, TLSConfig: clientTLS, Username: "mailer", Password: "s3cret:pw"})
			sendOK(t, tr, []Message{testMessage(t, "tls", msgOpts{})})
			got := ts.received()
			if len(got) != 1 || !got[0].tls || got[0].user != "mailer" {
				t.Fatalf("received %+v, want one message over TLS from user mailer", got)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		ts := newTestServer(t, serverOptions{tls: serverTLS})
		tr := newTestSMTP(t, ts, SMTPConfig{TLS: TLSStartTLS}) // system roots
		if _, err := tr.Send(context.Background(), []Message{testMessage(t, "x", msgOpts{})}); err == nil {
			t.Fatal("Send trusted a self-signed certificate")
		}
	})
	t.Run("no STARTTLS offered", func(t *testing.T) {
		ts := newTestServer(t, serverOptions{})
		tr := newTestSMTP(t, ts, SMTPConfig{TLS: TLSStartTLS, TLSConfig: clientTLS})
		if _, err := tr.Send(context.Background(), []Message{testMessage(t, "x", msgOpts{})}); err == nil {
			t.Fatal("Send went on without STARTTLS")
		}
	})
}

func TestSMTPAuth(t *testing.T) {
	tests := []struct {
		name, user, pass string
		wantErr          bool
	}{
		{"good credentials", "u", "p", false},
		{"wrong password", "u", "nope", true},
		{"no credentials", "", "", false}, // MAIL then fails with 530: Temporary
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{user: "u", pass: "p"})
			tr := newTestSMTP(t, ts, SMTPConfig{Username: tt.user, Password: tt.pass})
			res, err := tr.Send(context.Background(), []Message{testMessage(t, "x", msgOpts{})})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Send error %v, want error: %v", err, tt.wantErr)
			}
			wantSent := tt.user != "" && !tt.wantErr
			if got := len(ts.received()) == 1; got != wantSent || (res[0].Outcome == Sent) != wantSent {
				t.Errorf("delivered %v (%v %v), want %v", got, res[0].Outcome, res[0].Err, wantSent)
			}
			if !wantSent && res[0].Outcome != Temporary {
				t.Errorf("outcome %v, want Temporary: credentials are not the message's fault", res[0].Outcome)
			}
		})
	}
}

func TestSMTPRateLimit(t *testing.T) {
	const n, perSecond = 6, 20.0
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{Concurrency: 2, Rate: perSecond})
	var msgs []Message
	for i := range n {
		msgs = append(msgs, testMessage(t, fmt.Sprint(i), msgOpts{}))
	}
	start := time.Now()
	sendOK(t, tr, msgs)
	min := time.Duration(float64(n-1) / perSecond * float64(time.Second))
	if took := time.Since(start); took < min {
		t.Errorf("%d messages at %v/s took %v, want at least %v", n, perSecond, took, min)
	}
}

func TestSMTPInvalidMessageNotSent(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{})
	bad := testMessage(t, "bad", msgOpts{})
	bad.Subject = "Hello\r\nBcc: everyone@example.com"
	res := sendOK(t, tr, []Message{bad, testMessage(t, "good", msgOpts{})})
	if res[0].Outcome != Rejected || !errors.Is(res[0].Err, ErrInvalidMessage) {
		t.Errorf("injected subject: %v %v, want Rejected ErrInvalidMessage", res[0].Outcome, res[0].Err)
	}
	if res[1].Outcome != Sent {
		t.Errorf("good message: %v %v", res[1].Outcome, res[1].Err)
	}
	if got := ts.received(); len(got) != 1 || bytes.Contains(got[0].data, []byte("everyone")) {
		t.Errorf("server received %d messages", len(got))
	}
}

func TestSMTPContextCanceled(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := tr.Send(ctx, []Message{testMessage(t, "a", msgOpts{})})
	if !errors.Is(err, context.Canceled) || res[0].Outcome != Temporary {
		t.Fatalf("got %v, %v; want context.Canceled and Temporary", err, res)
	}
	if len(ts.received()) != 0 {
		t.Error("message sent on a cancelled context")
	}
}

// TestSMTPMIMERoundTrip sends a multipart message with non-ASCII headers and
// a line starting with a dot, and parses what the server received.
func TestSMTPMIMERoundTrip(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	tr := newTestSMTP(t, ts, SMTPConfig{})
	m := testMessage(t, "mailing-7/customer 42", msgOpts{
		Subject: "Ваш промокод — скидка 20% 🎁",
		Text:    "Привет!\n.dot line\nКод: ABC-123",
		HTML:    "<p>Привет!</p>\n.<b>ABC-123</b>",
	})
	m.From = "Магазин <promo@shop.example>"
	sendOK(t, tr, []Message{m})
	got := ts.received()
	if len(got) != 1 {
		t.Fatalf("received %d messages", len(got))
	}
	checkMIME(t, got[0].data, m)
}

// checkMIME parses raw with net/mail and mime/multipart and compares it
// with m.
func checkMIME(t *testing.T, raw []byte, m Message) {
	t.Helper()
	pm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(pm.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("subject %q (%v), want %q", subject, err, m.Subject)
	}
	from, err := pm.Header.AddressList("From")
	want, _ := mail.ParseAddress(m.From)
	if err != nil || len(from) != 1 || *from[0] != *want {
		t.Errorf("From %v (%v), want %v", from, err, want)
	}
	if id := pm.Header.Get("Message-Id"); id != m.MessageID() {
		t.Errorf("Message-ID %q, want %q", id, m.MessageID())
	}
	if _, err := pm.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if v := pm.Header.Get("Mime-Version"); v != "1.0" {
		t.Errorf("MIME-Version %q", v)
	}
	for k, v := range m.Headers {
		if got := pm.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	mediaType, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", mediaType, err)
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for _, want := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		p, err := mr.NextPart() // decodes quoted-printable
		if err != nil {
			t.Fatalf("part %s: %v", want.ctype, err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if ct != want.ctype || cp["charset"] != "utf-8" {
			t.Errorf("part type %q charset %q, want %q utf-8", ct, cp["charset"], want.ctype)
		}
		body, _ := io.ReadAll(p)
		if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != want.body {
			t.Errorf("%s body %q, want %q", want.ctype, got, want.body)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more than two parts: %v", err)
	}
}
