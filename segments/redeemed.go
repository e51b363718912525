package segments

import (
	"fmt"
	"strings"
	"time"
)

// redeemed compiles a Redeemed node over the redemption summaries (migration 0023):
// segment_redeemers, one row per (group, customer) with the uses' instants newest first,
// and segment_redeemer_customers, the same over all groups. A node reads one row per
// customer when it names at most one group (or none): counts are n_uses, and "at least
// k uses since T" is used_at[k] >= T (the reminder's "not redeemed in the last 14 days"
// is one range of segment_redeemers_last). Several groups sum their rows per customer;
// a bounded window counts the instants inside it. Customers who never redeemed count
// zero, as in quantity.
func (b *builder) redeemed(r *Redeemed) set {
	ivs := r.counts().intervals()
	if len(ivs) == 0 {
		return set{sql: nothing}
	}
	table, where := "segment_redeemer_customers", "true"
	single := true
	if r.Groups != nil {
		ids := distinct(r.Groups)
		table, where = "segment_redeemers", "group_id = ANY ("+b.groups(r.Groups)+")"
		single = len(ids) == 1
	}
	from, to := b.redemptionSpan(r.Window)
	switch {
	case from.IsZero() && to.IsZero():
		if single {
			return b.countedRows(table, where, "n_uses", false, ivs)
		}
		return b.countedRows(table, where, "sum(n_uses)", true, ivs)
	case to.IsZero() && single:
		return b.usedSince(table, where, from, ivs)
	}
	inWindow := []string{}
	if !from.IsZero() {
		inWindow = append(inWindow, "t >= "+b.arg(from))
	}
	if !to.IsZero() {
		inWindow = append(inWindow, "t < "+b.arg(to))
	}
	n := "(SELECT count(*) FROM unnest(used_at) t WHERE " + strings.Join(inWindow, " AND ") + ")"
	if single {
		return b.countedRows(table, where, n, false, ivs)
	}
	return b.countedRows(table, where, "sum("+n+")", true, ivs)
}

// countedRows matches customers whose count n over the rows of table where cond (summed
// per customer when groupBy) lies in ivs; customers without a row count zero, so when
// zero is accepted the answer is every customer except those whose count is not.
func (b *builder) countedRows(table, cond, n string, groupBy bool, ivs []interval) set {
	c := b.cond(n, ivs)
	zero := ivs[0].lo == 0
	if zero {
		c = "NOT (" + c + ")"
	}
	q := "SELECT cust FROM " + table + " WHERE " + cond
	if groupBy {
		q += " GROUP BY cust HAVING " + c
	} else {
		q += " AND (" + c + ")"
	}
	return set{sql: q, not: zero}
}

// usedSince answers counts of uses since from when each customer has one row: at least
// k uses since from is used_at[k] >= from (newest first), and [lo, hi] is at least lo
// minus at least hi+1.
func (b *builder) usedSince(table, cond string, from time.Time, ivs []interval) set {
	t := b.arg(from)
	atLeast := func(k int64) string {
		return fmt.Sprintf("SELECT cust FROM %s WHERE %s AND used_at[%d] >= %s", table, cond, k, t)
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
	return orSets(parts)
}

// redemptionSpan returns the window's bounds; an end at or after the redemption
// summaries' instant is open (nothing later is counted anyway).
func (b *builder) redemptionSpan(w *Window) (from, to time.Time) {
	from, to = w.span(b.now)
	if !to.IsZero() && !to.Before(b.redAsOf) {
		to = time.Time{}
	}
	return from, to
}

// hasRedeemed says whether f has a redeemed node (its answer then also depends on the
// redemption summaries' instant).
func hasRedeemed(f *Filter) bool {
	switch {
	case f.Redeemed != nil:
		return true
	case f.Not != nil:
		return hasRedeemed(f.Not)
	}
	for _, c := range append(append([]*Filter{}, f.And...), f.Or...) {
		if hasRedeemed(c) {
			return true
		}
	}
	return false
}
