package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// SettingsWarnings names the server settings promopool's design relies on that this
// PostgreSQL has turned off. The issue history, the outbox and the fold queues are
// append-and-delete tables whose plans and visibility maps depend on autovacuum
// (migration 0011 gives the busiest tables their own thresholds); with autovacuum or
// track_counts off their dead rows and stale statistics grow until a manual VACUUM.
// Long-running processes log each warning once at start.
func SettingsWarnings(ctx context.Context, db *sqlx.DB) ([]string, error) {
	var s struct {
		Autovacuum  string `db:"autovacuum"`
		TrackCounts string `db:"track_counts"`
	}
	if err := db.GetContext(ctx, &s, `SELECT current_setting('autovacuum') AS autovacuum, current_setting('track_counts') AS track_counts`); err != nil {
		return nil, fmt.Errorf("reading PostgreSQL settings: %w", err)
	}
	var w []string
	if s.Autovacuum != "on" {
		w = append(w, "PostgreSQL runs with autovacuum = off: the issue history, outbox and fold queues will bloat and their plans go stale; turn it on in postgresql.conf (docs/operations.md)")
	}
	if s.TrackCounts != "on" {
		w = append(w, "PostgreSQL runs with track_counts = off: autovacuum cannot see which tables need vacuuming; turn it on in postgresql.conf (docs/operations.md)")
	}
	return w, nil
}
