package alerts

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// List returns a group's alerts newest first with their deliveries: up to limit
// (default and maximum 100, 1000) alerts with ids below before (0 for the newest).
// Archived groups keep their alerts. Errors: groups.ErrGroupNotFound.
func (c *Service) List(ctx context.Context, groupID, before int64, limit int) ([]Alert, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	if err := c.groups.Exists(ctx, groupID); err != nil {
		return nil, err
	}
	out := []Alert{}
	err := c.db.SelectContext(ctx, &out, `SELECT `+alertColumns+` FROM alerts a
		WHERE a.group_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3`, groupID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("listing the alerts of group %d: %w", groupID, err)
	}
	if len(out) == 0 {
		return out, nil
	}
	if err := c.withGroupNames(ctx, out); err != nil {
		return nil, fmt.Errorf("listing the alerts of group %d: %w", groupID, err)
	}
	ids := make([]int64, len(out))
	byID := make(map[int64]*Alert, len(out))
	for i := range out {
		ids[i] = out[i].ID
		byID[out[i].ID] = &out[i]
	}
	var ds []Delivery
	err = c.db.SelectContext(ctx, &ds, `
		SELECT alert_id, channel, target, status, attempts, last_error, sent_at FROM alert_deliveries
		WHERE alert_id = ANY($1) ORDER BY alert_id, channel, target`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("listing the alert deliveries of group %d: %w", groupID, err)
	}
	for _, d := range ds {
		a := byID[d.AlertID]
		a.Deliveries = append(a.Deliveries, d)
	}
	return out, nil
}
