package offers

import (
	"slices"
	"strings"
)

// Type is the kind of discount.
type Type string

// The discount types.
const (
	// TypePercent takes PercentOff of the eligible items.
	TypePercent Type = "percent"
	// TypeFixed takes AmountOff (minor units of Currency) off the eligible items.
	TypeFixed Type = "fixed"
)

// Duration says how long a discount lasts on a subscription. promopool stores and
// returns it; the shop's billing applies it.
type Duration string

// The durations.
const (
	DurationOnce      Duration = "once"
	DurationForever   Duration = "forever"
	DurationRepeating Duration = "repeating"
)

// Scope is the products a discount applies to: every product when Products is empty,
// otherwise only those listed; never the ones in Exclude.
type Scope struct {
	// Products lists the product ids the discount applies to; empty means all.
	Products []string `json:"products,omitempty"`
	// Exclude lists product ids the discount never applies to.
	Exclude []string `json:"exclude,omitempty"`
}

// Applies reports whether the discount applies to the product.
func (s Scope) Applies(productID string) bool {
	if slices.Contains(s.Exclude, productID) {
		return false
	}
	return len(s.Products) == 0 || slices.Contains(s.Products, productID)
}

// All reports whether the scope is every product.
func (s Scope) All() bool { return len(s.Products) == 0 && len(s.Exclude) == 0 }

// Terms is what a code of the group is worth.
type Terms struct {
	// Type is percent or fixed.
	Type Type `json:"type"`
	// PercentOff is the percentage of a percent discount (0.01–100).
	PercentOff Percent `json:"percent_off,omitempty"`
	// AmountOff is the amount of a fixed discount, in minor units of Currency.
	AmountOff int64 `json:"amount_off,omitempty"`
	// Currency is the ISO 4217 code of every amount of the terms and limits. Required
	// for a fixed discount, and for a percent one with a maximum discount, a minimum
	// order or a budget; a percent discount without one applies in any currency.
	Currency string `json:"currency,omitempty"`
	// MaxDiscount caps a percent discount (minor units); nil: no cap.
	MaxDiscount *int64 `json:"max_discount,omitempty"`
	// MinOrder is the smallest order (minor units) the code applies to; nil: any.
	MinOrder *int64 `json:"min_order,omitempty"`
	// AppliesTo is the product scope.
	AppliesTo Scope `json:"applies_to"`
	// Duration is once, forever or repeating (with DurationMonths).
	Duration Duration `json:"duration"`
	// DurationMonths is the number of months of a repeating discount.
	DurationMonths int `json:"duration_in_months,omitempty"`
}

// maxScopeIDs bounds the product lists of a scope.
const maxScopeIDs = 1000

// Normalize fills defaults (duration once), upper-cases the currency and trims and
// de-duplicates the product ids, then checks every field. The error is an
// *InvalidError naming the first field that is wrong (prefixed "terms.").
func (t *Terms) Normalize() error {
	if t.Duration == "" {
		t.Duration = DurationOnce
	}
	if t.Currency != "" {
		cur, err := NormalizeCurrency(t.Currency)
		if err != nil {
			return invalid("terms.currency", "%q %v", t.Currency, err)
		}
		t.Currency = cur
	}
	var err error
	if t.AppliesTo.Products, err = cleanIDs("terms.applies_to.products", t.AppliesTo.Products); err != nil {
		return err
	}
	if t.AppliesTo.Exclude, err = cleanIDs("terms.applies_to.exclude", t.AppliesTo.Exclude); err != nil {
		return err
	}
	if err := t.checkAmount(); err != nil {
		return err
	}
	if err := checkOptionalAmount("terms.min_order", t.MinOrder, 0); err != nil {
		return err
	}
	if t.MinOrder != nil && t.Currency == "" {
		return invalid("terms.currency", "is required with min_order (the amount is in its minor units)")
	}
	return t.checkDuration()
}

func (t *Terms) checkAmount() error {
	switch t.Type {
	case TypePercent:
		if t.PercentOff < 1*PercentScale || t.PercentOff > 100*PercentScale {
			return invalid("terms.percent_off", "must be between 1 and 100 (at most two decimals), got %s", t.PercentOff)
		}
		if t.AmountOff != 0 {
			return invalid("terms.amount_off", "is for a fixed discount; a percent discount takes percent_off")
		}
		if err := checkOptionalAmount("terms.max_discount", t.MaxDiscount, 1); err != nil {
			return err
		}
		if t.MaxDiscount != nil && t.Currency == "" {
			return invalid("terms.currency", "is required with max_discount (the cap is in its minor units)")
		}
	case TypeFixed:
		if t.AmountOff < 1 || t.AmountOff > MaxAmount {
			return invalid("terms.amount_off", "must be between 1 and %d minor units, got %d", int64(MaxAmount), t.AmountOff)
		}
		if t.Currency == "" {
			return invalid("terms.currency", "is required for a fixed discount")
		}
		if t.PercentOff != 0 {
			return invalid("terms.percent_off", "is for a percent discount; a fixed discount takes amount_off")
		}
		if t.MaxDiscount != nil {
			return invalid("terms.max_discount", "caps a percent discount only; a fixed discount is its own cap")
		}
	default:
		return invalid("terms.type", "must be percent or fixed, got %q", t.Type)
	}
	return nil
}

func (t *Terms) checkDuration() error {
	switch t.Duration {
	case DurationOnce, DurationForever:
		if t.DurationMonths != 0 {
			return invalid("terms.duration_in_months", "is only for a repeating duration")
		}
	case DurationRepeating:
		if t.DurationMonths < 1 || t.DurationMonths > 120 {
			return invalid("terms.duration_in_months", "must be between 1 and 120 for a repeating duration, got %d", t.DurationMonths)
		}
	default:
		return invalid("terms.duration", "must be once, forever or repeating, got %q", t.Duration)
	}
	return nil
}

func checkOptionalAmount(field string, v *int64, min int64) error {
	if v != nil && (*v < min || *v > MaxAmount) {
		return invalid(field, "must be between %d and %d minor units, got %d", min, int64(MaxAmount), *v)
	}
	return nil
}

func cleanIDs(field string, ids []string) ([]string, error) {
	if len(ids) > maxScopeIDs {
		return nil, invalid(field, "lists %d product ids; at most %d", len(ids), maxScopeIDs)
	}
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || len(id) > 200 {
			return nil, invalid(field, "item %d: a product id is 1–200 characters", i+1)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// LockedChanges lists the locked fields that differ between t and next, in JSON names:
// type, percent_off, amount_off, currency, max_discount, min_order, applies_to,
// duration. Once a code of the group was issued or redeemed none of them may change:
// what a customer holds keeps the worth it had when they got it.
func (t Terms) LockedChanges(next Terms) []string {
	var out []string
	add := func(changed bool, name string) {
		if changed {
			out = append(out, name)
		}
	}
	add(t.Type != next.Type, "type")
	add(t.PercentOff != next.PercentOff, "percent_off")
	add(t.AmountOff != next.AmountOff, "amount_off")
	add(t.Currency != next.Currency, "currency")
	add(!eqPtr(t.MaxDiscount, next.MaxDiscount), "max_discount")
	add(!eqPtr(t.MinOrder, next.MinOrder), "min_order")
	add(!slices.Equal(t.AppliesTo.Products, next.AppliesTo.Products) ||
		!slices.Equal(t.AppliesTo.Exclude, next.AppliesTo.Exclude), "applies_to")
	add(t.Duration != next.Duration || t.DurationMonths != next.DurationMonths, "duration")
	return out
}

func eqPtr(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
