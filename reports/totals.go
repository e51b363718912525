package reports

import (
	"context"
	"fmt"
)

// Totals are a group's redemption figures over all time, for the Prometheus gauges.
type Totals struct {
	Uses     int64  `db:"uses"`
	Discount int64  `db:"discount"`
	Failed   int64  `db:"failed"`
	Currency string `db:"currency"`
}

// Totals returns every group's all-time redemption figures, by group id (groups without
// a redemption are left out). It sums the daily rollups: a few rows per group and day.
func (s *Service) Totals(ctx context.Context) (map[int64]Totals, error) {
	var rows []struct {
		GroupID int64 `db:"group_id"`
		Totals
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT group_id, sum(uses) AS uses, sum(discount) AS discount, sum(failed) AS failed, min(currency) AS currency
		FROM report_redemption_days GROUP BY group_id`); err != nil {
		return nil, fmt.Errorf("reading the redemption totals: %w", err)
	}
	out := make(map[int64]Totals, len(rows))
	for _, r := range rows {
		out[r.GroupID] = r.Totals
	}
	return out, nil
}
