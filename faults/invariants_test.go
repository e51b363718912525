package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"promopool/mailings"
)

// checkCodes is promise 1 for a group: no code has two live initial issues; the
// group's counters agree with the rows (issued = live initial issues; issued + active +
// expired = total = the codes stored for its uploads). It waits for the reconciler to
// return codes reserved by killed workers (RESERVATION_TIMEOUT) before judging.
func (h *harness) checkCodes(c *checks, gid int64) {
	c.t.Helper()
	var twice int
	err := h.db.Get(&twice, `SELECT count(*) FROM (SELECT code_id FROM issues WHERE kind = 'initial' AND released_at IS NULL
		GROUP BY code_id HAVING count(*) > 1) x`)
	c.check("no code issued twice", err == nil && twice == 0, "%d codes with two live issues (%v)", twice, err)
	c.dup += twice
	type counts struct {
		Total, Issued, Active, Expired int64
		Rows, Issues                   int64
	}
	read := func() (counts, error) {
		var k counts
		err := h.db.QueryRowx(`
			SELECT coalesce(sum(r.total), 0), coalesce(sum(r.taken), 0),
			       coalesce(sum(r.total - r.taken) FILTER (WHERE r.expires_at IS NULL OR r.expires_at > now()), 0),
			       coalesce(sum(r.total - r.taken) FILTER (WHERE r.expires_at <= now()), 0),
			       (SELECT count(*) FROM codes c JOIN uploads u ON u.id = c.id >> 32 WHERE u.group_id = $1),
			       (SELECT count(*) FROM issues i WHERE i.group_id = $1 AND kind = 'initial' AND released_at IS NULL)
			FROM code_ranges r WHERE r.group_id = $1`, gid).Scan(&k.Total, &k.Issued, &k.Active, &k.Expired, &k.Rows, &k.Issues)
		return k, err
	}
	var k counts
	deadline := time.Now().Add(20 * time.Second)
	for {
		k, err = read()
		if err == nil && k.Issued == k.Issues && k.Issued+k.Active+k.Expired == k.Total && k.Total == k.Rows {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.check("issued = live issues", err == nil && k.Issued == k.Issues, "counter %d, rows %d (%v)", k.Issued, k.Issues, err)
	c.check("issued + active + expired = uploaded", k.Issued+k.Active+k.Expired == k.Total && k.Total == k.Rows,
		"issued %d + active %d + expired %d vs total %d, %d code rows", k.Issued, k.Active, k.Expired, k.Total, k.Rows)
	if k.Issued != k.Issues {
		c.lost += int(abs(k.Issued - k.Issues))
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// checkMailing is promise 2 for a finished mailing to n customers whose messages went to
// the receiver: every recipient final and sent; one live code per customer; each
// customer received messages carrying one code only, the code recorded as theirs;
// nothing recorded sent that did not arrive.
func (h *harness) checkMailing(c *checks, id int64, n int) {
	c.t.Helper()
	var recips, queued, sent int
	h.db.Get(&recips, `SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1`, id)
	h.db.Get(&queued, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'queued'`, id)
	h.db.Get(&sent, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent'`, id)
	unknown := map[string]bool{}
	if c.unknownOK {
		var ids []string
		h.db.Select(&ids, `SELECT customer_id FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'failed' AND detail LIKE 'delivery unknown%'`, id)
		for _, cust := range ids {
			unknown[cust] = true
		}
	}
	c.check("one recipient row per customer", recips == n, "%d rows for %d customers", recips, n)
	c.check("every recipient final", queued == 0, "%d still queued", queued)
	c.check("every recipient sent", sent+len(unknown) == n, "%d of %d sent, %d delivery unknown", sent, n, len(unknown))
	c.lost += n - sent - len(unknown)

	var twice int
	h.db.Get(&twice, `SELECT count(*) FROM (SELECT customer_id FROM issues WHERE scope = $1 AND kind = 'initial'
		AND released_at IS NULL GROUP BY customer_id HAVING count(*) > 1) x`, mailings.Scope(id))
	c.check("one code per customer", twice == 0, "%d customers hold two codes from the mailing", twice)
	c.dup += twice

	// Issue 21 item 5: progress.codes_issued counts the codes issued under the mailing's
	// scope, whichever delivery issued them (a killed worker's included).
	var live int64
	h.db.Get(&live, `SELECT count(*) FROM issues WHERE scope = $1 AND kind = 'initial' AND released_at IS NULL`, mailings.Scope(id))
	var counted int64
	var prog struct {
		Progress struct {
			CodesIssued map[string]int64 `json:"codes_issued"`
		} `json:"progress"`
	}
	if st, b := h.do("GET", fmt.Sprintf("/v1/mailings/%d", id), "", nil, "default"); st == 200 && json.Unmarshal(b, &prog) == nil {
		for _, n := range prog.Progress.CodesIssued {
			counted += n
		}
	} else { // web is down in this scenario: the counters it would sum
		h.db.Get(&counted, `SELECT coalesce(sum(issued), 0) FROM mailing_group_counts WHERE mailing_id = $1`, id)
	}
	c.check("progress codes_issued = codes issued under the mailing", counted == live, "codes_issued %d, %d live issues", counted, live)

	issued := map[string]string{}
	rows, err := h.db.Query(`SELECT i.customer_id, c.code FROM issues i JOIN codes c ON c.id = i.code_id
		WHERE i.scope = $1 AND i.kind = 'initial' AND i.released_at IS NULL`, mailings.Scope(id))
	if err != nil {
		c.t.Fatal(err)
	}
	for rows.Next() {
		var cust, code string
		rows.Scan(&cust, &code)
		issued[cust] = code
	}
	rows.Close()
	got := h.hook.snapshot()
	var twoCodes, wrongCode, resent, missing int
	prefix := fmt.Sprintf("m%d.", id)
	for key, codes := range got {
		cust, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		distinct := map[string]bool{}
		for _, code := range codes {
			distinct[code] = true
		}
		if len(distinct) > 1 {
			twoCodes++
		}
		if len(codes) > 1 {
			resent += len(codes) - 1
		}
		if codes[len(codes)-1] != issued[cust] {
			wrongCode++
		}
	}
	arrived := 0
	for cust := range issued {
		_, ok := got[prefix+cust]
		switch {
		case unknown[cust] && ok:
			arrived++
		case !ok && !unknown[cust]:
			missing++
		}
	}
	if len(unknown) > 0 {
		c.note("%d recipients recorded 'delivery unknown' (requests in flight when a link was cut; codes kept, never resent), %d of whose messages had in fact arrived", len(unknown), arrived)
	}
	c.check("no customer got two different messages", twoCodes == 0, "%d customers got two different codes", twoCodes)
	c.check("message carries the recorded code", wrongCode == 0, "%d messages carry a code not recorded as the customer's", wrongCode)
	c.check("every sent message arrived", missing == 0, "%d customers hold a code but received nothing", missing)
	c.dup += twoCodes
	c.lost += missing
	if resent > 0 {
		c.note("%d resends with the same message id (crash between send and record; deduplicated by Idempotency-Key)", resent)
	}
}

// codeToken matches every code the suite creates (prefix FLT).
var codeToken = regexp.MustCompile(`FLT[0-9A-Z]*-[0-9]{8}`)

// checkLeaks is promise 5: no unused code appears in the processes' logs (debug level),
// /metrics, the Asynq data in Redis, or the error answers the suite collected. Issued
// codes may appear only where they belong (the messages); any code in logs is reported.
func (h *harness) checkLeaks(c *checks) {
	c.t.Helper()
	unused := map[string]bool{}
	rows, err := h.db.Query(`SELECT c.code FROM codes c WHERE NOT EXISTS (
		SELECT 1 FROM issues i WHERE i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL)`)
	if err != nil {
		c.t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		unused[s] = true
	}
	rows.Close()
	sources := map[string]string{}
	h.mu.Lock()
	for i, p := range h.procs {
		sources[fmt.Sprintf("%s #%d log", p.name, i)] = p.out.String()
	}
	sources["error answers"] = strings.Join(h.texts, "\n")
	h.mu.Unlock()
	if h.webURL != "" && h.web.alive() {
		req, _ := http.NewRequest("GET", h.webURL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+h.key) // /metrics needs the read scope
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			sources["/metrics"] = string(b)
		}
	}
	sources["Redis (Asynq)"] = h.redisDump()
	for name, text := range sources {
		var leakedUnused, anyCode int
		for _, tok := range codeToken.FindAllString(text, -1) {
			anyCode++
			if unused[tok] {
				leakedUnused++
			}
		}
		c.check("no unused code in "+name, leakedUnused == 0, "%d unused codes appear", leakedUnused)
		if anyCode > 0 && name != "error answers" {
			c.check("no code at all in "+name, false, "%d codes appear", anyCode)
		}
	}
}

// redisDump returns every value in the suite's Redis DB, whatever its type.
func (h *harness) redisDump() string {
	ctx := context.Background()
	var b strings.Builder
	iter := h.rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		b.WriteString(k + "\n")
		switch h.rdb.Type(ctx, k).Val() {
		case "string":
			b.WriteString(h.rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range h.rdb.HGetAll(ctx, k).Val() {
				b.WriteString(f + "=" + v + "\n")
			}
		case "list":
			b.WriteString(strings.Join(h.rdb.LRange(ctx, k, 0, -1).Val(), "\n"))
		case "set":
			b.WriteString(strings.Join(h.rdb.SMembers(ctx, k).Val(), "\n"))
		case "zset":
			b.WriteString(strings.Join(h.rdb.ZRange(ctx, k, 0, -1).Val(), "\n"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
