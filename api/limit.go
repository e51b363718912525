package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"promopool/internal/httperr"
)

// Rate is a per-key request rate: N requests per Per, in bursts of up to N. The zero
// Rate is no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.N <= 0 || r.Per <= 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return fmt.Sprintf("%d/%s", r.N, unit)
}

// ParseRate reads a rate such as "20/s", "600/m" or "5000/h"; "off" (or "0") is no
// limit. Errors: anything else.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	count, err := strconv.Atoi(n)
	if !ok || per == 0 || err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("want a rate like 20/s, 600/m or 5000/h, or off; got %q", s)
	}
	return Rate{N: count, Per: per}, nil
}

// Limiter holds one token bucket per API key for one kind of request (issue, validate).
// Buckets live in the process: with several web processes behind a balancer a key's
// effective rate is the limit times the number of processes. There is one bucket per
// key that ever called, and keys are few (they are made by an operator), so the map is
// not pruned.
type Limiter struct {
	name string
	rate Rate
	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

// NewLimiter returns a limiter named name (the error message says which limit was hit)
// at r; a nil *Limiter, and one at an Off rate, allow everything.
func NewLimiter(name string, r Rate) *Limiter {
	return &Limiter{name: name, rate: r, keys: map[string]*rate.Limiter{}}
}

// Allow takes a token from key's bucket; when there is none it returns false and how
// long until there is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.rate.Off() {
		return true, 0
	}
	l.mu.Lock()
	b, ok := l.keys[key]
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(l.rate.N)/l.rate.Per.Seconds()), l.rate.N)
		l.keys[key] = b
	}
	l.mu.Unlock()
	res := b.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, d
	}
	return true, 0
}

// check answers a request of key: nil, or a 429 rate_limited error with Retry-After set
// on w (whole seconds, rounded up).
func (l *Limiter) check(w http.ResponseWriter, key string) error {
	ok, wait := l.Allow(key)
	if ok {
		return nil
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return httperr.New(http.StatusTooManyRequests, "rate_limited",
		fmt.Sprintf("the %s limit of this API key (%s) is reached: retry in %d s", l.name, l.rate, secs))
}

// Middleware limits next per API key: mount it inside the authentication (the key's
// name is read from the request's context). The routes registered in this package take
// a limiter as a route option instead (route.limit); Middleware is for a handler built
// elsewhere.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := l.check(w, actor(r)); err != nil {
			writeJSONError(w, http.StatusTooManyRequests, "rate_limited", err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}
