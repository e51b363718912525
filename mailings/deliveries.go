package mailings

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Delivery is what a mailing delivered, for reports: its name and state, and its
// recipients by outcome (summed from its batches' counters, as Get's progress is).
type Delivery struct {
	ID         int64      `db:"id" json:"id"`
	Name       string     `db:"name" json:"name"`
	Status     string     `db:"status" json:"status"`
	StartedAt  *time.Time `db:"started_at" json:"started_at"`
	Recipients int64      `db:"recipients" json:"recipients"`
	Sent       int64      `db:"sent" json:"sent"`
	Failed     int64      `db:"failed" json:"failed"`
	Skipped    int64      `db:"skipped" json:"skipped"`
}

// Deliveries returns the deliveries of the mailings of ids that exist, by id.
func (s *Service) Deliveries(ctx context.Context, ids []int64) (map[int64]Delivery, error) {
	out := make(map[int64]Delivery, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Delivery
	err := s.db.SelectContext(ctx, &rows, `
		SELECT m.id, m.name, m.status, m.started_at,
		       coalesce(b.recipients, 0) AS recipients, coalesce(b.sent, 0) AS sent,
		       coalesce(b.failed, 0) AS failed, coalesce(b.skipped, 0) AS skipped
		FROM mailings m
		LEFT JOIN LATERAL (
		    SELECT sum(recipients) AS recipients, sum(sent) AS sent, sum(failed) AS failed, sum(skipped) AS skipped
		    FROM mailing_batches WHERE mailing_id = m.id
		) b ON true
		WHERE m.id = ANY ($1)`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("reading the deliveries of mailings: %w", err)
	}
	for _, d := range rows {
		out[d.ID] = d
	}
	return out, nil
}
