package mailings_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

// Issue 21 item 4 across mailings: a second mailing from a one_per_customer group sends
// each customer the code they hold from the first (recorded as a repeat), issuing none.
func TestOnePerCustomerAcrossMailings(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, mailings.Config{})
	ids := e.customers(t, 5)
	name := "Keyed"
	g, err := e.store.Create(ctx, "t", groups.Input{Name: &name, OnePerCustomer: ptrTo(true)})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, g.ID, 20, "KEY")
	send := func() map[string]string {
		m, err := e.svc.Create(ctx, "t", mailings.Input{Name: "K", Sender: "shop@example.com", Subject: "Hi",
			Text: "code={{client.promocode('Keyed')}};", Audience: mailings.Audience{CustomerIDs: ids}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
			t.Fatal(err)
		}
		e.processAll(t, m.ID)
		got, _ := e.svc.Get(ctx, m.ID)
		if got.Status != mailings.StatusFinished || got.Progress.Sent != 5 {
			t.Fatalf("mailing %d: %s %+v", m.ID, got.Status, got.Progress)
		}
		return map[string]string{"issued": itoa(got.Progress.CodesIssued["Keyed"])}
	}
	codeRe := regexp.MustCompile(`code=(KEY-\d+);`)
	byCustomer := func(from int) map[string]string {
		out := map[string]string{}
		for _, msg := range e.smtp.Messages()[from:] {
			out[msg.To[0]] = codeRe.FindStringSubmatch(textPart(t, msg.Data))[1]
		}
		return out
	}
	if c := send(); c["issued"] != "5" {
		t.Fatalf("first mailing issued %s", c["issued"])
	}
	first := byCustomer(0)
	if c := send(); c["issued"] != "0" {
		t.Fatalf("second mailing issued %s, want 0", c["issued"])
	}
	second := byCustomer(5)
	if len(first) != 5 || len(second) != 5 {
		t.Fatalf("messages: %v / %v", first, second)
	}
	for to, code := range first {
		if second[to] != code {
			t.Fatalf("%s got %s then %s", to, code, second[to])
		}
	}
	if gr, _ := e.store.Get(ctx, g.ID); gr.Issued != 5 {
		t.Fatalf("group issued %d", gr.Issued)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'repeat'`, g.ID); n != 5 {
		t.Fatalf("%d repeats recorded", n)
	}
	e.checkInvariants(t)
}

func ptrTo[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
