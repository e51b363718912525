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
//   - quantity without a window or groups whose accepted counts exclude zero and are
//     within the buckets (every count from 1 to 31 exactly, or "at least k" for k ≤ 32),
//   - redeemed without a window: over all groups as quantity, or "at least once" from
//     any of some groups,
//   - and, or, and "and not" (a NOT under an AND that has a positive part)
//
// is one bit expression per chunk: ANDs are &, ORs are |, AND NOTs are & ~. Its count
// is the sum of the chunks' bit_count, from a few hundred rows whatever the number of
// customers matched. Other filters (windows, per-group quantities, counts that include
// zero or pass 31, a NOT needing every customer) are counted by their SQL.
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
// bitmaps do not answer f.
func bitCount(f *Filter) (string, []any, bool) {
	b := &bitBuilder{}
	e, ok := b.expr(f)
	if !ok || len(b.cols) == 0 {
		return "", nil, false
	}
	return fmt.Sprintf("SELECT coalesce(sum(bit_count(%s)), 0)::bigint FROM (SELECT chunk, %s FROM segment_bits WHERE %s GROUP BY chunk) x",
		e, strings.Join(b.cols, ", "), strings.Join(b.conds, " OR ")), b.args, true
}

// expr is f's bit expression over the leaf columns, or false.
func (b *bitBuilder) expr(f *Filter) (string, bool) {
	switch {
	case f.IssuedFrom != nil:
		i := f.IssuedFrom
		if i.Window != nil || i.Kind != "initial" {
			return "", false
		}
		return b.leaf(1, distinct(i.Groups), i.Match == "all"), true
	case f.Quantity != nil:
		q := f.Quantity
		if q.Window != nil || q.Groups != nil {
			return "", false
		}
		kind := 2
		if q.Kind == "all" {
			kind = 3
		}
		return b.buckets(kind, q)
	case f.Redeemed != nil:
		r := f.Redeemed
		if r.Window != nil {
			return "", false
		}
		if r.Groups == nil {
			return b.buckets(5, r.counts())
		}
		// Customers with a use of any of the groups: "at least one" over the groups.
		if ivs := r.counts().intervals(); len(ivs) == 1 && ivs[0] == (interval{1, inf}) {
			return b.leaf(4, distinct(r.Groups), false), true
		}
		return "", false
	case f.And != nil:
		var pos, neg []string
		for _, c := range f.And {
			inner, bits := c, &pos
			if c.Not != nil {
				inner, bits = c.Not, &neg
			}
			e, ok := b.expr(inner)
			if !ok {
				return "", false
			}
			*bits = append(*bits, e)
		}
		if len(pos) == 0 {
			return "", false // only NOTs: the complement of every customer
		}
		out := "(" + strings.Join(pos, " & ")
		for _, n := range neg {
			out += " & ~" + n
		}
		return out + ")", true
	case f.Or != nil:
		parts := make([]string, len(f.Or))
		for i, c := range f.Or {
			e, ok := b.expr(c)
			if !ok {
				return "", false
			}
			parts[i] = e
		}
		return "(" + strings.Join(parts, " | ") + ")", true
	}
	return "", false // a NOT not under an AND: needs every customer
}

// buckets is the bit expression of a count over all groups from the count buckets of
// kind (2, 3: issues; 5: uses), when the accepted counts exclude zero and are within
// the buckets.
func (b *bitBuilder) buckets(kind int, q *Quantity) (string, bool) {
	var keys []int64
	for _, iv := range q.intervals() {
		switch {
		case iv.lo == 0: // customers with no code are in no bitmap
			return "", false
		case iv.hi == inf && iv.lo <= bitBuckets:
			for k := iv.lo; k <= bitBuckets; k++ {
				keys = append(keys, k)
			}
		case iv.hi != inf && iv.hi < bitBuckets:
			for k := iv.lo; k <= iv.hi; k++ {
				keys = append(keys, k)
			}
		default:
			return "", false
		}
	}
	if len(keys) == 0 {
		return zeroBits, true // no count accepted (lt 0): nobody
	}
	return b.leaf(kind, keys, false), true
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
