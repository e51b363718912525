package mailings

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/auth"
)

// Actions a mailing's events record.
const (
	EventCreate = "create"
	EventStart  = "start"
	EventPause  = "pause"
	EventResume = "resume"
	EventCancel = "cancel"
)

// Event is one step of a mailing steered by someone: created, started, paused,
// resumed, cancelled, with who (as they were then) and when.
type Event struct {
	Action string     `db:"action" json:"action"`
	Who    auth.Actor `db:"who" json:"who"`
	// Detail says why the system took the step (e.g. the upload that resumed it).
	Detail    string    `db:"detail" json:"detail,omitempty"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// recordEvent logs action on mailing id by the context's Actor, in the caller's transaction.
func recordEvent(ctx context.Context, q sqlx.ExecerContext, id int64, action, fallback, detail string) error {
	who := auth.ActorFrom(ctx, fallback)
	_, err := q.ExecContext(ctx, `
		WITH e AS (
		    INSERT INTO mailing_events (mailing_id, action, actor_kind, actor_user_id, actor_name, actor_email)
		    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id)
		INSERT INTO mailing_event_details (event_id, mailing_id, detail) SELECT id, $1, left($7, 1000) FROM e WHERE $7 <> ''`,
		id, action, who.Kind, who.UserID, who.Name, who.Email, detail)
	if err != nil {
		return fmt.Errorf("recording the %s of mailing %d: %w", action, id, err)
	}
	return nil
}

// events lists mailing id's events, oldest first.
func (s *Service) events(ctx context.Context, id int64) ([]Event, error) {
	out := []Event{}
	err := s.db.SelectContext(ctx, &out, `
		SELECT action, `+auth.ActorSQL("actor", "actor_name")+` AS who, coalesce(d.detail, '') AS detail, created_at
		FROM mailing_events e LEFT JOIN mailing_event_details d ON d.event_id = e.id
		WHERE e.mailing_id = $1 ORDER BY e.id`, id)
	if err != nil {
		return nil, fmt.Errorf("reading the events of mailing %d: %w", id, err)
	}
	return out, nil
}
