package segments

import (
	"fmt"
	"strings"

	"github.com/lib/pq"
)

// Counts from bitmaps (migrations 0010, 0023). segment_bits keeps, per chunk of 4,096
// customer numbers, the customers issued a code from each group and those holding k codes
// (k = 1..31, and 32 for 32 or more), initial and all kinds; and the customers who used a
// code of each group and those with k uses. A filter made only of
//
//   - issued_from without a window, initial issues (any or all of the groups),
//   - quantity without a window or groups whose accepted counts are within the buckets
//     (every count from 1 to 31 exactly, or "at least k" for k ≤ 32); a count that
//     accepts zero as the complement of the counts it rejects, when those are,
//   - redeemed without a window: over all groups as quantity, or "at least once" or
//     "never" from some groups (the reminder's "not redeemed"),
//   - and, or and not of these,
//
// is one bit expression per chunk: ANDs are &, ORs are |, AND NOTs are & ~, and a
// complement is carried up symbolically (De Morgan) and taken once at the top, from the
// number of customers. Its count is the sum of the chunks' bit_count, from a few hundred
// rows whatever the number of customers matched. Other filters (windows, per-group
// quantities, counts past 31 that are not "at least k") are counted by their SQL.
const (
	bitBuckets = 32
	zeroBits   = "B'0'::bit(4096)"
)

type bitBuilder struct {
	args  []any
	cols  []string // the leaf aggregates, one column each
	conds []string // which rows of segment_bits the leaves read
}

