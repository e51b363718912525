package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"promopool/auth"
	"promopool/checkout"
	"promopool/internal/httperr"
	"promopool/offers"
)

// checkoutRoutes are the checkout's routes (SPEC §11): validate and redeem need the
// checkout scope; validations take the per-key VALIDATE_RATE_LIMIT, redemptions do not
// (a paid order's redemption is never refused because the shop's storefront validated
// a lot); reading redemptions needs read.
func (s *Server) checkoutRoutes() []route {
	return []route{
		{pattern: "POST /v1/validate", scope: auth.ScopeCheckout, body: jsonBody, limit: s.validateLimit, h: s.validate},
		{pattern: "GET /v1/validate", scope: auth.ScopeCheckout, limit: s.validateLimit, h: s.validateCode},
		{pattern: "POST /v1/redemptions", scope: auth.ScopeCheckout, body: jsonBody, h: s.redeem},
		{pattern: "GET /v1/redemptions/{id}", scope: auth.ScopeRead, h: s.getRedemption},
		{pattern: "POST /v1/redemptions/{id}/confirm", scope: auth.ScopeCheckout, h: s.redemptionAction(s.checkout.Confirm)},
		{pattern: "POST /v1/redemptions/{id}/cancel", scope: auth.ScopeCheckout, h: s.redemptionAction(s.checkout.Cancel)},
		{pattern: "POST /v1/redemptions/{id}/refund", scope: auth.ScopeCheckout, body: smallBody, h: s.refund},
		{pattern: "GET /v1/redemptions", scope: auth.ScopeRead, h: s.listRedemptions},
		{pattern: "GET /v1/groups/{id}/redemptions", scope: auth.ScopeRead, h: s.listGroupRedemptions},
		{pattern: "GET /v1/groups/{id}/redemptions.csv", scope: auth.ScopeExport, stream: true, h: s.exportRedemptions},
		{pattern: "GET /v1/customers/{id}/redemptions", scope: auth.ScopeRead, h: s.customerRedemptions},
	}
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) error {
	var in checkout.ValidateRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	return s.answerValidation(w, r, in)
}

// validateCode is the storefront's cacheable yes/no for a `?promo=` code: the code
// alone (and optionally the customer, currency and order amount).
func (s *Server) validateCode(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	in := checkout.ValidateRequest{Code: q.Get("code"), CustomerID: q.Get("customer_id"), NoOrder: true}
	if v := q.Get("order_amount"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return badRequest("invalid_field", "order_amount: want an integer amount in minor units, got "+strconv.Quote(v))
		}
		in.Order = offers.Order{Currency: q.Get("currency"), Amount: &n}
		in.NoOrder = false
	} else if q.Get("currency") != "" {
		return badRequest("invalid_field", "currency: send it with order_amount (or neither)")
	}
	return s.answerValidation(w, r, in)
}

func (s *Server) answerValidation(w http.ResponseWriter, r *http.Request, in checkout.ValidateRequest) error {
	who := missKeys(r, in.CustomerID, in.Email)
	if err := s.missLimit.check(w, who); err != nil {
		return err
	}
	ans, err := s.checkout.Validate(r.Context(), in)
	if err != nil {
		return err
	}
	if ans.Reason == offers.ReasonNotFound {
		s.missLimit.miss(who)
	}
	if r.Method == http.MethodGet {
		// The same code for the same key answers the same for a while: storefronts may
		// cache it briefly (never shared caches: the answer is the key's).
		w.Header().Set("Cache-Control", "private, max-age=30")
		w.Header().Set("Vary", "Authorization")
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Server) redeem(w http.ResponseWriter, r *http.Request) error {
	var in checkout.RedeemRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	in.IdempotencyKey = r.Header.Get("Idempotency-Key")
	// Redemptions have their own miss buckets: a buyer's typos at validation (or a
	// storefront's misses) never make the redemption of a paid order 429.
	who := missKeys(r, in.CustomerID, in.Email)
	for i := range who {
		who[i] = "redeem:" + who[i]
	}
	if err := s.missLimit.check(w, who); err != nil {
		return err
	}
	red, replayed, err := s.checkout.Redeem(r.Context(), in)
	var re *checkout.RefusedError
	if errors.As(err, &re) && re.Reason == offers.ReasonNotFound {
		s.missLimit.miss(who)
	}
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	s.log.Info("code redeemed", "redemption", red.ID, "status", red.Status, "replayed", replayed)
	writeJSON(w, status, red)
	return nil
}

func (s *Server) getRedemption(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	red, err := s.checkout.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, red)
	return nil
}

// missKeys are the buckets a validation's miss counts against: the API key, and the
// customer (by id, else email) when the request names one.
func missKeys(r *http.Request, customer, email string) []string {
	keys := []string{"key:" + actor(r)}
	if c := strings.TrimSpace(customer); c != "" {
		keys = append(keys, "customer:"+c)
	} else if e := strings.ToLower(strings.TrimSpace(email)); e != "" {
		keys = append(keys, "email:"+e)
	}
	return keys
}

