package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/auth"
)

// Actions recorded in the activity log.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionUpload  = "upload"
	ActionUndo    = "undo_upload"
	ActionArchive = "archive"
	ActionDelete  = "delete"
	// ActionPause and ActionActivate change a group's status (SPEC §10).
	ActionPause    = "pause"
	ActionActivate = "activate"
	// ActionMailingResumed: a mailing paused because the group ran out of codes resumed
	// by itself, its groups able to cover its waiting recipients again.
	ActionMailingResumed = "mailing_resumed"
)

// LogMailingResumed records in the group's activity log that mailing resumed by itself
// (promopool is the actor), with why and how many recipients were waiting.
func (s *Store) LogMailingResumed(ctx context.Context, groupID, mailingID, waiting int64, why string) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ctx = auth.WithActor(ctx, auth.Actor{Kind: auth.ActorSystem, Name: "promopool"})
	if err := appendActivity(ctx, tx, groupID, "promopool", ActionMailingResumed, nil,
		map[string]any{"mailing_id": mailingID, "waiting": waiting, "why": why}); err != nil {
		return err
	}
	return tx.Commit()
}

// Activity is one entry of a group's append-only activity log.
type Activity struct {
	ID      int64  `db:"id" json:"id"`
	GroupID int64  `db:"group_id" json:"group_id"`
	Actor   string `db:"actor" json:"actor"`
	// Who is the actor with their kind, user id, name and email as they were then
	// (entries older than named users have kind "system" and the actor as name).
	Who       auth.Actor      `db:"who" json:"who"`
	Action    string          `db:"action" json:"action"`
	Before    json.RawMessage `db:"before" json:"before"`
	After     json.RawMessage `db:"after" json:"after"`
	CreatedAt time.Time       `db:"created_at" json:"created_at"`
}

// appendActivity logs an action on a group: actor names it in the older text column,
// the context's Actor (auth.ActorFrom) says who with name and email.
func appendActivity(ctx context.Context, tx *sqlx.Tx, groupID int64, actor, action string, before, after any) error {
	enc := func(v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	b, err := enc(before)
	if err != nil {
		return err
	}
	a, err := enc(after)
	if err != nil {
		return err
	}
	who := auth.ActorFrom(ctx, actor)
	_, err = tx.ExecContext(ctx, `
		INSERT INTO activity (group_id, actor, action, before, after, actor_kind, actor_user_id, actor_name, actor_email)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		groupID, actor, action, nullJSON(b), nullJSON(a), who.Kind, who.UserID, who.Name, who.Email)
	if err != nil {
		return fmt.Errorf("logging %s of group %d: %w", action, groupID, err)
	}
	return nil
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// ActivityPage lists a group's activity newest first, up to limit entries with ids below
// before (0 for the newest). Archived and removed groups keep their log.
func (s *Store) ActivityPage(ctx context.Context, groupID, before int64, limit int) ([]Activity, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	out := []Activity{}
	err := s.db.SelectContext(ctx, &out, `
		SELECT id, group_id, actor, action, coalesce(before, 'null') AS before, coalesce(after, 'null') AS after, created_at,
			`+auth.ActorSQL("actor", "actor")+` AS who
		FROM activity WHERE group_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, groupID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("reading activity of group %d: %w", groupID, err)
	}
	return out, nil
}
