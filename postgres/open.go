// Package postgres opens promopool's connections to PostgreSQL with the session settings
// every component relies on.
package postgres

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"regexp"
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

// Open connects and pings. Every connection runs with jit=off: PostgreSQL's JIT
// compilation cost 0.2–0.4 s per statement on the short range queries promopool runs
// (measured on PostgreSQL 15) and never paid back on them (docs/operations.md). And
// with the server-side TCP keepalives of keepalive.
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
		return nil, redactErr(fmt.Errorf("opening PostgreSQL: %w", err), cfg.URL)
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
		return nil, redactErr(fmt.Errorf("connecting to PostgreSQL at %s: %w", Redact(cfg.URL), err), cfg.URL)
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
			// url.Parse's error quotes the whole URL, password included.
			return "", fmt.Errorf("DATABASE_URL: %s is not a valid URL", Redact(dsn))
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

// Redact hides a password in a connection string, for messages and logs: the URL
// form's userinfo password and the key=value form's password value (quoted or bare).
// A URL that does not parse is not shown at all.
func Redact(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(a connection URL that does not parse)"
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}password=xxxxx")
}

// kvPassword matches the password of a key=value connection string: a bare value or a
// quoted one with \' and \\ escapes.
var kvPassword = regexp.MustCompile(`(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// password is the connection string's password, or "".
func password(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return ""
		}
		if p, ok := u.User.Password(); ok {
			return p
		}
		return u.Query().Get("password")
	}
	m := kvPassword.FindStringSubmatch(dsn)
	if m == nil {
		return ""
	}
	v := m[2]
	if strings.HasPrefix(v, "'") {
		v = strings.NewReplacer(`\'`, "'", `\\`, `\`).Replace(v[1 : len(v)-1])
	}
	return v
}

// redactedError is an error whose text had the connection's password taken out (a
// driver error may quote the connection string it could not use); Unwrap still
// reaches the original for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with every occurrence of dsn's password replaced.
func redactErr(err error, dsn string) error {
	pw := password(dsn)
	if err == nil || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}
