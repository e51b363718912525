package offers

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Percent is an exact percentage in hundredths of a percent: 2050 is 20.5 %, 10000 is
// 100 %. In JSON it is a plain number with at most two decimal places ("percent_off":
// 20.5); it is read from the number's text, never through a float.
type Percent int64

// PercentScale is the number of Percent units in one percent.
const PercentScale = 100

// ParsePercent reads "20", "20.5" or "20.25" (a JSON number's text, or a quoted one).
func ParsePercent(s string) (Percent, error) {
	s = strings.TrimSpace(strings.Trim(s, `"`))
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || strings.ContainsAny(s, "eE+-") {
		return 0, fmt.Errorf("%q is not a percentage like 20 or 12.5", s)
	}
	if hasFrac && (len(frac) == 0 || len(frac) > 2) {
		return 0, fmt.Errorf("%q has more than two decimal places", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1000 {
		return 0, fmt.Errorf("%q is not a percentage like 20 or 12.5", s)
	}
	f := int64(0)
	if hasFrac {
		frac += strings.Repeat("0", 2-len(frac))
		if f, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return 0, fmt.Errorf("%q is not a percentage like 20 or 12.5", s)
		}
	}
	return Percent(w*PercentScale + f), nil
}

// String is the percentage without a sign and without trailing zeros: "20", "20.5".
func (p Percent) String() string {
	s := strconv.FormatInt(int64(p)/PercentScale, 10)
	if f := int64(p) % PercentScale; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%02d", f), "0")
	}
	return s
}

// MarshalJSON writes the percentage as an exact JSON number.
func (p Percent) MarshalJSON() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalJSON reads a JSON number (or a string holding one) with at most two decimals.
func (p *Percent) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*p = 0
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return fmt.Errorf("%s is not a percentage like 20 or 12.5", b)
		}
		n = json.Number(s)
	}
	v, err := ParsePercent(n.String())
	if err != nil {
		return err
	}
	*p = v
	return nil
}
