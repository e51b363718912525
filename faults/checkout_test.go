package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The checkout's fault scenarios (issue 18): redemptions and holds over HTTP while the
// web process is SIGKILLed or its PostgreSQL backends are terminated, and two clients
// replaying the same orders at once. A client that gets no answer, or a 5xx, retries
// the same request (same order id, same body), as a shop does. Afterwards: every
// acknowledged redemption is stored under its order, no order has two live
// redemptions (nor two acknowledgements naming different live ones), the counters
// equal the rows, and no hold outlives its TTL by more than the sweep's interval.

// checkoutOrders is how many orders a burst sends: small by default (the package's run
// stays short), larger with FAULTS_LONG=1.
func checkoutOrders() int {
	if long {
		return 4000
	}
	return 240
}

const (
	// holdTTL and sweepEvery: holds expire quickly so the sweep's work is part of the run.
	holdTTL    = 2 * time.Second
	sweepEvery = time.Second
)

// checkoutWorld is a shared group with a fixed discount and a promotion code, served by
// a web process on a fixed port (so it can be restarted under the same URL) and a
// scheduler sweeping holds.
type checkoutWorld struct {
	h     *harness
	group int64
	addr  string
	web   []string // web's extra environment
	// acks: order id → the redemption ids answered (201 or 200) for it, in order.
	mu     sync.Mutex
	acks   map[string][]int64
	status map[int]int
	tries  atomic.Int64
}

