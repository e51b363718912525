package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"promopool/groups"
	"promopool/segments"
)

// SegmentPager answers a segment filter with its count and a page of customer ids;
// *segments.Service satisfies it.
type SegmentPager interface {
	Page(ctx context.Context, f *segments.Filter, cursor string, limit int) (*segments.Page, error)
}

// segmentRows is how many conditions the builder offers; deeper trees go through the
// filter's JSON, which the page shows and accepts.
const segmentRows = 4

// sampleSize is how many matching customers the page lists at a time.
const sampleSize = 20

type condition struct {
	Kind   string // "", "quantity" or "issued_from"
	Not    bool
	Op     string
	Value  string
	Max    string
	Groups []string // group names
	Match  string   // any or all
	Days   string
}

type segmentData struct {
	Combine    string
	Conditions []condition
	GroupNames []string
	JSON       string
	Ran        bool
	Count      int64
	AsOf       string
	Sample     []string
	// Next links to the next page of the sample ("" on the last).
	Next template.URL
}

var quantityOps = []struct{ Op, Label string }{
	{"gte", "≥"}, {"gt", ">"}, {"eq", "="}, {"ne", "≠"}, {"lte", "≤"}, {"lt", "<"}, {"between", "between"},
}

// segmentPage is the builder: the conditions come in the query string (counting changes
// nothing, so the page is a GET and its address can be kept), or a filter's JSON in
// ?json=.
func (h *Handler) segmentPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	list, err := h.deps.Groups.List(r.Context())
	if err != nil {
		return err
	}
	d := segmentData{Combine: "and", Conditions: make([]condition, segmentRows)}
	for _, g := range list {
		d.GroupNames = append(d.GroupNames, g.Name)
	}
	if c := q.Get("combine"); c == "or" {
		d.Combine = c
	}
	for i := range d.Conditions {
		n := strconv.Itoa(i)
		d.Conditions[i] = condition{Kind: q.Get("k" + n), Not: q.Get("not"+n) != "", Op: q.Get("op" + n), Value: strings.TrimSpace(q.Get("v" + n)),
			Max: strings.TrimSpace(q.Get("max" + n)), Groups: q["g"+n], Match: q.Get("m" + n), Days: strings.TrimSpace(q.Get("d" + n))}
	}
	if len(q) == 0 {
		// A first example: customers issued a code from any group in the last 30 days.
		d.Conditions[0] = condition{Kind: "issued_from", Days: "30", Op: "gte"}
	}
	var f *segments.Filter
	var msg string
	status := http.StatusOK
	switch {
	case q.Get("json") != "":
		d.JSON = q.Get("json")
		f, err = segments.Parse(strings.NewReader(d.JSON))
	case q.Get("run") != "":
		f, err = d.filter()
		if err == nil {
			b, _ := json.MarshalIndent(f, "", "  ")
			d.JSON = string(b)
		}
	}
	if err == nil && f != nil {
		var p *segments.Page
		if p, err = h.deps.Segments.Page(r.Context(), f, q.Get("after"), sampleSize); err == nil {
			d.Ran, d.Count, d.Sample = true, p.Count.Count, p.CustomerIDs
			d.AsOf = when(p.AsOf)
			if p.NextCursor != "" {
				v := r.URL.Query()
				v.Set("after", p.NextCursor)
				// Built here from encoded parts, so the template need not re-encode it.
				d.Next = template.URL("/admin/segments?" + v.Encode())
			}
		}
	}
	if err != nil {
		if status, msg = describe(err); status >= 500 {
			return err
		}
	}
	h.render(w, r, status, "segments", page{Title: "Segments", Nav: "segments", Error: msg, Data: d})
	return nil
}

// filter builds the filter of the builder's rows: the filled conditions, each maybe
// negated, joined with AND or OR.
func (d *segmentData) filter() (*segments.Filter, error) {
	var parts []*segments.Filter
	for i, c := range d.Conditions {
		if c.Kind == "" {
			continue
		}
		row := fmt.Sprintf("condition %d", i+1)
		var refs []segments.GroupRef
		for _, g := range c.Groups {
			refs = append(refs, segments.GroupRef{Name: g})
		}
		var win *segments.Window
		if c.Days != "" {
			days, err := strconv.Atoi(c.Days)
			if err != nil || days <= 0 {
				return nil, &groups.InvalidError{Field: row, Reason: fmt.Sprintf("last days %q is not a positive whole number", c.Days)}
			}
			win = &segments.Window{LastDays: days}
		}
		f := &segments.Filter{}
		switch c.Kind {
		case "quantity":
			qf := &segments.Quantity{Op: c.Op, Groups: refs, Window: win}
			num := func(s, what string) (*int64, error) {
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return nil, &groups.InvalidError{Field: row, Reason: fmt.Sprintf("%s %q is not a whole number", what, s)}
				}
				return &v, nil
			}
			var err error
			if c.Op == "between" {
				if qf.Min, err = num(c.Value, "the lower bound"); err != nil {
					return nil, err
				}
				if qf.Max, err = num(c.Max, "the upper bound"); err != nil {
					return nil, err
				}
			} else if qf.Value, err = num(c.Value, "the number"); err != nil {
				return nil, err
			}
			f.Quantity = qf
		case "issued_from":
			if len(refs) == 0 {
				// "Any group": every group the builder knows.
				for _, g := range d.GroupNames {
					refs = append(refs, segments.GroupRef{Name: g})
				}
				if len(refs) == 0 {
					return nil, &groups.InvalidError{Field: row, Reason: "there is no group to choose from yet"}
				}
			}
			match := "any"
			if c.Match == "all" {
				match = "all"
			}
			f.IssuedFrom = &segments.IssuedFrom{Groups: refs, Match: match, Window: win}
		default:
			return nil, &groups.InvalidError{Field: row, Reason: "unknown kind " + strconv.Quote(c.Kind)}
		}
		if c.Not {
			f = &segments.Filter{Not: f}
		}
		parts = append(parts, f)
	}
	switch {
	case len(parts) == 0:
		return nil, &groups.InvalidError{Field: "filter", Reason: "choose at least one condition"}
	case len(parts) == 1:
		return parts[0], nil
	case d.Combine == "or":
		return &segments.Filter{Or: parts}, nil
	}
	return &segments.Filter{And: parts}, nil
}
