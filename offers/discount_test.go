package offers

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

func ptr(v int64) *int64 { return &v }

func TestApplyExamples(t *testing.T) {
	twenty := Terms{Type: TypePercent, PercentOff: 20 * PercentScale, Currency: "EUR", MaxDiscount: ptr(10000), MinOrder: ptr(5000)}
	cases := []struct {
		name   string
		terms  Terms
		order  Order
		amount int64
		parts  []int64
		reason Reason
		free   bool
	}{
		{"percent of two lines", twenty, Order{Currency: "EUR", Items: []Item{{"a", 2, 1500}, {"b", 1, 4000}}}, 1400, []int64{600, 800}, "", false},
		{"capped by max_discount", twenty, Order{Currency: "EUR", Items: []Item{{"a", 1, 100000}}}, 10000, []int64{10000}, "", false},
		{"below min order", twenty, Order{Currency: "EUR", Items: []Item{{"a", 1, 4999}}}, 0, nil, ReasonMinOrder, false},
		{"min order met by order_amount", twenty, Order{Currency: "EUR", Items: []Item{{"a", 1, 4000}}, Amount: ptr(5000)}, 800, []int64{800}, "", false},
		{"currency mismatch", twenty, Order{Currency: "USD", Items: []Item{{"a", 1, 9000}}}, 0, nil, ReasonCurrencyMismatch, false},
		{"fixed capped at eligible", Terms{Type: TypeFixed, AmountOff: 1500, Currency: "EUR", AppliesTo: Scope{Products: []string{"a"}}},
			Order{Currency: "EUR", Items: []Item{{"a", 1, 1000}, {"b", 1, 3000}}}, 1000, []int64{1000, 0}, "", false},
		{"nothing eligible", Terms{Type: TypeFixed, AmountOff: 1500, Currency: "EUR", AppliesTo: Scope{Exclude: []string{"a"}}},
			Order{Currency: "EUR", Items: []Item{{"a", 1, 1000}}}, 0, nil, ReasonNoEligibleItems, false},
		{"100% is free", Terms{Type: TypePercent, PercentOff: 100 * PercentScale},
			Order{Currency: "JPY", Items: []Item{{"a", 3, 333}}}, 999, []int64{999}, "", true},
		{"three equal lines, remainder to the first", Terms{Type: TypeFixed, AmountOff: 100, Currency: "EUR"},
			Order{Currency: "EUR", Items: []Item{{"a", 1, 1000}, {"b", 1, 1000}, {"c", 1, 1000}}}, 100, []int64{34, 33, 33}, "", false},
		{"half a cent rounds up", Terms{Type: TypePercent, PercentOff: 1050},
			Order{Currency: "EUR", Items: []Item{{"a", 1, 5}}}, 1, []int64{1}, "", false},
		{"no lines, whole order", Terms{Type: TypePercent, PercentOff: 10 * PercentScale},
			Order{Currency: "EUR", Amount: ptr(2599)}, 260, []int64{260}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.terms.Normalize(); err != nil {
				t.Fatalf("terms: %v", err)
			}
			if err := NormalizeOrder(&c.order); err != nil {
				t.Fatalf("order: %v", err)
			}
			d, reason := c.terms.Apply(c.order)
			if reason != c.reason {
				t.Fatalf("reason %q, want %q", reason, c.reason)
			}
			if d.Amount != c.amount || d.Free != c.free {
				t.Fatalf("amount %d free %v, want %d free %v", d.Amount, d.Free, c.amount, c.free)
			}
			for i, p := range c.parts {
				if d.PerItem[i].DiscountAmount != p {
					t.Errorf("line %d: %d, want %d (%+v)", i, d.PerItem[i].DiscountAmount, p, d.PerItem)
				}
			}
		})
	}
}

// TestApplyProperties draws random terms and orders and checks the rules of SPEC §11:
// the parts sum to the discount, no line goes below zero, the discount never exceeds the
// cap or the eligible subtotal, only eligible lines get a part, and rounding never
// favours the buyer by more than half a minor unit (exact rational arithmetic).
func TestApplyProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		terms, order := randomCase(rng)
		if err := terms.Normalize(); err != nil {
			t.Fatalf("random terms refused: %v (%+v)", err, terms)
		}
		if err := NormalizeOrder(&order); err != nil {
			t.Fatalf("random order refused: %v", err)
		}
		d, reason := terms.Apply(order)
		if reason != "" {
			continue
		}
		checkDiscount(t, terms, order, d)
	}
}

