package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// Filter is one node of a segment filter: exactly one of its fields is set. And, Or and
// Not combine nodes to any depth (up to MaxDepth levels and MaxNodes nodes); Quantity and
// IssuedFrom are the two promo-code filters of SPEC §6, Redeemed the uses of codes at
// checkout. The reminder mailing's audience, "issued a Spring code in the last 14 days
// and not redeemed one since":
//
//	{"and": [
//	  {"issued_from": {"groups": ["Spring"], "window": {"last_days": 14}}},
//	  {"not": {"redeemed": {"groups": ["Spring"], "window": {"last_days": 14}}}}
//	]}
type Filter struct {
	And        []*Filter   `json:"and,omitempty"`
	Or         []*Filter   `json:"or,omitempty"`
	Not        *Filter     `json:"not,omitempty"`
	Quantity   *Quantity   `json:"quantity,omitempty"`
	IssuedFrom *IssuedFrom `json:"issued_from,omitempty"`
	Redeemed   *Redeemed   `json:"redeemed,omitempty"`
}

// Quantity matches customers whose number of issued codes compares to a value: Op is
// eq, ne, lt, lte, gt, gte (or =, !=, ≠, <, <=, ≤, >, >=, ≥) with Value, or between with
// Min and Max (inclusive). Customers never issued anything count zero, so "eq 0" and
// "lt 1" include them. Groups, when given, restricts the count to those groups; Window to
// a time span; Kind "initial" (the default) counts codes handed out, "all" counts repeat
// issues (last_promocode) too.
type Quantity struct {
	Op     string     `json:"op"`
	Value  *int64     `json:"value,omitempty"`
	Min    *int64     `json:"min,omitempty"`
	Max    *int64     `json:"max,omitempty"`
	Groups []GroupRef `json:"groups,omitempty"`
	Kind   string     `json:"kind,omitempty"`
	Window *Window    `json:"window,omitempty"`
}

// IssuedFrom matches customers issued a code from any (the default) or all of Groups,
// optionally within Window; Kind as in Quantity.
type IssuedFrom struct {
	Groups []GroupRef `json:"groups"`
	Match  string     `json:"match,omitempty"`
	Kind   string     `json:"kind,omitempty"`
	Window *Window    `json:"window,omitempty"`
}

// Redeemed matches customers by their uses of codes at checkout: succeeded redemptions
// (a hold counts once confirmed; a refunded redemption no longer counts), of Groups (any
// group when omitted), optionally within Window (by when the redemption was made). Op,
// Value, Min and Max compare the number of uses as in Quantity (customers who never
// redeemed count zero); without them, "gte 1": customers who redeemed at least once.
type Redeemed struct {
	Groups []GroupRef `json:"groups,omitempty"`
	Op     string     `json:"op,omitempty"`
	Value  *int64     `json:"value,omitempty"`
	Min    *int64     `json:"min,omitempty"`
	Max    *int64     `json:"max,omitempty"`
	Window *Window    `json:"window,omitempty"`
}

// counts is r's comparison as a Quantity (for its intervals).
func (r *Redeemed) counts() *Quantity {
	return &Quantity{Op: r.Op, Value: r.Value, Min: r.Min, Max: r.Max, Groups: r.Groups, Window: r.Window}
}

