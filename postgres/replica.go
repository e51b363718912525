package postgres

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ReplicaConfig says where heavy reads go.
type ReplicaConfig struct {
	// URL is the hot standby's connection string (DATABASE_REPLICA_URL); empty: every
	// read goes to the primary.
	URL string
	// MaxConns caps the replica's connections (default 20).
	MaxConns int
	// AppName is reported in the standby's pg_stat_activity (default "promopool-replica").
	AppName string
	// SearchPath is the schema search path, as for the primary.
	SearchPath string
	// MaxLag is how far the replica may fall behind the primary before reads go to the
	// primary instead (DATABASE_REPLICA_MAX_LAG, default 30s).
	MaxLag time.Duration
	// CheckInterval is how often the replica's health and lag are measured (default 1s).
	CheckInterval time.Duration
	// Log receives the warning when reads leave the replica and the note when they
	// come back.
	Log *slog.Logger
}

// ReadPool serves heavy reads (segment answers, exports) from a hot standby while it
// answers and is less than MaxLag behind, and from the primary otherwise — with a logged
// warning, never an error. Reads that must be current (a mailing's audience at its
// start, claims, validation) use the primary directly and never come here.
//
// The lag is measured against the primary's WAL: every CheckInterval the pool samples
// the primary's pg_current_wal_lsn() and the standby's pg_last_wal_replay_lsn(); the lag
// is the age of the oldest primary sample the standby has not replayed yet (0 when it has
// replayed the latest). Unlike now() − pg_last_xact_replay_timestamp() it does not grow
// on an idle primary.
type ReadPool struct {
	primary *sqlx.DB
	replica *sqlx.DB
	cfg     ReplicaConfig
	stop    context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	status  ReplicaStatus
	samples []lsnSample
}

// ReplicaStatus is the pool's latest judgement of the replica.
type ReplicaStatus struct {
	// Configured says a replica URL was given.
	Configured bool
	// Usable says heavy reads go to the replica now.
	Usable bool
	// Lag is how far behind the primary it was at the last check.
	Lag time.Duration
	// Reason says why it is not usable ("" when it is).
	Reason string
	// Checked is when it was last measured.
	Checked time.Time
}

type lsnSample struct {
	at  time.Time
	lsn int64
}

// OpenReadPool opens the replica's pool beside primary and measures it once before it
// returns, so that a process starts with reads where they belong. A replica that does
// not answer is not an error: reads go to the primary until it does.
func OpenReadPool(ctx context.Context, primary *sqlx.DB, cfg ReplicaConfig) (*ReadPool, error) {
	cfg.MaxLag = cmp.Or(cfg.MaxLag, 30*time.Second)
	cfg.CheckInterval = cmp.Or(cfg.CheckInterval, time.Second)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &ReadPool{primary: primary, cfg: cfg, status: ReplicaStatus{Configured: cfg.URL != "", Reason: "no replica configured"}}
	if cfg.URL == "" {
		return p, nil
	}
	dsn, err := WithParams(cfg.URL, withKeepalive(map[string]string{"jit": "off", "application_name": cmp.Or(cfg.AppName, "promopool-replica"),
		"search_path": cfg.SearchPath,
		// A replica that does not answer must cost a read little before it goes to the
		// primary; the health check marks it down at once for the next reads.
		"connect_timeout": "3"}))
	if err != nil {
		return nil, fmt.Errorf("DATABASE_REPLICA_URL: %w", err)
	}
	if p.replica, err = sqlx.Open("postgres", dsn); err != nil {
		return nil, fmt.Errorf("DATABASE_REPLICA_URL: %w", err)
	}
	n := cmp.Or(cfg.MaxConns, 20)
	p.replica.SetMaxOpenConns(n)
	p.replica.SetMaxIdleConns(n)
	p.replica.SetConnMaxIdleTime(5 * time.Minute)
	p.status.Reason = "not checked yet"
	p.check(ctx)
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop, p.done = stop, make(chan struct{})
	go p.run(rctx)
	return p, nil
}

// Close stops the health checks and closes the replica's pool (not the primary's).
func (p *ReadPool) Close() {
	if p.stop == nil {
		return
	}
	p.stop()
	<-p.done
	p.replica.Close()
	p.stop = nil
}

// Status returns the latest measurement of the replica.
func (p *ReadPool) Status() ReplicaStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

func (p *ReadPool) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.check(ctx)
		}
	}
}

