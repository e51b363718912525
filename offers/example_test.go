package offers_test

import (
	"fmt"

	"promopool/offers"
)

func ExampleTerms_Apply() {
	maxDiscount := int64(10000)
	terms := offers.Terms{Type: offers.TypePercent, PercentOff: 20 * offers.PercentScale, Currency: "EUR", MaxDiscount: &maxDiscount}
	if err := terms.Normalize(); err != nil {
		panic(err)
	}
	order := offers.Order{Currency: "EUR", Items: []offers.Item{
		{ProductID: "shirt", Quantity: 2, UnitAmount: 1999},
		{ProductID: "socks", Quantity: 1, UnitAmount: 599},
	}}
	if err := offers.NormalizeOrder(&order); err != nil {
		panic(err)
	}
	d, reason := terms.Apply(order)
	fmt.Println(terms.Summary())
	fmt.Println(reason == "", d.Amount, d.TotalAfter)
	for _, l := range d.PerItem {
		fmt.Println(l.ProductID, l.OriginalAmount, l.DiscountAmount)
	}
	// Output:
	// 20% off, at most 100 EUR
	// true 919 3678
	// shirt 3998 799
	// socks 599 120
}
