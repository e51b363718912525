package offers

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestNormalizeRefuses(t *testing.T) {
	cases := []struct {
		json  string
		field string
	}{
		{`{"type":"percent","percent_off":0}`, "terms.percent_off"},
		{`{"type":"percent","percent_off":100.01}`, "terms.percent_off"},
		{`{"type":"percent","percent_off":20,"max_discount":100}`, "terms.currency"},
		{`{"type":"percent","percent_off":20,"currency":"EUR","max_discount":0}`, "terms.max_discount"},
		{`{"type":"fixed","amount_off":1500}`, "terms.currency"},
		{`{"type":"fixed","amount_off":1500,"currency":"QQQ"}`, "terms.currency"},
		{`{"type":"fixed","amount_off":-1,"currency":"EUR"}`, "terms.amount_off"},
		{`{"type":"fixed","amount_off":1500,"currency":"EUR","max_discount":100}`, "terms.max_discount"},
		{`{"type":"fixed","amount_off":1500,"currency":"EUR","min_order":-1}`, "terms.min_order"},
		{`{"type":"fixed","amount_off":1500,"currency":"EUR","duration":"repeating"}`, "terms.duration_in_months"},
		{`{"type":"fixed","amount_off":1500,"currency":"EUR","duration":"weekly"}`, "terms.duration"},
		{`{"type":"bogo"}`, "terms.type"},
		{`{"type":"percent","percent_off":10,"applies_to":{"products":[" "]}}`, "terms.applies_to.products"},
	}
	for _, c := range cases {
		var terms Terms
		if err := json.Unmarshal([]byte(c.json), &terms); err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		var ie *InvalidError
		if err := terms.Normalize(); !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: got %v, want a problem with %s", c.json, err, c.field)
		}
	}
}

func TestPercentJSON(t *testing.T) {
	for in, want := range map[string]Percent{`20`: 2000, `20.5`: 2050, `"12.25"`: 1225, `100`: 10000, `1.01`: 101} {
		var p Percent
		if err := json.Unmarshal([]byte(in), &p); err != nil || p != want {
			t.Errorf("%s: %d %v, want %d", in, p, err, want)
		}
		out, _ := json.Marshal(p)
		var back Percent
		if json.Unmarshal(out, &back); back != want {
			t.Errorf("%s: round trip %s gave %d", in, out, back)
		}
	}
	for _, in := range []string{`20.125`, `1e2`, `-5`, `"x"`, `20.`} {
		var p Percent
		if err := json.Unmarshal([]byte(in), &p); err == nil {
			t.Errorf("%s: accepted as %d", in, p)
		}
	}
}

func TestSummary(t *testing.T) {
	cases := map[string]string{
		`{"type":"percent","percent_off":20,"currency":"EUR","max_discount":10000,"min_order":5000}`:                           "20% off, at most 100 EUR, orders from 50 EUR",
		`{"type":"fixed","amount_off":1500,"currency":"eur"}`:                                                                  "15 EUR off once",
		`{"type":"fixed","amount_off":1550,"currency":"EUR","duration":"forever"}`:                                             "15.50 EUR off forever",
		`{"type":"percent","percent_off":12.5,"duration":"repeating","duration_in_months":3,"applies_to":{"products":["p1"]}}`: "12.5% off selected products for 3 months",
		`{"type":"fixed","amount_off":1000,"currency":"JPY"}`:                                                                  "1,000 JPY off once",
	}
	for in, want := range cases {
		var terms Terms
		if err := json.Unmarshal([]byte(in), &terms); err != nil {
			t.Fatal(err)
		}
		if err := terms.Normalize(); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := terms.Summary(); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestLockedChanges(t *testing.T) {
	base := Terms{Type: TypePercent, PercentOff: 2000, Currency: "EUR", MaxDiscount: ptr(100), Duration: DurationOnce}
	same := base
	same.MaxDiscount = ptr(100)
	if got := base.LockedChanges(same); len(got) != 0 {
		t.Fatalf("equal terms reported as changed: %v", got)
	}
	next := base
	next.PercentOff, next.Duration, next.AppliesTo.Exclude = 2500, DurationForever, []string{"x"}
	got := base.LockedChanges(next)
	want := []string{"percent_off", "applies_to", "duration"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	err := error(&LockedError{Fields: got})
	if !errors.Is(err, ErrTermsLocked) {
		t.Fatal("LockedError does not match ErrTermsLocked")
	}
}

func TestLimitsCheck(t *testing.T) {
	terms := &Terms{Type: TypeFixed, AmountOff: 500, Currency: "EUR"}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(-time.Hour)
	cases := []struct {
		limits Limits
		terms  *Terms
		used   Usage
		field  string
	}{
		{Limits{MaxRedemptions: ptr(5)}, terms, Usage{Redemptions: 6}, "limits.max_redemptions"},
		{Limits{MaxRedemptions: ptr(0)}, terms, Usage{}, "limits.max_redemptions"},
		{Limits{MaxPerCustomer: ptr(1)}, terms, Usage{MaxPerCustomer: 2}, "limits.max_per_customer"},
		{Limits{StartsAt: &start, EndsAt: &end}, terms, Usage{}, "limits.ends_at"},
		{Limits{Budget: ptr(1000)}, &Terms{Type: TypePercent, PercentOff: 1000}, Usage{}, "limits.budget"},
		{Limits{Budget: ptr(1000)}, terms, Usage{Discounted: 1500}, "limits.budget"},
	}
	for _, c := range cases {
		var ie *InvalidError
		if err := c.limits.Check(c.terms, c.used); !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%+v: got %v, want a problem with %s", c.limits, err, c.field)
		}
	}
	if err := (Limits{MaxRedemptions: ptr(6), Budget: ptr(1500)}).Check(terms, Usage{Redemptions: 6, Discounted: 1500}); err != nil {
		t.Errorf("caps equal to what is used: %v", err)
	}
	l := Limits{StartsAt: &start}
	if l.At(start.Add(-time.Second)) != WindowNotYet || l.At(start) != WindowOpen {
		t.Error("window start is not inclusive")
	}
}

func TestFormatMoney(t *testing.T) {
	cases := map[string]string{
		FormatMoney(10000, "EUR"):     "100 EUR",
		FormatMoney(1505, "EUR"):      "15.05 EUR",
		FormatMoney(123456789, "USD"): "1,234,567.89 USD",
		FormatMoney(1500, "KWD"):      "1.500 KWD",
		FormatMoney(5, "JPY"):         "5 JPY",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

func TestCodeKey(t *testing.T) {
	for in, want := range map[string]string{
		"NEW-00001": "new-00001", "new-00001": "new-00001", "MaRiA15": "maria15",
		"ÉTÉ-10": "ÉtÉ-10", "": "", "ß9Z": "ß9z",
	} {
		if got := CodeKey(in); got != want {
			t.Errorf("CodeKey(%q) = %q, want %q (only A-Z fold, as lower() under COLLATE \"C\")", in, got, want)
		}
	}
}
