package checkout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/offers"
)

// usageQuery reads what a group has used of its limits from the redemption counters.
// It locks the group's counter row (FOR UPDATE) in the caller's transaction, so a
// redemption that has not yet taken its slot waits for the edit of the caps to commit
// instead of slipping in between the check and the new cap. The largest per-customer
// count reads the group's range of redemption_customer_counts' primary key.
const usageQuery = `
SELECT COALESCE((SELECT used FROM redemption_counts WHERE group_id = $1 FOR UPDATE), 0),
       COALESCE((SELECT discounted FROM redemption_counts WHERE group_id = $1), 0),
       COALESCE((SELECT max(used) FROM redemption_customer_counts WHERE group_id = $1), 0)`

// Usage is what group has used of its limits — slots taken by held, succeeded and
// refunded redemptions, the most live redemptions of one customer, and the discount held
// or given minus refunds — read inside q's transaction. It is groups.Config.Usage: a cap
// or the budget is never lowered below it.
func Usage(ctx context.Context, q sqlx.QueryerContext, group int64) (offers.Usage, error) {
	var u offers.Usage
	err := q.QueryRowxContext(ctx, usageQuery, group).Scan(&u.Redemptions, &u.Discounted, &u.MaxPerCustomer)
	if errors.Is(err, sql.ErrNoRows) {
		return offers.Usage{}, nil
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
