package offers

import (
	"strconv"
	"strings"
)

// Summary is the terms in plain language, as the admin pages and every API answer show
// them: "20% off, at most 100 EUR, orders from 50 EUR", "15 EUR off once", "10% off
// selected products for 3 months". A nil Terms has an empty summary.
func (t *Terms) Summary() string {
	if t == nil {
		return ""
	}
	var parts []string
	head := ""
	switch t.Type {
	case TypePercent:
		head = t.PercentOff.String() + "% off"
	case TypeFixed:
		head = FormatMoney(t.AmountOff, t.Currency) + " off"
	}
	switch {
	case len(t.AppliesTo.Products) > 0:
		head += " selected products"
	case len(t.AppliesTo.Exclude) > 0:
		head += " all but " + plural(len(t.AppliesTo.Exclude), "excluded product")
	}
	switch t.Duration {
	case DurationOnce:
		if t.Type == TypeFixed {
			head += " once"
		}
	case DurationForever:
		head += " forever"
	case DurationRepeating:
		head += " for " + plural(t.DurationMonths, "month")
	}
	parts = append(parts, head)
	if t.MaxDiscount != nil {
		parts = append(parts, "at most "+FormatMoney(*t.MaxDiscount, t.Currency))
	}
	if t.MinOrder != nil {
		parts = append(parts, "orders from "+FormatMoney(*t.MinOrder, t.Currency))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
