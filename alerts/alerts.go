// Package alerts watches each group's active balance and warns before it runs dry: when
// the balance falls to the group's threshold, then to half of it, a quarter and zero, an
// alert goes to the group's recipients (email through a mailer transport, a webhook, and
// always the log), once per level until an upload lifts the balance above the level
// again. Codes that expire soon raise an alert the same way.
//
// Every alert is a row claimed (INSERT … ON CONFLICT DO NOTHING on group, level and
// arming) before anything is sent, so any number of checkers — several scheduler
// processes, a worker whose mailing paused — raise each alert once. Each channel of an
// alert is a delivery row sent under a lease and retried on the next tick when it fails.
//
// Service checks, delivers and lists alerts. The check is a plain function,
// Service.Check, with a timeout and an injected clock; the scheduler process calls it on
// a cron schedule. Balances come from the groups package, which owns the groups and
// their codes; this package owns only the alerts' own tables.
package alerts

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/auth"
	"promopool/egress"
	"promopool/groups"
	"promopool/mailer"
)

// Alert levels. The first four are balance levels of a group's threshold; LevelExpiry is
// raised by codes that expire soon.
const (
	LevelThreshold = "threshold" // the balance is at or under the threshold
	LevelHalf      = "half"      // … under half of it
	LevelQuarter   = "quarter"   // … under a quarter of it
	LevelEmpty     = "empty"     // no active code left
	LevelExpiry    = "expiry"    // active codes expire within the expiry window
)

// Delivery channels and statuses.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"

	DeliveryPending = "pending" // not sent yet, or failed and waiting for the next tick
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // given up: refused for good, or MaxAttempts reached
)

// RateWindow is the span of issues the forecast's rate is taken over.
const RateWindow = 7 * 24 * time.Hour

// EmailSender sends alert emails; mailer's transports satisfy it.
type EmailSender interface {
	Send(ctx context.Context, msgs []mailer.Message) ([]mailer.Result, error)
}

// Config configures a Service.
type Config struct {
	// Timeout bounds one Check, and the immediate alert of a paused mailing (default 2m).
	Timeout time.Duration
	// ExpiryWindow: active codes expiring within it raise an expiry alert (default 7 days).
	ExpiryWindow time.Duration
	// MailFrom is the sender of alert emails (default "promopool <alerts@localhost>").
	MailFrom string
	// Email sends alert emails. Nil in processes that do not send: their email
	// deliveries wait for a process that does.
	Email EmailSender
	// Webhooks is the address policy webhook POSTs are held to, at dial time
	// (WEBHOOK_ALLOW_PRIVATE; default: public addresses only).
	Webhooks egress.Policy
	// HTTPClient posts webhooks (default: Webhooks.Client with WebhookTimeout: no
	// proxy, no redirects, every connection checked).
	HTTPClient *http.Client
	// WebhookTimeout bounds one webhook POST (default 10s).
	WebhookTimeout time.Duration
	// Lease is how long a claimed delivery is kept from other senders (default 1m); it
	// must exceed the time one send may take.
	Lease time.Duration
	// MaxAttempts: a delivery that failed this many times is given up (default 50; at
	// the default schedule that is about four hours of retries).
	MaxAttempts int
	// Concurrency is how many deliveries are sent at once (default 8).
	Concurrency int
	// Now is the clock of GroupExhausted (default time.Now); Check takes its time as
	// an argument.
	Now func() time.Time
}

