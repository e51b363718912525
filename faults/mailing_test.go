package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/worker"
)

// mailingSize is the audience of a mailing scenario: 200,000 in the long version; in
// the short one 5,000 for the SIGKILL scenario and 2,500 for the others (the package
// stays under a minute).
func mailingSize(big bool) int {
	switch {
	case long:
		return 200_000
	case big:
		return 5_000
	}
	return 2_500
}

// workerSet is the running worker processes (2, concurrency 8) of a scenario.
type workerSet struct {
	h     *harness
	extra []string
	procs []*proc
}

func (w *workerSet) start(n int) {
	for range n {
		w.procs = append(w.procs, w.h.startWorker(w.extra...))
	}
}

// killRandom SIGKILLs one or both workers (chosen at random) and starts replacements.
func (w *workerSet) killRandom() int {
	k := 1 + rand.IntN(2)
	rand.Shuffle(len(w.procs), func(i, j int) { w.procs[i], w.procs[j] = w.procs[j], w.procs[i] })
	for _, p := range w.procs[:k] {
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		p.kill()
	}
	w.procs = w.procs[k:]
	w.start(k)
	return k
}

// scenario runs a mailing of mailingSize() recipients through two workers and calls
// inject at each fraction of the recipients sent, then checks promises 1, 2 and 5.
type scenario struct {
	fault string
	// at are the fractions of the mailing sent at which inject runs.
	at []float64
	// workerEnv is extra environment for the workers (e.g. a DATABASE_URL via a proxy).
	workerEnv func(h *harness) []string
	inject    func(h *harness, w *workerSet) string
	// big selects the larger short-version audience.
	big bool
	// after runs once the mailing finished, before the checks.
	after func(h *harness, c *checks, id int64)
	// world, when set, builds the harness (a Redis or database of the test's own).
	world func(t *testing.T) *harness
	// unknownOK: the fault can strand a message in flight (see checks.unknownOK).
	unknownOK bool
}

