package admin

import (
	"encoding/json"
	"errors"
	"testing"

	"promopool/groups"
)

// TestSegmentBuilder checks the filter the builder's rows make: AND/OR of the filled
// rows, NOT around a row, the quantity's bounds, and "no group chosen" as every group.
func TestSegmentBuilder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		combine string
		rows    []condition
		want    string
		bad     bool
	}{
		{name: "one row stands alone", rows: []condition{{Kind: "quantity", Op: "gte", Value: "2"}},
			want: `{"quantity":{"op":"gte","value":2}}`},
		{name: "and with not", combine: "and", rows: []condition{
			{Kind: "quantity", Op: "between", Value: "1", Max: "3", Days: "30"},
			{Kind: "issued_from", Not: true, Groups: []string{"Spring"}, Match: "all"}},
			want: `{"and":[{"quantity":{"op":"between","min":1,"max":3,"window":{"last_days":30}}},{"not":{"issued_from":{"groups":["Spring"],"match":"all"}}}]}`},
		{name: "or, empty rows skipped, no group is every group", combine: "or", rows: []condition{
			{}, {Kind: "issued_from"}, {Kind: "quantity", Op: "eq", Value: "0"}},
			want: `{"or":[{"issued_from":{"groups":["Spring","Winter"],"match":"any"}},{"quantity":{"op":"eq","value":0}}]}`},
		{name: "nothing chosen", rows: []condition{{}}, bad: true},
		{name: "not a number", rows: []condition{{Kind: "quantity", Op: "gt", Value: "many"}}, bad: true},
		{name: "bad days", rows: []condition{{Kind: "issued_from", Days: "-1"}}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := segmentData{Combine: tc.combine, Conditions: tc.rows, GroupNames: []string{"Spring", "Winter"}}
			f, err := d.filter()
			if tc.bad {
				var inv *groups.InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("got %v, want an InvalidError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(f)
			if string(b) != tc.want {
				t.Fatalf("filter\n got %s\nwant %s", b, tc.want)
			}
		})
	}
}
