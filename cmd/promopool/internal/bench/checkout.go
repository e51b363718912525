package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"promopool/api"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/offers"
)

// CheckoutConfig configures `bench checkout`.
type CheckoutConfig struct {
	// URL is the benchmark database.
	URL string
	// Duration is how long each timed phase runs (default 5 s).
	Duration time.Duration
	// Clients is the concurrency of the validate and redeem phases (default 32).
	Clients int
	// HotClients and HotAttempts shape the hot-code phase (defaults 64 and 20,000;
	// the code's cap is half the attempts).
	HotClients, HotAttempts int
}

// CheckoutResult holds the figures.
type CheckoutResult struct {
	Cfg                              CheckoutConfig
	Settings                         string
	HTTPValidate, RawHTTP            rate
	HTTPValidateP99, RawHTTPP99      time.Duration
	HTTPMissP50, HTTPHitP50          time.Duration
	InProcess                        rate
	Redeem, RawInsert                rate
	Hot, RawHot                      rate
	HotSucceeded, HotRefused, HotCap int64
	RawHotUpdated                    int64
}

type rate struct {
	n   int64
	dur time.Duration
}

func (r rate) perSec() float64 { return float64(r.n) / r.dur.Seconds() }

// Checkout measures validate over loopback HTTP (beside a bare net/http handler doing one
// indexed SELECT of the code through the same pool), validate in process, redeem of
// distinct orders (beside a bare INSERT per transaction) and redeem of one hot shared
// code with a cap (beside a bare UPDATE … WHERE used < cap), all in the same run.
func Checkout(ctx context.Context, cfg CheckoutConfig) (*CheckoutResult, error) {
	cfg.Duration = max(cfg.Duration, time.Second)
	if cfg.Clients <= 0 {
		cfg.Clients = 32
	}
	if cfg.HotClients <= 0 {
		cfg.HotClients = 64
	}
	if cfg.HotAttempts <= 0 {
		cfg.HotAttempts = 20_000
	}
	env, err := NewEnv(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	db := env.DB
	db.SetMaxOpenConns(max(cfg.Clients, cfg.HotClients) + 4)
	res := &CheckoutResult{Cfg: cfg, HotCap: int64(cfg.HotAttempts / 2)}
	if res.Settings, err = Settings(ctx, db); err != nil {
		return nil, err
	}
	seed := []string{
		`INSERT INTO groups (id, name, kind, terms) VALUES (1, 'news', 'shared', '{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000,"duration":"once","applies_to":{}}')`,
		`INSERT INTO groups (id, name, kind, terms, max_redemptions) VALUES (2, 'hot', 'shared', '{"type":"fixed","amount_off":500,"currency":"EUR","duration":"once","applies_to":{}}', ` + strconv.Itoa(cfg.HotAttempts/2) + `)`,
		`INSERT INTO codes (id, code) VALUES (1, 'NEWS10'), (2, 'HOT5')`,
		`INSERT INTO promotion_codes (code_id, group_id) VALUES (1, 1), (2, 2)`,
		// Some unique codes, so the code index has depth.
		`INSERT INTO codes (id, code) SELECT 1000 + g, 'U-' || lpad(g::text, 8, '0') FROM generate_series(1, 200000) g`,
		`CREATE TABLE raw_orders (id bigserial PRIMARY KEY, order_id text NOT NULL UNIQUE, customer_id text NOT NULL, amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
		`CREATE TABLE raw_hot (id int PRIMARY KEY, used bigint NOT NULL, cap bigint NOT NULL)`,
		`INSERT INTO raw_hot VALUES (1, 0, ` + strconv.Itoa(cfg.HotAttempts/2) + `)`,
		`ANALYZE`,
	}
	for _, q := range seed {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("seeding: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := checkout.New(checkout.Config{}, checkout.Deps{DB: db, Log: log})
	if err != nil {
		return nil, err
	}
	keys, err := auth.NewKeys(db, "bench:bench-key-0123456789:admin")
	if err != nil {
		return nil, err
	}
	srv, err := api.New(api.Config{}, api.Deps{Groups: groups.NewStore(db, groups.Config{}), Customers: customers.NewStore(db),
		Keys: keys, Checkout: svc, Log: log})
	if err != nil {
		return nil, err
	}
	body := []byte(`{"code":"news10","customer_id":"c-1","currency":"EUR","items":[{"product_id":"shoe","quantity":2,"unit_amount":3000},{"product_id":"sock","quantity":1,"unit_amount":1000}]}`)
	miss := []byte(`{"code":"nope-0001","customer_id":"c-1","currency":"EUR","items":[{"product_id":"shoe","quantity":2,"unit_amount":3000},{"product_id":"sock","quantity":1,"unit_amount":1000}]}`)

	// Validate over loopback HTTP, and the raw baseline in the same run.
	if res.HTTPValidate, res.HTTPValidateP99, err = loadHTTP(ctx, srv, cfg, "/v1/validate", body); err != nil {
		return nil, err
	}
	// One probe of the codes index, as validate does (case-insensitive, migration 0024).
	rawStmt, err := db.PrepareContext(ctx, `SELECT id FROM codes WHERE lower(code) = lower($1::text COLLATE "C") LIMIT 1`)
	if err != nil {
		return nil, err
	}
	raw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id int64
		if err := rawStmt.QueryRowContext(r.Context(), "NEWS10").Scan(&id); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"valid":true,"id":%d}`, id)
	})
	if res.RawHTTP, res.RawHTTPP99, err = loadHTTP(ctx, raw, cfg, "/raw", body); err != nil {
		return nil, err
	}
	short := cfg
	short.Duration = cfg.Duration / 2
	if _, res.HTTPHitP50, err = loadHTTPP(ctx, srv, short, "/v1/validate", body, 0.5); err != nil {
		return nil, err
	}
	if _, res.HTTPMissP50, err = loadHTTPP(ctx, srv, short, "/v1/validate", miss, 0.5); err != nil {
		return nil, err
	}

	// Validate in process.
	req := checkout.ValidateRequest{Code: "news10", CustomerID: "c-1", Order: offers.Order{Currency: "EUR",
		Items: []offers.Item{{ProductID: "shoe", Quantity: 2, UnitAmount: 3000}}}}
	res.InProcess, err = loop(ctx, cfg.Clients, cfg.Duration, func(int64) error {
		_, err := svc.Validate(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}

	// Redeem distinct orders, and a bare INSERT per transaction.
	res.Redeem, err = loop(ctx, cfg.Clients, cfg.Duration, func(i int64) error {
		_, _, err := svc.Redeem(ctx, checkout.RedeemRequest{Code: "NEWS10", CustomerID: "c-" + strconv.FormatInt(i, 10),
			OrderID: "o-" + strconv.FormatInt(i, 10), Order: req.Order})
		return err
	})
	if err != nil {
		return nil, err
	}
	res.RawInsert, err = loop(ctx, cfg.Clients, cfg.Duration, func(i int64) error {
		_, err := db.ExecContext(ctx, `INSERT INTO raw_orders (order_id, customer_id, amount) VALUES ($1, $2, 6000)`,
			"o-"+strconv.FormatInt(i, 10), "c-"+strconv.FormatInt(i, 10))
		return err
	})
	if err != nil {
		return nil, err
	}

	// One hot code: exactly the cap succeeds.
	var ok, refused atomic.Int64
	res.Hot, err = attempts(ctx, cfg.HotClients, cfg.HotAttempts, func(i int64) error {
		_, _, err := svc.Redeem(ctx, checkout.RedeemRequest{Code: "HOT5", CustomerID: "h-" + strconv.FormatInt(i, 10),
			OrderID: "h-" + strconv.FormatInt(i, 10), Order: req.Order})
		var re *checkout.RefusedError
		switch {
		case err == nil:
			ok.Add(1)
		case errors.As(err, &re) && re.Reason == offers.ReasonExhausted:
			refused.Add(1)
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.HotSucceeded, res.HotRefused = ok.Load(), refused.Load()
	var updated atomic.Int64
	res.RawHot, err = attempts(ctx, cfg.HotClients, cfg.HotAttempts, func(int64) error {
		r, err := db.ExecContext(ctx, `UPDATE raw_hot SET used = used + 1 WHERE id = 1 AND used < cap`)
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		updated.Add(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.RawHotUpdated = updated.Load()
	return res, nil
}

// loop runs f from clients goroutines for d and counts the calls.
func loop(ctx context.Context, clients int, d time.Duration, f func(i int64) error) (rate, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := f(n.Add(1)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return rate{n.Load(), time.Since(start)}, firstErr
}

// attempts runs total calls of f from clients goroutines.
func attempts(ctx context.Context, clients, total int, f func(i int64) error) (rate, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return rate{int64(total), time.Since(start)}, firstErr
}

func loadHTTP(ctx context.Context, h http.Handler, cfg CheckoutConfig, path string, body []byte) (rate, time.Duration, error) {
	return loadHTTPP(ctx, h, cfg, path, body, 0.99)
}

// loadHTTPP serves h on a loopback port and posts body from cfg.Clients keep-alive
// clients for cfg.Duration; it returns the rate and the latency quantile q.
func loadHTTPP(ctx context.Context, h http.Handler, cfg CheckoutConfig, path string, body []byte, q float64) (rate, time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rate{}, 0, err
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String() + path
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients * 2, MaxIdleConns: cfg.Clients * 2}}
	var mu sync.Mutex
	var lat []time.Duration
	r, err := loop(ctx, cfg.Clients, cfg.Duration, func(int64) error {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench-key-0123456789")
		req.Header.Set("Content-Type", "application/json")
		t := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s answered %d", path, resp.StatusCode)
		}
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return r, 0, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var p time.Duration
	if len(lat) > 0 {
		p = lat[int(float64(len(lat)-1)*q)]
	}
	return r, p, nil
}

// Print writes the settings and the figures, each beside its raw baseline.
func (r *CheckoutResult) Print(w io.Writer) {
	fmt.Fprintf(w, "bench checkout: %s per phase, %d clients (hot code: %d clients, %d attempts, cap %d)\n%s\n",
		r.Cfg.Duration, r.Cfg.Clients, r.Cfg.HotClients, r.Cfg.HotAttempts, r.HotCap, r.Settings)
	fmt.Fprintf(w, "%-44s %14s %14s %7s\n", "phase", "promopool", "raw baseline", "ratio")
	row := func(name string, a, b rate) {
		fmt.Fprintf(w, "%-44s %12.0f/s %12.0f/s %6.0f%%\n", name, a.perSec(), b.perSec(), 100*a.perSec()/b.perSec())
	}
	row("validate over loopback HTTP (vs bare SELECT)", r.HTTPValidate, r.RawHTTP)
	fmt.Fprintf(w, "%-44s %14s %14s\n", "  p99 at full load", r.HTTPValidateP99.Round(10*time.Microsecond), r.RawHTTPP99.Round(10*time.Microsecond))
	fmt.Fprintf(w, "%-44s %14s %14s\n", "  p50 found / not_found code", r.HTTPHitP50.Round(10*time.Microsecond), r.HTTPMissP50.Round(10*time.Microsecond))
	fmt.Fprintf(w, "%-44s %12.0f/s\n", "validate in process", r.InProcess.perSec())
	row("redeem distinct orders (vs bare INSERT)", r.Redeem, r.RawInsert)
	row("redeem one hot code (vs bare UPDATE < cap)", r.Hot, r.RawHot)
	fmt.Fprintf(w, "hot code: %d succeeded, %d refused exhausted, %d over the cap (raw UPDATE: %d)\n",
		r.HotSucceeded, r.HotRefused, max(0, r.HotSucceeded-r.HotCap), r.RawHotUpdated)
}
