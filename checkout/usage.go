package checkout

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/offers"
)

// usageQuery reads what a group has used of its limits from the redemption counters.
// It locks the group's counter row (creating it when the group has none yet) in the
// caller's transaction: the counter row is the group's checkout lock (migration 0026),
// so a redemption that has not yet taken its slot waits for the edit of the caps to
// commit and then reads the new caps, instead of slipping in between the check and the
// new cap. The largest per-customer count reads the group's range of
// redemption_customer_counts' primary key.
const usageQuery = `
INSERT INTO redemption_counts AS c (group_id) VALUES ($1)
ON CONFLICT (group_id) DO UPDATE SET used = c.used
RETURNING used, discounted`

// usageCustomerQuery is the most live redemptions of one customer, read in a statement
// of its own after usageQuery holds the lock (a statement's snapshot is taken when it
// starts: one that waited for the lock would not see the redemption it waited for).
const usageCustomerQuery = `SELECT COALESCE(max(used), 0) FROM redemption_customer_counts WHERE group_id = $1`

// Usage is what group has used of its limits — slots taken by held, succeeded and
// refunded redemptions, the most live redemptions of one customer, and the discount held
// or given minus refunds — read inside q's transaction. It is groups.Config.Usage: a cap
// or the budget is never lowered below it.
func Usage(ctx context.Context, q sqlx.QueryerContext, group int64) (offers.Usage, error) {
	var u offers.Usage
	err := q.QueryRowxContext(ctx, usageQuery, group).Scan(&u.Redemptions, &u.Discounted)
	if err == nil {
		err = q.QueryRowxContext(ctx, usageCustomerQuery, group).Scan(&u.MaxPerCustomer)
	}
	if err != nil {
		return offers.Usage{}, fmt.Errorf("reading the redemption counters of group %d: %w", group, err)
	}
	return u, nil
}

// CodeRedemptions counts the slots taken by held, succeeded and refunded redemptions of
// each code (redemption_code_counts), by code id; a code without a redemption is absent.
// It is groups.Config.CodeRedemptions: a promotion code with a redemption has its
// restrictions locked.
func CodeRedemptions(ctx context.Context, q sqlx.QueryerContext, codeIDs []int64) (map[int64]int64, error) {
	rows, err := q.QueryxContext(ctx, `SELECT code_id, used FROM redemption_code_counts WHERE code_id = ANY($1) AND used > 0`, pq.Array(codeIDs))
	if err != nil {
		return nil, fmt.Errorf("reading the redemption counters of codes: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]int64, len(codeIDs))
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
