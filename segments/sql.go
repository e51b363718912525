package segments

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// The compiler turns a filter into one SQL query over customer numbers (customers.num,
// "cust"): each node is a set of custs, AND is a semi-join (AND NOT an anti-join), OR is
// UNION, NOT the complement within every customer, kept symbolic until the top. A node reads the summaries that answer it
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
	args    []any
	now     time.Time // "last N days" counts back from here
	asOf    time.Time // the summaries hold the issues before this instant
	redAsOf time.Time // the redemption summaries hold the changes committed before this instant
}

func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

// set is a node's answer: the customers sql selects, or, when not is set, every customer
// but those. Keeping complements symbolic lets "never issued" or "not from B" be
// counted as |customers| − |B| and joined as anti-joins, instead of materialising
// nearly every customer.
//
// pred, when set, is a condition on segment_customers' columns that selects exactly the
// set (for a complement: the set it is the complement of). An OR whose parts all have
// one becomes a single scan of segment_customers — "between 2 and 5 codes OR from any of
// three groups" reads each customer's row once (0.14 s) instead of deduplicating the
// union of 690,000 rows (0.5–0.7 s). AND keeps its joins: an anti-join of two groups'
// index entries beats the scan.
type set struct {
	sql  string
	not  bool
	pred string
}

// node compiles f. Group refs are resolved.
func (b *builder) node(f *Filter) set {
	switch {
	case f.And != nil:
		parts := make([]set, len(f.And))
		for i, c := range f.And {
			parts[i] = b.node(c)
		}
		return andSets(parts)
	case f.Or != nil:
		parts := make([]set, len(f.Or))
		for i, c := range f.Or {
			parts[i] = b.node(c)
		}
		return orSets(parts)
	case f.Not != nil:
		s := b.node(f.Not)
		s.not = !s.not
		return s
	case f.Quantity != nil:
		return b.quantity(f.Quantity)
	case f.Redeemed != nil:
		return b.redeemed(f.Redeemed)
	default:
		return b.issuedFrom(f.IssuedFrom)
	}
}

// andSets: P1 ∩ P2 ∩ (U∖N1) ∩ (U∖N2) = (P1 ∩ P2) ∖ N1 ∖ N2, or U ∖ (N1 ∪ N2) when there
// is no positive part.
func andSets(parts []set) set {
	pos, neg := split(parts)
	if len(pos) == 0 {
		return set{sql: union(neg), not: true}
	}
	return set{sql: except(intersect(pos), neg)}
}

func allPreds(parts []set) bool {
	for _, p := range parts {
		if p.pred == "" {
			return false
		}
	}
	return true
}

func predSet(pred string) set {
	return set{sql: "SELECT cust FROM segment_customers WHERE " + pred, pred: pred}
}

// orSets: P1 ∪ P2 ∪ (U∖N1) ∪ (U∖N2) = U ∖ ((N1 ∩ N2) ∖ (P1 ∪ P2)).
func orSets(parts []set) set {
	pos, neg := split(parts)
	if len(neg) == 0 {
		if len(parts) > 1 && allPreds(parts) {
			conds := make([]string, len(parts))
			for i, p := range parts {
				conds[i] = "(" + p.pred + ")"
			}
			return predSet(strings.Join(conds, " OR "))
		}
		return set{sql: union(pos)}
	}
	return set{sql: except(intersect(neg), pos), not: true}
}

func split(parts []set) (pos, neg []string) {
	for _, p := range parts {
		if p.not {
			neg = append(neg, p.sql)
		} else {
			pos = append(pos, p.sql)
		}
	}
	return pos, neg
}

// intersect keeps the customers of the first set found in every other: semi-joins.
func intersect(sets []string) string {
	if len(sets) == 1 {
		return sets[0]
	}
	q := "SELECT s0.cust FROM (" + sets[0] + ") s0 WHERE "
	for i, s := range sets[1:] {
		if i > 0 {
			q += " AND "
		}
		q += fmt.Sprintf("EXISTS (SELECT 1 FROM (%s) s%d WHERE s%d.cust = s0.cust)", s, i+1, i+1)
	}
	return q
}

// except keeps the customers of a found in none of minus: anti-joins.
func except(a string, minus []string) string {
	if len(minus) == 0 {
		return a
	}
	q := "SELECT e0.cust FROM (" + a + ") e0 WHERE "
	for i, s := range minus {
		if i > 0 {
			q += " AND "
		}
		q += fmt.Sprintf("NOT EXISTS (SELECT 1 FROM (%s) e%d WHERE e%d.cust = e0.cust)", s, i+1, i+1)
	}
	return q
}

