package checkout_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/egress"
)

type notes struct {
	mu  sync.Mutex
	ids []int64
}

func (n *notes) WebhooksWritten(_ context.Context, ids []int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids = append(n.ids, ids...)
	return nil
}

// TestWebhooks: a redemption and a refund write signed webhooks with the order, the
// code, the discount per item and the mailing; delivery retries with backoff under the
// same Idempotency-Key; loopback is refused unless allowed.
func TestWebhooks(t *testing.T) {
	n := &notes{}
	e := newEnv(t, checkout.Config{Webhooks: true}, func(d *checkout.Deps) { d.Notifier = n })
	ctx := context.Background()
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, b)
		if fail {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	secret := []byte("0123456789abcdef-secret")
	if _, err := checkout.NewDeliverer(ctx, checkout.DeliverConfig{URL: srv.URL, Secret: secret}, e.db.DB, slog.Default()); err == nil {
		t.Fatal("a loopback webhook URL was accepted without WEBHOOK_ALLOW_PRIVATE")
	}
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	d, err := checkout.NewDeliverer(ctx, checkout.DeliverConfig{URL: srv.URL, Secret: secret, Policy: policy, Now: e.clock.now}, e.db.DB, slog.Default())
	if err != nil {
		t.Fatal(err)
	}

	g := e.group(groupOpts{terms: euro20})
	code := e.uniqueCode(g, "MAIL-1", nil)
	mailing := int64(5)
	e.issue(g, code, "ann", &mailing)
	r, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "MAIL-1", CustomerID: "ann", OrderID: "o1", Order: cart})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.ids) != 1 || n.ids[0] != r.ID {
		t.Fatalf("notifier told %v", n.ids)
	}
	if res, err := d.DeliverDue(ctx); err != nil || res.Failed != 1 {
		t.Fatalf("first attempt: %+v %v", res, err)
	}
	if res, _ := d.DeliverDue(ctx); res.Failed+res.Delivered != 0 {
		t.Fatalf("retried before its backoff: %+v", res)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	e.clock.add(31 * time.Second)
	if res, err := d.DeliverDue(ctx); err != nil || res.Delivered != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := e.svc.Refund(ctx, r.ID, checkout.RefundRequest{RefundID: "rf"}); err != nil {
		t.Fatal(err)
	}
	if res, _ := d.DeliverDue(ctx); res.Delivered != 1 {
		t.Fatalf("refund webhook: %+v", res)
	}
	if len(got) != 3 || got[0].Header.Get("Idempotency-Key") != got[1].Header.Get("Idempotency-Key") || got[2].Header.Get("Idempotency-Key") == got[1].Header.Get("Idempotency-Key") {
		t.Fatalf("%d posts; keys %q %q %q", len(got), got[0].Header.Get("Idempotency-Key"), got[1].Header.Get("Idempotency-Key"), got[2].Header.Get("Idempotency-Key"))
	}
	for i, r := range got {
		sig := r.Header.Get("Promopool-Signature")
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		unix, _ := strconv.ParseInt(ts, 10, 64)
		if want := checkout.Sign(secret, bodies[i], time.Unix(unix, 0)); sig != want || unix == 0 {
			t.Errorf("post %d: signature %q, want %q", i, sig, want)
		}
	}
	var first, refund map[string]any
	json.Unmarshal(bodies[1], &first)
	json.Unmarshal(bodies[2], &refund)
	items, _ := first["items"].([]any)
	if first["event"] != "redemption.succeeded" || first["order_id"] != "o1" || first["promo_code"] != "MAIL-1" || first["discount_amount"] != 1400.0 ||
		first["mailing_id"] != 5.0 || len(items) != 2 || items[0].(map[string]any)["original_amount"] != 6000.0 || items[0].(map[string]any)["discount_amount"] != 1200.0 {
		t.Errorf("succeeded payload: %s", bodies[1])
	}
	if refund["event"] != "redemption.refunded" || refund["refunded_amount"] != 1400.0 {
		t.Errorf("refunded payload: %s", bodies[2])
	}
}