func (b *bitBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

// bitCount returns the count statement of f over segment_bits, or false when the
// bitmaps do not answer f. A filter whose answer is a complement (a top-level NOT, a
// count that accepts zero, "not redeemed from G", an OR with a NOT in it) is counted as
// every customer minus the bits of what it excludes: customers.num is never reused and
// customers are not deleted, so every bit stands for a row of customers and
// count(customers) − bit_count is exact. The number of customers is read from
// segment_customer_counts (migration 0031: each insert of customers appends how many,
// the folder sums the rows), not by scanning customers (50-190 ms at 1M).
func bitCount(f *Filter) (string, []any, bool) {
	b := &bitBuilder{}
	e, neg, ok := b.expr(f)
	if !ok || len(b.cols) == 0 {
		return "", nil, false
	}
	count := fmt.Sprintf("coalesce(sum(bit_count(%s)), 0)::bigint", e)
	if neg {
		count = customerCount + " - " + count
	}
	return fmt.Sprintf("SELECT %s FROM (SELECT chunk, %s FROM segment_bits WHERE %s GROUP BY chunk) x",
		count, strings.Join(b.cols, ", "), strings.Join(b.conds, " OR ")), b.args, true
}

// expr is f's bit expression over the leaf columns, or false. When neg is set the
// answer is the complement of the expression among every customer (De Morgan: an AND
// of complements is the complement of an OR, and an OR with a complement in it is the
// complement of an AND), so a NOT never needs a bitmap of every customer.
func (b *bitBuilder) expr(f *Filter) (e string, neg bool, ok bool) {
	switch {
	case f.IssuedFrom != nil:
		i := f.IssuedFrom
		if i.Window != nil || i.Kind != "initial" {
			return "", false, false
		}
		return b.leaf(1, distinct(i.Groups), i.Match == "all"), false, true
	case f.Quantity != nil:
		q := f.Quantity
		if q.Window != nil || q.Groups != nil {
			return "", false, false
		}
		kind := 2
		if q.Kind == "all" {
			kind = 3
		}
		return b.buckets(kind, q.intervals())
	case f.Redeemed != nil:
		r := f.Redeemed
		if r.Window != nil {
			return "", false, false
		}
		ivs := r.counts().intervals()
		if r.Groups == nil {
			return b.buckets(5, ivs)
		}
		// Customers with a use of any of the groups, "at least one" over the groups, or
		// its complement, "none" (eq 0, lt 1, lte 0): the reminder's "not redeemed".
		switch {
		case len(ivs) == 1 && ivs[0] == (interval{1, inf}):
			return b.leaf(4, distinct(r.Groups), false), false, true
		case len(ivs) == 1 && ivs[0] == (interval{0, 0}):
			return b.leaf(4, distinct(r.Groups), false), true, true
		}
		return "", false, false
	case f.Not != nil:
		e, neg, ok := b.expr(f.Not)
		return e, !neg, ok
	case f.And != nil:
		var pos, negs []string
		for _, c := range f.And {
			e, neg, ok := b.expr(c)
			if !ok {
				return "", false, false
			}
			if neg {
				negs = append(negs, e)
			} else {
				pos = append(pos, e)
			}
		}
		if len(pos) == 0 { // not A and not B = not (A or B)
			return "(" + strings.Join(negs, " | ") + ")", true, true
		}
		out := "(" + strings.Join(pos, " & ")
		for _, n := range negs {
			out += " & ~" + n
		}
		return out + ")", false, true
	case f.Or != nil:
		var pos, negs []string
		for _, c := range f.Or {
			e, neg, ok := b.expr(c)
			if !ok {
				return "", false, false
			}
			if neg {
				negs = append(negs, e)
			} else {
				pos = append(pos, e)
			}
		}
		if len(negs) == 0 {
			return "(" + strings.Join(pos, " | ") + ")", false, true
		}
		// A or not B = not (B and not A)
		out := "(" + strings.Join(negs, " & ")
		for _, p := range pos {
			out += " & ~" + p
		}
		return out + ")", true, true
	}
	return "", false, false
}

// buckets is the bit expression of a count over all groups from the count buckets of
// kind (2, 3: issues; 5: uses). Customers with no code are in no bucket, so counts
// that accept zero are the complement (neg) of the counts they reject, when those are
// within the buckets: every count from 1 to 31 exactly, or "at least k" for k ≤ 32.
func (b *bitBuilder) buckets(kind int, ivs []interval) (string, bool, bool) {
	neg := len(ivs) > 0 && ivs[0].lo == 0
	if neg {
		ivs = complement(ivs)
	}
	var keys []int64
	for _, iv := range ivs {
		switch {
		case iv.hi == inf && iv.lo <= bitBuckets:
			for k := iv.lo; k <= bitBuckets; k++ {
				keys = append(keys, k)
			}
		case iv.hi != inf && iv.hi < bitBuckets:
			for k := iv.lo; k <= iv.hi; k++ {
				keys = append(keys, k)
			}
		default:
			return "", false, false
		}
	}
	if len(keys) == 0 {
		return zeroBits, neg, true // no count accepted (lt 0), or every count (neg)
	}
	return b.leaf(kind, keys, false), neg, true
}

// complement returns the counts from 1 up that ivs (sorted, disjoint, the first
// starting at 0, as intervals makes them) does not accept.
func complement(ivs []interval) []interval {
	var out []interval
	next := int64(0)
	for _, iv := range ivs {
		if iv.lo > next {
			out = append(out, interval{next, iv.lo - 1})
		}
		if iv.hi == inf {
			return out
		}
		next = iv.hi + 1
	}
	return append(out, interval{next, inf})
}

// leaf adds the column of "in any (or all) of the keys' bitmaps of this kind".
func (b *bitBuilder) leaf(kind int, keys []int64, all bool) string {
	cond := fmt.Sprintf("kind = %d AND key = ANY (%s::bigint[])", kind, b.arg(pq.Array(keys)))
	col := fmt.Sprintf("l%d", len(b.cols))
	agg := fmt.Sprintf("coalesce(bit_or(bits) FILTER (WHERE %s), %s)", cond, zeroBits)
	if all {
		// A chunk lacking one of the groups' rows has none of its customers in all.
		agg = fmt.Sprintf("CASE WHEN count(*) FILTER (WHERE %s) = %d THEN bit_and(bits) FILTER (WHERE %s) ELSE %s END",
			cond, len(keys), cond, zeroBits)
	}
	b.cols = append(b.cols, agg+" AS "+col)
	b.conds = append(b.conds, "("+cond+")")
	return col
}