// MissLimiter limits the codes not found a key, or a customer, may ask about
// (VALIDATE_MISS_LIMIT per key, VALIDATE_CUSTOMER_MISS_LIMIT per customer): once a bucket is empty, every validation and redemption of
// that key or customer is refused with 429 until it refills, found code or not, so the
// API cannot be used to enumerate the code space. Buckets live in the process; the map
// is cleared when it grows past maxMissBuckets (a flood of made-up customer ids).
type MissLimiter struct {
	// key is the rate of one API key's misses; customer of one customer's.
	key, customer Rate
	mu            sync.Mutex
	buckets       map[string]*rate.Limiter
}

const maxMissBuckets = 100_000

// NewMissLimiter returns a miss limiter at key per API key and customer per customer;
// an Off rate limits nothing.
func NewMissLimiter(key, customer Rate) *MissLimiter {
	return &MissLimiter{key: key, customer: customer, buckets: map[string]*rate.Limiter{}}
}

// rateOf is the rate of a bucket ("key:…" or a customer's, each also under "redeem:").
func (l *MissLimiter) rateOf(bucket string) Rate {
	if strings.HasPrefix(strings.TrimPrefix(bucket, "redeem:"), "key:") {
		return l.key
	}
	return l.customer
}

// bucket returns the bucket, nil when its rate is off.
func (l *MissLimiter) bucket(key string) *rate.Limiter {
	r := l.rateOf(key)
	if r.Off() {
		return nil
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxMissBuckets {
			clear(l.buckets)
		}
		b = rate.NewLimiter(rate.Limit(float64(r.N)/r.Per.Seconds()), r.N)
		l.buckets[key] = b
	}
	return b
}

// check answers 429 too_many_misses when any of the buckets is empty.
func (l *MissLimiter) check(w http.ResponseWriter, keys []string) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, k := range keys {
		b := l.bucket(k)
		if b == nil || b.TokensAt(now) >= 1 {
			continue
		}
		r := b.ReserveN(now, 1)
		wait := r.DelayFrom(now)
		r.CancelAt(now)
		secs := max(1, int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		who, _, _ := strings.Cut(strings.TrimPrefix(k, "redeem:"), ":")
		return httperr.New(http.StatusTooManyRequests, "too_many_misses",
			fmt.Sprintf("too many codes not found for this %s (limit %s): retry in %d s", who, l.rateOf(k), secs))
	}
	return nil
}

// miss takes a token from each bucket.
func (l *MissLimiter) miss(keys []string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, k := range keys {
		if b := l.bucket(k); b != nil {
			b.AllowN(now, 1)
		}
	}
}

// redemptionAction serves confirm and cancel: the redemption as it now is.
func (s *Server) redemptionAction(act func(ctx context.Context, id int64) (*checkout.Redemption, error)) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		red, err := act(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, red)
		return nil
	}
}

func (s *Server) refund(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in checkout.RefundRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	red, err := s.checkout.Refund(r.Context(), id, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, red)
	return nil
}

// historyFilter reads the paging and filter parameters of a history route.
func historyFilter(r *http.Request) (checkout.Filter, error) {
	q := r.URL.Query()
	f := checkout.Filter{CustomerID: q.Get("customer_id"), OrderID: q.Get("order_id"), Code: q.Get("code")}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, badRequest("invalid_field", "before: want a redemption id, got "+strconv.Quote(v))
		}
		f.Before = n
	}
	if v := q.Get("limit"); v != "" {
		f.Limit, _ = strconv.Atoi(v)
	}
	return f, nil
}

func (s *Server) writeHistory(w http.ResponseWriter, r *http.Request, f checkout.Filter) error {
	list, err := s.checkout.List(r.Context(), f)
	if err != nil {
		return err
	}
	out := map[string]any{"redemptions": list}
	if n := len(list); n > 0 && n == cmpLimit(f.Limit) {
		out["next_before"] = list[n-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func cmpLimit(n int) int {
	if n < 1 || n > 1000 {
		return 100
	}
	return n
}

func (s *Server) listRedemptions(w http.ResponseWriter, r *http.Request) error {
	f, err := historyFilter(r)
	if err != nil {
		return err
	}
	return s.writeHistory(w, r, f)
}

func (s *Server) listGroupRedemptions(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.groups.Exists(r.Context(), id); err != nil {
		return err
	}
	f, err := historyFilter(r)
	if err != nil {
		return err
	}
	f.GroupID = id
	return s.writeHistory(w, r, f)
}

// customerRedemptions is the customer profile's redemptions tab, beside its promo codes.
func (s *Server) customerRedemptions(w http.ResponseWriter, r *http.Request) error {
	f, err := historyFilter(r)
	if err != nil {
		return err
	}
	f.CustomerID = r.PathValue("id")
	return s.writeHistory(w, r, f)
}

func (s *Server) exportRedemptions(w http.ResponseWriter, r *http.Request) error {
	return s.exportCSV(w, r, "redemptions", func(ctx context.Context, id int64, out io.Writer) error {
		if err := s.groups.Exists(ctx, id); err != nil {
			return err
		}
		return s.checkout.ExportCSV(ctx, id, out)
	})
}
