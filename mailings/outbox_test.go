package mailings_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"promopool/groups"
	"promopool/mailings"
	"promopool/segments"
)

// startAudience creates and starts a mailing to an audience, in batches of 2.
func (e *env) startAudience(t *testing.T, a mailings.Audience) *mailings.Mailing {
	t.Helper()
	m, err := e.svc.Create(context.Background(), "tester", mailings.Input{Name: "Chunks", Sender: "shop@example.com",
		Subject: "Hi", Text: "code {{client.promocode('Spring')}}", Audience: a, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m, err = e.svc.Start(context.Background(), m.ID, false); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkOutbox asserts that the mailing's outbox holds want distinct recipients in
// batches 0..n-1 of at most 2, each batch with its row and its count.
func (e *env) checkOutbox(t *testing.T, id int64, want int) {
	t.Helper()
	if n := e.count(t, `SELECT count(DISTINCT customer_id) FROM mailing_recipients WHERE mailing_id = $1`, id); n != want {
		t.Fatalf("%d recipients, want %d", n, want)
	}
	batches := (want + 1) / 2
	if n := e.count(t, `SELECT count(*) FROM (SELECT batch FROM mailing_recipients WHERE mailing_id = $1 GROUP BY batch HAVING count(*) BETWEEN 1 AND 2) x
		WHERE batch BETWEEN 0 AND $2 - 1`, id, batches); n != batches {
		t.Fatalf("%d batches of 1–2 recipients numbered 0..%d, want %d", n, batches-1, batches)
	}
	if n := e.count(t, `SELECT count(*) FROM mailing_batches b WHERE mailing_id = $1
		AND recipients = (SELECT count(*) FROM mailing_recipients r WHERE r.mailing_id = b.mailing_id AND r.batch = b.batch)`, id); n != batches {
		t.Fatalf("%d batch rows match their recipients, want %d", n, batches)
	}
}

// TestOutboxWrittenInChunks: an audience larger than a chunk is written in several
// transactions, each of whole batches, and the mailing sends everyone once.
func TestOutboxWrittenInChunks(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{OutboxChunk: 6})
	ctx := context.Background()
	ids := e.customers(t, 25)
	spring := e.group(t, "Spring", 100, "SPRING")
	m := e.startAudience(t, mailings.Audience{All: true})
	if !m.OutboxComplete || m.Progress.Recipients != 25 {
		t.Fatalf("after start: outbox complete %v, %d recipients; want true, 25", m.OutboxComplete, m.Progress.Recipients)
	}
	e.checkOutbox(t, m.ID, 25)
	e.processAll(t, m.ID)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusFinished || got.Progress.Sent != 25 {
		t.Fatalf("mailing %s, %d sent; want finished, 25", got.Status, got.Progress.Sent)
	}
	if n := len(e.smtp.Messages()); n != 25 {
		t.Fatalf("%d messages, want 25", n)
	}
	e.checkInvariants(t)

	// A segment audience (9 customers issued a Spring code) in chunks, by customer number.
	if _, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: spring.ID, Scope: "direct:x", CustomerIDs: ids[:9]}); err != nil {
		t.Fatal(err)
	}
	f, err := segments.Parse(strings.NewReader(`{"issued_from":{"groups":["Spring"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	seg := e.startAudience(t, mailings.Audience{Segment: f})
	e.checkOutbox(t, seg.ID, 25) // everyone holds a Spring code now
}

// TestOutboxContinuedAfterWriterDied: a start that died after its first chunk leaves
// the mailing running with part of its outbox. Its batches are sent, but the mailing
// does not finish; the reconciler writes the rest from the cursor.
func TestOutboxContinuedAfterWriterDied(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{OutboxChunk: 6, OutboxStale: time.Second})
	ctx := context.Background()
	e.customers(t, 25)
	e.group(t, "Spring", 100, "SPRING")
	m := e.startAudience(t, mailings.Audience{All: true})
	// The state the writer leaves when it dies after the first chunk (batches 0–2).
	died := func(id int64) {
		t.Helper()
		for _, q := range []string{
			`DELETE FROM mailing_recipients WHERE mailing_id = $1 AND batch >= 3`,
			`DELETE FROM mailing_batches WHERE mailing_id = $1 AND batch >= 3`,
			`UPDATE mailings SET outbox_complete = false, outbox_next_batch = 3, outbox_at = now() - interval '1 hour',
			        outbox_cursor = (SELECT max(customer_id) FROM mailing_recipients WHERE mailing_id = $1) WHERE id = $1`,
		} {
			if _, err := e.db.Exec(q, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	died(m.ID)
	e.processAll(t, m.ID)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusRunning || got.OutboxComplete || got.Progress.Sent != 6 {
		t.Fatalf("with part of its outbox: %s, outbox complete %v, %d sent; want running, false, 6", got.Status, got.OutboxComplete, got.Progress.Sent)
	}
	if _, err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	e.checkOutbox(t, m.ID, 25)
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 25 || len(e.smtp.Messages()) != 25 {
		t.Fatalf("after the reconciler: %s, %d sent, %d messages; want finished, 25, 25", got.Status, got.Progress.Sent, len(e.smtp.Messages()))
	}
	e.checkInvariants(t)

	// Cancelled while its outbox was unwritten: nobody more is written and it finishes.
	c := e.startAudience(t, mailings.Audience{All: true})
	died(c.ID)
	if _, err := e.svc.Cancel(ctx, c.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, c.ID)
	got, _ = e.svc.Get(ctx, c.ID)
	if got.Status != mailings.StatusCancelled || got.FinishedAt == nil || !got.OutboxComplete || got.Progress.Recipients != 6 || got.Progress.Skipped != 6 {
		t.Fatalf("cancelled mid-outbox: %s, finished %v, outbox complete %v, %+v; want cancelled, finished, complete, 6 skipped",
			got.Status, got.FinishedAt, got.OutboxComplete, got.Progress)
	}
	if n := len(e.smtp.Messages()); n != 25 {
		t.Fatalf("the cancelled mailing sent %d messages", n-25)
	}
}
