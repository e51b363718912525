package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// webhookServer answers according to the recipient's local part:
// "ok" 200, "bad" 400, "flaky" 503 then 200, "down" always 503,
// "busy" 429 then 200, "slow" never before the client gives up.
type webhookServer struct {
	*httptest.Server
	mu       sync.Mutex
	attempts map[string]int // per Idempotency-Key
	payloads map[string]webhookPayload
	bad      []string // problems with requests
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func newWebhookServer(t *testing.T) *webhookServer {
	t.Helper()
	ws := &webhookServer{attempts: map[string]int{}, payloads: map[string]webhookPayload{}}
	release := make(chan struct{})
	ws.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ws.inFlight.Add(1)
		defer ws.inFlight.Add(-1)
		for {
			m := ws.maxIn.Load()
			if n <= m || ws.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		var p webhookPayload
		err := json.NewDecoder(r.Body).Decode(&p)
		key := r.Header.Get("Idempotency-Key")
		ws.mu.Lock()
		switch {
		case err != nil:
			ws.bad = append(ws.bad, "body: "+err.Error())
		case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json":
			ws.bad = append(ws.bad, "method or content type")
		case key != p.ID:
			ws.bad = append(ws.bad, fmt.Sprintf("Idempotency-Key %q for id %q", key, p.ID))
		case r.Header.Get("Authorization") != "Bearer tok":
			ws.bad = append(ws.bad, "Authorization "+r.Header.Get("Authorization"))
		}
		ws.attempts[key]++
		attempt := ws.attempts[key]
		ws.payloads[key] = p
		ws.mu.Unlock()

		switch strings.Split(p.To, "@")[0] {
		case "bad":
			w.WriteHeader(http.StatusBadRequest)
		case "flaky":
			if attempt == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case "busy":
			if attempt == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		case "down":
			w.WriteHeader(http.StatusBadGateway)
		case "slow":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "hold":
			// Stay a moment so concurrent requests overlap.
			select {
			case <-time.After(20 * time.Millisecond):
			case <-release:
			}
		}
	}))
	t.Cleanup(func() {
		close(release)
		ws.Close()
		ws.mu.Lock()
		defer ws.mu.Unlock()
		for _, b := range ws.bad {
			t.Errorf("webhook request: %s", b)
		}
	})
	return ws
}

func (ws *webhookServer) attemptsFor(id string) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.attempts[id]
}

func newTestWebhook(t *testing.T, cfg WebhookConfig) *Webhook {
	t.Helper()
	cfg.Token = "tok"
	cfg.Backoff = cmpDur(cfg.Backoff, time.Millisecond)
	tr, err := NewWebhook(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestWebhookClassification(t *testing.T) {
	ws := newWebhookServer(t)
	tr := newTestWebhook(t, WebhookConfig{URL: ws.URL + "/send", Retries: 2, Timeout: 300 * time.Millisecond})
	tests := []struct {
		local    string
		want     Outcome
		attempts int
	}{
		{"ok", Sent, 1},
		{"bad", Rejected, 1},
		{"flaky", Sent, 2},
		{"busy", Sent, 2},
		{"down", Temporary, 3},
		{"slow", Ambiguous, 1},
	}
	var msgs []Message
	for _, tt := range tests {
		msgs = append(msgs, testMessage(t, "id-"+tt.local, msgOpts{To: tt.local + "@example.com"}))
	}
	res := sendOK(t, tr, msgs)
	for i, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			if res[i].Outcome != tt.want {
				t.Errorf("outcome %v (%v), want %v", res[i].Outcome, res[i].Err, tt.want)
			}
			if (res[i].Err == nil) != (tt.want == Sent) {
				t.Errorf("error %v with outcome %v", res[i].Err, res[i].Outcome)
			}
			if got := ws.attemptsFor(msgs[i].ID); got != tt.attempts {
				t.Errorf("%d attempts, want %d", got, tt.attempts)
			}
		})
	}
	var se *SendError
	if !errors.As(res[1].Err, &se) || se.Code != http.StatusBadRequest {
		t.Errorf("400 error: %v", res[1].Err)
	}
}

func TestWebhookPayload(t *testing.T) {
	ws := newWebhookServer(t)
	tr := newTestWebhook(t, WebhookConfig{URL: ws.URL})
	m := testMessage(t, "mailing-1:customer-2", msgOpts{Subject: "Скидка", Text: "код X"})
	sendOK(t, tr, []Message{m})
	ws.mu.Lock()
	got := ws.payloads[m.ID]
	ws.mu.Unlock()
	want := webhookPayload{ID: m.ID, From: m.From, To: m.To, Subject: m.Subject, HTML: m.HTML, Text: m.Text, Headers: m.Headers}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("payload %+v, want %+v", got, want)
	}
}

func TestWebhookConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tr := newTestWebhook(t, WebhookConfig{URL: "http://" + addr + "/send", Retries: 2})
	res := sendOK(t, tr, []Message{testMessage(t, "a", msgOpts{})})
	var se *SendError
	if res[0].Outcome != Temporary || !errors.As(res[0].Err, &se) || se.Stage != "request" {
		t.Errorf("got %v %v, want Temporary at stage request", res[0].Outcome, res[0].Err)
	}
}

// TestWebhookErrorsHideSecrets: a failed POST's error (stored on the recipient, logged)
// names the endpoint without its userinfo password or query values.
func TestWebhookErrorsHideSecrets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tr := newTestWebhook(t, WebhookConfig{URL: "http://user:pw-SECRET@" + addr + "/send?sig=q-SECRET", Retries: -1})
	res := sendOK(t, tr, []Message{testMessage(t, "a", msgOpts{})})
	if res[0].Err == nil || strings.Contains(res[0].Err.Error(), "SECRET") || !strings.Contains(res[0].Err.Error(), addr) {
		t.Fatalf("error %v: want the address, no secret", res[0].Err)
	}
}

func TestWebhookConcurrencyAndInvalid(t *testing.T) {
	ws := newWebhookServer(t)
	tr := newTestWebhook(t, WebhookConfig{URL: ws.URL, Concurrency: 2})
	var msgs []Message
	for i := range 8 {
		msgs = append(msgs, testMessage(t, fmt.Sprint("h", i), msgOpts{To: "hold@example.com"}))
	}
	msgs[3].Headers = map[string]string{"X-Evil": "a\r\nBcc: x@example.com"}
	res := sendOK(t, tr, msgs)
	for i, r := range res {
		want := Sent
		if i == 3 {
			want = Rejected
		}
		if r.Outcome != want {
			t.Errorf("message %d: %v %v, want %v", i, r.Outcome, r.Err, want)
		}
	}
	if !errors.Is(res[3].Err, ErrInvalidMessage) || ws.attemptsFor("h3") != 0 {
		t.Errorf("invalid message: %v, %d requests", res[3].Err, ws.attemptsFor("h3"))
	}
	if m := ws.maxIn.Load(); m > 2 {
		t.Errorf("%d requests in flight, want at most 2", m)
	}
}

func TestWebhookCanceledBeforeStart(t *testing.T) {
	ws := newWebhookServer(t)
	tr := newTestWebhook(t, WebhookConfig{URL: ws.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := tr.Send(ctx, []Message{testMessage(t, "a", msgOpts{})})
	if err != nil || res[0].Outcome != Temporary {
		t.Errorf("got %v %v, want Temporary", res, err)
	}
}
