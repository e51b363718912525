// Package postgres opens promopool's connections to PostgreSQL with the session settings
// every component relies on.
package postgres

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver
)

// Config says how to reach PostgreSQL.
type Config struct {
	// URL is a lib/pq connection string, URL (postgres://…) or key=value form.
	URL string
	// MaxConns caps open connections (default 20).
	MaxConns int
	// AppName is reported in pg_stat_activity (default "promopool").
	AppName string
	// SearchPath, when set, is the schema list for every connection (tests use it to
	// give each test a schema of its own).
	SearchPath string
}

// Open connects and pings. Every connection runs with jit=off: PostgreSQL's JIT costs
// 0.2–0.4 s per statement on the range queries promopool runs (../shared/PERFORMANCE.md)
// and never pays back on them. And with the server-side TCP keepalives of keepalive.
func Open(ctx context.Context, cfg Config) (*sqlx.DB, error) {
	dsn, err := WithParams(cfg.URL, withKeepalive(map[string]string{
		"jit":              "off",
		"application_name": cmp.Or(cfg.AppName, "promopool"),
		"search_path":      cfg.SearchPath,
		// lib/pq ignores the context during a connection's start-up handshake: without a
		// timeout, a server that accepts and never answers holds the connecting
		// goroutine (and a service starting against it) forever.
		"connect_timeout": "10",
	}))
	if err != nil {
		return nil, err
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening PostgreSQL: %w", err)
	}
	n := cmp.Or(cfg.MaxConns, 20)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The ping runs aside so that a cancelled ctx (a SIGTERM while starting) returns at
	// once, even while lib/pq sits in a handshake that only connect_timeout ends.
	pinged := make(chan error, 1)
	go func() { pinged <- db.PingContext(pctx) }()
	select {
	case err = <-pinged:
	case <-pctx.Done():
		err = pctx.Err()
	}
	if err != nil {
		go db.Close() // waits for the abandoned handshake, if any
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", Redact(cfg.URL), err)
	}
	return db, nil
}

// keepalive are the server-side TCP settings of every session (a connection string may
// set its own). A worker host that loses its network in the middle of a transaction
// leaves its backend idle in transaction, holding the row locks of the batch it was
// recording, and another worker's delivery of that batch waits on them; the server only
// notices a silent peer by TCP keepalive, after two hours at Linux's defaults. With these
// it ends such a session (and releases its locks) after about a minute of silence
// (30 s idle, then 3 probes 10 s apart), or 60 s of unacknowledged data
// (tcp_user_timeout); a backend busy in a statement (waiting on a lock, say) looks at
// its socket every 10 s (client_connection_check_interval, PostgreSQL 14+). Measured in
// faults/netns_test.go.
var keepalive = map[string]string{
	"tcp_keepalives_idle":              "30",
	"tcp_keepalives_interval":          "10",
	"tcp_keepalives_count":             "3",
	"tcp_user_timeout":                 "60000",
	"client_connection_check_interval": "10000",
}

func withKeepalive(params map[string]string) map[string]string {
	for k, v := range keepalive {
		params[k] = v
	}
	return params
}

// WithParams adds run-time parameters to a connection string (lib/pq passes parameters
// it does not know to the server as session settings). Empty values are skipped and a
// parameter already present in the string is kept as the caller wrote it.
func WithParams(dsn string, params map[string]string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("DATABASE_URL: %w", err)
		}
		q := u.Query()
		for k, v := range params {
			if v != "" && !q.Has(k) {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	var b strings.Builder
	b.WriteString(dsn)
	for k, v := range params {
		if v != "" && !strings.Contains(dsn, k+"=") {
			fmt.Fprintf(&b, " %s='%s'", k, strings.ReplaceAll(v, "'", `\'`))
		}
	}
	return b.String(), nil
}

// Redact hides a password in a connection string, for messages and logs.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return dsn
}