func (s scenario) run(t *testing.T) {
	c := newChecks(t, s.fault)
	c.unknownOK = s.unknownOK
	defer c.done()
	n := mailingSize(s.big)
	var h *harness
	if s.world != nil {
		h = s.world(t)
	} else {
		h = newHarness(t)
	}
	h.startWeb()
	gid := h.createGroup("Faults")
	rep := h.uploadCodes(gid, "FLT", n+n/50)
	if rep.Accepted != int64(n+n/50) {
		t.Fatalf("upload accepted %d", rep.Accepted)
	}
	h.customers(n)
	w := &workerSet{h: h}
	if s.workerEnv != nil {
		w.extra = s.workerEnv(h)
	}
	w.start(2)
	batch := 100
	if long {
		batch = 500
	}
	id := h.startMailing("Faults", batch)
	for _, f := range s.at {
		step := 120 * time.Second
		if long {
			step = 10 * time.Minute // a loaded 2-core machine sends 200,000 webhooks slowly
		}
		h.waitFor(step, fmt.Sprintf("%.0f%% sent", f*100), func() bool { return h.hook.received() >= int(f*float64(n)) })
		h.mu.Lock()
		h.texts = append(h.texts, h.redisDump()) // Asynq's data mid-run, for the leak scan
		h.mu.Unlock()
		what := s.inject(h, w)
		c.tried++
		t.Logf("%s at %d received: %s", s.fault, h.hook.received(), what)
	}
	limit := 40 * time.Second
	if long {
		limit = 15 * time.Minute
	}
	deadline := time.Now().Add(limit)
	for h.mailingStatus(id) != mailings.StatusFinished {
		if time.Now().After(deadline) {
			var open []string
			h.db.Select(&open, `SELECT format('batch %s: lease %s, enqueued %s, attempt %s, queued %s', b.batch, b.lease_until, b.enqueued_at, b.attempt,
				(SELECT count(*) FROM mailing_recipient_status r WHERE r.mailing_id = b.mailing_id AND r.batch = b.batch AND r.status = 'queued'))
				FROM mailing_batches b WHERE b.mailing_id = $1 AND b.done_at IS NULL ORDER BY b.batch LIMIT 20`, id)
			c.check("mailing finishes", false, "mailing %d (%s) not finished within %s; open batches:\n%s", id, h.mailingStatus(id), limit, strings.Join(open, "\n"))
			c.lost += n - h.sent(id)
			t.FailNow()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.after != nil {
		s.after(h, c, id)
	}
	h.checkMailing(c, id, n)
	h.checkCodes(c, gid)
	h.checkLeaks(c)
	var retries int
	for _, p := range h.procs {
		retries += strings.Count(p.out.String(), "task failed")
	}
	c.note("%d recipients, %d task runs failed and were retried", n, retries)
}

func kills() []float64 {
	if long {
		return []float64{0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95}
	}
	return []float64{0.3, 0.85}
}

func TestSIGKILLWorkers(t *testing.T) {
	scenario{fault: "SIGKILL of 1–2 worker processes (2 workers × concurrency 8)", at: kills(), big: true,
		inject: func(h *harness, w *workerSet) string { return fmt.Sprintf("killed %d", w.killRandom()) }}.run(t)
}

// redisClients kills the connections of every client on the suite's Redis DB (a Redis
// restart as its clients see it), leaving other databases' clients alone.
func (h *harness) redisClients() int {
	ctx := context.Background()
	list, err := h.rdb.ClientList(ctx).Result()
	if err != nil {
		h.t.Fatal(err)
	}
	db := fmt.Sprintf(" db=%d ", h.rdb.Options().DB)
	self := h.rdb.ClientID(ctx).Val()
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(" "+line+" ", db) {
			continue
		}
		var id int64
		fmt.Sscanf(line, "id=%d", &id)
		if id == 0 || id == self {
			continue
		}
		if h.rdb.ClientKillByFilter(ctx, "ID", fmt.Sprint(id)).Err() == nil {
			n++
		}
	}
	return n
}

func TestRedisRestartKeepingData(t *testing.T) {
	scenario{fault: "Redis restart, data kept (every DB-13 client connection killed)", at: []float64{0.3, 0.6},
		inject: func(h *harness, w *workerSet) string { return fmt.Sprintf("killed %d connections", h.redisClients()) }}.run(t)
}

func TestRedisRestartLosingData(t *testing.T) {
	scenario{fault: "Redis restart, data lost (FLUSHDB + connections killed)", at: []float64{0.3, 0.6},
		inject: func(h *harness, w *workerSet) string {
			h.rdb.FlushDB(context.Background())
			return fmt.Sprintf("flushed, killed %d connections", h.redisClients())
		}}.run(t)
}

// appName gives the workers of one test an application_name of their own, so that
// terminating their backends never touches another test's processes.
func appName(h *harness) []string {
	u, _ := url.Parse(h.db.URL)
	q := u.Query()
	q.Set("application_name", "faults-worker-"+h.db.Schema)
	u.RawQuery = q.Encode()
	return []string{"DATABASE_URL=" + u.String()}
}

func TestPostgresBackendsTerminated(t *testing.T) {
	scenario{fault: "PostgreSQL: the workers' backends terminated (pg_terminate_backend)", at: []float64{0.2, 0.45, 0.7},
		workerEnv: appName,
		inject: func(h *harness, w *workerSet) string {
			var n int
			err := h.db.Get(&n, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
				"faults-worker-"+h.db.Schema)
			if err != nil {
				h.t.Fatal(err)
			}
			return fmt.Sprintf("terminated %d backends", n)
		}}.run(t)
}

// viaProxy points the workers' PostgreSQL (or Redis) at a proxy.
func viaProxy(p **proxy, redisToo bool) func(h *harness) []string {
	return func(h *harness) []string {
		u, _ := url.Parse(testdb.URL())
		*p = newProxy(h.t, u.Host)
		u.Host = (*p).addr()
		env := []string{"DATABASE_URL=" + u.String()}
		if redisToo {
			ru, _ := url.Parse(redisURL())
			rp := newProxy(h.t, ru.Host)
			ru.Host = rp.addr()
			env = append(env, "REDIS_URL="+ru.String())
		}
		return env
	}
}

func TestNetworkCutToPostgres(t *testing.T) {
	var p *proxy
	scenario{fault: "network cut worker↔PostgreSQL (TCP proxy closes every connection)", at: []float64{0.25, 0.5, 0.75},
		workerEnv: viaProxy(&p, false),
		inject:    func(h *harness, w *workerSet) string { return fmt.Sprintf("cut %d connections", p.cut()) }}.run(t)
}

func TestNetworkLatencyToPostgres(t *testing.T) {
	var p *proxy
	scenario{fault: "latency worker↔PostgreSQL (+5 ms per chunk for 2 s, then a cut)", at: []float64{0.3},
		workerEnv: viaProxy(&p, false),
		inject: func(h *harness, w *workerSet) string {
			p.setDelay(5 * time.Millisecond)
			time.Sleep(2 * time.Second)
			p.setDelay(0)
			return fmt.Sprintf("slowed for 2 s, then cut %d connections", p.cut())
		}}.run(t)
}

// TestRedelivery is the lost acknowledgement: the handler succeeded but Asynq did not
// hear it, so the task runs again. (DEBUG SLEEP is disabled on this Redis, so the
// re-run is produced directly: every batch of the finished mailing is enqueued again
// with a new attempt number, twice.) The re-runs must change nothing.
func TestRedelivery(t *testing.T) {
	scenario{fault: "ack lost: every finished batch delivered twice more", at: nil,
		after: func(h *harness, c *checks, id int64) {
			var before int
			h.db.Get(&before, `SELECT count(*) FROM issues`)
			got := h.hook.received()
			var batches []int
			h.db.Select(&batches, `SELECT batch FROM mailing_batches WHERE mailing_id = $1`, id)
			opt, _ := asynq.ParseRedisURI(redisURL())
			cl := asynq.NewClient(opt)
			defer cl.Close()
			for attempt := 100; attempt < 102; attempt++ {
				for _, b := range batches {
					task, _ := worker.NewMailingBatchTask(mailings.BatchRef{MailingID: id, Batch: b, Attempt: attempt})
					if _, err := cl.Enqueue(task); err != nil {
						h.t.Fatal(err)
					}
					c.tried++
				}
			}
			insp := asynq.NewInspector(opt)
			defer insp.Close()
			h.waitFor(60*time.Second, "re-runs done", func() bool {
				q, err := insp.GetQueueInfo(worker.QueueMailings)
				return err == nil && q.Pending == 0 && q.Active == 0 && q.Retry == 0
			})
			var after int
			h.db.Get(&after, `SELECT count(*) FROM issues`)
			c.check("a re-run issues nothing", after == before, "%d issues before, %d after", before, after)
			c.check("a re-run sends nothing", h.hook.received() == got, "%d messages before, %d after", got, h.hook.received())
			c.dup += after - before
		}}.run(t)
}

// TestSIGTERMWorkers: graceful stops mid-mailing (WORKER_SHUTDOWN_TIMEOUT=20s) exit 0
// and never cause a resend.
func TestSIGTERMWorkers(t *testing.T) {
	scenario{fault: "SIGTERM of both workers (graceful stop, then restart)", at: []float64{0.3, 0.6},
		workerEnv: func(h *harness) []string { return []string{"WORKER_SHUTDOWN_TIMEOUT=20s"} },
		inject: func(h *harness, w *workerSet) string {
			for _, p := range w.procs {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			for _, p := range w.procs {
				if err := p.term(25 * time.Second); err != nil {
					h.t.Errorf("worker after SIGTERM: %v", err)
				}
			}
			w.procs = nil
			w.start(2)
			// The next SIGTERM must find them serving: one that arrives during start-up
			// (schema check) ends the process with status 1 — nothing was in flight.
			for _, p := range w.procs {
				h.waitFor(20*time.Second, "worker started", func() bool { return strings.Contains(p.out.String(), "worker started") })
			}
			return "both stopped and restarted"
		},
		after: func(h *harness, c *checks, id int64) {
			resent := 0
			for _, codes := range h.hook.snapshot() {
				resent += len(codes) - 1
			}
			c.check("no resend after graceful stops", resent == 0, "%d resends", resent)
			c.dup += resent
		}}.run(t)
}