func newCheckoutWorld(t *testing.T, webEnv func(h *harness) []string) *checkoutWorld {
	h := newHarness(t, fmt.Sprintf("REDEMPTION_HOLD_TTL=%s", holdTTL), fmt.Sprintf("REDEMPTION_SWEEP_INTERVAL=%s", sweepEvery))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &checkoutWorld{h: h, addr: addr, web: []string{"HTTP_ADDR=" + addr},
		acks: map[string][]int64{}, status: map[int]int{}}
	if webEnv != nil {
		w.web = append(w.web, webEnv(h)...)
	}
	h.startWeb(w.web...)
	h.start("scheduler", nil, "scheduler")
	if err := h.db.Get(&w.group, `INSERT INTO groups (name, kind, terms) VALUES ('Checkout faults', 'shared',
		'{"type":"fixed","amount_off":500,"currency":"EUR"}') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	h.db.MustExec(`INSERT INTO codes (id, code) VALUES ((1::bigint << 62) + 1, 'FAULT5')`)
	h.db.MustExec(`INSERT INTO promotion_codes (code_id, group_id) VALUES ((1::bigint << 62) + 1, $1)`, w.group)
	return w
}

// body is the request for order i: every third a hold.
func orderBody(prefix string, i int) string {
	return fmt.Sprintf(`{"code":"FAULT5","customer_id":"cust-%d","order_id":"%s-%d","hold":%t,"currency":"EUR",`+
		`"items":[{"product_id":"shoe","quantity":1,"unit_amount":3000},{"product_id":"sock","quantity":2,"unit_amount":500}]}`,
		i%37, prefix, i, i%3 == 0)
}

var checkoutHTTP = &http.Client{Timeout: 10 * time.Second}

// redeem sends the order until it gets an answer that is not a 5xx or a broken
// connection (a shop's retry), for at most limit; it records the acknowledgement.
func (w *checkoutWorld) redeem(order, body string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		w.tries.Add(1)
		req, _ := http.NewRequest("POST", "http://"+w.addr+"/v1/redemptions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+w.h.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := checkoutHTTP.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			w.mu.Lock()
			w.status[resp.StatusCode]++
			w.mu.Unlock()
			if resp.StatusCode == 200 || resp.StatusCode == 201 {
				var r struct {
					ID int64 `json:"id"`
				}
				json.Unmarshal(b, &r)
				w.mu.Lock()
				w.acks[order] = append(w.acks[order], r.ID)
				w.mu.Unlock()
				return
			}
			if resp.StatusCode < 500 {
				w.h.t.Errorf("order %s: %d %s", order, resp.StatusCode, bytes.TrimSpace(b))
				return
			}
		}
		if time.Now().After(deadline) {
			w.h.t.Errorf("order %s: no answer within %s (last: %v)", order, limit, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// burst sends n orders from 8 clients; fault(k) is called once each time k orders have
// been acknowledged for k in at.
func (w *checkoutWorld) burst(prefix string, n int, at []int, fault func()) {
	var wg sync.WaitGroup
	next := make(chan int)
	var done atomic.Int64
	var faults sync.WaitGroup
	fired := make([]atomic.Bool, len(at))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				w.redeem(fmt.Sprintf("%s-%d", prefix, i), orderBody(prefix, i), 60*time.Second)
				k := done.Add(1)
				for j, a := range at {
					if int(k) >= a && fired[j].CompareAndSwap(false, true) {
						faults.Add(1)
						go func() { defer faults.Done(); fault() }()
					}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	faults.Wait()
}

// check judges the promises after the faults, and fills the row.
func (w *checkoutWorld) check(c *checks, n int) {
	h := w.h
	// Let every hold run out and the sweep pass.
	time.Sleep(holdTTL + 2*sweepEvery + 500*time.Millisecond)
	type stored struct {
		ID     int64  `db:"id"`
		Order  string `db:"order_id"`
		Status string `db:"status"`
	}
	var rows []stored
	if err := h.db.Select(&rows, `SELECT id, order_id, status FROM redemptions WHERE group_id = $1`, w.group); err != nil {
		h.t.Fatal(err)
	}
	byID := map[int64]stored{}
	live := map[string]int{}
	for _, r := range rows {
		byID[r.ID] = r
		if r.Status == "pending" || r.Status == "succeeded" || r.Status == "refunded" {
			live[r.Order]++
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	acked, missing, twice := 0, 0, 0
	for order, ids := range w.acks {
		acked++
		for _, id := range ids {
			if r, ok := byID[id]; !ok || r.Order != order {
				missing++
			}
		}
		// Two acknowledgements naming different redemptions: only when the first was a
		// hold that expired before the retry (the order is free again by design).
		for _, id := range ids[1:] {
			if id != ids[0] && byID[ids[0]].Status != "expired" {
				twice++
			}
		}
	}
	for _, k := range live {
		if k > 1 {
			twice++
		}
	}
	c.tried = int(w.tries.Load())
	c.lost, c.dup = missing, twice
	c.check("every order acknowledged", acked == n, "%d of %d orders acknowledged", acked, n)
	c.check("every acknowledged redemption stored", missing == 0, "%d acknowledged redemptions not stored under their order", missing)
	c.check("no order redeemed twice", twice == 0, "%d orders with two live redemptions or two acknowledged ones", twice)
	var used, discounted, rowsLive, discLive int64
	h.db.QueryRow(`SELECT used, discounted FROM redemption_counts WHERE group_id = $1`, w.group).Scan(&used, &discounted)
	h.db.QueryRow(`SELECT count(*), COALESCE(sum(discount_amount - refunded_amount), 0) FROM redemptions
		WHERE group_id = $1 AND status IN ('pending', 'succeeded', 'refunded')`, w.group).Scan(&rowsLive, &discLive)
	var codeUsed, badCustomers int64
	h.db.Get(&codeUsed, `SELECT used FROM redemption_code_counts WHERE group_id = $1`, w.group)
	h.db.Get(&badCustomers, `SELECT count(*) FROM redemption_customer_counts c WHERE c.group_id = $1 AND c.used <>
		(SELECT count(*) FROM redemptions r WHERE r.group_id = c.group_id AND r.customer_id = c.customer_id AND r.status IN ('pending', 'succeeded'))`, w.group)
	c.check("counters = rows", used == rowsLive && discounted == discLive && codeUsed == rowsLive && badCustomers == 0,
		"group used %d discounted %d, code used %d; rows %d discount %d; %d customer counters off", used, discounted, codeUsed, rowsLive, discLive, badCustomers)
	var overdue int
	h.db.Get(&overdue, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'pending'
		AND hold_expires_at < now() - $2::interval`, w.group, fmt.Sprintf("%d milliseconds", (sweepEvery+time.Second).Milliseconds()))
	c.check("no hold outlives its TTL", overdue == 0, "%d holds pending past TTL + sweep interval", overdue)
	var expired int
	h.db.Get(&expired, `SELECT count(*) FROM redemptions WHERE group_id = $1 AND status = 'expired'`, w.group)
	c.note("%d orders, %d acknowledged, %d requests (answers %v), %d holds expired by the sweep", n, acked, c.tried, w.status, expired)
}