func (c *Config) fill() {
	c.Timeout = cmp.Or(c.Timeout, 2*time.Minute)
	c.ExpiryWindow = cmp.Or(c.ExpiryWindow, 7*24*time.Hour)
	c.MailFrom = cmp.Or(c.MailFrom, "promopool <alerts@localhost>")
	c.WebhookTimeout = cmp.Or(c.WebhookTimeout, 10*time.Second)
	c.Lease = cmp.Or(c.Lease, time.Minute)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 50)
	c.Concurrency = cmp.Or(c.Concurrency, 8)
	if c.HTTPClient == nil {
		c.HTTPClient = c.Webhooks.Client(c.WebhookTimeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	switch {
	case c.Timeout < 0 || c.ExpiryWindow < 0 || c.WebhookTimeout < 0 || c.Lease < 0:
		return fmt.Errorf("alerts: durations must be positive")
	case c.MaxAttempts < 0 || c.Concurrency < 0:
		return fmt.Errorf("alerts: MaxAttempts and Concurrency must be positive")
	}
	return nil
}

// Deps are what a Service works with.
type Deps struct {
	// DB holds the alerts' tables (required).
	DB *sqlx.DB
	// Groups reads the groups' balances and names (required).
	Groups *groups.Store
	// Log receives the alerts' log channel and the service's own logs (default:
	// discarded).
	Log *slog.Logger
}

// Service checks balances, raises alerts, delivers them and lists them.
type Service struct {
	cfg    Config
	db     *sqlx.DB
	groups *groups.Store
	log    *slog.Logger
}

// New returns a Service. Errors: an invalid Config, a missing dependency.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.Groups == nil {
		return nil, fmt.Errorf("alerts: Deps.DB and Deps.Groups are required")
	}
	cfg.fill()
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, db: deps.DB, groups: deps.Groups, log: deps.Log}, nil
}

// Alert is one raised alert, with the state of its deliveries.
type Alert struct {
	ID        int64  `db:"id" json:"id"`
	GroupID   int64  `db:"group_id" json:"group_id"`
	GroupName string `db:"group_name" json:"group_name"`
	// Level is LevelThreshold, LevelHalf, LevelQuarter, LevelEmpty or LevelExpiry.
	Level string `db:"level" json:"level"`
	// Arming counts how many times the level was re-armed by an upload before it fired
	// (for expiry alerts: the day of the soonest expiry, in days since 1970-01-01).
	Arming int64 `db:"arming" json:"arming"`
	// LevelValue is the level in codes (threshold, half, quarter, 0); null for expiry.
	LevelValue *int64 `db:"level_value" json:"level_value"`
	Balance    int64  `db:"balance" json:"balance"`
	Total      int64  `db:"total" json:"total"`
	// Threshold is the effective threshold when the alert was raised (null if none).
	Threshold *int64 `db:"threshold" json:"threshold"`
	// IssuedInWindow counts the initial issues of the WindowDays before the alert.
	IssuedInWindow int64   `db:"issued_in_window" json:"issued_in_window"`
	WindowDays     float64 `db:"window_days" json:"window_days"`
	RatePerDay     float64 `db:"rate_per_day" json:"rate_per_day"`
	// DryAt is when the group runs dry at RatePerDay; null when it does not (no issue
	// in the window).
	DryAt *time.Time `db:"dry_at" json:"dry_at"`
	// Expiry alerts: active codes expiring by ExpiringBefore, the soonest expiry, and
	// how many of them the current rate leaves unissued.
	Expiring         *int64     `db:"expiring" json:"expiring,omitempty"`
	ExpiringUnissued *int64     `db:"expiring_unissued" json:"expiring_unissued,omitempty"`
	ExpiringBefore   *time.Time `db:"expiring_before" json:"expiring_before,omitempty"`
	SoonestExpiry    *time.Time `db:"soonest_expiry" json:"soonest_expiry,omitempty"`
	// MailingID is the mailing whose pause raised the alert.
	MailingID *int64 `db:"mailing_id" json:"mailing_id,omitempty"`
	// Suppressed: a lower level was reached in the same check; this level is recorded
	// (it will not fire later) and only the lower one was sent.
	Suppressed bool      `db:"suppressed" json:"suppressed"`
	Message    string    `db:"message" json:"message"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
	// AcknowledgedAt and AcknowledgedBy say who marked the alert seen, and when (null
	// until someone does).
	AcknowledgedAt *time.Time  `db:"acknowledged_at" json:"acknowledged_at"`
	AcknowledgedBy *auth.Actor `db:"acknowledged_by" json:"acknowledged_by"`
	Deliveries     []Delivery  `db:"-" json:"deliveries,omitempty"`
}

// Delivery is one channel of an alert: an email address or the webhook.
type Delivery struct {
	AlertID   int64      `db:"alert_id" json:"-"`
	Channel   string     `db:"channel" json:"channel"`
	Target    string     `db:"target" json:"target"`
	Status    string     `db:"status" json:"status"`
	Attempts  int        `db:"attempts" json:"attempts"`
	LastError string     `db:"last_error" json:"last_error,omitempty"`
	SentAt    *time.Time `db:"sent_at" json:"sent_at"`
}
