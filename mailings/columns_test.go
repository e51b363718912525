package mailings_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

// Issue 21 item 8: last_promocode('G').pin inserts the column of the very code
// last_promocode('G') inserts (the customer's last code of G, from its upload's row),
// in a mailing sent through SMTP; a customer never issued a code from G gets neither;
// and promocode('G').pin a code uploaded without the column fails its recipient with the
// code returned, never sending a code without its PIN.
func TestLastColumns(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, mailings.Config{})
	ids := e.customers(t, 3)
	store, err := e.store.Create(ctx, "t", groups.Input{Name: ptr("Store")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Load(ctx, groups.UploadRequest{GroupID: store.ID, Format: groups.FormatCSV, Source: "api", Actor: "t"},
		strings.NewReader("code,pin\nST-1,1111\nST-2,2222\nST-3,3333\n")); err != nil {
		t.Fatal(err)
	}
	// c1 and c2 were issued Store codes earlier (a direct issue, another mailing).
	held, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: store.ID, Scope: "earlier", CustomerIDs: []string{"c1", "c2"}})
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{"ST-1": "1111", "ST-2": "2222", "ST-3": "3333"}
	m, err := e.svc.Create(ctx, "t", mailings.Input{Name: "Reminder", Sender: "shop@example.com", Subject: "Your code",
		Text:     "code [{{client.last_promocode('Store')}}] pin [{{client.last_promocode('store').pin}}]",
		Audience: mailings.Audience{CustomerIDs: ids}, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusFinished || got.Progress.Sent != 3 {
		t.Fatalf("mailing: %s %+v", got.Status, got.Progress)
	}
	re := regexp.MustCompile(`code \[([^\]]*)\] pin \[([^\]]*)\]`)
	n := 0
	for _, msg := range e.smtp.Messages() {
		sm := re.FindStringSubmatch(textPart(t, msg.Data))
		if sm == nil {
			t.Fatalf("message to %v: %q", msg.To, textPart(t, msg.Data))
		}
		cust := strings.TrimSuffix(msg.To[0], "@example.com")
		switch want := held.Codes[cust]; {
		case want == "" && (sm[1] != "" || sm[2] != ""):
			t.Fatalf("%s holds no Store code but got %q / %q", cust, sm[1], sm[2])
		case want != "" && (sm[1] != want || sm[2] != pins[want]):
			t.Fatalf("%s holds %s (pin %s) but got %q / %q", cust, want, pins[want], sm[1], sm[2])
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d messages", n)
	}

	// A code uploaded without the column a template inserts fails its recipient.
	plain, err := e.store.Create(ctx, "t", groups.Input{Name: ptr("Plain")})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, plain.ID, 1, "PLAIN")
	m2, err := e.svc.Create(ctx, "t", mailings.Input{Name: "Pins", Sender: "shop@example.com", Subject: "Hi",
		Text: "{{client.promocode('Plain')}} {{client.promocode('Plain').pin}}", Audience: mailings.Audience{CustomerIDs: []string{"c3"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Start(ctx, m2.ID, false); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m2.ID)
	got, _ := e.svc.Get(ctx, m2.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Failed != 1 || len(e.smtp.Messages()) != 3 {
		t.Fatalf("a code without its column: %s %+v, %d messages", got.Status, got.Progress, len(e.smtp.Messages()))
	}
	if n := e.count(t, `SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1 AND detail LIKE 'missing code column:%'`, m2.ID); n != 1 {
		t.Fatalf("the recipient's detail does not say why")
	}
	if g, _ := e.store.Get(ctx, plain.ID); g.Active != 1 {
		t.Fatalf("the code was not returned to the pool: active %d", g.Active)
	}
	e.checkInvariants(t)
}