func union(sets []string) string {
	if len(sets) == 1 {
		return sets[0]
	}
	return "(" + strings.Join(sets, ") UNION (") + ")"
}

// materialize returns a SELECT of s's customers, complements included.
func (s set) materialize() string {
	if !s.not {
		return s.sql
	}
	return except(universe, []string{s.sql})
}

// count returns a SELECT of the number of s's customers.
func (s set) count() string {
	if !s.not {
		return "SELECT count(*) FROM (" + s.sql + ") s"
	}
	return "SELECT " + customerCount + " - (SELECT count(*) FROM (" + s.sql + ") s)"
}

// customerCount is the number of customers (migration 0031: the counts each insert
// appended, summed now and then by the folder), in the statement's snapshot.
const customerCount = "(SELECT coalesce(sum(n), 0) FROM segment_customer_counts)"

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
func (b *builder) counted(from, n string, groupBy bool, ivs []interval) set {
	zero := ivs[0].lo == 0
	clause := "WHERE"
	if groupBy {
		from += " GROUP BY cust"
		clause = "HAVING"
	}
	c := b.cond(n, ivs)
	if !zero {
		return set{sql: "SELECT cust FROM " + from + " " + clause + " " + c}
	}
	return set{sql: "SELECT cust FROM " + from + " " + clause + " NOT (" + c + ")", not: true}
}