func checkDiscount(t *testing.T, terms Terms, order Order, d Discount) {
	t.Helper()
	var sum, eligible int64
	for i, l := range d.PerItem {
		if l.DiscountAmount < 0 || l.DiscountAmount > l.OriginalAmount {
			t.Fatalf("line %d: part %d outside [0, %d]", i, l.DiscountAmount, l.OriginalAmount)
		}
		if !l.Eligible && l.DiscountAmount != 0 {
			t.Fatalf("line %d is not eligible but got %d", i, l.DiscountAmount)
		}
		if l.Eligible {
			eligible += l.OriginalAmount
		}
		sum += l.DiscountAmount
	}
	if sum != d.Amount {
		t.Fatalf("parts sum to %d, discount is %d", sum, d.Amount)
	}
	if d.Amount > eligible || d.Amount < 0 {
		t.Fatalf("discount %d outside [0, eligible %d]", d.Amount, eligible)
	}
	if terms.MaxDiscount != nil && d.Amount > *terms.MaxDiscount {
		t.Fatalf("discount %d above the cap %d", d.Amount, *terms.MaxDiscount)
	}
	if d.TotalAfter != d.OrderAmount-d.Amount || d.TotalAfter < 0 {
		t.Fatalf("total after %d of %d - %d", d.TotalAfter, d.OrderAmount, d.Amount)
	}
	if terms.Type == TypePercent {
		// exact = eligible × p / 10000; the buyer may gain at most half a unit.
		exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(eligible), big.NewInt(int64(terms.PercentOff))), big.NewInt(100*PercentScale))
		if terms.MaxDiscount != nil && exact.Cmp(new(big.Rat).SetInt64(*terms.MaxDiscount)) > 0 {
			exact.SetInt64(*terms.MaxDiscount)
		}
		gain := new(big.Rat).Sub(new(big.Rat).SetInt64(d.Amount), exact)
		if gain.Cmp(big.NewRat(1, 2)) > 0 {
			t.Fatalf("rounding favours the buyer by %s units (discount %d, exact %s)", gain.FloatString(3), d.Amount, exact.FloatString(3))
		}
	} else if d.Amount != min(terms.AmountOff, eligible) {
		t.Fatalf("fixed discount %d, want min(%d, %d)", d.Amount, terms.AmountOff, eligible)
	}
}

func randomCase(rng *rand.Rand) (Terms, Order) {
	products := []string{"a", "b", "c", "d", "e"}
	var terms Terms
	if rng.IntN(2) == 0 {
		terms = Terms{Type: TypePercent, PercentOff: Percent(PercentScale + rng.IntN(99*PercentScale+1))}
		if rng.IntN(2) == 0 {
			terms.Currency, terms.MaxDiscount = "EUR", ptr(1+rng.Int64N(100000))
		}
	} else {
		terms = Terms{Type: TypeFixed, AmountOff: 1 + rng.Int64N(100000), Currency: "EUR"}
	}
	if rng.IntN(3) == 0 {
		terms.AppliesTo.Products = products[:1+rng.IntN(3)]
	}
	if rng.IntN(4) == 0 {
		terms.AppliesTo.Exclude = []string{products[rng.IntN(len(products))]}
	}
	order := Order{Currency: "EUR"}
	for range 1 + rng.IntN(8) {
		unit := rng.Int64N(50000)
		if rng.IntN(10) == 0 {
			unit = rng.Int64N(MaxAmount / 1000)
		}
		order.Items = append(order.Items, Item{products[rng.IntN(len(products))], 1 + rng.Int64N(5), unit})
	}
	return terms, order
}

func TestNormalizeOrderRefuses(t *testing.T) {
	cases := []struct {
		order Order
		field string
	}{
		{Order{Currency: "EURO", Items: []Item{{"a", 1, 1}}}, "currency"},
		{Order{Currency: "ZZZ", Items: []Item{{"a", 1, 1}}}, "currency"},
		{Order{Currency: "EUR", Items: []Item{{"", 1, 1}}}, "items[0].product_id"},
		{Order{Currency: "EUR", Items: []Item{{"a", 1, 1}, {"b", 0, 1}}}, "items[1].quantity"},
		{Order{Currency: "EUR", Items: []Item{{"a", 1, -5}}}, "items[0].unit_amount"},
		{Order{Currency: "EUR", Items: []Item{{"a", 1000, MaxAmount}}}, "items[0].unit_amount"},
		{Order{Currency: "EUR", Items: []Item{{"a", 1, 500}}, Amount: ptr(400)}, "order_amount"},
		{Order{Currency: "EUR"}, "items"},
	}
	for _, c := range cases {
		err := NormalizeOrder(&c.order)
		ie, ok := err.(*InvalidError)
		if !ok || ie.Field != c.field {
			t.Errorf("%+v: got %v, want a problem with %s", c.order, err, c.field)
		}
	}
}
