package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"promopool/internal/pgcluster"
	"promopool/internal/testdb"
)

// call sends a request to one web process and returns the status, the body and the
// headers.
func (h *harness) call(base, method, path, body string, hdr ...string) (int, []byte, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s%s: reading the body: %v", method, base, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

// heavyReads are the answers a read replica serves: a segment count, its first page,
// the whole answer streamed, and the group's two exports. Each is returned with the
// instant it is as of (segments) removed, so two processes' answers compare as bytes.
type heavyReads struct {
	count, page, stream, issues, unused string
	asOf                                time.Time
}

func (h *harness) heavyReads(base string, gid int64) heavyReads {
	h.t.Helper()
	filter := fmt.Sprintf(`{"filter":{"issued_from":{"groups":[%d]}}}`, gid)
	var r heavyReads
	get := func(method, path, body string, hdr ...string) ([]byte, http.Header) {
		st, b, hd := h.call(base, method, path, body, hdr...)
		if st != 200 {
			h.t.Fatalf("%s %s on %s: %d %s", method, path, base, st, b)
		}
		return b, hd
	}
	b, _ := get("POST", "/v1/segments/count", filter)
	var c struct {
		Count int64     `json:"count"`
		AsOf  time.Time `json:"as_of"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		h.t.Fatalf("count: %v: %s", err, b)
	}
	r.count, r.asOf = fmt.Sprint(c.Count), c.AsOf
	b, _ = get("POST", "/v1/segments/query", strings.TrimSuffix(filter, "}")+`,"limit":1000}`)
	var p map[string]any
	json.Unmarshal(b, &p)
	delete(p, "as_of")
	pb, _ := json.Marshal(p)
	r.page = string(pb)
	b, hd := get("POST", "/v1/segments/query", filter, "Accept", "application/x-ndjson")
	r.stream = hd.Get("Promopool-Count") + "\n" + string(b)
	b, _ = get("GET", fmt.Sprintf("/v1/groups/%d/issues.csv", gid), "")
	r.issues = string(b)
	b, _ = get("GET", fmt.Sprintf("/v1/groups/%d/unused.csv", gid), "")
	r.unused = string(b)
	return r
}

// differ names the answers that differ.
func (a heavyReads) differ(b heavyReads) string {
	var d []string
	for _, x := range []struct{ name, a, b string }{{"segment count", a.count, b.count}, {"segment page", a.page, b.page},
		{"segment stream", a.stream, b.stream}, {"issues.csv", a.issues, b.issues}, {"unused.csv", a.unused, b.unused}} {
		if x.a != x.b {
			d = append(d, fmt.Sprintf("%s (%d vs %d bytes)", x.name, len(x.a), len(x.b)))
		}
	}
	return strings.Join(d, ", ")
}

// TestReadReplica runs `promopool web` with DATABASE_REPLICA_URL naming a real
// streaming standby (a cluster of the test's own, made by pg_basebackup) beside one
// without, sends a mailing through a worker, and checks: once the standby has replayed
// everything, segment counts, pages and streams and both exports equal the primary's;
// with the standby's replay paused they are the standby's older answers, as_of earlier;
// with the standby stopped, the same requests are answered from the primary with a
// logged warning and no error; restarted, the standby serves them again.
func TestReadReplica(t *testing.T) {
	c := newChecks(t, "read replica (streaming standby): replay paused, standby stopped and restarted")
	defer c.done()
	primary := pgcluster.Primary(t, pgcluster.Options{})
	standby := primary.Standby(t, pgcluster.Options{})
	primary.CreateDatabase("promopool")
	db := testdb.NewAt(t, primary.URL("promopool"))
	sdb := standby.Open("promopool")
	h := newHarnessOn(t, db, redisURL())
	h.startWeb()
	onPrimary := h.webURL
	h.startWeb("DATABASE_REPLICA_URL="+standby.URL("promopool"), "DATABASE_REPLICA_MAX_LAG=5m")
	onReplica, replicaWeb := h.webURL, h.web
	if !strings.Contains(replicaWeb.out.String(), "in_use=true") {
		t.Fatalf("web did not start on the replica:\n%s", replicaWeb.out)
	}
	n := mailingSize(false)
	gid := h.createGroup("Replica")
	h.uploadCodes(gid, "FLT", n+100)
	h.customers(n)
	h.startWorker("SEGMENT_FOLD_INTERVAL=200ms")
	id := h.startMailing("Replica", 100)
	limit := 2 * time.Minute
	if long {
		limit = 20 * time.Minute
	}
	h.waitFor(limit, "mailing finished", func() bool { return h.mailingStatus(id) == "finished" })
	h.waitFor(limit, "issues folded", func() bool { return h.heavyReads(onPrimary, gid).count == fmt.Sprint(n) })

	caught := pgcluster.WaitCaughtUp(t, db.DB, sdb, 30*time.Second)
	want, got := h.heavyReads(onPrimary, gid), h.heavyReads(onReplica, gid)
	c.check("replica answers = primary's once caught up", got.differ(want) == "", "differ: %s", got.differ(want))
	c.note("standby caught up %s after the check; %s customers, %d-byte issues.csv", caught.Round(time.Millisecond), want.count, len(want.issues))

	// Replay paused: new issues reach the primary only.
	if _, err := sdb.Exec(`SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		st, b, _ := h.call(onPrimary, "POST", fmt.Sprintf("/v1/groups/%d/issue", gid), fmt.Sprintf(`{"customer_id":"late%d"}`, i),
			"Idempotency-Key", fmt.Sprintf("late-%d", i))
		if st != 201 {
			t.Fatalf("direct issue: %d %s", st, b)
		}
	}
	h.waitFor(30*time.Second, "late issues folded", func() bool { return h.heavyReads(onPrimary, gid).count == fmt.Sprint(n+5) })
	stale, fresh := h.heavyReads(onReplica, gid), h.heavyReads(onPrimary, gid)
	c.check("paused replica answers as of its replay", stale.count == fmt.Sprint(n) && stale.asOf.Before(fresh.asOf) &&
		strings.Count(stale.issues, "\n") == strings.Count(fresh.issues, "\n")-5,
		"replica count %s as of %s, primary %s as of %s", stale.count, stale.asOf, fresh.count, fresh.asOf)
	if _, err := sdb.Exec(`SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	pgcluster.WaitCaughtUp(t, db.DB, sdb, 30*time.Second)
	got, want = h.heavyReads(onReplica, gid), h.heavyReads(onPrimary, gid)
	c.check("resumed replica answers = primary's", got.differ(want) == "", "differ: %s", got.differ(want))

	// Standby stopped: the same reads, from the primary, logged.
	warned := strings.Count(replicaWeb.out.String(), "read replica not used")
	standby.Stop("immediate")
	stopped := time.Now()
	st, b, _ := h.call(onReplica, "POST", "/v1/segments/count", fmt.Sprintf(`{"filter":{"issued_from":{"groups":[%d]}}}`, gid))
	first := time.Since(stopped)
	c.check("stopped replica: the first read answered", st == 200, "%d %s", st, b)
	got, want = h.heavyReads(onReplica, gid), h.heavyReads(onPrimary, gid)
	c.check("stopped replica: answers from the primary, no error", got.differ(want) == "", "differ: %s", got.differ(want))
	c.check("stopped replica: a logged warning", strings.Count(replicaWeb.out.String(), "read replica not used") == warned+1,
		"%d warnings in the web log before the stop, %d after", warned, strings.Count(replicaWeb.out.String(), "read replica not used"))
	c.note("the first read after the stop answered by the primary in %s", first.Round(time.Millisecond))
	restarted := time.Now()
	standby.Start()
	h.waitFor(60*time.Second, "replica back in use", func() bool {
		return strings.Contains(replicaWeb.out.String(), "read replica in use")
	})
	back := time.Since(restarted)
	pgcluster.WaitCaughtUp(t, db.DB, sdb, 30*time.Second)
	got, want = h.heavyReads(onReplica, gid), h.heavyReads(onPrimary, gid)
	c.check("restarted replica answers = primary's", got.differ(want) == "", "differ: %s", got.differ(want))
	c.note("reads back on the restarted standby %s after pg_ctl start began", back.Round(time.Millisecond))
	c.tried = 3
}
