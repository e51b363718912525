package customers_test

import (
	"strings"
	"testing"

	"promopool/customers"
)

func TestCheckCustomerID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // part of the reason; "" when the id is acceptable
	}{
		{"c1", ""},
		{"ÿ-客户-1", ""},
		{strings.Repeat("é", 200), ""},
		{"", "empty"},
		{"bad\xffutf8", "UTF-8"},
		{strings.Repeat("é", 201), "longer than 200"},
		{"tab\there", "control character"},
	} {
		err := customers.CheckCustomerID(tc.id)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", tc.id, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error about %q", tc.id, err, tc.want)
		}
	}
}
