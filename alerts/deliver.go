package alerts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"promopool/auth"
	"promopool/egress"
	"promopool/mailer"
	"promopool/metrics"
)

// alertColumns reads an Alert (alias a), all but its group's name (withGroupNames).
var alertColumns = `a.id, a.group_id, a.level, a.arming, a.level_value, a.balance, a.total,
	a.threshold, a.issued_in_window, a.window_days, a.rate_per_day, a.dry_at, a.expiring, a.expiring_unissued,
	a.expiring_before, a.soonest_expiry, a.mailing_id, a.suppressed, a.message, a.created_at, a.acknowledged_at,
	CASE WHEN a.acknowledged_at IS NOT NULL THEN ` + auth.ActorSQL("a.acknowledged", "NULL") + ` END AS acknowledged_by`

// claimDeliveries leases up to limit pending deliveries whose lease is free ($1 is now;
// a failed delivery is leased until the time of its failed tick, so it waits for the
// next tick). SKIP LOCKED lets concurrent senders take disjoint rows; a row another
// sender leased and committed meanwhile fails the re-checked lease condition.
const claimDeliveries = `
UPDATE alert_deliveries d SET leased_until = $2, attempts = d.attempts + 1
FROM (
    SELECT alert_id, channel, target FROM alert_deliveries
    WHERE status = 'pending' AND (leased_until IS NULL OR leased_until < $1)
      AND channel = ANY($3) AND ($4::bigint[] IS NULL OR alert_id = ANY($4))
    ORDER BY alert_id LIMIT $5
    FOR UPDATE SKIP LOCKED
) p
WHERE d.alert_id = p.alert_id AND d.channel = p.channel AND d.target = p.target
RETURNING d.alert_id, d.channel, d.target, d.attempts`

// deliver sends the pending deliveries (only those of alertIDs when it is not nil), in
// batches, Concurrency at a time, until none is left that this tick may send. Each
// failure is logged and recorded, and retried on a later tick; it never stops the
// other deliveries.
func (c *Service) deliver(ctx context.Context, now time.Time, alertIDs []int64) (sent, failed int) {
	if alertIDs != nil && len(alertIDs) == 0 {
		return 0, 0
	}
	channels := pq.StringArray{ChannelWebhook}
	if c.cfg.Email != nil {
		channels = append(channels, ChannelEmail)
	}
	for ctx.Err() == nil {
		var batch []Delivery
		err := c.db.SelectContext(ctx, &batch, claimDeliveries, now, now.Add(c.cfg.Lease), channels, pq.Array(alertIDs), 100)
		if err != nil {
			c.log.Error("claiming alert deliveries failed", "err", err)
			return sent, failed
		}
		if len(batch) == 0 {
			return sent, failed
		}
		alerts, err := c.loadAlerts(ctx, batch)
		if err != nil {
			c.log.Error("reading alerts to deliver failed", "err", err)
			return sent, failed
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, c.cfg.Concurrency)
		for _, d := range batch {
			a := alerts[d.AlertID]
			if a == nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				ok := c.deliverOne(ctx, now, a, d)
				mu.Lock()
				if ok {
					sent++
				} else {
					failed++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	return sent, failed
}

func (c *Service) loadAlerts(ctx context.Context, batch []Delivery) (map[int64]*Alert, error) {
	ids := make([]int64, 0, len(batch))
	for _, d := range batch {
		ids = append(ids, d.AlertID)
	}
	var list []Alert
	err := c.db.SelectContext(ctx, &list, `SELECT `+alertColumns+` FROM alerts a WHERE a.id = ANY($1)`, pq.Array(ids))
	if err != nil {
		return nil, err
	}
	if err := c.withGroupNames(ctx, list); err != nil {
		return nil, err
	}
	out := make(map[int64]*Alert, len(list))
	for i := range list {
		out[list[i].ID] = &list[i]
	}
	return out, nil
}

// withGroupNames sets the alerts' GroupName to their group's current name.
func (c *Service) withGroupNames(ctx context.Context, list []Alert) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]int64, len(list))
	for i := range list {
		ids[i] = list[i].GroupID
	}
	names, err := c.groups.Names(ctx, ids)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].GroupName = names[list[i].GroupID]
	}
	return nil
}

// errDefinitive marks a failure that a retry cannot fix (an email address refused).
var errDefinitive = errors.New("refused for good")

// deliverOne sends one delivery and records the outcome; it reports whether it was sent.
func (c *Service) deliverOne(ctx context.Context, now time.Time, a *Alert, d Delivery) bool {
	var err error
	switch d.Channel {
	case ChannelEmail:
		err = c.sendEmail(ctx, a, d.Target)
	case ChannelWebhook:
		err = c.postWebhook(ctx, a, d.Target)
	default:
		err = fmt.Errorf("%w: unknown channel %q", errDefinitive, d.Channel)
	}
	if err == nil {
		metrics.AlertsSent.WithLabelValues(a.Level, d.Channel).Inc()
		_, err := c.db.ExecContext(ctx, `
			UPDATE alert_deliveries SET status = 'sent', sent_at = $4, leased_until = NULL, last_error = ''
			WHERE alert_id = $1 AND channel = $2 AND target = $3`, d.AlertID, d.Channel, d.Target, now)
		if err != nil {
			// The lease runs out and a later tick sends it again: twice rather than never.
			c.log.Error("recording a sent alert delivery failed", "alert_id", a.ID, "channel", d.Channel, "err", err)
		}
		return true
	}
	giveUp := errors.Is(err, errDefinitive) || d.Attempts >= c.cfg.MaxAttempts
	c.log.Warn("alert delivery failed", "alert_id", a.ID, "group_id", a.GroupID, "channel", d.Channel,
		"target_host", targetHost(d), "attempt", d.Attempts, "given_up", giveUp, "err", err)
	status := DeliveryPending
	if giveUp {
		status = DeliveryFailed
	}
	_, rerr := c.db.ExecContext(ctx, `
		UPDATE alert_deliveries SET status = $4, last_error = $5, leased_until = $6
		WHERE alert_id = $1 AND channel = $2 AND target = $3`,
		d.AlertID, d.Channel, d.Target, status, truncate(err.Error(), 1000), now)
	if rerr != nil {
		c.log.Error("recording a failed alert delivery failed", "alert_id", a.ID, "channel", d.Channel, "err", rerr)
	}
	return false
}

