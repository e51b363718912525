package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/robfig/cron/v3"

	"promopool/alerts"
	"promopool/mailer"
)

// AlertsConfig configures balance alerts (the scheduler, `promopool alerts check`, and
// the immediate alert of a worker whose mailing paused).
type AlertsConfig struct {
	// Schedule is the cron spec of the balance check (ALERTS_SCHEDULE, default every 5
	// minutes: "*/5 * * * *"; descriptors like "@every 1m" work too).
	Schedule string
	// ExpiryWindow: active codes expiring within it raise an expiry alert
	// (ALERTS_EXPIRY_WINDOW, default 7d; days as "7d" or a duration like "36h").
	ExpiryWindow time.Duration
	// MailFrom is the sender of alert emails (ALERTS_MAIL_FROM, default
	// "promopool <alerts@localhost>").
	MailFrom string
	// MailerURL is the transport of alert emails (ALERTS_MAILER_URL, default MAILER_URL).
	MailerURL string
	// Timeout bounds one check (ALERTS_TIMEOUT, default 2m).
	Timeout time.Duration
	// WebhookTimeout bounds one alert webhook POST (ALERTS_WEBHOOK_TIMEOUT, default 10s).
	WebhookTimeout time.Duration
}

// loadAlertsConfig reads the ALERTS_* variables; mailerURL is MAILER_URL's value.
func loadAlertsConfig(getenv func(string) string, mailerURL string) (AlertsConfig, error) {
	c := AlertsConfig{
		Schedule:  cmp.Or(getenv("ALERTS_SCHEDULE"), "*/5 * * * *"),
		MailFrom:  cmp.Or(getenv("ALERTS_MAIL_FROM"), "promopool <alerts@localhost>"),
		MailerURL: cmp.Or(getenv("ALERTS_MAILER_URL"), mailerURL),
	}
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		return c, fmt.Errorf("ALERTS_SCHEDULE: %w", err)
	}
	var err error
	if c.ExpiryWindow, err = daysVar(getenv, "ALERTS_EXPIRY_WINDOW", 7*24*time.Hour); err != nil {
		return c, err
	}
	if c.Timeout, err = durationVar(getenv, "ALERTS_TIMEOUT", 2*time.Minute); err != nil {
		return c, err
	}
	if c.WebhookTimeout, err = durationVar(getenv, "ALERTS_WEBHOOK_TIMEOUT", 10*time.Second); err != nil {
		return c, err
	}
	return c, nil
}

// daysVar reads a duration that may also be a whole number of days ("7d").
func daysVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if n, ok := strings.CutSuffix(v, "d"); ok && v != "" {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%s: want a number of days like 7d or a duration like 36h, got %q", name, v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return durationVar(getenv, name, def)
}

// alertChecker builds the alerts service; with email, it sends alert emails through
// ALERTS_MAILER_URL's transport (processes that only list alerts pass false).
func (m *Main) alertChecker(db *sqlx.DB, email bool) (*alerts.Service, error) {
	ac := m.cfg.Alerts
	cfg := alerts.Config{Timeout: ac.Timeout, ExpiryWindow: ac.ExpiryWindow, MailFrom: ac.MailFrom, WebhookTimeout: ac.WebhookTimeout,
		Webhooks: m.webhookPolicy()}
	if email {
		tcfg, err := mailer.ParseURL(ac.MailerURL)
		if err != nil {
			return nil, fmt.Errorf("ALERTS_MAILER_URL: %w", err)
		}
		tcfg.Log = m.log
		transport, err := mailer.New(tcfg)
		if err != nil {
			return nil, fmt.Errorf("ALERTS_MAILER_URL: %w", err)
		}
		m.closer = append(m.closer, func() { transport.Close() })
		cfg.Email = transport
	}
	return alerts.New(cfg, alerts.Deps{DB: db, Groups: m.groupStore(db), Log: m.log})
}

// alertsCmd runs `promopool alerts check`: one balance check now, its result printed
// as JSON.
func (m *Main) alertsCmd(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "check" {
		return fmt.Errorf("usage: promopool alerts check")
	}
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	c, err := m.alertChecker(db, true)
	if err != nil {
		return err
	}
	res, err := c.Check(ctx, time.Now())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// cronOptions makes robfig/cron log through slog and skip a job's tick while its
// previous run is still going.
func (m *Main) cronOptions() []cron.Option {
	logger := cronLogger{log: m.log}
	return []cron.Option{cron.WithLogger(logger), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger))}
}

// addAlertsJob schedules the balance check on ALERTS_SCHEDULE.
func (m *Main) addAlertsJob(ctx context.Context, cr *cron.Cron, c *alerts.Service) error {
	_, err := cr.AddFunc(m.cfg.Alerts.Schedule, func() {
		if _, err := c.Check(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.log.Error("alert check failed", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("ALERTS_SCHEDULE: %w", err)
	}
	return nil
}

// cronLogger sends robfig/cron's logs to slog: its routine messages at debug level.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
