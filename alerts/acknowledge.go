package alerts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"promopool/auth"
)

// ErrAlertNotFound: no alert has that id.
var ErrAlertNotFound = errors.New("no such alert")

// Acknowledge marks the alert seen by the context's Actor, as they are now, and
// returns it with its deliveries. The first acknowledgement stands: acknowledging again
// changes nothing (a retried request is harmless). Errors: ErrAlertNotFound.
func (c *Service) Acknowledge(ctx context.Context, id int64) (*Alert, error) {
	who := auth.ActorFrom(ctx, "")
	var groupID int64
	err := c.db.GetContext(ctx, &groupID, `
		UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, now()),
			acknowledged_kind = coalesce(acknowledged_kind, $2), acknowledged_user_id = CASE WHEN acknowledged_at IS NULL THEN $3 ELSE acknowledged_user_id END,
			acknowledged_name = coalesce(acknowledged_name, $4), acknowledged_email = coalesce(acknowledged_email, $5)
		WHERE id = $1 RETURNING group_id`, id, who.Kind, who.UserID, who.Name, who.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("alert %d: %w", id, ErrAlertNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("acknowledging alert %d: %w", id, err)
	}
	list, err := c.List(ctx, groupID, id+1, 1)
	if err != nil {
		return nil, err
	}
	if len(list) != 1 || list[0].ID != id {
		return nil, fmt.Errorf("alert %d: %w", id, ErrAlertNotFound)
	}
	return &list[0], nil
}
