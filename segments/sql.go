package segments

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/lib/pq"
)

// The compiler turns a filter into one SQL query over customer numbers (customers.num,
// "cust"): each node is a set of custs, AND is INTERSECT (AND NOT is EXCEPT), OR is UNION,
// NOT is the complement within every customer. A node reads the summaries that answer it
// with an index (segment_customers, segment_groups; see migrations/0006_segments.sql) and
// falls back to the issue history, by its issued_at index, only for windows the
// summaries cannot answer. doc.go shows the plans of the main shapes.

// recentK is the number of latest initial issue times kept per customer.
const recentK = 5

const (
	universe = `SELECT num AS cust FROM customers`
	nothing  = `SELECT NULL::bigint AS cust WHERE false`
)

// builder compiles one filter; args are the query's parameters.
type builder struct {
	args []any
	now  time.Time // "last N days" counts back from here
	asOf time.Time // the summaries hold the issues before this instant
}

func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

// set returns a SELECT of the distinct custs matching f. Group refs are resolved.
func (b *builder) set(f *Filter) string {
	switch {
	case f.And != nil:
		var pos, neg []string
		for _, c := range f.And {
			if c.Not != nil {
				neg = append(neg, b.set(c.Not))
			} else {
				pos = append(pos, b.set(c))
			}
		}
		s := universe
		if len(pos) > 0 {
			s = join(pos, "INTERSECT")
		}
		if len(neg) > 0 {
			s = join([]string{s, join(neg, "UNION")}, "EXCEPT")
		}
		return s
	case f.Or != nil:
		parts := make([]string, len(f.Or))
		for i, c := range f.Or {
			parts[i] = b.set(c)
		}
		return join(parts, "UNION")
	case f.Not != nil:
		return join([]string{universe, b.set(f.Not)}, "EXCEPT")
	case f.Quantity != nil:
		return b.quantity(f.Quantity)
	default:
		return b.issuedFrom(f.IssuedFrom)
	}
}

func join(parts []string, op string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ") "+op+" (") + ")"
}

// interval is a closed range of counts; hi == math.MaxInt64 is open.
type interval struct{ lo, hi int64 }

const inf = math.MaxInt64

// intervals turns a comparison into the ranges of counts it accepts.
func (q *Quantity) intervals() []interval {
	switch q.Op {
	case "between":
		return []interval{{*q.Min, *q.Max}}
	}
	v := *q.Value
	switch q.Op {
	case "eq":
		return []interval{{v, v}}
	case "ne":
		if v == 0 {
			return []interval{{1, inf}}
		}
		return []interval{{0, v - 1}, {v + 1, inf}}
	case "lt":
		if v == 0 {
			return nil
		}
		return []interval{{0, v - 1}}
	case "lte":
		return []interval{{0, v}}
	case "gt":
		return []interval{{v + 1, inf}}
	default: // gte
		return []interval{{v, inf}}
	}
}

// cond is the SQL condition "n lies in one of ivs".
func (b *builder) cond(n string, ivs []interval) string {
	var or []string
	for _, iv := range ivs {
		switch {
		case iv.hi == inf:
			or = append(or, n+" >= "+b.arg(iv.lo))
		case iv.lo == iv.hi:
			or = append(or, n+" = "+b.arg(iv.lo))
		default:
			or = append(or, n+" BETWEEN "+b.arg(iv.lo)+" AND "+b.arg(iv.hi))
		}
	}
	if len(or) == 0 {
		return "false"
	}
	return strings.Join(or, " OR ")
}

// counted matches customers whose count n, over the rows of from (grouped by cust when
// groupBy), lies in ivs. Customers without a row count zero: when zero is accepted, the
// answer is every customer except those whose count is not accepted.
func (b *builder) counted(from, n string, groupBy bool, ivs []interval) string {
	zero := ivs[0].lo == 0
	clause := "WHERE"
	if groupBy {
		from += " GROUP BY cust"
		clause = "HAVING"
	}
	c := b.cond(n, ivs)
	if !zero {
		return "SELECT cust FROM " + from + " " + clause + " " + c
	}
	return join([]string{universe, "SELECT cust FROM " + from + " " + clause + " NOT (" + c + ")"}, "EXCEPT")
}

