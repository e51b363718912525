package mailings_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

// Issue 21 item 3: on_exhaustion "fallback" sends the recipients a group has no code
// for the macro's fallback text (no code recorded, counted apart); "skip" skips them;
// "fallback" without a fallback text on every promocode macro is refused.
func TestOnExhaustionFallbackAndSkip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, mailings.Config{})
	ids := e.customers(t, 6)
	spring := e.group(t, "Spring", 4, "SPRING")
	gifts := e.group(t, "Gifts", 10, "GIFT")
	tmpl := "spring: {{client.promocode('Spring', fallback='Visit the shop for today’s offer')}} gift: {{client.promocode('Gifts', fallback='no gift')}}"
	in := mailings.Input{Name: "F", Sender: "shop@example.com", Subject: "Hi", Text: tmpl,
		Audience: mailings.Audience{CustomerIDs: ids}, BatchSize: 3, OnExhaustion: mailings.OnExhaustionFallback}
	_, err := e.svc.Create(ctx, "t", mailings.Input{Name: "F", Sender: "shop@example.com", Subject: "Hi", Text: "{{client.promocode('Spring')}}",
		Audience: in.Audience, OnExhaustion: mailings.OnExhaustionFallback})
	var ie *groups.InvalidError
	if !errors.As(err, &ie) || ie.Field != "on_exhaustion" {
		t.Fatalf("fallback without a fallback text: %v", err)
	}
	m, err := e.svc.Create(ctx, "t", in)
	if err != nil {
		t.Fatal(err)
	}
	// 4 Spring codes for 6 recipients: no pre-flight refusal (the sender chose fallback).
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 6 || got.Progress.Fallback != 2 ||
		got.Progress.CodesIssued["Spring"] != 4 || got.Progress.CodesIssued["Gifts"] != 6 {
		t.Fatalf("fallback: %s %+v", got.Status, got.Progress)
	}
	fallbacks := 0
	for _, msg := range e.smtp.Messages() {
		txt := textPart(t, msg.Data)
		if strings.Contains(txt, "{{") || !strings.Contains(txt, "gift: GIFT-") {
			t.Fatalf("message: %q", txt)
		}
		if strings.Contains(txt, "spring: Visit the shop for today’s offer") {
			fallbacks++
		} else if !strings.Contains(txt, "spring: SPRING-") {
			t.Fatalf("message with neither code nor fallback: %q", txt)
		}
	}
	if fallbacks != 2 {
		t.Fatalf("%d messages with the fallback text", fallbacks)
	}
	if n := e.count(t, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent' AND detail LIKE 'fallback: group "Spring"%'`, m.ID); n != 2 {
		t.Fatalf("%d recipients recorded as sent with a fallback", n)
	}
	if g, _ := e.store.Get(ctx, spring.ID); g.Issued != 4 || g.Active != 0 {
		t.Fatalf("Spring: issued %d active %d", g.Issued, g.Active)
	}

	// skip: the two without a Spring code are skipped and their Gifts codes go back.
	e2 := newEnv(t, nil, mailings.Config{})
	ids2 := e2.customers(t, 6)
	e2.group(t, "Spring", 4, "SPRING")
	g2 := e2.group(t, "Gifts", 10, "GIFT")
	in.Audience.CustomerIDs, in.OnExhaustion = ids2, mailings.OnExhaustionSkip
	m2, err := e2.svc.Create(ctx, "t", in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.svc.Start(ctx, m2.ID, false); err != nil {
		t.Fatal(err)
	}
	e2.processAll(t, m2.ID)
	got, _ = e2.svc.Get(ctx, m2.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 4 || got.Progress.Skipped != 2 || got.Progress.Fallback != 0 ||
		got.Progress.CodesIssued["Gifts"] != 4 || got.OnExhaustion != mailings.OnExhaustionSkip {
		t.Fatalf("skip: %s %+v", got.Status, got.Progress)
	}
	if g, _ := e2.store.Get(ctx, g2.ID); g.Issued != 4 {
		t.Fatalf("Gifts issued %d: the skipped recipients' codes were not returned", g.Issued)
	}
	e.checkInvariants(t)
	e2.checkInvariants(t)
	_ = gifts
}
