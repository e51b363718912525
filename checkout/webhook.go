package checkout

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/egress"
)

// Webhook delivery. Rows of redemption_webhooks are written in the transaction of their
// event (the outbox); a Deliverer posts the due ones to REDEMPTION_WEBHOOK_URL, at least
// once, each with the same Idempotency-Key on every attempt, signed so the receiver can
// check it came from promopool:
//
//	Promopool-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//
// The receiver recomputes v1 over the raw body with the shared secret, compares in
// constant time, and refuses a t more than a few minutes old (replays).

// DeliverConfig configures webhook delivery.
type DeliverConfig struct {
	// URL receives every redemption webhook (REDEMPTION_WEBHOOK_URL).
	URL string
	// Secret signs the bodies (REDEMPTION_WEBHOOK_SECRET, at least 16 bytes).
	Secret []byte
	// Policy decides which addresses may be reached (no loopback or private address
	// unless WEBHOOK_ALLOW_PRIVATE allows it).
	Policy egress.Policy
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// MaxAttempts is how many attempts a webhook gets before it is given up (default 12;
	// the backoff doubles from 30 s up to 6 h).
	MaxAttempts int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Deliverer posts due webhooks.
type Deliverer struct {
	cfg    DeliverConfig
	db     *sqlx.DB
	client *http.Client
	log    *slog.Logger
}

// NewDeliverer returns a deliverer. Errors: no URL, a URL the policy refuses, or a
// secret shorter than 16 bytes.
func NewDeliverer(ctx context.Context, cfg DeliverConfig, db *sqlx.DB, log *slog.Logger) (*Deliverer, error) {
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 12)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("REDEMPTION_WEBHOOK_SECRET: at least 16 bytes, to sign the webhooks")
	}
	if err := cfg.Policy.CheckURL(ctx, cfg.URL); err != nil {
		return nil, fmt.Errorf("REDEMPTION_WEBHOOK_URL: %w", err)
	}
	return &Deliverer{cfg: cfg, db: db, client: cfg.Policy.Client(cfg.Timeout), log: log}, nil
}

// Sign returns the Promopool-Signature header of body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// DeliverResult is what one delivery run did.
type DeliverResult struct {
	Delivered, Failed, GivenUp int
}

// DeliverDue posts every webhook that is due, up to 100 per run, one row lock each
// (SKIP LOCKED: several workers share the work). Safe to run twice: a delivered row is
// never due again; a post whose answer was lost is sent again with the same
// Idempotency-Key.
func (d *Deliverer) DeliverDue(ctx context.Context) (DeliverResult, error) {
	var res DeliverResult
	for i := 0; i < 100; i++ {
		done, err := d.deliverOne(ctx, &res)
		if err != nil || !done {
			return res, err
		}
	}
	return res, nil
}

func (d *Deliverer) deliverOne(ctx context.Context, res *DeliverResult) (bool, error) {
	tx, err := d.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("beginning a webhook delivery: %w", err)
	}
	defer tx.Rollback()
	now := d.cfg.Now().UTC()
	var row struct {
		ID       int64  `db:"id"`
		Payload  []byte `db:"payload"`
		Attempts int    `db:"attempts"`
	}
	err = tx.GetContext(ctx, &row, `SELECT id, payload, attempts FROM redemption_webhooks
		WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
		ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED`, now)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, fmt.Errorf("finding a due webhook: %w", err)
	}
	sendErr := d.post(ctx, row.ID, row.Payload, now)
	switch {
	case sendErr == nil:
		res.Delivered++
		_, err = tx.ExecContext(ctx, `UPDATE redemption_webhooks SET delivered_at = $2, attempts = attempts + 1, last_error = '' WHERE id = $1`, row.ID, now)
	case row.Attempts+1 >= d.cfg.MaxAttempts:
		res.GivenUp++
		d.log.Warn("redemption webhook given up", "webhook", row.ID, "attempts", row.Attempts+1, "err", sendErr)
		_, err = tx.ExecContext(ctx, `UPDATE redemption_webhooks SET failed_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1`, row.ID, now, sendErr.Error())
	default:
		res.Failed++
		backoff := min(30*time.Second<<row.Attempts, 6*time.Hour)
		_, err = tx.ExecContext(ctx, `UPDATE redemption_webhooks SET next_attempt_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1`,
			row.ID, now.Add(backoff), sendErr.Error())
	}
	if err != nil {
		return false, fmt.Errorf("recording webhook %d: %w", row.ID, err)
	}
	return true, tx.Commit()
}

// post sends one webhook; any answer but 2xx is a failure to retry.
func (d *Deliverer) post(ctx context.Context, id int64, body []byte, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "promopool-webhooks")
	req.Header.Set("Idempotency-Key", "redemption-webhook-"+strconv.FormatInt(id, 10))
	req.Header.Set("Promopool-Signature", Sign(d.cfg.Secret, body, now))
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to %s: %w", egress.RedactURL(d.cfg.URL), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d", egress.RedactURL(d.cfg.URL), resp.StatusCode)
	}
	return nil
}
