// Package offers holds what a group's codes are worth and under which limits they may be
// redeemed: the discount terms (percent or fixed, maximum discount, minimum order,
// product scope, duration), the limits (total and per-customer caps, a validity window, a
// discount budget), the plain-language summary of both, and the discount arithmetic a
// checkout applies to an order's line items.
//
// Everything here is pure: no database, no clock of its own. Money is always an int64
// count of the currency's minor units (cents for EUR, yen for JPY) beside an ISO 4217
// code; a percentage is an exact decimal with at most two places, held as hundredths of
// a percent (Percent). No float touches an amount.
//
// The arithmetic (Terms.Apply):
//   - percent: the percentage of the eligible items' subtotal, rounded half up to the
//     minor unit, then capped by MaxDiscount;
//   - fixed: AmountOff, capped at the eligible subtotal (a discount never makes an item
//     negative);
//   - the discount is allocated across the eligible line items in proportion to their
//     subtotals with the largest-remainder method, so the parts add up to the discount
//     exactly and no part exceeds its line.
package offers
