package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"promopool/admin"
	"promopool/api"
	"promopool/egress"
	"promopool/idp"
	"promopool/internal/redisurl"
	"promopool/users"
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
	// APIKeys are static keys with their scopes, "name:key:render+issue,name2:key2:admin"
	// (API_KEYS); more live in the database (`promopool keys create NAME -scopes …`).
	APIKeys string
	// HTTPReadTimeout bounds reading one request, body included (HTTP_READ_TIMEOUT,
	// default 1m); HTTPWriteTimeout bounds a request from its end to its answer's end
	// (HTTP_WRITE_TIMEOUT, default 2m). Streamed uploads and exports are exempt: they
	// are cut when no byte moves for HTTPStreamIdle (HTTP_STREAM_IDLE, default 1m).
	HTTPReadTimeout, HTTPWriteTimeout, HTTPStreamIdle time.Duration
	// IssueRateLimit is the direct issues one API key may make (ISSUE_RATE_LIMIT,
	// default 20/s; "off" for none).
	IssueRateLimit api.Rate
	// ValidateRateLimit is the checkout validations one API key may make
	// (VALIDATE_RATE_LIMIT, default 50/s; "off" for none).
	ValidateRateLimit api.Rate
	// ValidateMissLimit is the codes not found one API key may ask about at validate
	// and redeem (VALIDATE_MISS_LIMIT, default 600/m); CustomerMissLimit those of one
	// customer (VALIDATE_CUSTOMER_MISS_LIMIT, default 10/m). Past either, that key or
	// customer gets 429 too_many_misses for every code until the bucket refills.
	ValidateMissLimit, CustomerMissLimit api.Rate
	// RedemptionHoldTTL is how long a hold counts against the caps unless confirmed
	// (REDEMPTION_HOLD_TTL, default 30m).
	RedemptionHoldTTL time.Duration
	// RedemptionSweepInterval is how often the scheduler expires holds past their TTL
	// (REDEMPTION_SWEEP_INTERVAL, default 1m; 1s to 1h).
	RedemptionSweepInterval time.Duration
	// RedemptionWebhookFailed adds redemption.failed to the webhooks written
	// (REDEMPTION_WEBHOOK_EVENTS, default "redemption.succeeded,redemption.refunded";
	// those two are always sent).
	RedemptionWebhookFailed bool
	// RedemptionWebhookURL receives the redemption webhooks (REDEMPTION_WEBHOOK_URL;
	// empty: none are written); RedemptionWebhookSecret signs them
	// (REDEMPTION_WEBHOOK_SECRET, required with the URL).
	RedemptionWebhookURL, RedemptionWebhookSecret string
	// WebhookAllow lists the non-public addresses webhooks may reach
	// (WEBHOOK_ALLOW_PRIVATE: CIDR prefixes or addresses, comma-separated).
	WebhookAllow []netip.Prefix
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
	// MaxMessageBytes is the most bytes one rendered message may have (MAX_MESSAGE_BYTES,
	// default 1 MiB): a larger template is refused, a larger message fails its recipient.
	MaxMessageBytes int
	// MailingBatchBytes is about the most bytes of rendered messages one batch holds at
	// once (MAILING_BATCH_BYTES, default 32 MiB): it sends in chunks of this size.
	MailingBatchBytes int
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
	// summaries and the report rollups (SEGMENT_FOLD_INTERVAL, default 5s).
	SegmentFoldInterval time.Duration
	// MetricsAddr is where every process serves /metrics without a key (METRICS_ADDR;
	// empty: not served). `promopool web` also serves /metrics on HTTP_ADDR, to API keys
	// with the read scope.
	MetricsAddr string
	// WorkerShutdownTimeout is how long a worker given SIGTERM waits for its in-flight
	// tasks before it cancels them and hands them back to the queue
	// (WORKER_SHUTDOWN_TIMEOUT, default 30s).
	WorkerShutdownTimeout time.Duration
	// AdminPassword signs a marketer in to the web pages under /admin/ (ADMIN_PASSWORD,
	// at least 12 characters; empty: sign-in with an API key with the admin scope only).
	AdminPassword string
	// AdminSessionSecret signs the admin session cookies and CSRF tokens
	// (ADMIN_SESSION_SECRET, at least 32 bytes; default: a random secret kept in
	// PostgreSQL, drawn by the first web process).
	AdminSessionSecret string
	// AdminSessionTTL is how long an admin session lasts from sign-in
	// (ADMIN_SESSION_TTL, default 12h).
	AdminSessionTTL time.Duration
	// OIDC configures sign-in through the platform's identity provider and the platform
	// JWTs the API accepts (OIDC_*); off while OIDC_ISSUER is empty.
	OIDC OIDCConfig
	// Alerts configures balance alerts (ALERTS_*).
	Alerts AlertsConfig
	// CPUProfile is a file the process writes a CPU profile of itself to, from start
	// until it stops (CPU_PROFILE; empty: none). `promopool bench mailing -profile DIR`
	// sets it for its workers.
	CPUProfile string
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
		CPUProfile:         getenv("CPU_PROFILE"),
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
	if c.MaxMessageBytes, err = intVar(getenv, "MAX_MESSAGE_BYTES", 1<<20); err != nil {
		return c, err
	}
	if c.MailingBatchBytes, err = intVar(getenv, "MAILING_BATCH_BYTES", 32<<20); err != nil {
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
		{"HTTP_READ_TIMEOUT", &c.HTTPReadTimeout, time.Minute}, {"HTTP_WRITE_TIMEOUT", &c.HTTPWriteTimeout, 2 * time.Minute},
		{"HTTP_STREAM_IDLE", &c.HTTPStreamIdle, time.Minute}, {"ADMIN_SESSION_TTL", &c.AdminSessionTTL, 12 * time.Hour},
		{"DATABASE_REPLICA_MAX_LAG", &c.DatabaseReplicaMaxLag, 30 * time.Second},
		{"REDEMPTION_HOLD_TTL", &c.RedemptionHoldTTL, 30 * time.Minute},
		{"REDEMPTION_SWEEP_INTERVAL", &c.RedemptionSweepInterval, time.Minute}} {
		if *d.dst, err = durationVar(getenv, d.name, d.def); err != nil {
			return c, err
		}
	}
	maxUpload, err := intVar(getenv, "MAX_UPLOAD_BYTES", 1<<30)
	if err != nil {
		return c, err
	}
	c.MaxUploadBytes = int64(maxUpload)
	if err := c.loadSecurity(getenv); err != nil {
		return c, err
	}
	if c.OIDC, err = loadOIDCConfig(getenv); err != nil {
		return c, err
	}
	if c.Alerts, err = loadAlertsConfig(getenv, c.MailerURL); err != nil {
		return c, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(cmp.Or(getenv("LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	return c, c.validate()
}

// parseWebhookEvents reads REDEMPTION_WEBHOOK_EVENTS: a comma-separated list of
// redemption.succeeded, redemption.refunded (always sent) and redemption.failed; it
// reports whether redemption.failed is in it.
func parseWebhookEvents(v string) (failed bool, err error) {
	for _, e := range strings.Split(v, ",") {
		switch e = strings.TrimSpace(e); e {
		case "", "redemption.succeeded", "redemption.refunded":
		case "redemption.failed":
			failed = true
		default:
			return false, fmt.Errorf("REDEMPTION_WEBHOOK_EVENTS: unknown event %q (redemption.succeeded, redemption.refunded, redemption.failed)", e)
		}
	}
	return failed, nil
}

func (c Config) validate() error {
	switch {
	case c.RedemptionSweepInterval < time.Second || c.RedemptionSweepInterval > time.Hour:
		return fmt.Errorf("REDEMPTION_SWEEP_INTERVAL: want 1s to 1h, got %s", c.RedemptionSweepInterval)
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

// loadSecurity reads the rate limits and the webhook address policy, and checks the
// admin password's length (API_KEYS is read by the processes that serve it).
func (c *Config) loadSecurity(getenv func(string) string) error {
	var err error
	for _, r := range []struct {
		name string
		dst  *api.Rate
		def  string
	}{{"ISSUE_RATE_LIMIT", &c.IssueRateLimit, "20/s"}, {"VALIDATE_RATE_LIMIT", &c.ValidateRateLimit, "50/s"},
		{"VALIDATE_MISS_LIMIT", &c.ValidateMissLimit, "600/m"}, {"VALIDATE_CUSTOMER_MISS_LIMIT", &c.CustomerMissLimit, "10/m"}} {
		if *r.dst, err = api.ParseRate(cmp.Or(getenv(r.name), r.def)); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	c.RedemptionWebhookURL, c.RedemptionWebhookSecret = getenv("REDEMPTION_WEBHOOK_URL"), getenv("REDEMPTION_WEBHOOK_SECRET")
	if c.RedemptionWebhookURL != "" && len(c.RedemptionWebhookSecret) < 16 {
		return errors.New("REDEMPTION_WEBHOOK_SECRET: at least 16 bytes, to sign the webhooks REDEMPTION_WEBHOOK_URL receives")
	}
	if c.RedemptionWebhookFailed, err = parseWebhookEvents(getenv("REDEMPTION_WEBHOOK_EVENTS")); err != nil {
		return err
	}
	if c.RedemptionWebhookFailed && c.RedemptionWebhookURL == "" {
		return errors.New("REDEMPTION_WEBHOOK_EVENTS: set REDEMPTION_WEBHOOK_URL too (where the webhooks go)")
	}
	if c.WebhookAllow, err = egress.ParseAllow(getenv("WEBHOOK_ALLOW_PRIVATE")); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(c.AdminPassword); n > 0 && n < admin.MinPasswordLength {
		return fmt.Errorf("ADMIN_PASSWORD: at least %d characters, please (it signs in to everything)", admin.MinPasswordLength)
	}
	if s := c.AdminSessionSecret; s != "" && len(s) < 32 {
		return errors.New("ADMIN_SESSION_SECRET: at least 32 random bytes, or leave it unset (a random one is then kept in PostgreSQL)")
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

// OIDCConfig is sign-in through the identity provider (README "Users and sign-in").
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (OIDC_ISSUER); empty turns OIDC off.
	Issuer string
	// ClientID and ClientSecret are promopool's client at the provider
	// (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET).
	ClientID, ClientSecret string
	// RedirectURL is the callback registered there (OIDC_REDIRECT_URL), ending in
	// /admin/login/oidc/callback.
	RedirectURL string
	// APIAudience is the audience platform JWTs must carry on the API
	// (OIDC_API_AUDIENCE, default the client id).
	APIAudience string
	// DefaultRole is the role of a person the provider signs in whom no user has the
	// email of (OIDC_DEFAULT_ROLE: viewer or marketer; empty refuses them).
	DefaultRole users.Role
}

func loadOIDCConfig(getenv func(string) string) (OIDCConfig, error) {
	c := OIDCConfig{Issuer: getenv("OIDC_ISSUER"), ClientID: getenv("OIDC_CLIENT_ID"), ClientSecret: getenv("OIDC_CLIENT_SECRET"),
		RedirectURL: getenv("OIDC_REDIRECT_URL"), APIAudience: getenv("OIDC_API_AUDIENCE")}
	if r := getenv("OIDC_DEFAULT_ROLE"); r != "" {
		role, err := users.ParseRole(r)
		if err != nil || role == users.RoleAdmin {
			return c, fmt.Errorf("OIDC_DEFAULT_ROLE: viewer or marketer, or empty to refuse people without a user (got %q; "+
				"admins are made with promopool users create)", r)
		}
		c.DefaultRole = role
	}
	if c.Issuer == "" {
		if c.ClientID != "" || c.RedirectURL != "" || c.DefaultRole != "" {
			return c, errors.New("OIDC_ISSUER: set it too, or unset the other OIDC_ variables")
		}
		return c, nil
	}
	// idp.New checks the rest the same way the web process will.
	if _, err := idp.New(c.idpConfig()); err != nil {
		return c, err
	}
	return c, nil
}

func (c OIDCConfig) idpConfig() idp.Config {
	return idp.Config{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL, APIAudience: c.APIAudience}
}
