package mailings_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

// exhaustedMailing starts a mailing of 10 recipients (batches of 4) whose Spring group
// holds 10 codes, lets another consumer take 7, and runs it until it pauses for lack
// of codes: 3 sent, 7 waiting.
func exhaustedMailing(t *testing.T, e *env) (*mailings.Mailing, *groups.Group) {
	t.Helper()
	ctx := context.Background()
	ids := e.customers(t, 10)
	sp := e.group(t, "Spring", 10, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 4)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: sp.ID, Scope: "other", CustomerIDs: []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"}}); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusPaused || got.PauseKind != mailings.PauseExhausted || got.Progress.Queued != 7 {
		t.Fatalf("not paused for exhaustion: %s %q %+v", got.Status, got.PauseKind, got.Progress)
	}
	return got, sp
}

// Issue 21 item 2: an upload that lets the group cover the waiting recipients resumes
// the mailing by itself, exactly once though several web processes see the upload;
// too small an upload does not; the history and the group's activity say so.
func TestUploadResumesMailingOnce(t *testing.T) {
	ctx := context.Background()
	enq := &countingEnqueuer{}
	e := newEnv(t, enq, mailings.Config{})
	m, sp := exhaustedMailing(t, e)
	// 5 codes for 7 waiting: not enough, it stays paused.
	e.upload(t, sp.ID, 5, "SPRINGB")
	if got, err := e.svc.ResumeExhausted(ctx, sp.ID, "upload"); err != nil || len(got) != 0 {
		t.Fatalf("5 codes for 7 waiting: resumed %v (%v)", got, err)
	}
	e.upload(t, sp.ID, 5, "SPRINGC")
	// Five "web processes" (services of their own) react to the upload at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	resumed := 0
	for range 5 {
		svc := mailings.New(mailings.Config{}, mailings.Deps{DB: e.db.DB, Groups: e.store, Enqueuer: enq})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, err := svc.ResumeExhausted(ctx, sp.ID, "upload 3 added 5 codes")
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			resumed += len(ids)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if resumed != 1 {
		t.Fatalf("resumed %d times, want exactly once", resumed)
	}
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusRunning || got.PauseKind != "" {
		t.Fatalf("after the upload: %s %q", got.Status, got.PauseKind)
	}
	var resumes []mailings.Event
	for _, ev := range got.Events {
		if ev.Action == mailings.EventResume {
			resumes = append(resumes, ev)
		}
	}
	if len(resumes) != 1 || resumes[0].Who.Kind != "system" || !strings.Contains(resumes[0].Detail, "upload 3 added 5 codes") ||
		!strings.Contains(resumes[0].Detail, "7 waiting") {
		t.Fatalf("resume events: %+v", resumes)
	}
	if n := e.count(t, `SELECT count(*) FROM activity WHERE group_id = $1 AND action = 'mailing_resumed' AND after->>'mailing_id' = $2`, sp.ID, m.ID); n != 1 {
		t.Fatalf("%d mailing_resumed entries in the group's activity", n)
	}
	if enq.batches() == 0 {
		t.Fatal("the resume enqueued no batch")
	}
	e.processAll(t, m.ID)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusFinished || got.Progress.Sent != 10 || got.Progress.CodesIssued["Spring"] != 10 {
		t.Fatalf("after the resume: %s %+v", got.Status, got.Progress)
	}
	e.checkInvariants(t)
}

// The reconciler resumes a mailing paused for exhaustion whose group was refilled by a
// way that announced nothing (the CLI); a mailing a person paused stays paused.
func TestReconcilerResumesExhaustedMailing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, &countingEnqueuer{}, mailings.Config{})
	m, sp := exhaustedMailing(t, e)
	// A second mailing from the same group, paused by a person.
	other, err := e.svc.Create(ctx, "t", mailings.Input{Name: "Other", Sender: "shop@example.com", Subject: "Hi",
		Text: "{{client.promocode('Spring')}}", Audience: mailings.Audience{CustomerIDs: []string{"c1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Start(ctx, other.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pause(ctx, other.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	e.upload(t, sp.ID, 20, "SPRINGB") // straight into the store: nobody told the mailings
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusPaused {
		t.Fatalf("resumed before the reconciler ran: %s", got.Status)
	}
	if _, err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusRunning || !strings.Contains(got.Events[len(got.Events)-1].Detail, "reconciler") {
		t.Fatalf("after the reconciler: %s %+v", got.Status, got.Events)
	}
	if o, _ := e.svc.Get(ctx, other.ID); o.Status != mailings.StatusPaused || o.PauseKind != mailings.PausePerson {
		t.Fatalf("a person's pause ended: %s %q", o.Status, o.PauseKind)
	}
	// A second sweep finds nothing to do.
	if ids, err := e.svc.ResumeExhausted(ctx, 0, "again"); err != nil || len(ids) != 0 {
		t.Fatalf("second sweep: %v %v", ids, err)
	}
	e.processAll(t, m.ID)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusFinished || got.Progress.Sent != 10 {
		t.Fatalf("after the resume: %s %+v", got.Status, got.Progress)
	}
}

// countingEnqueuer remembers how many batch tasks it was handed.
type countingEnqueuer struct {
	mu sync.Mutex
	n  int
}

func (c *countingEnqueuer) EnqueueBatches(_ context.Context, refs []mailings.BatchRef) error {
	c.mu.Lock()
	c.n += len(refs)
	c.mu.Unlock()
	return nil
}

func (c *countingEnqueuer) batches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
