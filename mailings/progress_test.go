package mailings_test

import (
	"context"
	"testing"

	"promopool/groups"
	"promopool/mailings"
)

// A delivery that claimed its batch's codes and died before recording them leaves
// codes issued under the mailing's scope; the redelivery finds them held (Existing)
// and takes none. codes_issued must still count them: they are this mailing's.
func TestCodesIssuedCountsCodesOfADeadDelivery(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 12)
	spring := e.group(t, "Spring", 20, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 4)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	// The dead delivery of batch 0: its lease was taken once (and expired), its claim
	// issued the codes of the batch's four recipients, its record never ran.
	var batch0 []string
	if err := e.db.Select(&batch0, `SELECT customer_id FROM mailing_recipients WHERE mailing_id = $1 AND batch = 0 ORDER BY customer_id`, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`UPDATE mailing_batches SET leases = 1 WHERE mailing_id = $1 AND batch = 0`, m.ID); err != nil {
		t.Fatal(err)
	}
	res, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: spring.ID, Scope: mailings.Scope(m.ID), MailingID: &m.ID, CustomerIDs: batch0})
	if err != nil || res.Issued() != len(batch0) {
		t.Fatalf("dead delivery's claim: %v %+v", err, res)
	}
	e.processAll(t, m.ID)
	got, err := e.svc.Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	live := e.count(t, `SELECT count(*) FROM issues WHERE scope = $1 AND group_id = $2 AND kind = 'initial' AND released_at IS NULL`, mailings.Scope(m.ID), spring.ID)
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 12 || live != 12 || got.Progress.CodesIssued["Spring"] != 12 {
		t.Fatalf("status %s, progress %+v, %d live issues: codes_issued must be 12", got.Status, got.Progress, live)
	}
	if g, _ := e.store.Get(ctx, spring.ID); g.Issued != 12 {
		t.Fatalf("group issued %d", g.Issued)
	}
	// A redelivery of a finished mailing's batch changes nothing.
	if _, err := e.db.Exec(`UPDATE mailing_batches SET done_at = NULL WHERE mailing_id = $1 AND batch = 1`, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ProcessBatch(ctx, m.ID, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.Get(ctx, m.ID); got.Progress.CodesIssued["Spring"] != 12 {
		t.Fatalf("after a redelivery: codes_issued %v", got.Progress.CodesIssued)
	}
	e.checkInvariants(t)
}
