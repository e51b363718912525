package admin

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// throttle slows password and key guessing at sign-in, per client address and over
// all addresses together. An address may fail freeFailures times in a row; after that
// each failure doubles the time it must wait before it may try again (1 s, 2 s, 4 s, …
// up to maxBackoff), and a success clears its record. Every failure, from any address,
// also takes a token from a global bucket (globalBurst tokens, one back every
// globalEvery): when it is empty every sign-in waits, which bounds an attacker spread
// over many addresses to about one guess per globalEvery. A throttled attempt is
// refused before its secret is checked. The state lives in the process (several web
// processes multiply the rates); behind a proxy every client has the proxy's address,
// and the global bucket is what holds.
type throttle struct {
	mu      sync.Mutex
	addrs   map[string]*failures
	tokens  float64
	updated time.Time
}

type failures struct {
	n     int
	until time.Time // no attempt before this instant
	last  time.Time
}

const (
	freeFailures = 5
	maxBackoff   = 15 * time.Minute
	globalBurst  = 50
	globalEvery  = 2 * time.Second
	// maxTracked bounds the per-address map; past it, records older than maxBackoff
	// are dropped, and if that is not enough new addresses are not tracked (the global
	// bucket still counts their failures).
	maxTracked = 10000
)

func newThrottle() *throttle {
	return &throttle{addrs: map[string]*failures{}, tokens: globalBurst}
}

// refill brings the global bucket to now; call with mu held.
func (t *throttle) refill(now time.Time) {
	if !t.updated.IsZero() && now.After(t.updated) {
		t.tokens = math.Min(globalBurst, t.tokens+float64(now.Sub(t.updated))/float64(globalEvery))
	}
	t.updated = now
}

// wait returns how long addr must wait before it may try to sign in; 0: now.
func (t *throttle) wait(addr string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	var d time.Duration
	if t.tokens < 1 {
		d = time.Duration((1 - t.tokens) * float64(globalEvery))
	}
	if f := t.addrs[addr]; f != nil && f.until.After(now) {
		d = max(d, f.until.Sub(now))
	}
	return d
}

// fail records a failed attempt from addr.
func (t *throttle) fail(addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	t.tokens = math.Max(t.tokens-1, -globalBurst)
	f := t.addrs[addr]
	if f == nil {
		if len(t.addrs) >= maxTracked {
			t.prune(now)
		}
		if len(t.addrs) >= maxTracked {
			return
		}
		f = &failures{}
		t.addrs[addr] = f
	}
	f.n++
	f.last = now
	if f.n > freeFailures {
		f.until = now.Add(min(maxBackoff, time.Second<<min(f.n-freeFailures-1, 20)))
	}
}

// succeed clears addr's record.
func (t *throttle) succeed(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.addrs, addr)
}

// prune drops records whose last failure is older than maxBackoff; call with mu held.
func (t *throttle) prune(now time.Time) {
	for a, f := range t.addrs {
		if now.Sub(f.last) > maxBackoff {
			delete(t.addrs, a)
		}
	}
}

// clientAddr is the address a request came from (the connection's peer: headers such
// as X-Forwarded-For are not trusted, a client could set them to anything).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
