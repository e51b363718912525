package offers

import (
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// MaxAmount bounds every amount promopool accepts (a unit price, a line, an order, a cap
// or a budget): 10^15 minor units, ten trillion euros. Within it, every product the
// arithmetic forms (an amount times a percentage in hundredths, or times another amount)
// is computed in 128 bits, so nothing overflows.
const MaxAmount = 1_000_000_000_000_000

// NormalizeCurrency returns the upper-case ISO 4217 code of s, or an error naming why it
// is not one promopool accepts: unknown codes and the X-codes that are not money of a
// country (XXX, XTS, XAU…) are refused.
func NormalizeCurrency(s string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(s))
	if len(up) != 3 {
		return "", errReason("is not a three-letter ISO 4217 currency code")
	}
	u, err := currency.ParseISO(up)
	if err != nil {
		return "", errReason("is not an ISO 4217 currency code")
	}
	if up[0] == 'X' {
		return "", errReason("is not the currency of a country (ISO 4217 X-codes are refused)")
	}
	return u.String(), nil
}

// MinorDigits is the number of decimal places of cur's minor unit (2 for EUR, 0 for JPY,
// 3 for KWD). cur must be a code NormalizeCurrency accepted.
func MinorDigits(cur string) int {
	u, err := currency.ParseISO(cur)
	if err != nil {
		return 2
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale
}

// FormatMoney writes amount (minor units of cur) the way the summary shows it: "100 EUR",
// "15.50 EUR", "1,000 JPY" — trailing zero cents are dropped when the amount is whole.
func FormatMoney(amount int64, cur string) string {
	neg := amount < 0
	if neg {
		amount = -amount
	}
	digits := MinorDigits(cur)
	div := int64(1)
	for range digits {
		div *= 10
	}
	whole, frac := amount/div, amount%div
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(groupThousands(strconv.FormatInt(whole, 10)))
	if frac != 0 {
		f := strconv.FormatInt(frac, 10)
		b.WriteByte('.')
		b.WriteString(strings.Repeat("0", digits-len(f)))
		b.WriteString(f)
	}
	b.WriteByte(' ')
	b.WriteString(cur)
	return b.String()
}

func groupThousands(s string) string {
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
