package groups

import (
	"context"
	"database/sql"
)

// Reader runs the queries of heavy reads — the exports (issues.csv, unused.csv) — that
// may be served by a hot standby: *sqlx.DB, or a postgres.ReadPool, which sends them to
// the replica while it keeps up and to the primary otherwise. An export from a replica
// shows the group as the replica's replay has reached (a moment behind the primary);
// whether the group exists is still asked of the primary.
type Reader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}
