package faults

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"promopool/internal/netns"
	"promopool/internal/pgcluster"
	"promopool/internal/redistest"
	"promopool/internal/testdb"
)

// hopDelay is what the relay between the hosts and the data host adds to each chunk in
// each direction: a round trip of 3.5–5 ms (tc netem is not in this kernel).
const hopDelay = 1500 * time.Microsecond

// hosts is a harness whose web and two workers run on hosts of their own (network
// namespaces), against PostgreSQL and Redis on a data host, through relays on the test's
// address that add hopDelay; the webhook receiver is reached through a relay too.
type hosts struct {
	lab *netns.Lab
	rtt time.Duration // measured SELECT 1 round trip through the relay
	raw time.Duration // and straight to the data host
	// workers are the namespaces of the workers in start order.
	workers []string
}

func (x *hosts) world(t *testing.T) *harness {
	x.lab = netns.New(t, "data", "web", "w1", "w2")
	data := x.lab.Addr("data")
	pg := pgcluster.Primary(t, pgcluster.Options{Host: data, Port: 5432, Prefix: x.lab.Exec("data")})
	pg.CreateDatabase("promopool")
	rs := redistest.StartServer(t, redistest.Options{Bind: data, Port: 6379, Prefix: x.lab.Exec("data")})
	db := testdb.NewAt(t, pg.URL("promopool"))
	h := newHarnessOn(t, db, "redis://"+rs.Addr+"/13")
	relay := func(target string, delay time.Duration) string {
		p := newProxyAt(t, net.JoinHostPort(x.lab.TestAddr(), "0"), target)
		p.setDelay(delay)
		return p.addr()
	}
	u, _ := url.Parse(db.URL)
	direct := *u
	u.Host = relay(u.Host, hopDelay)
	x.rtt, x.raw = roundTrip(t, u.String()), roundTrip(t, direct.String())
	h.env = append(h.env, "DATABASE_URL="+u.String(), "REDIS_URL=redis://"+relay(rs.Addr, hopDelay)+"/13",
		"MAILER_URL=http://"+relay(strings.TrimPrefix(h.hook.srv.URL, "http://"), 0)+"/send?concurrency=8&backoff=50ms")
	h.place = func(name string) []string {
		switch name {
		case "web":
			return append(x.lab.Exec("web"), "env", "HTTP_ADDR="+net.JoinHostPort(x.lab.Addr("web"), "0"))
		case "worker":
			host := fmt.Sprintf("w%d", len(x.workers)%2+1)
			x.workers = append(x.workers, host)
			return x.lab.Exec(host)
		}
		return nil
	}
	return h
}

// roundTrip is the median time of SELECT 1 over one connection to url.
func roundTrip(t *testing.T, url string) time.Duration {
	db := testdb.Reopen(t, &testdb.DB{URL: url})
	var ds []time.Duration
	for range 21 {
		start := time.Now()
		if _, err := db.Exec(`SELECT 1`); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	for i := range ds {
		for j := i + 1; j < len(ds); j++ {
			if ds[j] < ds[i] {
				ds[i], ds[j] = ds[j], ds[i]
			}
		}
	}
	return ds[len(ds)/2]
}

// linkEvents are the link changes of the scenario, one per fraction sent: the short
// version cuts w1 for good at 40%; the long one cuts w1 at 25%, restores it at 50% and
// cuts w2 at 75%.
func linkEvents() ([]float64, []string) {
	if long {
		return []float64{0.25, 0.5, 0.75}, []string{"cut w1", "restore w1", "cut w2"}
	}
	return []float64{0.4}, []string{"cut w1"}
}

// TestWorkersOnSeparateHosts runs web and two workers on hosts of their own, against
// PostgreSQL and Redis on another, with latency between them, cuts one worker's link
// mid-send (its connections stall, as when a cable is pulled: no reset reaches either
// end), and checks the invariants once the mailing finished — the cut links restored
// and their workers stopped first, so that whatever a cut worker held comes back.
func TestWorkersOnSeparateHosts(t *testing.T) {
	x := &hosts{}
	at, events := linkEvents()
	var ws *workerSet
	cut := map[string]bool{}
	step := 0
	scenario{fault: "workers on separate hosts (network namespaces), a worker's link cut mid-send", at: at, world: x.world,
		inject: func(h *harness, w *workerSet) string {
			ws = w
			ev := events[step]
			step++
			verb, host, _ := strings.Cut(ev, " ")
			if verb == "cut" {
				x.lab.Cut(host)
			} else {
				x.lab.Restore(host)
			}
			cut[host] = verb == "cut"
			return ev
		},
		after: func(h *harness, c *checks, id int64) {
			for host, down := range cut {
				if down {
					x.lab.Restore(host)
				}
			}
			for _, p := range ws.procs {
				if err := p.term(60 * time.Second); err != nil {
					c.note("%s", err)
				}
			}
			c.note("SELECT 1 round trip %s through the relay, %s straight to the data host; link events %s",
				x.rtt.Round(10*time.Microsecond), x.raw.Round(10*time.Microsecond), strings.Join(events, ", "))
		}}.run(t)
}
