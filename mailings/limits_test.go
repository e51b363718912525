package mailings_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"promopool/macros"
	"promopool/mailer"
	"promopool/mailings"
	"promopool/segments"
)

// recordingSender passes messages on and remembers the bytes of each Send call.
type recordingSender struct {
	next  mailings.Sender
	mu    sync.Mutex
	calls [][]int // per call, each message's size
}

func (r *recordingSender) Send(ctx context.Context, msgs []mailer.Message) ([]mailer.Result, error) {
	sizes := make([]int, len(msgs))
	for i, m := range msgs {
		sizes[i] = len(m.Subject) + len(m.HTML) + len(m.Text)
	}
	r.mu.Lock()
	r.calls = append(r.calls, sizes)
	r.mu.Unlock()
	return r.next.Send(ctx, msgs)
}

// Issue 20 item 5: a message that would be larger than MAX_MESSAGE_BYTES fails its
// recipient (with the reason, and its code back in the pool) instead of being built;
// a batch hands its messages to the transport in chunks of MAILING_BATCH_BYTES, so it
// never holds them all.
func TestMessageOverLimitFailsRecipientAndBatchMemoryIsBounded(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 10)
	// Each customer has a 1,000-byte attribute; c7's is 64 KiB.
	if _, err := e.db.Exec(`UPDATE customers SET attributes = jsonb_build_object('bio', repeat('b', CASE WHEN id = 'c7' THEN 65536 ELSE 1000 END))`); err != nil {
		t.Fatal(err)
	}
	spring := e.group(t, "Spring", 10, "SPRING")
	tcfg, err := mailer.ParseURL(e.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mailer.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	rec := &recordingSender{next: tr}
	const limit, batchBytes = 40_000, 5_000
	svc := mailings.New(mailings.Config{BatchBytes: batchBytes, Limits: macrosLimits(limit)},
		mailings.Deps{DB: e.db.DB, Groups: e.store, Sender: rec, Segments: segments.New(e.db.DB, segments.Config{})})
	// The bio goes in twice (HTML and text): about 2 KB per message, 128 KiB for c7.
	m, err := svc.Create(ctx, "t", mailings.Input{Name: "Big", Sender: "shop@example.com", Subject: "Hi",
		HTML: "<p>{{client.promocode('Spring')}} {{client.attr('bio')}}</p>", Text: "{{client.promocode('Spring')}} {{client.attr('bio')}}",
		Audience: mailings.Audience{CustomerIDs: ids}, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.ProcessBatch(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 9 || got.Progress.Failed != 1 || got.Progress.CodesIssued["Spring"] != 9 {
		t.Fatalf("status %s, progress %+v", got.Status, got.Progress)
	}
	var detail string
	e.db.Get(&detail, `SELECT status || ': ' || detail FROM mailing_recipient_status WHERE mailing_id = $1 AND customer_id = 'c7'`, m.ID)
	if !strings.HasPrefix(detail, "failed: message too large") || !strings.Contains(detail, "40000 bytes") {
		t.Fatalf("c7: %q", detail)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE customer_id = 'c7' AND released_at IS NULL`); n != 0 {
		t.Fatalf("c7 still holds %d codes", n)
	}
	if g, _ := e.store.Get(ctx, spring.ID); g.Issued != 9 || g.Active != 1 {
		t.Fatalf("group: issued %d active %d", g.Issued, g.Active)
	}
	if len(e.smtp.Messages()) != 9 {
		t.Fatalf("%d messages arrived", len(e.smtp.Messages()))
	}
	// Memory: no Send call carried more than the batch budget (a chunk holds one
	// message more only when that message alone is over it).
	sent := 0
	for _, sizes := range rec.calls {
		total := 0
		for _, n := range sizes {
			total += n
		}
		if len(sizes) > 1 && total > batchBytes {
			t.Errorf("one Send carried %d messages, %d bytes: over the %d-byte budget", len(sizes), total, batchBytes)
		}
		sent += len(sizes)
	}
	if sent != 9 || len(rec.calls) < 4 {
		t.Errorf("%d messages in %d Send calls; want 9 in chunks of about 2", sent, len(rec.calls))
	}
	e.checkInvariants(t)
}

func macrosLimits(maxBytes int) macros.Limits { return macros.Limits{MaxMessageBytes: maxBytes} }