// TestCheckoutWebKilled: web is SIGKILLed twice during a burst of redemptions and holds
// and restarted at once on the same address; clients retry what got no answer.
func TestCheckoutWebKilled(t *testing.T) {
	c := newChecks(t, "checkout: web SIGKILLed during a burst of redemptions and holds")
	defer c.done()
	w := newCheckoutWorld(t, nil)
	n := checkoutOrders()
	var mu sync.Mutex
	w.burst("kill", n, []int{n / 3, 2 * n / 3}, func() {
		mu.Lock()
		defer mu.Unlock()
		w.h.web.kill()
		w.h.startWeb(w.web...)
	})
	w.check(c, n)
}

// TestCheckoutBackendsTerminated: the web process's PostgreSQL backends are terminated
// (pg_terminate_backend, by an application_name of its own) in three volleys mid-burst;
// a request whose statement died answers 5xx and its client retries.
func TestCheckoutBackendsTerminated(t *testing.T) {
	c := newChecks(t, "checkout: web's PostgreSQL backends terminated mid-burst (pg_terminate_backend)")
	defer c.done()
	var app string
	w := newCheckoutWorld(t, func(h *harness) []string {
		app = "faults-web-" + h.db.Schema
		u, _ := url.Parse(h.db.URL)
		q := u.Query()
		q.Set("application_name", app)
		u.RawQuery = q.Encode()
		return []string{"DATABASE_URL=" + u.String()}
	})
	n := checkoutOrders()
	var killed atomic.Int64
	w.burst("term", n, []int{n / 4, n / 2, 3 * n / 4}, func() {
		// Every backend, then for 300 ms the ones running a statement: those die in the
		// middle of a redemption (an idle one is replaced by the pool unnoticed).
		var k int64
		w.h.db.Get(&k, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app)
		killed.Add(k)
		for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
			w.h.db.Get(&k, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE application_name = $1 AND state = 'active'`, app)
			killed.Add(k)
		}
	})
	c.check("backends were terminated", killed.Load() > 0, "no backend of web found to terminate")
	w.check(c, n)
	c.note("%d backends terminated", killed.Load())
}

// TestCheckoutConcurrentReplays: two clients send every order at the same moment, each
// twice (retries racing the first attempts). The per-customer cap is 1 and every order
// has its own customer, so a second request that took a slot would be refused: every
// answer must be the first one's redemption, one 201 per order.
func TestCheckoutConcurrentReplays(t *testing.T) {
	c := newChecks(t, "checkout: two clients replaying the same order_id at once")
	defer c.done()
	w := newCheckoutWorld(t, nil)
	w.h.db.MustExec(`UPDATE groups SET max_per_customer = 1 WHERE id = $1`, w.group)
	n := checkoutOrders() / 2
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		body := strings.Replace(orderBody("rep", i), fmt.Sprintf(`"cust-%d"`, i%37), fmt.Sprintf(`"cust-r%d"`, i), 1)
		order := fmt.Sprintf("rep-%d", i)
		sem <- struct{}{}
		start := make(chan struct{})
		var pair sync.WaitGroup
		for range 2 {
			pair.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pair.Done()
				<-start
				w.redeem(order, body, 30*time.Second)
				w.redeem(order, body, 30*time.Second)
			}()
		}
		close(start)
		go func() { pair.Wait(); <-sem }()
	}
	wg.Wait()
	w.mu.Lock()
	created, differ := w.status[201], 0
	for _, ids := range w.acks {
		for _, id := range ids {
			if id != ids[0] {
				differ++
			}
		}
	}
	w.mu.Unlock()
	c.check("one 201 per order, replays after", created == n, "%d answers 201 for %d orders (answers %v)", created, n, w.status)
	c.check("every answer names the first redemption", differ == 0, "%d answers named another redemption", differ)
	w.check(c, n)
}
