package mailings_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"promopool/mailings"
)

// slowHook is a webhook that takes its time over each message and counts deliveries
// per Idempotency-Key (the message id).
type slowHook struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]int
}

func newSlowHook(t *testing.T, per time.Duration) *slowHook {
	h := &slowHook{got: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(per)
		h.mu.Lock()
		h.got[r.Header.Get("Idempotency-Key")]++
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

// deliveries returns how many messages arrived and fails on a message delivered twice.
func (h *slowHook) deliveries(t *testing.T) int {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.got {
		if n > 1 {
			t.Fatalf("message %s delivered %d times", id, n)
		}
	}
	return len(h.got)
}

// slowBatch starts a 30-recipient mailing in one batch through a webhook that takes
// 40 ms a message (1.2 s in all) with MAILING_LEASE at 600 ms, and the batch's first
// delivery, whose result arrives on first.
func slowBatch(t *testing.T) (*slowHook, *env, *mailings.Mailing, chan error) {
	t.Helper()
	hook := newSlowHook(t, 40*time.Millisecond)
	e := newEnvSending(t, nil, mailings.Config{Lease: 600 * time.Millisecond}, hook.URL+"/send?concurrency=1")
	ids := e.customers(t, 30)
	e.group(t, "Spring", 30, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 30)
	if _, err := e.svc.Start(context.Background(), m.ID, false); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- e.svc.ProcessBatch(context.Background(), m.ID, 0) }()
	return hook, e, m, first
}

// A batch that sends for twice its lease keeps the lease by renewing it: a second
// delivery of the same batch, after the lease would have run out, finds it held and
// sends nothing, so nobody gets a message twice. Then the lease is gone.
func TestLeaseRenewedWhileBatchSends(t *testing.T) {
	hook, e, m, first := slowBatch(t)
	ctx := context.Background()
	time.Sleep(900 * time.Millisecond) // past the lease as first taken
	if n := e.count(t, `SELECT count(*) FROM mailing_batches WHERE mailing_id = $1 AND lease_until > now()`, m.ID); n != 1 {
		t.Fatalf("the batch's lease was not renewed while it sent")
	}
	if err := e.svc.ProcessBatch(ctx, m.ID, 0); err != nil {
		t.Fatalf("second delivery: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if n := hook.deliveries(t); n != 30 {
		t.Fatalf("%d messages delivered, want 30", n)
	}
	if n := e.count(t, `SELECT count(*) FROM mailing_batches WHERE mailing_id = $1 AND (lease_until IS NOT NULL OR lease_token IS NOT NULL OR done_at IS NULL)`, m.ID); n != 0 {
		t.Fatalf("the batch is not done, or its lease was left behind")
	}
	e.checkInvariants(t)
}

// A delivery whose lease is taken over (it had expired and another delivery took the
// batch) stops sending at its next renewal, records what it sent, and leaves the other
// delivery's lease alone; the rest is sent later, nobody twice.
func TestLeaseLostStopsSending(t *testing.T) {
	hook, e, m, first := slowBatch(t)
	ctx := context.Background()
	time.Sleep(300 * time.Millisecond)
	if _, err := e.db.Exec(`UPDATE mailing_batches SET lease_token = -1, lease_until = now() + interval '1 hour' WHERE mailing_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	stolenAt := hook.deliveries(t)
	err := <-first
	if !errors.Is(err, mailings.ErrTransient) {
		t.Fatalf("first delivery after losing its lease: %v, want ErrTransient (the rest stays queued)", err)
	}
	time.Sleep(200 * time.Millisecond) // a request in flight when sending stopped still arrives
	sent := hook.deliveries(t)
	if sent >= 30 || sent > stolenAt+8 {
		t.Fatalf("%d messages delivered, %d when the lease was taken: sending did not stop", sent, stolenAt)
	}
	if !strings.Contains(e.log.String(), "lease lost") {
		t.Errorf("no log of the lost lease:\n%s", e.log.String())
	}
	// A message in flight when sending stopped was delivered, and is recorded as an
	// ambiguous failure (its code kept) rather than sent.
	if n := e.count(t, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status <> 'queued'`, m.ID); n != sent {
		t.Fatalf("%d recipients recorded, %d messages delivered", n, sent)
	}
	if n := e.count(t, `SELECT count(*) FROM mailing_batches WHERE mailing_id = $1 AND lease_token = -1 AND lease_until > now()`, m.ID); n != 1 {
		t.Fatalf("the delivery that lost its lease released the other's")
	}
	// The other delivery ends without sending; a later one finishes the batch.
	e.db.Exec(`UPDATE mailing_batches SET lease_token = NULL, lease_until = NULL WHERE mailing_id = $1`, m.ID)
	if err := e.svc.ProcessBatch(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}
	if n := hook.deliveries(t); n != 30 {
		t.Fatalf("%d messages delivered in all, want 30", n)
	}
	e.checkInvariants(t)
}
