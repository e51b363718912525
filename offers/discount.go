package offers

import (
	"math/bits"
	"sort"
	"strings"
)

// Item is one line of an order: a product, how many, and the price of one in minor
// units of the order's currency.
type Item struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	UnitAmount int64  `json:"unit_amount"`
}

// Order is what the shop asks about: its currency, its lines and, optionally, the
// order's whole amount (lines plus shipping or fees), which is what a minimum order is
// compared with. Without lines, Amount stands for one line of no particular product.
type Order struct {
	Currency string `json:"currency"`
	Items    []Item `json:"items"`
	Amount   *int64 `json:"order_amount,omitempty"`
}

// Line is a line of the order after the discount.
type Line struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
	// OriginalAmount is quantity × unit amount.
	OriginalAmount int64 `json:"original_amount"`
	// DiscountAmount is this line's part of the discount.
	DiscountAmount int64 `json:"discount_amount"`
	// Eligible says whether the product scope covers the line.
	Eligible bool `json:"eligible"`
}

// Discount is the answer for one order: the amount taken off, its allocation per line
// (the parts add up to Amount exactly) and what the buyer pays.
type Discount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	PerItem  []Line `json:"per_item"`
	// OrderAmount is the order's amount before the discount; TotalAfter after it.
	OrderAmount int64 `json:"order_amount"`
	TotalAfter  int64 `json:"total_after"`
	// Free is true when the discount covers the whole order.
	Free bool `json:"free"`
}

// maxItems bounds an order's lines.
const maxItems = 500

// NormalizeOrder checks the order: a known currency, 0–500 lines with a product id, a
// quantity of 1–1,000,000 and a unit amount of 0 or more, and an order amount no smaller
// than its lines. The error is an *InvalidError naming the field ("items[2].quantity").
func NormalizeOrder(o *Order) error {
	cur, err := NormalizeCurrency(o.Currency)
	if err != nil {
		return invalid("currency", "%q %v", o.Currency, err)
	}
	o.Currency = cur
	if len(o.Items) > maxItems {
		return invalid("items", "has %d lines; at most %d", len(o.Items), maxItems)
	}
	var sum int64
	for i := range o.Items {
		it := &o.Items[i]
		it.ProductID = strings.TrimSpace(it.ProductID)
		if it.ProductID == "" || len(it.ProductID) > 200 {
			return invalid(itemField(i, "product_id"), "is required (1–200 characters)")
		}
		if it.Quantity < 1 || it.Quantity > 1_000_000 {
			return invalid(itemField(i, "quantity"), "must be between 1 and 1000000, got %d", it.Quantity)
		}
		if it.UnitAmount < 0 || it.UnitAmount > MaxAmount/it.Quantity {
			return invalid(itemField(i, "unit_amount"), "must be between 0 and %d minor units per line, got %d", int64(MaxAmount), it.UnitAmount)
		}
		sum += it.Quantity * it.UnitAmount
		if sum > MaxAmount {
			return invalid("items", "add up to more than %d minor units", int64(MaxAmount))
		}
	}
	if o.Amount != nil && (*o.Amount < sum || *o.Amount > MaxAmount) {
		return invalid("order_amount", "must be between the lines' sum (%d) and %d minor units, got %d", sum, int64(MaxAmount), *o.Amount)
	}
	if o.Amount == nil && len(o.Items) == 0 {
		return invalid("items", "send the order's lines, or its order_amount")
	}
	return nil
}

func itemField(i int, name string) string {
	return "items[" + itoa(int64(i)) + "]." + name
}

// Apply computes the discount of the terms on an order NormalizeOrder accepted. A
// refusal is a Reason (currency_mismatch, min_order, no_eligible_items) with a zero
// Discount.
func (t *Terms) Apply(o Order) (Discount, Reason) {
	if t.Currency != "" && o.Currency != t.Currency {
		return Discount{}, ReasonCurrencyMismatch
	}
	lines, subtotal := t.lines(o)
	orderAmount := subtotal
	if o.Amount != nil {
		orderAmount = *o.Amount
	}
	if t.MinOrder != nil && orderAmount < *t.MinOrder {
		return Discount{}, ReasonMinOrder
	}
	var eligible int64
	for _, l := range lines {
		if l.Eligible {
			eligible += l.OriginalAmount
		}
	}
	if eligible == 0 {
		return Discount{}, ReasonNoEligibleItems
	}
	amount := t.amountOf(eligible)
	allocate(lines, amount, eligible)
	return Discount{
		Amount: amount, Currency: o.Currency, PerItem: lines,
		OrderAmount: orderAmount, TotalAfter: orderAmount - amount,
		Free: orderAmount-amount == 0,
	}, ""
}

// lines turns the order into lines, marking each eligible or not. An order without
// lines is one line of its whole amount, eligible when the scope is every product.
func (t *Terms) lines(o Order) ([]Line, int64) {
	if len(o.Items) == 0 {
		return []Line{{Quantity: 1, OriginalAmount: *o.Amount, Eligible: t.AppliesTo.All()}}, *o.Amount
	}
	lines := make([]Line, len(o.Items))
	var sum int64
	for i, it := range o.Items {
		amt := it.Quantity * it.UnitAmount
		lines[i] = Line{ProductID: it.ProductID, Quantity: it.Quantity, OriginalAmount: amt, Eligible: t.AppliesTo.Applies(it.ProductID)}
		sum += amt
	}
	return lines, sum
}

// amountOf is the discount on an eligible subtotal: a percentage rounded half up to the
// minor unit and capped by MaxDiscount, or the fixed amount capped at the subtotal.
func (t *Terms) amountOf(eligible int64) int64 {
	var d int64
	if t.Type == TypePercent {
		// eligible ≤ 10^15 and PercentOff ≤ 10^4: the product fits in a uint64.
		exact := uint64(eligible) * uint64(t.PercentOff)
		d = int64((exact + 100*PercentScale/2) / (100 * PercentScale))
		if t.MaxDiscount != nil && d > *t.MaxDiscount {
			d = *t.MaxDiscount
		}
	} else {
		d = t.AmountOff
	}
	return min(d, eligible)
}

// allocate spreads amount over the eligible lines in proportion to their amounts with
// the largest-remainder method: each line gets the floor of its exact share, and the
// units left over go one each to the lines with the largest remainders (earlier lines
// first on a tie). The parts add up to amount; none exceeds its line since amount ≤
// eligible.
func allocate(lines []Line, amount, eligible int64) {
	type rem struct {
		i int
		r uint64
	}
	rems := make([]rem, 0, len(lines))
	left := amount
	for i := range lines {
		if !lines[i].Eligible || lines[i].OriginalAmount == 0 {
			continue
		}
		hi, lo := bits.Mul64(uint64(amount), uint64(lines[i].OriginalAmount))
		q, r := bits.Div64(hi, lo, uint64(eligible))
		lines[i].DiscountAmount = int64(q)
		left -= int64(q)
		rems = append(rems, rem{i, r})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; left > 0; k++ {
		lines[rems[k].i].DiscountAmount++
		left--
	}
}