func (b *builder) quantity(q *Quantity) set {
	ivs := q.intervals()
	if len(ivs) == 0 {
		return set{sql: nothing}
	}
	from, to := b.span(q.Window)
	if from.IsZero() && to.IsZero() {
		if q.Groups == nil {
			n := "n_initial"
			if q.Kind == "all" {
				n = "n_all"
			}
			s := b.counted("segment_customers", n, false, ivs)
			s.pred = strings.TrimPrefix(s.sql, "SELECT cust FROM segment_customers WHERE ")
			return s
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
	return b.counted(b.window(q.Groups, q.Kind, from, to), "sum(n)", true, ivs)
}

// recent answers "initial issues since from, counted over all groups" from the latest
// issue times kept per customer: at least k since from is recent_initial[k] >= from. An
// interval [lo, hi] is atLeast(lo) minus atLeast(hi+1). It declines when a bound is past
// what is kept.
func (b *builder) recent(from time.Time, ivs []interval) (set, bool) {
	for _, iv := range ivs {
		if iv.lo > recentK || (iv.hi != inf && iv.hi+1 > recentK) {
			return set{}, false
		}
	}
	t := ""
	atLeast := func(k int64) string {
		if t == "" {
			t = b.arg(from)
		}
		return fmt.Sprintf("SELECT cust FROM segment_customers WHERE recent_initial[%d] >= %s", k, t)
	}
	parts := make([]set, len(ivs))
	for i, iv := range ivs {
		switch {
		case iv.lo == 0 && iv.hi == inf:
			parts[i] = set{sql: nothing, not: true}
		case iv.lo == 0:
			parts[i] = set{sql: atLeast(iv.hi + 1), not: true}
		case iv.hi == inf:
			parts[i] = set{sql: atLeast(iv.lo)}
		default:
			parts[i] = set{sql: except(atLeast(iv.lo), []string{atLeast(iv.hi + 1)})}
		}
	}
	return orSets(parts), true
}

func (b *builder) issuedFrom(f *IssuedFrom) set {
	ids := distinct(f.Groups)
	from, to := b.span(f.Window)
	if to.IsZero() {
		// The summaries: one row per (group, customer), with the latest issue times.
		var where []string
		groups := b.arg(pq.Array(ids))
		where = append(where, "group_id = ANY ("+groups+")")
		at := "last_at"
		if f.Kind == "initial" {
			where = append(where, "n_initial > 0")
			at = "last_initial_at"
		}
		if !from.IsZero() {
			where = append(where, at+" >= "+b.arg(from))
		}
		src := "segment_groups WHERE " + strings.Join(where, " AND ")
		// Without a window, initial issues: the groups listed on the customer's row.
		pred := ""
		if from.IsZero() && f.Kind == "initial" {
			op := " && "
			if f.Match == "all" {
				op = " @> "
			}
			pred = "groups_initial" + op + groups + "::bigint[]"
		}
		switch {
		case f.Match == "all":
			return set{sql: "SELECT cust FROM " + src + " GROUP BY cust HAVING count(*) = " + b.arg(len(ids)), pred: pred}
		case len(ids) == 1:
			return set{sql: "SELECT cust FROM " + src, pred: pred}
		default:
			return set{sql: "SELECT DISTINCT cust FROM " + src, pred: pred}
		}
	}
	// The window's rows sum per customer (and group) to the live issues: a release's -1
	// cancels the issue it released.
	src := b.window(f.Groups, f.Kind, from, to)
	if f.Match == "all" {
		return set{sql: "SELECT cust FROM (SELECT cust, group_id FROM " + src + " GROUP BY cust, group_id HAVING sum(n) > 0) g GROUP BY cust HAVING count(*) = " + b.arg(len(ids))}
	}
	return set{sql: "SELECT cust FROM " + src + " GROUP BY cust HAVING sum(n) > 0"}
}

var placeholder = regexp.MustCompile(`\$[0-9]+`)

// compact renumbers the placeholders sql uses as $1, $2… in order of first use and
// returns the arguments they name: parts of a filter merged into one condition leave
// some of the builder's arguments unused, and PostgreSQL refuses a statement that does
// not use all of them.
func compact(sql string, args []any) (string, []any) {
	seen := map[string]string{}
	var out []any
	sql = placeholder.ReplaceAllStringFunc(sql, func(p string) string {
		if q, ok := seen[p]; ok {
			return q
		}
		n, _ := strconv.Atoi(p[1:])
		out = append(out, args[n-1])
		q := "$" + strconv.Itoa(len(out))
		seen[p] = q
		return q
	})
	return sql, out
}

// window is the issues of a window (as rows of cust, group_id and n, the number of
// issues the row stands for, negative for released ones; a customer's rows sum to its
// live issues), as of the summaries' instant so that every node of a query
// answers as of one moment: the window's whole hours from segment_hours (migration 0031;
// one index range per group, numbered by customer), and the partial hours at its ends
// from the history, by its issued_at index (at most two hours' issues). Without groups,
// every group's range is read.
func (b *builder) window(gs []GroupRef, kind string, from, to time.Time) string {
	lo, hi, whole := wholeHours(from, to)
	if !whole {
		return "(" + b.history(gs, kind, from, to) + ") h"
	}
	var parts []string
	if !from.IsZero() && from.Before(hourStart(lo)) {
		parts = append(parts, b.history(gs, kind, from, hourStart(lo)))
	}
	where := []string{}
	if gs != nil {
		where = append(where, "group_id = ANY ("+b.groups(gs)+")")
	} else {
		where = append(where, "group_id = ANY (ARRAY("+hourGroups+"))")
	}
	if !from.IsZero() {
		where = append(where, "hour >= "+b.arg(lo))
	}
	if !to.IsZero() {
		where = append(where, "hour < "+b.arg(hi))
	}
	// A release appended -1 beside the fold's row (migration 0031): a key's rows sum to
	// its live issues, and a customer whose rows sum to 0 counts zero.
	n := "n_initial + n_repeat"
	if kind == "initial" {
		n = "n_initial"
		where = append(where, "n_initial <> 0")
	}
	parts = append(parts, "SELECT cust, group_id, "+n+" AS n FROM segment_hours WHERE "+strings.Join(where, " AND "))
	if !to.IsZero() && hourStart(hi).Before(to) {
		parts = append(parts, b.history(gs, kind, hourStart(hi), to))
	}
	return "(" + strings.Join(parts, " UNION ALL ") + ") h"
}

// hourGroups lists the groups segment_hours has rows of, by a skip scan of its key (one
// index probe per group): a window over all groups reads each group's range.
const hourGroups = `WITH RECURSIVE g AS (
    SELECT min(group_id) AS id FROM segment_hours
    UNION ALL
    SELECT (SELECT min(group_id) FROM segment_hours WHERE group_id > g.id) FROM g WHERE g.id IS NOT NULL)
SELECT id FROM g WHERE id IS NOT NULL`

// wholeHours returns the hours (numbered as segment_hour does: since 1970 UTC) that lie
// wholly inside [from, to): [lo, hi), either end open when from or to is zero. whole is
// false when there is none.
func wholeHours(from, to time.Time) (lo, hi int64, whole bool) {
	if !from.IsZero() {
		lo = from.Truncate(time.Hour).Unix() / 3600
		if !hourStart(lo).Equal(from) {
			lo++
		}
	}
	if !to.IsZero() {
		hi = to.Truncate(time.Hour).Unix() / 3600
	}
	return lo, hi, from.IsZero() || to.IsZero() || lo < hi
}

// hourStart is the instant hour h begins.
func hourStart(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

// history is the issue rows of [from, to) (either end open when zero) as rows of cust,
// group_id and n = 1, read by the issued_at index up to the summaries' instant.
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
	return "SELECT c.num AS cust, i.group_id, 1 AS n FROM issues i JOIN customers c ON c.id = i.customer_id WHERE " +
		strings.Join(where, " AND ")
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