// check samples the primary's WAL position, then the replica's replay position, and
// updates the status (logging a change of where reads go).
func (p *ReadPool) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(p.cfg.CheckInterval, 2*time.Second))
	defer cancel()
	var primaryLSN int64
	if err := p.primary.GetContext(ctx, &primaryLSN, `SELECT (pg_current_wal_lsn() - '0/0')::bigint`); err == nil {
		p.mu.Lock()
		p.samples = append(p.samples, lsnSample{time.Now(), primaryLSN})
		// Keep what can tell a lag up to twice the limit.
		for len(p.samples) > 2 && time.Since(p.samples[1].at) > 2*p.cfg.MaxLag {
			p.samples = p.samples[1:]
		}
		p.mu.Unlock()
	}
	var r struct {
		InRecovery bool  `db:"in_recovery"`
		Replayed   int64 `db:"replayed"`
	}
	err := p.replica.GetContext(ctx, &r, `SELECT pg_is_in_recovery() AS in_recovery,
		coalesce((pg_last_wal_replay_lsn() - '0/0')::bigint, 0) AS replayed`)
	if ctx.Err() != nil && err != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		return // the pool is closing
	}
	st := ReplicaStatus{Configured: true, Checked: time.Now()}
	switch {
	case err != nil:
		st.Reason = fmt.Sprintf("unreachable: %v", err)
	case !r.InRecovery:
		// Promoted (or a primary given as replica): what it serves is current.
		st.Usable = true
	default:
		st.Lag = p.lag(r.Replayed, st.Checked)
		st.Usable = st.Lag <= p.cfg.MaxLag
		if !st.Usable {
			st.Reason = fmt.Sprintf("%s behind the primary (DATABASE_REPLICA_MAX_LAG %s)", st.Lag.Round(time.Millisecond), p.cfg.MaxLag)
		}
	}
	p.set(st)
}

// lag is the age of the oldest primary sample beyond replayed.
func (p *ReadPool) lag(replayed int64, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.samples {
		if s.lsn > replayed {
			return now.Sub(s.at)
		}
	}
	return 0
}

// set records a new status and logs when reads change sides.
func (p *ReadPool) set(st ReplicaStatus) {
	p.mu.Lock()
	old := p.status
	p.status = st
	p.mu.Unlock()
	switch {
	case old.Usable && !st.Usable, old.Checked.IsZero() && !st.Usable:
		p.cfg.Log.Warn("read replica not used: heavy reads go to the primary", "reason", st.Reason)
	case !old.Usable && st.Usable:
		p.cfg.Log.Info("read replica in use for heavy reads", "lag", st.Lag.Round(time.Millisecond))
	}
}

// replicaDB is the replica's pool when reads go to it now, else nil.
func (p *ReadPool) replicaDB() *sqlx.DB {
	if p.replica == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.status.Usable {
		return nil
	}
	return p.replica
}

// markDown takes the replica out of use after a read failed on it for want of the
// replica itself; the next health check brings it back once it answers.
func (p *ReadPool) markDown(err error) {
	p.set(ReplicaStatus{Configured: true, Checked: time.Now(), Reason: fmt.Sprintf("a read failed on it: %v", err)})
}

// replicaFault says err is the replica's own trouble — it is down, unreachable,
// starting or shutting down, or cancelled the read in a recovery conflict — so the
// primary should answer instead. An error in the read itself is not.
func replicaFault(err error) bool {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return true // network and driver errors: no answer from the server
	}
	switch {
	case pe.Code == "57014": // query_canceled: a timeout of the read itself
		return false
	case pe.Code.Class() == "08", pe.Code.Class() == "57", pe.Code.Class() == "58":
		return true // connection exception; shutdown, starting up, recovery conflict; system error
	}
	// A read-only transaction on a standby fails to serialize only in a conflict with
	// recovery ("canceling statement due to conflict with recovery").
	return pe.Code == "40001"
}

// BeginTxx begins a transaction for a heavy read: on the replica when it is in use, else
// (or when beginning there fails for the replica's own trouble) on the primary.
func (p *ReadPool) BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error) {
	if db := p.replicaDB(); db != nil {
		tx, err := db.BeginTxx(ctx, opts)
		if err == nil {
			return tx, nil
		}
		if ctx.Err() != nil || !replicaFault(err) {
			return nil, err
		}
		p.markDown(err)
	}
	return p.primary.BeginTxx(ctx, opts)
}

// QueryContext runs a heavy read's query: on the replica when it is in use, else (or
// when it fails there for the replica's own trouble before any row) on the primary.
func (p *ReadPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if db := p.replicaDB(); db != nil {
		rows, err := db.QueryContext(ctx, query, args...)
		if err == nil {
			return rows, nil
		}
		if ctx.Err() != nil || !replicaFault(err) {
			return nil, err
		}
		p.markDown(err)
	}
	return p.primary.QueryContext(ctx, query, args...)
}
