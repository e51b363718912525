package mailings_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

func TestExhaustionPausesAndResumeCompletes(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 10)
	spring := e.group(t, "Spring", 6, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 5)
	_, err := e.svc.Start(ctx, m.ID, false)
	var short *mailings.InsufficientCodesError
	if !errors.As(err, &short) || short.Missing["Spring"] != 4 || short.Audience != 10 {
		t.Fatalf("pre-flight: got %v, want 4 Spring codes missing", err)
	}
	// "Send while codes last": 6 go out, 4 are skipped, nothing pauses.
	if _, err := e.svc.Start(ctx, m.ID, true); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 6 || got.Progress.Skipped != 4 {
		t.Fatalf("while codes last: %s %+v", got.Status, got.Progress)
	}
	if g, _ := e.store.Get(ctx, spring.ID); g.Active != 0 || g.Issued != 6 {
		t.Fatalf("while codes last: active %d issued %d", g.Active, g.Issued)
	}

	// Now a mailing that runs out mid-send: 10 recipients, 3 codes left after m2 starts.
	e2 := newEnv(t, nil, mailings.Config{})
	ids2 := e2.customers(t, 10)
	sp2 := e2.group(t, "Spring", 10, "SPRING")
	e2.group(t, "Autumn", 1, "AUTUMN")
	mm := e2.mailing(t, ids2, 4)
	if _, err := e2.svc.Start(ctx, mm.ID, false); err != nil {
		t.Fatal(err)
	}
	// Another consumer takes 7 codes after the pre-flight passed.
	if _, err := e2.store.Claim(ctx, groups.ClaimRequest{GroupID: sp2.ID, Scope: "other", CustomerIDs: []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"}}); err != nil {
		t.Fatal(err)
	}
	e2.processAll(t, mm.ID)
	got, _ = e2.svc.Get(ctx, mm.ID)
	if got.Status != mailings.StatusPaused || !strings.Contains(got.PauseReason, "ran out") || got.Progress.Sent != 3 || got.Progress.Queued != 7 ||
		got.Progress.CodesIssued["Spring"] != 3 {
		t.Fatalf("after exhaustion: %s %q %+v", got.Status, got.PauseReason, got.Progress)
	}
	if !strings.Contains(e2.log.String(), "group ran out of codes") {
		t.Fatal("exhaustion was not alerted in the log")
	}
	for _, msg := range e2.smtp.Messages() {
		if !codeRe.MatchString(textPart(t, msg.Data)) {
			t.Fatalf("a message went out without a code:\n%s", msg.Data)
		}
	}
	e2.upload(t, sp2.ID, 10, "SPRINGB")
	if _, err := e2.svc.Resume(ctx, mm.ID); err != nil {
		t.Fatal(err)
	}
	e2.processAll(t, mm.ID)
	got, _ = e2.svc.Get(ctx, mm.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 10 {
		t.Fatalf("after resume: %s %+v", got.Status, got.Progress)
	}
	if d := e2.delivered(t); len(d) != 10 {
		t.Fatalf("%d recipients reached", len(d))
	}
	e2.checkInvariants(t)
}

func TestCancelStopsAndReturnsNothingUnsent(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 9)
	spring := e.group(t, "Spring", 9, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 3)
	e.svc.Start(ctx, m.ID, false)
	if err := e.svc.ProcessBatch(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Cancel(ctx, m.ID, "boss"); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusCancelled || got.Progress.Sent != 3 || got.Progress.Skipped != 6 || got.FinishedAt == nil {
		t.Fatalf("after cancel: %s %+v", got.Status, got.Progress)
	}
	if g, _ := e.store.Get(ctx, spring.ID); g.Active != 6 {
		t.Fatalf("cancel consumed codes: active %d, want 6", g.Active)
	}
	if _, err := e.svc.Resume(ctx, m.ID); !errors.Is(err, mailings.ErrState) {
		t.Fatalf("resume after cancel: %v", err)
	}
}
