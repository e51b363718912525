package mailings_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"promopool/mailings"
	"promopool/worker"
)

// TestReconcileLeavesWaitingBatches: a batch whose task still waits in the queue (a deep
// queue, a slow transport) is not enqueued again, however long it waits — before, every
// reconcile tick past ReenqueueAfter added one more duplicate task per waiting batch (the
// fault suite saw 7,944 tasks for 238 open batches). A batch whose task is gone is.
func TestReconcileLeavesWaitingBatches(t *testing.T) {
	ropt, rdb := flushedRedis(t)
	ctx := context.Background()
	client := asynq.NewClient(ropt)
	defer client.Close()
	insp := asynq.NewInspector(ropt)
	defer insp.Close()
	e := newEnv(t, worker.Enqueuer{Client: client, Inspector: insp}, mailings.Config{ReenqueueAfter: time.Millisecond, Lease: 30 * time.Second})
	ids := e.customers(t, 30)
	e.group(t, "Spring", 30, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 10)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past ReenqueueAfter
	for range 3 {
		if n, err := e.svc.Reconcile(ctx); err != nil || n != 0 {
			t.Fatalf("reconcile enqueued %d waiting batches again (%v), want 0", n, err)
		}
	}
	q, err := insp.GetQueueInfo(worker.QueueMailings)
	if err != nil || q.Pending != 3 {
		t.Fatalf("%v pending tasks (%v), want 3", q, err)
	}
	var attempts int
	e.db.Get(&attempts, `SELECT sum(attempt) FROM mailing_batches WHERE mailing_id = $1`, m.ID)
	if attempts != 3 {
		t.Fatalf("attempts %d, want 3 (one each)", attempts)
	}
	// Redis loses the tasks: every batch is enqueued again, once.
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.Reconcile(ctx); err != nil || n != 3 {
		t.Fatalf("reconcile re-enqueued %d lost batches (%v), want 3", n, err)
	}
	// (After a FLUSHDB the queue is missing from Asynq's queue list until a process
	// that has not enqueued to it yet does — the client caches it — so the reconciler
	// cannot see the new tasks wait and falls back to enqueuing them again each
	// ReenqueueAfter, as before.)
}
