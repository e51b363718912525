package mailings_test

import (
	"context"
	"errors"
	"testing"

	"promopool/mailings"
)

// statuses counts a mailing's recipients by the outcome the mailing counts
// (mailing_recipient_status) and by what their rows hold (mailing_recipients).
func (e *env) statuses(t *testing.T, id int64) (counted, rows map[string]int) {
	t.Helper()
	read := func(q string) map[string]int {
		var got []struct {
			Status string `db:"status"`
			N      int    `db:"n"`
		}
		if err := e.db.Select(&got, q, id); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, g := range got {
			out[g.Status] = g.N
		}
		return out
	}
	return read(`SELECT status, count(*) AS n FROM mailing_recipient_status WHERE mailing_id = $1 GROUP BY status`),
		read(`SELECT status, count(*) AS n FROM mailing_recipients WHERE mailing_id = $1 GROUP BY status`)
}

// TestPlainSendsSettleTheBatch: a delivery that sends every queued recipient of its batch
// a plain message writes no recipient row (migration 0032): the batch is done and its
// queued rows count as sent. Failures are written on their rows; when a transient failure
// leaves a recipient queued, the batch is not settled and the plain sends are written.
func TestPlainSendsSettleTheBatch(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 12)
	e.group(t, "Spring", 12, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	e.smtp.Reject("c6@example.com", 550)  // definitive: failed, written on its row
	e.smtp.Reject("c11@example.com", 451) // transient: stays queued, retried
	// Batches of 5: c1-c5 (all sent), c6-c10 (one rejected), c11-c12 (one transient).
	m := e.mailing(t, ids, 5)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	for b := range 3 {
		if err := e.svc.ProcessBatch(ctx, m.ID, b); err != nil && !errors.Is(err, mailings.ErrTransient) {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	counted, rows := e.statuses(t, m.ID)
	if counted["sent"] != 10 || counted["failed"] != 1 || counted["queued"] != 1 {
		t.Fatalf("after the first deliveries the mailing counts %v, want 10 sent, 1 failed, 1 queued", counted)
	}
	// Only the failure and the transient batch's plain send (c12) were written.
	if rows["sent"] != 1 || rows["failed"] != 1 || rows["queued"] != 10 {
		t.Fatalf("recipient rows %v, want 1 sent (c12), 1 failed (c6), 10 queued", rows)
	}
	if n := e.count(t, `SELECT count(*) FROM mailing_batches WHERE mailing_id = $1 AND done_at IS NULL`, m.ID); n != 1 {
		t.Fatalf("%d open batches, want 1 (c11 waits)", n)
	}
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Progress.Sent != 10 || got.Progress.Failed != 1 || got.Progress.Queued != 1 || got.Status != mailings.StatusRunning {
		t.Fatalf("progress %s %+v", got.Status, got.Progress)
	}
	// The retry sends c11 alone, and settles its batch.
	e.smtp.Reject("c11@example.com", 0)
	if err := e.svc.ProcessBatch(ctx, m.ID, 2); err != nil {
		t.Fatal(err)
	}
	counted, rows = e.statuses(t, m.ID)
	if counted["sent"] != 11 || counted["failed"] != 1 || counted["queued"] != 0 {
		t.Fatalf("after the retry the mailing counts %v", counted)
	}
	if rows["sent"] != 1 {
		t.Fatalf("recipient rows %v: the retry wrote c11's row", rows)
	}
	got, _ = e.svc.Get(ctx, m.ID)
	if got.Progress.Sent != 11 || got.Progress.Failed != 1 || got.Progress.Queued != 0 || got.Status != mailings.StatusFinished {
		t.Fatalf("progress %s %+v", got.Status, got.Progress)
	}
	// A settled batch is never sent again.
	for b := range 3 {
		if err := e.svc.ProcessBatch(ctx, m.ID, b); err != nil {
			t.Fatal(err)
		}
	}
	if d := e.delivered(t); len(d) != 11 {
		t.Fatalf("%d recipients got a message, want 11", len(d))
	}
	var at int
	e.db.Get(&at, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent' AND updated_at IS NOT NULL`, m.ID)
	if at != 11 {
		t.Fatalf("%d sent recipients have a time, want 11", at)
	}
	e.checkInvariants(t)
}