// Window is a time span: the last LastDays days up to the query, or From (inclusive) to
// To (exclusive), either of which may be left open.
type Window struct {
	LastDays int        `json:"last_days,omitempty"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
}

// GroupRef names a group by id (a JSON number) or by name (a JSON string, any case).
// Archived groups are found too: their issues stay on the customers' profiles.
type GroupRef struct {
	ID   int64
	Name string
}

// UnmarshalJSON accepts 12 or "Spring".
func (g *GroupRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &g.Name)
	}
	if err := json.Unmarshal(b, &g.ID); err != nil {
		return errors.New("a group is an id (number) or a name (string)")
	}
	return nil
}

// MarshalJSON writes the id when known, else the name.
func (g GroupRef) MarshalJSON() ([]byte, error) {
	if g.ID != 0 {
		return json.Marshal(g.ID)
	}
	return json.Marshal(g.Name)
}

// Limits on a filter's shape: a segment builder's tree is small; these stop a request
// from making PostgreSQL plan a query of millions of nodes.
const (
	MaxDepth  = 32
	MaxNodes  = 256
	MaxGroups = 1000
	MaxDays   = 36600
)

// InvalidError says which node of a filter is wrong and why. Path is a JSONPath into the
// filter as sent, such as $.and[1].quantity.op.
type InvalidError struct {
	Path   string
	Reason string
}

func (e *InvalidError) Error() string { return "invalid filter at " + e.Path + ": " + e.Reason }

// Parse decodes a filter from JSON (unknown fields are errors) and validates its shape.
// It does not look up groups: Service.Check does.
func Parse(r io.Reader) (*Filter, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f Filter
	if err := dec.Decode(&f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, &InvalidError{Path: "$." + te.Field, Reason: fmt.Sprintf("must be %s, not %s", typeName(te.Type), te.Value)}
		}
		return nil, &InvalidError{Path: "$", Reason: strings.TrimPrefix(err.Error(), "json: ")}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "true or false"
	}
	return "an object"
}

// Validate checks the filter's shape: one kind per node, known operators and kinds,
// both bounds of between, non-empty group lists, sane windows, depth and size limits.
func (f *Filter) Validate() error {
	nodes := 0
	return f.validate("$", 1, &nodes)
}

func (f *Filter) validate(path string, depth int, nodes *int) error {
	bad := func(p, reason string) error { return &InvalidError{Path: p, Reason: reason} }
	if f == nil {
		return bad(path, "a filter node is required here")
	}
	*nodes++
	if depth > MaxDepth {
		return bad(path, fmt.Sprintf("nested deeper than %d levels", MaxDepth))
	}
	if *nodes > MaxNodes {
		return bad(path, fmt.Sprintf("more than %d filter nodes", MaxNodes))
	}
	set := 0
	for _, b := range []bool{f.And != nil, f.Or != nil, f.Not != nil, f.Quantity != nil, f.IssuedFrom != nil, f.Redeemed != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return bad(path, "a node has exactly one of and, or, not, quantity, issued_from, redeemed")
	}
	switch {
	case f.And != nil || f.Or != nil:
		list, name := f.And, "and"
		if f.Or != nil {
			list, name = f.Or, "or"
		}
		if len(list) == 0 {
			return bad(path+"."+name, "needs at least one filter")
		}
		for i, c := range list {
			if err := c.validate(fmt.Sprintf("%s.%s[%d]", path, name, i), depth+1, nodes); err != nil {
				return err
			}
		}
	case f.Not != nil:
		return f.Not.validate(path+".not", depth+1, nodes)
	case f.Quantity != nil:
		return f.Quantity.validate(path + ".quantity")
	case f.IssuedFrom != nil:
		return f.IssuedFrom.validate(path + ".issued_from")
	case f.Redeemed != nil:
		return f.Redeemed.validate(path + ".redeemed")
	}
	return nil
}

// ops maps every accepted spelling to its canonical name.
var ops = map[string]string{
	"eq": "eq", "=": "eq", "==": "eq",
	"ne": "ne", "!=": "ne", "≠": "ne", "<>": "ne",
	"lt": "lt", "<": "lt",
	"lte": "lte", "<=": "lte", "≤": "lte",
	"gt": "gt", ">": "gt",
	"gte": "gte", ">=": "gte", "≥": "gte",
	"between": "between",
}

func (q *Quantity) validate(path string) error {
	if err := validateCompare(path, &q.Op, q.Value, q.Min, q.Max); err != nil {
		return err
	}
	if q.Groups != nil {
		if err := validateGroups(path+".groups", q.Groups); err != nil {
			return err
		}
	}
	if err := validateKind(path+".kind", &q.Kind); err != nil {
		return err
	}
	return q.Window.validate(path + ".window")
}

// validateCompare checks a count comparison (Quantity's and Redeemed's) and sets op to
// its canonical name.
func validateCompare(path string, op *string, value, lo, hi *int64) error {
	bad := func(field, reason string) error { return &InvalidError{Path: path + field, Reason: reason} }
	canon, ok := ops[*op]
	if !ok {
		return bad(".op", fmt.Sprintf("%q is not an operator (eq, ne, lt, lte, gt, gte, between)", *op))
	}
	*op = canon
	if canon == "between" {
		switch {
		case lo == nil || hi == nil:
			return bad("", "between needs both min and max")
		case value != nil:
			return bad(".value", "between takes min and max, not value")
		case *lo < 0:
			return bad(".min", "must be 0 or more")
		case *hi < *lo:
			return bad(".max", "must not be less than min")
		}
		return nil
	}
	switch {
	case value == nil:
		return bad(".value", "is required for "+canon)
	case lo != nil || hi != nil:
		return bad("", "min and max go with between only")
	case *value < 0:
		return bad(".value", "must be 0 or more")
	}
	return nil
}

func (r *Redeemed) validate(path string) error {
	if r.Op == "" && r.Value == nil && r.Min == nil && r.Max == nil {
		one := int64(1)
		r.Op, r.Value = "gte", &one
	}
	if err := validateCompare(path, &r.Op, r.Value, r.Min, r.Max); err != nil {
		return err
	}
	if r.Groups != nil {
		if err := validateGroups(path+".groups", r.Groups); err != nil {
			return err
		}
	}
	return r.Window.validate(path + ".window")
}

func (f *IssuedFrom) validate(path string) error {
	if err := validateGroups(path+".groups", f.Groups); err != nil {
		return err
	}
	switch f.Match {
	case "", "any":
		f.Match = "any"
	case "all":
	default:
		return &InvalidError{Path: path + ".match", Reason: fmt.Sprintf("%q is not any or all", f.Match)}
	}
	if err := validateKind(path+".kind", &f.Kind); err != nil {
		return err
	}
	return f.Window.validate(path + ".window")
}

func validateGroups(path string, gs []GroupRef) error {
	switch {
	case len(gs) == 0:
		return &InvalidError{Path: path, Reason: "needs at least one group"}
	case len(gs) > MaxGroups:
		return &InvalidError{Path: path, Reason: fmt.Sprintf("more than %d groups", MaxGroups)}
	}
	for i, g := range gs {
		if g.ID <= 0 && strings.TrimSpace(g.Name) == "" {
			return &InvalidError{Path: fmt.Sprintf("%s[%d]", path, i), Reason: "a group id is a positive number, a name is not empty"}
		}
	}
	return nil
}

func validateKind(path string, kind *string) error {
	switch *kind {
	case "", "initial":
		*kind = "initial"
	case "all":
	default:
		return &InvalidError{Path: path, Reason: fmt.Sprintf("%q is not initial or all", *kind)}
	}
	return nil
}

func (w *Window) validate(path string) error {
	if w == nil {
		return nil
	}
	switch {
	case w.LastDays != 0 && (w.From != nil || w.To != nil):
		return &InvalidError{Path: path, Reason: "give last_days or from/to, not both"}
	case w.LastDays == 0 && w.From == nil && w.To == nil:
		return &InvalidError{Path: path, Reason: "give last_days or from and/or to"}
	case w.LastDays < 0 || w.LastDays > MaxDays:
		return &InvalidError{Path: path + ".last_days", Reason: fmt.Sprintf("must be 1–%d", MaxDays)}
	case w.From != nil && w.To != nil && !w.From.Before(*w.To):
		return &InvalidError{Path: path + ".to", Reason: "must be after from"}
	}
	return nil
}

// span returns the window's bounds at time now; a zero time is an open end.
func (w *Window) span(now time.Time) (from, to time.Time) {
	if w == nil {
		return
	}
	if w.LastDays > 0 {
		return now.AddDate(0, 0, -w.LastDays), time.Time{}
	}
	if w.From != nil {
		from = *w.From
	}
	if w.To != nil {
		to = *w.To
	}
	return
}