func (b *builder) quantity(q *Quantity) string {
	ivs := q.intervals()
	if len(ivs) == 0 {
		return nothing
	}
	from, to := b.span(q.Window)
	if from.IsZero() && to.IsZero() {
		if q.Groups == nil {
			n := "n_initial"
			if q.Kind == "all" {
				n = "n_all"
			}
			return b.counted("segment_customers", n, false, ivs)
		}
		n := "sum(n_initial)"
		if q.Kind == "all" {
			n = "sum(n_initial + n_repeat)"
		}
		return b.counted("segment_groups WHERE group_id = ANY ("+b.groups(q.Groups)+")", n, true, ivs)
	}
	if to.IsZero() && q.Groups == nil && q.Kind == "initial" {
		if s, ok := b.recent(from, ivs); ok {
			return s
		}
	}
	return b.counted(b.history(q.Groups, q.Kind, from, to), "count(*)", true, ivs)
}

// recent answers "initial issues since from, counted over all groups" from the latest
// issue times kept per customer: at least k since from is recent_initial[k] >= from. An
// interval [lo, hi] is atLeast(lo) EXCEPT atLeast(hi+1). It declines when a bound is past
// what is kept.
func (b *builder) recent(from time.Time, ivs []interval) (string, bool) {
	for _, iv := range ivs {
		if iv.lo > recentK || (iv.hi != inf && iv.hi+1 > recentK) {
			return "", false
		}
	}
	t := ""
	atLeast := func(k int64) string {
		if k == 0 {
			return universe
		}
		if t == "" {
			t = b.arg(from)
		}
		return fmt.Sprintf("SELECT cust FROM segment_customers WHERE recent_initial[%d] >= %s", k, t)
	}
	parts := make([]string, len(ivs))
	for i, iv := range ivs {
		parts[i] = atLeast(iv.lo)
		if iv.hi != inf {
			parts[i] = join([]string{parts[i], atLeast(iv.hi + 1)}, "EXCEPT")
		}
	}
	return join(parts, "UNION"), true
}

func (b *builder) issuedFrom(f *IssuedFrom) string {
	ids := distinct(f.Groups)
	from, to := b.span(f.Window)
	if to.IsZero() {
		// The summaries: one row per (group, customer), with the latest issue times.
		var where []string
		where = append(where, "group_id = ANY ("+b.arg(pq.Array(ids))+")")
		at := "last_at"
		if f.Kind == "initial" {
			where = append(where, "n_initial > 0")
			at = "last_initial_at"
		}
		if !from.IsZero() {
			where = append(where, at+" >= "+b.arg(from))
		}
		src := "segment_groups WHERE " + strings.Join(where, " AND ")
		switch {
		case f.Match == "all":
			return "SELECT cust FROM " + src + " GROUP BY cust HAVING count(*) = " + b.arg(len(ids))
		case len(ids) == 1:
			return "SELECT cust FROM " + src
		default:
			return "SELECT DISTINCT cust FROM " + src
		}
	}
	src := b.history(f.Groups, f.Kind, from, to)
	if f.Match == "all" {
		return "SELECT cust FROM " + src + " GROUP BY cust HAVING count(DISTINCT group_id) = " + b.arg(len(ids))
	}
	return "SELECT DISTINCT cust FROM " + src
}

// history is the issue rows (as cust, group_id) of a window, read by the issued_at index,
// up to the summaries' instant so that every node of a query answers as of one moment.
func (b *builder) history(gs []GroupRef, kind string, from, to time.Time) string {
	where := []string{"i.released_at IS NULL", "i.issued_at < " + b.arg(b.asOf)}
	if !to.IsZero() {
		where = append(where, "i.issued_at < "+b.arg(to))
	}
	if !from.IsZero() {
		where = append(where, "i.issued_at >= "+b.arg(from))
	}
	if gs != nil {
		where = append(where, "i.group_id = ANY ("+b.groups(gs)+")")
	}
	if kind == "initial" {
		where = append(where, "i.kind = 'initial'")
	}
	return "(SELECT c.num AS cust, i.group_id FROM issues i JOIN customers c ON c.id = i.customer_id WHERE " +
		strings.Join(where, " AND ") + ") h"
}

func (b *builder) groups(gs []GroupRef) string { return b.arg(pq.Array(distinct(gs))) }

// span returns the window's bounds; an end at or after the summaries' instant is open
// (nothing later is counted anyway).
func (b *builder) span(w *Window) (from, to time.Time) {
	from, to = w.span(b.now)
	if !to.IsZero() && !to.Before(b.asOf) {
		to = time.Time{}
	}
	return from, to
}

func distinct(gs []GroupRef) []int64 {
	seen := map[int64]bool{}
	var ids []int64
	for _, g := range gs {
		if !seen[g.ID] {
			seen[g.ID] = true
			ids = append(ids, g.ID)
		}
	}
	return ids
}
