package mailings_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

// groupPausedMailing starts a mailing of n recipients (batches of 4) drawing from
// Spring (n codes) and re-inserting Autumn (c1 holds an Autumn code, returned), pauses
// Spring (and Autumn: last_promocode of a paused group still renders) and runs every
// batch: the mailing waits for Spring, nobody sent or failed.
func groupPausedMailing(t *testing.T, e *env, n int) (*mailings.Mailing, *groups.Group, string) {
	t.Helper()
	ctx := context.Background()
	ids := e.customers(t, n)
	sp := e.group(t, "Spring", n, "SPRING")
	au := e.group(t, "Autumn", 1, "AUTUMN")
	res, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: au.ID, Scope: "earlier", CustomerIDs: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	m := e.mailing(t, ids, 4)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	for _, g := range []int64{sp.ID, au.ID} {
		if _, err := e.store.Pause(ctx, "ann", g); err != nil {
			t.Fatal(err)
		}
	}
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusPaused || got.PauseKind != mailings.PauseGroup ||
		!strings.HasPrefix(got.PauseReason, "group_paused: ") || !strings.Contains(got.PauseReason, `"Spring"`) {
		t.Fatalf("not waiting for the group: %s %q %q", got.Status, got.PauseKind, got.PauseReason)
	}
	if got.Progress.Queued != int64(n) || got.Progress.Sent != 0 || got.Progress.Failed != 0 || got.Progress.Skipped != 0 {
		t.Fatalf("progress while the group is paused: %+v", got.Progress)
	}
	if len(e.smtp.Messages()) != 0 {
		t.Fatalf("%d messages sent while the group is paused", len(e.smtp.Messages()))
	}
	pauses := 0
	for _, ev := range got.Events {
		if ev.Action == mailings.EventPause {
			pauses++
			if ev.Who.Kind != "system" || !strings.Contains(ev.Detail, "group_paused") {
				t.Fatalf("pause event: %+v", ev)
			}
		}
	}
	if pauses != 1 {
		t.Fatalf("%d pause events, want 1 (batches after the first find the mailing paused)", pauses)
	}
	return got, sp, res.Codes["c1"]
}

