package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"promopool/api"
	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/internal/apitest"
	"promopool/internal/testdb"
	"promopool/metrics"
)

// metricsKey has the read scope /metrics needs on HTTP_ADDR.
const metricsKey = "metrics-key-0123456789"

func scrape(t *testing.T, url string) string {
	t.Helper()
	status, b := get(t, url, metricsKey)
	if status != 200 {
		t.Fatalf("/metrics: %d %s", status, b)
	}
	return b
}

// get reads /metrics with key ("" sends none).
func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// value returns the sample of the series whose name and labels match exactly.
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// TestMetricsEndpoint runs the API with its metrics, uploads and issues codes, and reads
// them back from /metrics: balances from PostgreSQL, counters from this process. No code
// appears in the output, issued or not.
func TestMetricsEndpoint(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	store := groups.NewStore(db.DB, groups.Config{})
	keys, err := auth.NewKeys(db.DB, "tests:"+metricsKey+":read,mailer:render-key-0123456789:render")
	if err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context) ([]metrics.Balance, error) {
		gs, err := store.List(ctx)
		var out []metrics.Balance
		for _, g := range gs {
			out = append(out, metrics.Balance{GroupID: g.ID, Name: g.Name, Active: g.Active, Issued: g.Issued, Expired: g.Expired})
		}
		return out, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := api.New(api.Config{Metrics: metrics.Handler(metrics.NewBalanceCollector(read, time.Second, time.Nanosecond, log))},
		api.Deps{Groups: store, Customers: customers.NewStore(db.DB), Keys: keys, Log: log,
			Ready: map[string]api.Pinger{"postgres": api.PingFunc(db.PingContext)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.Handler(t, s))
	defer srv.Close()

	// Group names and balances are business data: /metrics on HTTP_ADDR needs a key with
	// the read scope (METRICS_ADDR serves it without one).
	if status, body := get(t, srv.URL, ""); status != http.StatusUnauthorized || strings.Contains(body, "promopool_") {
		t.Fatalf("/metrics without a key: %d %.200s", status, body)
	}
	if status, body := get(t, srv.URL, "render-key-0123456789"); status != http.StatusForbidden ||
		!strings.Contains(body, `"insufficient_scope"`) || !strings.Contains(body, `"scope":"read"`) {
		t.Fatalf("/metrics with a render key: %d %.200s", status, body)
	}
	before := scrape(t, srv.URL)
	name := `Spring "30%" <b>`
	g, err := store.Create(ctx, "t", groups.Input{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for i := 0; i < 50; i++ {
		codes = append(codes, fmt.Sprintf("MTRX-%04d-SECRET", i))
	}
	body := strings.Join(codes, "\n") + "\nMTRX-0000-SECRET\nbad\x00line\n"
	if _, err := store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceCLI, Actor: "t"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	res, err := store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "metrics-test", CustomerIDs: []string{"c1", "c2", "c3"}})
	if err != nil || res.Issued() != 3 {
		t.Fatalf("claim: %v %+v", err, res)
	}
	// A replay issues nothing new and must not count.
	if _, err := store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "metrics-test", CustomerIDs: []string{"c1", "c2", "c3"}}); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, srv.URL)

	labels := fmt.Sprintf(`{group="Spring \"30%%\" <b>",group_id="%d"}`, g.ID)
	if v := value(t, after, "promopool_group_active_codes"+labels); v != 47 {
		t.Errorf("active balance %v, want 47\n%s", v, after)
	}
	if v := value(t, after, "promopool_group_issued_codes"+labels); v != 3 {
		t.Errorf("issued %v, want 3", v)
	}
	if v := value(t, after, "promopool_group_balance_up"); v != 1 {
		t.Errorf("balance_up %v", v)
	}
	issued := fmt.Sprintf(`promopool_codes_issued_total{group_id="%d"}`, g.ID)
	if v := value(t, after, issued); v != 3 {
		t.Errorf("codes issued counter %v, want 3", v)
	}
	for result, want := range map[string]float64{"accepted": 50, "duplicate": 1, "invalid": 1} {
		series := `promopool_upload_rows_total{result="` + result + `"}`
		if d := value(t, after, series) - max(value(t, before, series), 0); d != want {
			t.Errorf("%s grew by %v, want %v", series, d, want)
		}
	}
	for _, c := range codes {
		if strings.Contains(after, c) {
			t.Fatalf("/metrics shows code %s", c)
		}
	}
	if regexp.MustCompile(`MTRX|SECRET|metrics-test|"c[123]"`).MatchString(after) {
		t.Fatal("/metrics shows a code, a scope or a customer")
	}
	// Every promopool series has HELP text (nothing unnamed or half-registered).
	for _, n := range []string{"promopool_codes_issued_total", "promopool_upload_rows_total", "promopool_group_active_codes"} {
		if !strings.Contains(after, "# HELP "+n+" ") {
			t.Errorf("no HELP for %s", n)
		}
	}
}

