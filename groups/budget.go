package groups

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// Budget is a group's discount budget and the currency of its terms, for reports.
type Budget struct {
	// Budget is the total discount budget in minor units; nil: none.
	Budget *int64 `db:"budget"`
	// Currency is the terms' ISO 4217 currency; "" for a group without fixed-currency terms.
	Currency string `db:"currency"`
}

// Budgets returns the budget and currency of the groups of ids that exist (live or
// archived), by id.
func (s *Store) Budgets(ctx context.Context, ids []int64) (map[int64]Budget, error) {
	var rows []struct {
		ID int64 `db:"id"`
		Budget
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT id, budget, coalesce(terms->>'currency', '') AS currency FROM groups WHERE id = ANY ($1)`,
		pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("reading the budgets of groups: %w", err)
	}
	out := make(map[int64]Budget, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Budget
	}
	return out, nil
}
