package checkout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/offers"
)

const euro20 = `{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000,"min_order":5000,"applies_to":{"exclude":["gift"]}}`

func order(items ...offers.Item) offers.Order { return offers.Order{Currency: "EUR", Items: items} }

var cart = order(offers.Item{ProductID: "shoe", Quantity: 2, UnitAmount: 3000}, offers.Item{ProductID: "sock", Quantity: 1, UnitAmount: 1000})

// TestValidateReasons makes each of the 16 reasons happen, checks its buyer-safe
// message, and checks a valid answer's discount and allocation.
func TestValidateReasons(t *testing.T) {
	e := newEnv(t, checkout.Config{})
	ctx := context.Background()
	now := e.clock.now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)

	uniq := e.group(groupOpts{terms: euro20})
	holderCode := e.uniqueCode(uniq, "UNIQ-HOLD", nil)
	e.issue(uniq, holderCode, "ann", nil)
	e.uniqueCode(uniq, "UNIQ-EXPIRED", &past)
	voided := e.uniqueCode(uniq, "UNIQ-VOID", nil)
	e.void(uniq, voided)
	used := e.uniqueCode(uniq, "UNIQ-USED", nil)
	e.issue(uniq, used, "ann", nil)
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "UNIQ-USED", CustomerID: "ann", OrderID: "o-used", Order: cart}); err != nil {
		t.Fatal(err)
	}

	paused := e.group(groupOpts{kind: "shared", status: "paused", terms: euro20})
	e.promoCode(paused, "PAUSED10", promoOpts{})
	draft := e.group(groupOpts{kind: "shared", status: "draft", terms: euro20})
	e.promoCode(draft, "DRAFT10", promoOpts{})
	later := e.group(groupOpts{kind: "shared", terms: euro20, startsAt: &future})
	e.promoCode(later, "LATER10", promoOpts{})
	ended := e.group(groupOpts{kind: "shared", terms: euro20, endsAt: &past})
	e.promoCode(ended, "ENDED10", promoOpts{})

	shared := e.group(groupOpts{kind: "shared", terms: euro20, maxPer: ptr[int64](1)})
	e.promoCode(shared, "NEWS10", promoOpts{})
	e.promoCode(shared, "FIRST10", promoOpts{firstTime: true})
	e.promoCode(shared, "MARIA15", promoOpts{customer: ptr("maria")})
	e.promoCode(shared, "OFF10", promoOpts{inactive: true})
	e.promoCode(shared, "BIG10", promoOpts{minOrder: ptr[int64](100000)})
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "NEWS10", CustomerID: "bob", OrderID: "o-bob", Order: cart}); err != nil {
		t.Fatal(err)
	}

	full := e.group(groupOpts{kind: "shared", terms: euro20, maxTotal: ptr[int64](1)})
	e.promoCode(full, "FULL10", promoOpts{})
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "FULL10", CustomerID: "carl", OrderID: "o-full", Order: cart}); err != nil {
		t.Fatal(err)
	}
	broke := e.group(groupOpts{kind: "shared", terms: `{"type":"fixed","amount_off":1500,"currency":"EUR"}`, budget: ptr[int64](2000)})
	e.promoCode(broke, "BUDGET15", promoOpts{})
	if _, _, err := e.svc.Redeem(ctx, checkout.RedeemRequest{Code: "BUDGET15", CustomerID: "carl", OrderID: "o-budget", Order: cart}); err != nil {
		t.Fatal(err)
	}

	yes, no := true, false
	cases := []struct {
		name     string
		req      checkout.ValidateRequest
		reason   offers.Reason
		discount int64
	}{
		{"valid, lower-case spelling", checkout.ValidateRequest{Code: "news10", CustomerID: "dora", Order: cart}, "", 1400},
		{"not found", checkout.ValidateRequest{Code: "NOPE-NOPE", CustomerID: "dora", Order: cart}, offers.ReasonNotFound, 0},
		{"paused", checkout.ValidateRequest{Code: "PAUSED10", Order: cart}, offers.ReasonPaused, 0},
		{"draft", checkout.ValidateRequest{Code: "DRAFT10", Order: cart}, offers.ReasonDraft, 0},
		{"window ended", checkout.ValidateRequest{Code: "ENDED10", Order: cart}, offers.ReasonExpired, 0},
		{"code expired", checkout.ValidateRequest{Code: "UNIQ-EXPIRED", Order: cart}, offers.ReasonExpired, 0},
		{"not yet active", checkout.ValidateRequest{Code: "LATER10", Order: cart}, offers.ReasonNotYetActive, 0},
		{"voided", checkout.ValidateRequest{Code: "UNIQ-VOID", Order: cart}, offers.ReasonVoided, 0},
		{"promotion code archived", checkout.ValidateRequest{Code: "OFF10", Order: cart}, offers.ReasonVoided, 0},
		{"total cap", checkout.ValidateRequest{Code: "FULL10", CustomerID: "dora", Order: cart}, offers.ReasonExhausted, 0},
		{"per customer", checkout.ValidateRequest{Code: "NEWS10", CustomerID: "bob", Order: cart}, offers.ReasonCustomerLimit, 0},
		{"budget", checkout.ValidateRequest{Code: "BUDGET15", CustomerID: "dora", Order: cart}, offers.ReasonBudgetExhausted, 0},
		{"someone else's unique code", checkout.ValidateRequest{Code: "UNIQ-HOLD", CustomerID: "eve", Order: cart}, offers.ReasonNotYourCode, 0},
		{"the holder", checkout.ValidateRequest{Code: "uniq-hold", CustomerID: "ann", Order: cart}, "", 1400},
		{"first time: shop says no", checkout.ValidateRequest{Code: "FIRST10", CustomerID: "dora", FirstTime: &no, Order: cart}, offers.ReasonFirstTimeOnly, 0},
		{"first time: redeemed before", checkout.ValidateRequest{Code: "FIRST10", CustomerID: "bob", FirstTime: &yes, Order: cart}, offers.ReasonFirstTimeOnly, 0},
		{"first time: yes", checkout.ValidateRequest{Code: "FIRST10", CustomerID: "dora", FirstTime: &yes, Order: cart}, "", 1400},
		{"restricted to maria", checkout.ValidateRequest{Code: "MARIA15", CustomerID: "dora", Order: cart}, offers.ReasonCustomerRestricted, 0},
		{"maria", checkout.ValidateRequest{Code: "MARIA15", CustomerID: "maria", Order: cart}, "", 1400},
		{"group min order", checkout.ValidateRequest{Code: "NEWS10", Order: order(offers.Item{ProductID: "sock", Quantity: 1, UnitAmount: 4999})}, offers.ReasonMinOrder, 0},
		{"code min order", checkout.ValidateRequest{Code: "BIG10", Order: cart}, offers.ReasonMinOrder, 0},
		{"nothing eligible", checkout.ValidateRequest{Code: "NEWS10", Order: order(offers.Item{ProductID: "gift", Quantity: 1, UnitAmount: 9000})}, offers.ReasonNoEligibleItems, 0},
		{"currency", checkout.ValidateRequest{Code: "NEWS10", Order: offers.Order{Currency: "USD", Items: cart.Items}}, offers.ReasonCurrencyMismatch, 0},
		{"unique code used", checkout.ValidateRequest{Code: "UNIQ-USED", CustomerID: "ann", Order: cart}, offers.ReasonAlreadyRedeemed, 0},
	}
	seen := map[offers.Reason]bool{}
	for _, c := range cases {
		a, err := e.svc.Validate(ctx, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		seen[a.Reason] = true
		if a.Reason != c.reason || a.Valid != (c.reason == "") || a.Discount.Amount != c.discount {
			t.Errorf("%s: valid %v reason %q discount %d, want reason %q discount %d", c.name, a.Valid, a.Reason, a.Discount.Amount, c.reason, c.discount)
			continue
		}
		if c.reason != "" && a.Message != c.reason.Message() {
			t.Errorf("%s: message %q", c.name, a.Message)
		}
		if c.reason == offers.ReasonNotFound && (a.Group != nil || a.TermsSummary != "") {
			t.Errorf("not found reveals a group: %+v", a)
		}
		if c.reason == "" {
			// 20% of 6000 + 1000, allocated by line: 1200 and 200; total 7000 - 1400.
			if a.Discount.PerItem[0].DiscountAmount != 1200 || a.Discount.PerItem[1].DiscountAmount != 200 || *a.TotalAfter != 5600 {
				t.Errorf("%s: allocation %+v total %d", c.name, a.Discount.PerItem, *a.TotalAfter)
			}
			if a.TermsSummary != "20% off all but 1 excluded product, at most 100 EUR, orders from 50 EUR" {
				t.Errorf("summary %q", a.TermsSummary)
			}
		}
	}
	for _, r := range offers.Reasons {
		if !seen[r] {
			t.Errorf("reason %s never happened", r)
		}
	}
	// Validation consumes nothing.
	if used, _ := e.counters(shared); used != 1 {
		t.Errorf("validations took slots: used %d", used)
	}
	// A bad request names its field.
	var ie *checkout.InvalidError
	if _, err := e.svc.Validate(ctx, checkout.ValidateRequest{Code: "NEWS10", Order: offers.Order{Currency: "EUR", Items: []offers.Item{{ProductID: "a", Quantity: 0, UnitAmount: 1}}}}); !errors.As(err, &ie) || ie.Field != "items[0].quantity" {
		t.Errorf("bad quantity: %v", err)
	}
	// Without an order: usable or not, and the terms.
	a, err := e.svc.Validate(ctx, checkout.ValidateRequest{Code: "NEWS10", NoOrder: true})
	if err != nil || !a.Valid || a.Discount != nil || a.TermsSummary == "" {
		t.Errorf("no order: %+v %v", a, err)
	}
}
