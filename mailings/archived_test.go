package mailings_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"promopool/groups"
	"promopool/macros"
	"promopool/mailings"
)

// SPEC §3 / issue 21 item 6: last_promocode of an archived group is allowed and renders
// the customer's code from it, or empty; promocode of it is refused at validation.
func TestLastPromocodeOfArchivedGroup(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 3)
	e.group(t, "Spring", 10, "SPRING")
	winter := e.group(t, "Winter", 5, "WINTER")
	res, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: winter.ID, Scope: "earlier", CustomerIDs: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	c1Winter := res.Codes["c1"]
	if del, err := e.store.Delete(ctx, "t", winter.ID); err != nil || !del.Archived {
		t.Fatalf("delete: %+v %v", del, err)
	}
	// promocode of it: an error naming the archive; last_promocode alone: valid.
	_, err = macros.Compile(ctx, macros.Source{Text: "{{client.promocode('winter')}}"}, e.store)
	if !errors.Is(err, macros.ErrUnknownGroup) || !strings.Contains(err.Error(), "archived") {
		t.Fatalf("promocode of an archived group: %v", err)
	}
	if _, err := macros.Compile(ctx, macros.Source{Text: "[{{client.last_promocode('Winter')}}]"}, e.store); err != nil {
		t.Fatalf("last_promocode of an archived group: %v", err)
	}
	if _, err := macros.Compile(ctx, macros.Source{Text: "[{{client.last_promocode('Wintr')}}]"}, e.store); !errors.Is(err, macros.ErrUnknownGroup) {
		t.Fatalf("last_promocode of a group that never existed: %v", err)
	}
	// A mailing: c1 gets the code it holds from the archived group, the others nothing.
	m, err := e.svc.Create(ctx, "t", mailings.Input{Name: "W", Sender: "shop@example.com", Subject: "Hi",
		Text:     "your code: {{client.promocode('Spring')}} winter: [{{client.last_promocode('Winter')}}]",
		Audience: mailings.Audience{CustomerIDs: ids}})
	if err != nil {
		t.Fatal(err)
	}
	if m.GroupIDs["winter"] != winter.ID {
		t.Fatalf("group_ids %v: Winter should resolve to the archived group %d", m.GroupIDs, winter.ID)
	}
	pv, err := e.svc.Preview(ctx, m.ID, "c1")
	if err != nil || !strings.Contains(pv.Text, "winter: ["+c1Winter+"]") {
		t.Fatalf("preview for c1: %v %q", err, pv.Text)
	}
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got := map[string]string{}
	for _, msg := range e.smtp.Messages() {
		txt := textPart(t, msg.Data)
		got[msg.To[0]] = strings.TrimSpace(txt[strings.Index(txt, "winter: "):])
	}
	if got["c1@example.com"] != "winter: ["+c1Winter+"]" || got["c2@example.com"] != "winter: []" || len(got) != 3 {
		t.Fatalf("messages: %q", got)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE group_id = $1 AND kind = 'repeat' AND customer_id = 'c1'`, winter.ID); n != 1 {
		t.Fatalf("%d repeat issues recorded for c1", n)
	}
}
