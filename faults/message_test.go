package faults

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// messageChecks is issue 20 item 5 as a bad-input row: a 20 KB template of 999
// {{client.attr('n')}} over customers with a 60 KB attribute would render 60 MB per
// message. The mailing runs on a worker: each of those recipients fails with "message
// too large" and gets its code back, the one small customer is sent, and the worker's
// peak RSS stays under the budget (a batch holds MAILING_BATCH_BYTES of messages).
func (h *harness) messageChecks() {
	c := newChecks(h.t, "999 attr macros over 60 KB attributes (60 MB messages) in a mailing")
	defer c.done()
	const big = 100
	c.tried = big + 1
	if _, err := h.db.Exec(`INSERT INTO customers (id, email, attributes)
		SELECT 'big' || g, 'big' || g || '@example.com', jsonb_build_object('n', repeat('x', 60000)) FROM generate_series(1, $1) g
		UNION ALL SELECT 'small1', 'small1@example.com', '{"n": "s"}'`, big); err != nil {
		h.t.Fatal(err)
	}
	ids := []string{"small1"}
	for i := 1; i <= big; i++ {
		ids = append(ids, fmt.Sprintf("big%d", i))
	}
	gid := h.createGroup("Big messages")
	h.uploadCodes(gid, "FLTG", 200)
	w := h.startWorker("MAILING_BATCH_SIZE=101")
	in, _ := json.Marshal(map[string]any{"name": "big", "sender": "s@example.com", "subject": "your code",
		"text":     "code={{client.promocode('Big messages')}};" + strings.Repeat("{{client.attr('n')}}", 999),
		"audience": map[string]any{"customer_ids": ids}})
	var m struct{ ID int64 }
	h.api("POST", "/v1/mailings", string(in), 201, &m)
	h.api("POST", fmt.Sprintf("/v1/mailings/%d/start", m.ID), `{}`, 200, nil)
	h.waitFor(60*time.Second, "the big-message mailing to finish", func() bool { return h.mailingStatus(m.ID) == "finished" })
	peak, err := peakRSS(w.cmd.Process.Pid)
	var failed, sent, live int
	h.db.Get(&failed, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'failed' AND detail LIKE 'message too large%'`, m.ID)
	h.db.Get(&sent, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent'`, m.ID)
	h.db.Get(&live, `SELECT count(*) FROM issues WHERE mailing_id = $1 AND kind = 'initial' AND released_at IS NULL`, m.ID)
	c.check("each big message fails its recipient with the reason", failed == big, "%d of %d failed as too large", failed, big)
	c.check("the small one is sent", sent == 1, "%d sent", sent)
	c.check("codes of failed recipients back in the pool", live == 1, "%d live issues, want 1", live)
	c.check(fmt.Sprintf("worker peak RSS under %d MB", rssLimit>>20), err == nil && peak < rssLimit, "%d MB (%v)", peak>>20, err)
	c.check("worker up", w.alive(), "worker died")
	c.note("worker peak RSS %d MB", peak>>20)
	c.lost += big - failed
	h.checkCodes(c, gid)
	w.term(15 * time.Second)
}
