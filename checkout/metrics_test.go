package checkout_test

import (
	"context"
	"errors"
	"testing"

	"promopool/checkout"
	"promopool/metrics"
)

// sample reads a counter's value, or a histogram's sample count, from the registry
// (0 when the series does not exist yet).
func sample(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestCheckoutMetrics: every validation is timed by outcome, and every refusal at
// validate or redeem is counted by its reason.
func TestCheckoutMetrics(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	g := e.group(groupOpts{kind: "shared", terms: euro20})
	e.promoCode(g, "METRIC10", promoOpts{})
	valid := map[string]string{"outcome": "valid"}
	refused := map[string]string{"outcome": "refused"}
	notFound := map[string]string{"operation": "validate", "reason": "not_found"}
	redeemNotFound := map[string]string{"operation": "redeem", "reason": "not_found"}
	const hist, refusals = "promopool_checkout_validate_duration_seconds", "promopool_checkout_refusals_total"
	v0, r0, n0, rn0 := sample(t, hist, valid), sample(t, hist, refused), sample(t, refusals, notFound), sample(t, refusals, redeemNotFound)

	if a, err := e.svc.Validate(ctx, checkout.ValidateRequest{Code: "metric10", CustomerID: "ann", Order: cart}); err != nil || !a.Valid {
		t.Fatalf("validate: %+v %v", a, err)
	}
	for range 2 {
		if a, err := e.svc.Validate(ctx, checkout.ValidateRequest{Code: "NOPE", CustomerID: "ann", Order: cart}); err != nil || a.Valid {
			t.Fatalf("validate NOPE: %+v %v", a, err)
		}
	}
	var re *checkout.RefusedError
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "NOPE", CustomerID: "ann", OrderID: "o-metrics", Order: cart}); !errors.As(err, &re) {
		t.Fatalf("redeem NOPE: %v", err)
	}
	// Other tests of the package run beside this one: at least these.
	if d := sample(t, hist, valid) - v0; d < 1 {
		t.Errorf("valid validations timed: +%v, want +1", d)
	}
	if d := sample(t, hist, refused) - r0; d < 2 {
		t.Errorf("refused validations timed: +%v, want +2", d)
	}
	if d := sample(t, refusals, notFound) - n0; d < 2 {
		t.Errorf("validate refusals not_found: +%v, want +2", d)
	}
	if d := sample(t, refusals, redeemNotFound) - rn0; d < 1 {
		t.Errorf("redeem refusals not_found: +%v, want +1", d)
	}
}