// targetHost is what the log may say of a target: an address's domain, a URL's host
// (a webhook URL may carry a token).
func targetHost(d Delivery) string {
	if d.Channel == ChannelEmail {
		if i := strings.LastIndexByte(d.Target, '@'); i >= 0 {
			return d.Target[i+1:]
		}
		return ""
	}
	rest, _ := strings.CutPrefix(d.Target, "https://")
	rest, _ = strings.CutPrefix(rest, "http://")
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sendEmail sends the alert to one address through the mailer transport. Its
// Message-ID derives from the alert and the address, so a resend is recognisable.
func (c *Service) sendEmail(ctx context.Context, a *Alert, to string) error {
	h := sha256.Sum256([]byte(strings.ToLower(to)))
	msg := mailer.Message{
		ID:      fmt.Sprintf("promopool-alert-%d-%s", a.ID, hex.EncodeToString(h[:6])),
		From:    c.cfg.MailFrom,
		To:      to,
		Subject: Subject(a),
		Text:    Body(a),
	}
	res, err := c.cfg.Email.Send(ctx, []mailer.Message{msg})
	if err != nil {
		return err
	}
	if len(res) != 1 {
		return fmt.Errorf("mailer returned %d results for 1 message", len(res))
	}
	switch res[0].Outcome {
	case mailer.Sent:
		return nil
	case mailer.Rejected:
		return fmt.Errorf("%w: %v", errDefinitive, res[0].Err)
	}
	return fmt.Errorf("%s: %w", res[0].Outcome, res[0].Err)
}

// WebhookPayload is the JSON body posted to a group's alert webhook.
type WebhookPayload struct {
	// Event is always "promopool.alert".
	Event string `json:"event"`
	Alert *Alert `json:"alert"`
}

// postWebhook posts the alert as JSON; any answer but 2xx is a failure. The
// Idempotency-Key header is the same on every retry of one alert.
func (c *Service) postWebhook(ctx context.Context, a *Alert, target string) error {
	body, err := json.Marshal(WebhookPayload{Event: "promopool.alert", Alert: a})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: the webhook URL %s cannot be used", errDefinitive, egress.RedactURL(target))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "promopool-alerts")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("promopool-alert-%d", a.ID))
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return webhookError(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered status %d", resp.StatusCode)
	}
	return nil
}

// webhookError is what a failed POST is stored and logged as. A refused address says
// so (its class, not whether anything listens there); every other failure — refused,
// reset, timed out, unresolvable — is one generic message, so last_error cannot be
// used to map which hosts and ports answer, and the URL (its query may hold a token)
// appears nowhere.
func webhookError(err error) error {
	var be *egress.BlockedError
	if errors.As(err, &be) {
		return fmt.Errorf("webhook not posted: %w", be)
	}
	return errors.New("webhook not reached: no HTTP answer (connection failed or timed out)")
}

// Subject is the subject line of an alert's email.
func Subject(a *Alert) string {
	switch a.Level {
	case LevelEmpty:
		return fmt.Sprintf("[promopool] %q has run out of codes", a.GroupName)
	case LevelExpiry:
		return fmt.Sprintf("[promopool] %q: %d codes expire by %s", a.GroupName, deref(a.Expiring), a.ExpiringBefore.UTC().Format("2006-01-02"))
	}
	return fmt.Sprintf("[promopool] %q is low: %d codes left", a.GroupName, a.Balance)
}

// Body is the plain-text body of an alert's email.
func Body(a *Alert) string {
	var b strings.Builder
	b.WriteString(a.Message + "\n\n")
	fmt.Fprintf(&b, "Group:          %s (id %d)\n", a.GroupName, a.GroupID)
	fmt.Fprintf(&b, "Active balance: %d of %d codes\n", a.Balance, a.Total)
	if a.Threshold != nil {
		fmt.Fprintf(&b, "Threshold:      %d\n", *a.Threshold)
	}
	fmt.Fprintf(&b, "Issued:         %d in the last %.0f days (%.1f a day)\n", a.IssuedInWindow, a.WindowDays, a.RatePerDay)
	if a.DryAt != nil {
		fmt.Fprintf(&b, "Runs dry:       %s\n", a.DryAt.UTC().Format(time.RFC3339))
	} else {
		b.WriteString("Runs dry:       not at the current rate\n")
	}
	fmt.Fprintf(&b, "Raised:         %s\n", a.CreatedAt.UTC().Format(time.RFC3339))
	return b.String()
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
