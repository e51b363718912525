package main

import (
	"cmp"
	"context"

	"github.com/jmoiron/sqlx"

	"promopool/postgres"
)

// openReader opens the pool `web`'s heavy reads (segment answers, exports) go through:
// the hot standby of DATABASE_REPLICA_URL while it answers and keeps within
// DATABASE_REPLICA_MAX_LAG, else the primary db. Without a replica URL every read goes
// to db.
func (m *Main) openReader(ctx context.Context, db *sqlx.DB) (*postgres.ReadPool, error) {
	if m.reader != nil {
		return m.reader, nil
	}
	r, err := postgres.OpenReadPool(ctx, db, postgres.ReplicaConfig{URL: m.cfg.DatabaseReplicaURL, MaxConns: m.cfg.DatabaseMaxConns,
		AppName: "promopool-" + cmp.Or(m.cmd, "main") + "-replica", SearchPath: m.cfg.DatabaseSearchPath,
		MaxLag: m.cfg.DatabaseReplicaMaxLag, Log: m.log})
	if err != nil {
		return nil, err
	}
	m.closer = append(m.closer, r.Close)
	if m.cfg.DatabaseReplicaURL != "" {
		st := r.Status()
		m.log.Info("read replica configured", "replica", postgres.Redact(m.cfg.DatabaseReplicaURL), "in_use", st.Usable,
			"lag", st.Lag, "max_lag", m.cfg.DatabaseReplicaMaxLag)
	}
	m.reader = r
	return r, nil
}