// Issue 17 item 4: a mailing whose group is paused waits (paused, pause kind group,
// reason group_paused naming the group) instead of sending or failing; when the group
// is activated it resumes by itself exactly once though several processes react to
// the activation; its history and the group's activity say so; last_promocode of a
// paused group still renders the customer's code.
func TestMailingWaitsForPausedGroup(t *testing.T) {
	ctx := context.Background()
	enq := &countingEnqueuer{}
	e := newEnv(t, enq, mailings.Config{})
	m, sp, autumn := groupPausedMailing(t, e, 10)
	if ids, err := e.svc.ResumeGroupWait(ctx, sp.ID, "too early"); err != nil || len(ids) != 0 {
		t.Fatalf("resumed while the group is paused: %v (%v)", ids, err)
	}
	if _, err := e.store.Activate(ctx, "ann", sp.ID); err != nil {
		t.Fatal(err)
	}
	before := enq.batches()
	var wg sync.WaitGroup
	var mu sync.Mutex
	resumed := 0
	for range 5 { // five web processes see the activation
		svc := mailings.New(mailings.Config{}, mailings.Deps{DB: e.db.DB, Groups: e.store, Enqueuer: enq})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, err := svc.ResumeGroupWait(ctx, sp.ID, `group "Spring" was activated by ann`)
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
	if got.Status != mailings.StatusRunning || got.PauseKind != "" || got.PauseReason != "" {
		t.Fatalf("after the activation: %s %q %q", got.Status, got.PauseKind, got.PauseReason)
	}
	var resumes []mailings.Event
	for _, ev := range got.Events {
		if ev.Action == mailings.EventResume {
			resumes = append(resumes, ev)
		}
	}
	if len(resumes) != 1 || resumes[0].Who.Kind != "system" || !strings.Contains(resumes[0].Detail, "was activated by ann") ||
		!strings.Contains(resumes[0].Detail, "10 recipients were waiting") {
		t.Fatalf("resume events: %+v", resumes)
	}
	if n := e.count(t, `SELECT count(*) FROM activity WHERE group_id = $1 AND action = 'mailing_resumed' AND after->>'mailing_id' = $2`, sp.ID, m.ID); n != 1 {
		t.Fatalf("%d mailing_resumed entries in the group's activity", n)
	}
	if enq.batches()-before != 3 {
		t.Fatalf("the resume enqueued %d batches, want the 3 open ones", enq.batches()-before)
	}
	e.processAll(t, m.ID)
	got, _ = e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 10 || got.Progress.CodesIssued["Spring"] != 10 {
		t.Fatalf("after the resume: %s %+v", got.Status, got.Progress)
	}
	d := e.delivered(t)
	if len(d) != 10 || d["c1@example.com"][2] != autumn || autumn == "" || d["c2@example.com"][2] != "" {
		t.Fatalf("delivered (Autumn, paused, must still give c1 its code %q): %v", autumn, d)
	}
	e.checkInvariants(t)
}

// TestGroupWaitSweep: an activation that resumed nothing (made straight in the store,
// as if the process that activated died) is caught by the reconciler's sweep; a
// mailing a person paused stays paused; a mailing drawing from two paused groups
// waits until both are active.
func TestGroupWaitSweep(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, &countingEnqueuer{}, mailings.Config{})
	m, sp, _ := groupPausedMailing(t, e, 6)
	winter, err := e.store.Create(ctx, "t", groups.Input{Name: ptr("Winter")})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, winter.ID, 5, "WINTER")
	e.upload(t, sp.ID, 5, "SPRINGB")
	// Paused by a person, from the same group.
	byPerson, err := e.svc.Create(ctx, "t", mailings.Input{Name: "Person", Sender: "shop@example.com", Subject: "Hi",
		Text: "{{client.promocode('Spring')}}", Audience: mailings.Audience{CustomerIDs: []string{"c1"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Waiting for two groups.
	both, err := e.svc.Create(ctx, "t", mailings.Input{Name: "Both", Sender: "shop@example.com", Subject: "Hi",
		Text: "{{client.promocode('Spring')}} {{client.promocode('Winter')}}", Audience: mailings.Audience{CustomerIDs: []string{"c2"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{byPerson.ID, both.ID} {
		if _, err := e.svc.Start(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Pause(ctx, byPerson.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Pause(ctx, "ann", winter.ID); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, both.ID)
	if got, _ := e.svc.Get(ctx, both.ID); got.Status != mailings.StatusPaused || got.PauseKind != mailings.PauseGroup {
		t.Fatalf("two paused groups: %s %q", got.Status, got.PauseKind)
	}
	// Spring is activated and nobody tells the mailings.
	if _, err := e.store.Activate(ctx, "ann", sp.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusPaused {
		t.Fatalf("resumed before the reconciler ran: %s", got.Status)
	}
	if _, err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusRunning || !strings.Contains(got.Events[len(got.Events)-1].Detail, "reconciler found its groups active again") {
		t.Fatalf("after the sweep: %s %+v", got.Status, got.Events)
	}
	if o, _ := e.svc.Get(ctx, byPerson.ID); o.Status != mailings.StatusPaused || o.PauseKind != mailings.PausePerson {
		t.Fatalf("a person's pause ended: %s %q", o.Status, o.PauseKind)
	}
	if o, _ := e.svc.Get(ctx, both.ID); o.Status != mailings.StatusPaused || o.PauseKind != mailings.PauseGroup {
		t.Fatalf("resumed with Winter still paused: %s %q", o.Status, o.PauseKind)
	}
	if _, err := e.store.Activate(ctx, "ann", winter.ID); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.svc.ResumeGroupWait(ctx, winter.ID, "winter activated"); err != nil || len(ids) != 1 || ids[0] != both.ID {
		t.Fatalf("Winter activated: resumed %v (%v)", ids, err)
	}
	if ids, err := e.svc.ResumeGroupWait(ctx, 0, "again"); err != nil || len(ids) != 0 {
		t.Fatalf("second sweep: %v %v", ids, err)
	}
	e.processAll(t, m.ID)
	e.processAll(t, both.ID)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusFinished || got.Progress.Sent != 6 {
		t.Fatalf("after the sweep's resume: %s %+v", got.Status, got.Progress)
	}
	if got, _ := e.svc.Get(ctx, both.ID); got.Status != mailings.StatusFinished || got.Progress.Sent != 1 {
		t.Fatalf("two groups, both active: %s %+v", got.Status, got.Progress)
	}
	e.checkInvariants(t)
}

func ptr[T any](v T) *T { return &v }