// TestFailedWebhooks: with FailedWebhooks (REDEMPTION_WEBHOOK_EVENTS names
// redemption.failed) every refused redemption of an existing code writes a
// redemption.failed webhook in the refusal's transaction, refused by the checks
// (paused) or by a cap under the lock (exhausted); it is delivered to a real HTTP
// receiver, signed, with the reason and nothing discounted. A code not found writes
// none, and without the setting no refusal does.
func TestFailedWebhooks(t *testing.T) {
	n := &notes{}
	e := newEnv(t, checkout.Config{Webhooks: true, FailedWebhooks: true}, func(d *checkout.Deps) { d.Notifier = n })
	ctx := context.Background()
	var mu sync.Mutex
	var bodies [][]byte
	var sigs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies, sigs = append(bodies, b), append(sigs, r.Header.Get("Promopool-Signature"))
	}))
	defer srv.Close()
	secret := []byte("0123456789abcdef-secret")
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	d, err := checkout.NewDeliverer(ctx, checkout.DeliverConfig{URL: srv.URL, Secret: secret, Policy: policy, Now: e.clock.now}, e.db.DB, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	g := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](1)})
	e.promoCode(g, "ONE20", promoOpts{})
	paused := e.group(groupOpts{kind: "shared", terms: euro20, status: "paused"})
	e.promoCode(paused, "PAUSED20", promoOpts{})
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "ONE20", CustomerID: "ann", OrderID: "o1", Order: cart}); err != nil {
		t.Fatal(err)
	}
	var re *checkout.RefusedError
	for _, req := range []checkout.RedeemRequest{
		{Code: "ONE20", CustomerID: "bob", OrderID: "o2", Order: cart},
		{Code: "PAUSED20", CustomerID: "bob", OrderID: "o3", Order: cart},
		{Code: "NOSUCH", CustomerID: "bob", OrderID: "o4", Order: cart},
	} {
		if _, _, err := e.svc.Redeem(ctx, req); !errors.As(err, &re) {
			t.Fatalf("%s: %v", req.Code, err)
		}
	}
	if res, err := d.DeliverDue(ctx); err != nil || res.Delivered != 3 {
		t.Fatalf("delivery: %+v %v", res, err)
	}
	byOrder := map[string]map[string]any{}
	for i, b := range bodies {
		var m map[string]any
		json.Unmarshal(b, &m)
		byOrder[m["order_id"].(string)] = m
		ts, _, _ := strings.Cut(strings.TrimPrefix(sigs[i], "t="), ",")
		unix, _ := strconv.ParseInt(ts, 10, 64)
		if want := checkout.Sign(secret, b, time.Unix(unix, 0)); sigs[i] != want {
			t.Errorf("signature %q, want %q", sigs[i], want)
		}
	}
	for order, reason := range map[string]string{"o2": "exhausted", "o3": "paused"} {
		m := byOrder[order]
		items, _ := m["items"].([]any)
		if m["event"] != "redemption.failed" || m["reason"] != reason || m["discount_amount"] != 0.0 || m["redemption_id"] == nil ||
			len(items) != 2 || items[0].(map[string]any)["discount_amount"] != 0.0 || items[0].(map[string]any)["original_amount"] != 6000.0 {
			t.Errorf("%s: %v", order, m)
		}
	}
	if byOrder["o1"]["event"] != "redemption.succeeded" || byOrder["o4"] != nil {
		t.Errorf("other webhooks: %v", byOrder)
	}
	if len(n.ids) != 3 {
		t.Errorf("notifier told %v, want the success and the two refusals", n.ids)
	}

	// Without the setting a refusal writes no webhook.
	e2 := newEnv(t, checkout.Config{Webhooks: true})
	g2 := e2.group(groupOpts{kind: "shared", terms: euro20, status: "paused"})
	e2.promoCode(g2, "PAUSED21", promoOpts{})
	e2.svc.Redeem(ctx, checkout.RedeemRequest{Code: "PAUSED21", CustomerID: "bob", OrderID: "o5", Order: cart})
	var hooks int
	e2.db.Get(&hooks, `SELECT count(*) FROM redemption_webhooks`)
	if hooks != 0 {
		t.Errorf("%d webhooks without redemption.failed", hooks)
	}
}
