package faults

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"promopool/internal/netns"
	"promopool/internal/pgcluster"
	"promopool/internal/redistest"
	"promopool/internal/syncbuf"
	"promopool/internal/testdb"
)

// hopDelay is what a host's relay adds to each chunk in each direction: a round trip of
// 3.5–5 ms (tc netem is not in this kernel).
const hopDelay = 1500 * time.Microsecond

// Each host reaches the data host's PostgreSQL and Redis through relays on its own
// loopback, at these ports.
const (
	relayPG    = "127.0.0.1:15432"
	relayRedis = "127.0.0.1:16379"
)

// hosts is a harness whose web and two workers run on hosts of their own (network
// namespaces), against PostgreSQL and Redis on a data host. Each host reaches them
// through relays that run on it (this test binary, FAULTS_RELAY) and add hopDelay, so a
// cut link silences the host's connections end to end, as a pulled cable does; the
// webhook receiver is reached through a relay on the test's address.
type hosts struct {
	lab *netns.Lab
	rtt time.Duration // measured SELECT 1 round trip through a relay
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
	for _, host := range []string{"web", "w1", "w2"} {
		x.relays(t, host, fmt.Sprintf("%s>%s:5432@%s,%s>%s:6379@%s", relayPG, data, hopDelay, relayRedis, data, hopDelay))
	}
	u, _ := url.Parse(db.URL)
	direct := *u
	measured := newProxyAt(t, net.JoinHostPort(x.lab.TestAddr(), "0"), u.Host)
	measured.setDelay(hopDelay)
	u.Host = measured.addr()
	x.rtt, x.raw = roundTrip(t, u.String()), roundTrip(t, direct.String())
	// The server ends the sessions of a host gone silent after ~4 s here (promopool's
	// default, postgres.keepalive, is about a minute).
	u.Host = relayPG
	q := u.Query()
	for k, v := range map[string]string{"tcp_keepalives_idle": "2", "tcp_keepalives_interval": "1", "tcp_keepalives_count": "2",
		"tcp_user_timeout": "4000", "client_connection_check_interval": "1000"} {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	hook := newProxyAt(t, net.JoinHostPort(x.lab.TestAddr(), "0"), strings.TrimPrefix(h.hook.srv.URL, "http://"))
	h.env = append(h.env, "DATABASE_URL="+u.String(), "REDIS_URL=redis://"+relayRedis+"/13",
		"MAILER_URL=http://"+hook.addr()+"/send?concurrency=8&backoff=50ms")
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

// relays runs this test binary on host as the relays of spec (see relayMain) until the
// test ends.
func (x *hosts) relays(t *testing.T, host, spec string) {
	t.Helper()
	argv := append(x.lab.Exec(host), os.Args[0])
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "FAULTS_RELAY="+spec)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "relays listening") {
		select {
		case <-done:
			t.Fatalf("relays on %s exited: %s", host, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("relays on %s did not start: %s", host, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayMain runs this binary as relays (FAULTS_RELAY="listen>target@delay,…"): each
// listen address is forwarded to its target, every chunk delayed. It prints "relays
// listening" and runs until killed.
func relayMain(spec string) int {
	for _, r := range strings.Split(spec, ",") {
		lt, d, _ := strings.Cut(r, "@")
		listen, target, _ := strings.Cut(lt, ">")
		delay, err := time.ParseDuration(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAULTS_RELAY:", err)
			return 2
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAULTS_RELAY:", err)
			return 1
		}
		p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}, delay: delay}
		go p.serve()
	}
	fmt.Println("relays listening")
	select {}
}

// sessionsEnd waits until PostgreSQL has ended every session of a host whose link was
// just cut (its backends idle, or idle in a transaction holding a batch's row locks:
// only the server's TCP keepalive notices a silent peer) and records how long it took.
func (x *hosts) sessionsEnd(h *harness, host string, mu *sync.Mutex, ended *[]string) {
	start := time.Now()
	res := "not within 60 s"
	for time.Since(start) < 60*time.Second {
		var n int
		if err := h.db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE client_addr = $1::inet`, x.lab.Addr(host)); err == nil && n == 0 {
			res = time.Since(start).Round(100 * time.Millisecond).String()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	*ended = append(*ended, res)
	mu.Unlock()
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
// and their workers stopped first, so that whatever a cut worker held comes back. A cut
// in the middle of recording a batch leaves the worker's transaction open on the server
// with the batch's rows locked: the other worker's delivery of that batch waits until
// the server's TCP keepalive ends the silent session.
func TestWorkersOnSeparateHosts(t *testing.T) {
	x := &hosts{}
	at, events := linkEvents()
	var ws *workerSet
	cut := map[string]bool{}
	step := 0
	var mu sync.Mutex
	var ended []string // per cut: how long the server kept the cut host's sessions
	scenario{fault: "workers on separate hosts (network namespaces), a worker's link cut mid-send", at: at, world: x.world, unknownOK: true,
		inject: func(h *harness, w *workerSet) string {
			ws = w
			ev := events[step]
			step++
			verb, host, _ := strings.Cut(ev, " ")
			if verb == "cut" {
				x.lab.Cut(host)
				go x.sessionsEnd(h, host, &mu, &ended)
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
			mu.Lock()
			c.check("the server ends a cut host's sessions", len(ended) == len(cut) && !strings.Contains(strings.Join(ended, ""), "not"),
				"after the cuts: %v", ended)
			c.note("SELECT 1 round trip %s through a relay, %s straight to the data host; link events %s; the cut host's sessions ended by the server after %s",
				x.rtt.Round(10*time.Microsecond), x.raw.Round(10*time.Microsecond), strings.Join(events, ", "), strings.Join(ended, ", "))
			mu.Unlock()
		}}.run(t)
}