// TestBalanceCollectorTimeoutAndCache: a slow database read gives balance_up 0 within
// the timeout instead of hanging the scrape; fresh results are reused for CacheFor.
func TestBalanceCollectorTimeoutAndCache(t *testing.T) {
	var calls atomic.Int32
	slow := func(ctx context.Context) ([]metrics.Balance, error) {
		calls.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	srv := httptest.NewServer(metrics.Handler(metrics.NewBalanceCollector(slow, 100*time.Millisecond, time.Hour, nil)))
	defer srv.Close()
	start := time.Now()
	out := scrape(t, srv.URL)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("scrape took %s with a 100ms read timeout", d)
	}
	if v := value(t, out, "promopool_group_balance_up"); v != 0 {
		t.Fatalf("balance_up %v after a failed read", v)
	}
	scrape(t, srv.URL)
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d reads for two scrapes within the cache time, want 1", c)
	}

	var n atomic.Int32
	fast := func(ctx context.Context) ([]metrics.Balance, error) {
		if n.Add(1) == 2 {
			return nil, errors.New("down")
		}
		return []metrics.Balance{{GroupID: 7, Name: "G", Active: 5}}, nil
	}
	srv2 := httptest.NewServer(metrics.Handler(metrics.NewBalanceCollector(fast, time.Second, time.Nanosecond, nil)))
	defer srv2.Close()
	if v := value(t, scrape(t, srv2.URL), `promopool_group_active_codes{group="G",group_id="7"}`); v != 5 {
		t.Fatalf("active %v, want 5", v)
	}
	out = scrape(t, srv2.URL)
	if value(t, out, "promopool_group_balance_up") != 0 || strings.Contains(out, `group_id="7"`) {
		t.Fatalf("a failed read must drop the group series and report balance_up 0:\n%s", out)
	}
}

// TestHealthAndReadiness: /healthz answers while a dependency is down; /readyz says
// which one with a 503, and 200 once all answer.
func TestHealthAndReadiness(t *testing.T) {
	db := testdb.New(t)
	keys, _ := auth.NewKeys(db.DB, "")
	var redisDown atomic.Bool
	redisDown.Store(true)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := api.New(api.Config{}, api.Deps{Groups: groups.NewStore(db.DB, groups.Config{}), Customers: customers.NewStore(db.DB),
		Keys: keys, Log: log, Ready: map[string]api.Pinger{
			"postgres": api.PingFunc(db.PingContext),
			"redis": api.PingFunc(func(ctx context.Context) error {
				if redisDown.Load() {
					return errors.New("connection refused")
				}
				return nil
			}),
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.Handler(t, s))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, _ := get("/healthz"); st != 200 {
		t.Fatalf("healthz %d", st)
	}
	if st, body := get("/readyz"); st != 503 || !strings.Contains(body, `"redis":"unavailable"`) || !strings.Contains(body, `"postgres":"ok"`) {
		t.Fatalf("readyz with Redis down: %d %s", st, body)
	}
	redisDown.Store(false)
	if st, body := get("/readyz"); st != 200 {
		t.Fatalf("readyz with all up: %d %s", st, body)
	}
	// No Metrics handler configured: /metrics is not served (404 JSON), not a panic. A
	// server built so is outside the document (which describes /metrics as served), so
	// this one request goes to the server directly, not through apitest.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"not_found"`) {
		t.Fatalf("/metrics without a handler: %d %s", rec.Code, rec.Body)
	}
}
