package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"promopool/internal/redisurl"
)

// Config is everything promopool reads from its environment.
type Config struct {
	// DatabaseURL is PostgreSQL's connection string (DATABASE_URL).
	DatabaseURL string
	// DatabaseSearchPath sets the schema search path of every connection
	// (DATABASE_SEARCH_PATH; tests and benchmarks use a schema of their own).
	DatabaseSearchPath string
	// DatabaseMaxConns caps the connection pool (DATABASE_MAX_CONNS, default 20).
	DatabaseMaxConns int
	// DatabaseReplicaURL is a hot standby that serves `web`'s heavy reads — segment
	// answers and exports — while it keeps up (DATABASE_REPLICA_URL; empty: none).
	DatabaseReplicaURL string
	// DatabaseReplicaMaxLag is how far behind the primary the replica may be before
	// those reads go to the primary (DATABASE_REPLICA_MAX_LAG, default 30s).
	DatabaseReplicaMaxLag time.Duration
	// RedisURL is the Redis carrying the Asynq queues (REDIS_URL): one server, a
	// Sentinel-watched primary or a Cluster (forms in internal/redisurl).
	RedisURL string
	// HTTPAddr is where `promopool web` listens (HTTP_ADDR).
	HTTPAddr string
	// APIKeys are static keys, "name:key,name2:key2" (API_KEYS); more live in the
	// database (`promopool keys create NAME`).
	APIKeys string
	// MaxUploadBytes caps one upload's body over HTTP (MAX_UPLOAD_BYTES, default 1 GiB).
	MaxUploadBytes int64
	// WorkerConcurrency is how many tasks one worker process runs at once
	// (WORKER_CONCURRENCY, default 10).
	WorkerConcurrency int
	// MailerURL is the transport workers send with (MAILER_URL, default
	// file://./outbox): smtp://…, smtps://…, https://… (webhook), file://…, null://.
	MailerURL string
	// MailingBatchSize is how many recipients one task carries (MAILING_BATCH_SIZE, default 500).
	MailingBatchSize int
	// MailingLease is how long a batch's lease lasts unless renewed; a running batch
	// renews it every third of this (MAILING_LEASE, default 2m).
	MailingLease time.Duration
	// ReconcileInterval is how often a worker looks for lost batches (RECONCILE_INTERVAL, default 30s).
	ReconcileInterval time.Duration
	// ReenqueueAfter is how long an open batch without a live lease waits before it is
	// enqueued again (REENQUEUE_AFTER, default 5m).
	ReenqueueAfter time.Duration
	// ReservationTimeout is the age past which a claim reservation left by a crashed
	// worker is returned to the pool (RESERVATION_TIMEOUT, default 1m).
	ReservationTimeout time.Duration
	// SegmentFoldInterval is how often a worker folds new issues into the segment
	// summaries (SEGMENT_FOLD_INTERVAL, default 5s).
	SegmentFoldInterval time.Duration
	// MetricsAddr is where worker and scheduler serve /metrics (METRICS_ADDR; empty: not
	// served). `promopool web` serves /metrics on HTTP_ADDR.
	MetricsAddr string
	// WorkerShutdownTimeout is how long a worker given SIGTERM waits for its in-flight
	// tasks before it cancels them and hands them back to the queue
	// (WORKER_SHUTDOWN_TIMEOUT, default 30s).
	WorkerShutdownTimeout time.Duration
	// AdminPassword signs a marketer in to the web pages under /admin/ (ADMIN_PASSWORD;
	// empty: sign-in with an API key only).
	AdminPassword string
	// AdminSessionSecret signs the admin session cookies (ADMIN_SESSION_SECRET; default
	// derived from AdminPassword, or random per process when neither is set).
	AdminSessionSecret string
	// Alerts configures balance alerts (ALERTS_*).
	Alerts AlertsConfig
	// LogLevel is debug, info, warn or error (LOG_LEVEL, default info).
	LogLevel slog.Level
	// LogFormat is text or json (LOG_FORMAT, default text).
	LogFormat string
}

// loadConfig reads the environment through getenv, with local defaults, and validates.
func loadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:        cmp.Or(getenv("DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/promopool?sslmode=disable"),
		DatabaseSearchPath: getenv("DATABASE_SEARCH_PATH"),
		DatabaseReplicaURL: getenv("DATABASE_REPLICA_URL"),
		RedisURL:           cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"),
		HTTPAddr:           cmp.Or(getenv("HTTP_ADDR"), "127.0.0.1:8080"),
		APIKeys:            getenv("API_KEYS"),
		LogFormat:          cmp.Or(getenv("LOG_FORMAT"), "text"),
		MailerURL:          cmp.Or(getenv("MAILER_URL"), "file://./outbox"),
		AdminPassword:      getenv("ADMIN_PASSWORD"),
		AdminSessionSecret: getenv("ADMIN_SESSION_SECRET"),
		MetricsAddr:        getenv("METRICS_ADDR"),
	}
	var err error
	if c.DatabaseMaxConns, err = intVar(getenv, "DATABASE_MAX_CONNS", 20); err != nil {
		return c, err
	}
	if c.WorkerConcurrency, err = intVar(getenv, "WORKER_CONCURRENCY", 10); err != nil {
		return c, err
	}
	if c.MailingBatchSize, err = intVar(getenv, "MAILING_BATCH_SIZE", 500); err != nil {
		return c, err
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{{"MAILING_LEASE", &c.MailingLease, 2 * time.Minute}, {"RECONCILE_INTERVAL", &c.ReconcileInterval, 30 * time.Second},
		{"REENQUEUE_AFTER", &c.ReenqueueAfter, 5 * time.Minute}, {"RESERVATION_TIMEOUT", &c.ReservationTimeout, time.Minute},
		{"WORKER_SHUTDOWN_TIMEOUT", &c.WorkerShutdownTimeout, 30 * time.Second},
		{"SEGMENT_FOLD_INTERVAL", &c.SegmentFoldInterval, 5 * time.Second},
		{"DATABASE_REPLICA_MAX_LAG", &c.DatabaseReplicaMaxLag, 30 * time.Second}} {
		if *d.dst, err = durationVar(getenv, d.name, d.def); err != nil {
			return c, err
		}
	}
	maxUpload, err := intVar(getenv, "MAX_UPLOAD_BYTES", 1<<30)
	if err != nil {
		return c, err
	}
	c.MaxUploadBytes = int64(maxUpload)
	if c.Alerts, err = loadAlertsConfig(getenv, c.MailerURL); err != nil {
		return c, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(cmp.Or(getenv("LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("LOG_FORMAT: want text or json, got %q", c.LogFormat)
	case c.MaxUploadBytes <= 0:
		return fmt.Errorf("MAX_UPLOAD_BYTES: must be positive")
	}
	if _, err := redisurl.Parse(c.RedisURL); err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	return nil
}

func intVar(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a positive whole number, got %q", name, v)
	}
	return n, nil
}

func durationVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration like 30s, got %q", name, v)
	}
	return d, nil
}
