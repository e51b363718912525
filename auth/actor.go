package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
)

// Kinds of Actor.
const (
	// ActorUser: a named admin user (signed in to the pages, or a platform JWT on the API).
	ActorUser = "user"
	// ActorKey: an API key.
	ActorKey = "key"
	// ActorPassword: the shared ADMIN_PASSWORD (single-user mode).
	ActorPassword = "password"
	// ActorCLI: a promopool command run on the server.
	ActorCLI = "cli"
	// ActorSystem: promopool itself (a mailing paused for lack of codes, a benchmark).
	ActorSystem = "system"
)

// Actor is who did something, as the activity log, uploads, undos, mailing actions,
// alert acknowledgements and keys record it: a snapshot taken at the time, so renaming
// or disabling the user later does not rewrite history. The HTTP layers and the command
// line put the request's Actor in its context (WithActor); the domain packages read it
// where they write a row (ActorFrom).
type Actor struct {
	// Kind is ActorUser, ActorKey, ActorPassword, ActorCLI or ActorSystem.
	Kind string `db:"kind" json:"kind"`
	// UserID is the person: the user; for a key, the user who created it; nil when
	// there is none.
	UserID *int64 `db:"user_id" json:"user_id"`
	// Name is the user's name, the key's name, "admin" for the shared password, or
	// "cli:LOGIN" for the command line.
	Name string `db:"name" json:"name"`
	// Email is the user's email; for a key, its creator's; empty otherwise.
	Email string `db:"email" json:"email"`
}

// Label is the short text the older `actor` columns hold: a user's email, a key's name,
// "admin" for the shared password, the CLI user.
func (a Actor) Label() string {
	if a.Kind == ActorUser && a.Email != "" {
		return a.Email
	}
	return a.Name
}

// String is how pages show the actor: "Ada Lovelace <ada@example.com>", "key “mailer”
// (created by ada@example.com)", "admin (shared password)", "cli:root".
func (a Actor) String() string {
	switch a.Kind {
	case ActorUser:
		return fmt.Sprintf("%s <%s>", a.Name, a.Email)
	case ActorKey:
		if a.Email != "" {
			return fmt.Sprintf("key “%s” (created by %s)", a.Name, a.Email)
		}
		return fmt.Sprintf("key “%s”", a.Name)
	case ActorPassword:
		return a.Name + " (shared password)"
	}
	return a.Name
}

type actorCtx struct{}

// WithActor returns ctx carrying a as the one acting.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorCtx{}, a)
}

// ActorFrom returns the Actor ctx carries; without one, a system actor named fallback
// (a benchmark's "bench", say), or "system".
func ActorFrom(ctx context.Context, fallback string) Actor {
	if a, ok := ctx.Value(actorCtx{}).(Actor); ok {
		return a
	}
	return Actor{Kind: ActorSystem, Name: cmp.Or(fallback, "system")}
}

// Scan reads an Actor from the JSON object ActorSQL selects, so a query can return one
// as a single column.
func (a *Actor) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("scanning an actor from %T", src)
	}
	return json.Unmarshal(b, a)
}

// ActorSQL is the SQL expression of the actor kept in the columns prefix_kind,
// prefix_user_id, prefix_name and prefix_email, as a JSON object Actor.Scan reads.
// Rows written before those columns existed read as the system acting under the name
// in the text column legacy.
func ActorSQL(prefix, legacy string) string {
	return `json_build_object('kind', coalesce(` + prefix + `_kind, 'system'), 'user_id', ` + prefix + `_user_id, ` +
		`'name', coalesce(` + prefix + `_name, ` + legacy + `, ''), 'email', coalesce(` + prefix + `_email, ''))`
}
