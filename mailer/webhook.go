package mailer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"promopool/egress"
)

// WebhookConfig configures the webhook transport, which POSTs each message
// as JSON to the platform's own sender.
type WebhookConfig struct {
	// URL is the http or https endpoint that receives the messages. Required.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Timeout bounds each attempt, from dialling to reading the response
	// status. Defaults to 10s.
	Timeout time.Duration
	// Retries is how many times a message is retried after a 5xx, 408, 429
	// or a connection error that happened before the request was written.
	// Defaults to 3; a negative value disables retries.
	Retries int
	// Backoff is the wait before the first retry; it doubles for each
	// further retry, up to MaxBackoff. Defaults to 500ms.
	Backoff time.Duration
	// MaxBackoff caps the wait between retries, including one asked for by
	// a Retry-After header. Defaults to 30s.
	MaxBackoff time.Duration
	// Concurrency is the maximum number of requests in flight across all
	// Send calls. Defaults to 4.
	Concurrency int
	// Client is the HTTP client to use. Defaults to a client with its own
	// connection pool. Redirects are never followed.
	Client *http.Client
}

func (c *WebhookConfig) setDefaults() {
	c.Timeout = cmp.Or(c.Timeout, 10*time.Second)
	c.Retries = cmp.Or(c.Retries, 3)
	c.Backoff = cmp.Or(c.Backoff, 500*time.Millisecond)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, 30*time.Second)
	c.Concurrency = cmp.Or(c.Concurrency, 4)
}

func (c *WebhookConfig) validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return fmt.Errorf("%w: webhook: URL is required", ErrConfig)
	case err != nil:
		return fmt.Errorf("%w: webhook: %w", ErrConfig, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%w: webhook: URL must be http(s)://host/...", ErrConfig)
	case c.Timeout < 0 || c.Backoff < 0 || c.MaxBackoff < 0:
		return fmt.Errorf("%w: webhook: durations must not be negative", ErrConfig)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: webhook: concurrency must be positive", ErrConfig)
	}
	return nil
}

// webhookPayload is the JSON body of one request.
type webhookPayload struct {
	ID      string            `json:"id"`
	From    string            `json:"from"`
	To      string            `json:"to"`
	Subject string            `json:"subject"`
	HTML    string            `json:"html,omitempty"`
	Text    string            `json:"text,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Webhook sends each message as one JSON POST with an Idempotency-Key header
// set to the message's ID, so the receiver can drop duplicates.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	log    *slog.Logger
	slots  chan struct{}
	closed atomic.Bool
}

// NewWebhook returns a webhook transport. It returns an error wrapping
// ErrConfig when cfg is invalid.
func NewWebhook(cfg WebhookConfig, log *slog.Logger) (*Webhook, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client := &http.Client{}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	} else {
		client.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Webhook{
		cfg:    cfg,
		client: client,
		log:    orDiscard(log).With(slog.String("transport", "webhook")),
		slots:  make(chan struct{}, cfg.Concurrency),
	}, nil
}

// Send posts every message, up to Concurrency at a time, and classifies each
// reply: 2xx Sent, 4xx Rejected (but 408 and 429 are retried like 5xx), 5xx
// Temporary once retries are spent, a failure after the request was written
// Ambiguous. Messages not started when ctx ends are Temporary. It returns
// ErrClosed after Close and no other error.
func (w *Webhook) Send(ctx context.Context, msgs []Message) ([]Result, error) {
	if w.closed.Load() {
		return nil, ErrClosed
	}
	results := make([]Result, len(msgs))
	var wg sync.WaitGroup
	for i := range msgs {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			results[i] = Result{Outcome: Temporary, Err: &SendError{Stage: "request", Err: ctx.Err()}}
			continue
		}
		wg.Go(func() {
			defer func() { <-w.slots }()
			results[i] = w.sendOne(ctx, &msgs[i])
			if results[i].Outcome != Sent {
				logFailure(w.log, "webhook", &msgs[i], results[i])
			}
		})
	}
	wg.Wait()
	logBatch(w.log, "webhook", results)
	return results, nil
}

// sendOne posts m, retrying what may be retried.
func (w *Webhook) sendOne(ctx context.Context, m *Message) Result {
	if _, err := m.validate(); err != nil {
		return Result{Outcome: Rejected, Err: err}
	}
	body, err := json.Marshal(webhookPayload{
		ID: m.ID, From: m.From, To: m.To, Subject: m.Subject,
		HTML: m.HTML, Text: m.Text, Headers: m.Headers,
	})
	if err != nil {
		return Result{Outcome: Rejected, Err: fmt.Errorf("%w: %w", ErrInvalidMessage, err)}
	}
	backoff := w.cfg.Backoff
	for attempt := 0; ; attempt++ {
		res, retry, wait := w.attempt(ctx, m.ID, body)
		if !retry || attempt >= w.cfg.Retries {
			return res
		}
		wait = min(max(wait, backoff), w.cfg.MaxBackoff)
		backoff = min(2*backoff, w.cfg.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res
		}
	}
}

// attempt makes one request. retry says whether another attempt may help,
// and wait how long the server asked us to wait (Retry-After), if it did.
func (w *Webhook) attempt(parent context.Context, id string, body []byte) (res Result, retry bool, wait time.Duration) {
	ctx, cancel := context.WithTimeout(parent, w.cfg.Timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Result{Outcome: Temporary, Err: &SendError{Stage: "request", Err: err}}, false, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "promopool-mailer")
	// Also makes net/http treat the POST as idempotent and replay it on a
	// kept-alive connection the server had closed.
	req.Header.Set("Idempotency-Key", id)
	if w.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.cfg.Token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// The error quotes the URL, which may carry a password or a signed query; it is
		// stored on the recipient and logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = egress.RedactURL(ue.URL)
		}
		if wrote.Load() {
			// The receiver has the whole request and may have acted on it.
			return Result{Outcome: Ambiguous, Err: &SendError{Stage: "response", Err: err}}, false, 0
		}
		// Not (fully) written: the receiver cannot have acted on it.
		return Result{Outcome: Temporary, Err: &SendError{Stage: "request", Err: err}}, parent.Err() == nil, 0
	}
	// Drain a little so the connection can be reused; the body is not
	// logged since a receiver may echo the message.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()

	code := resp.StatusCode
	serr := &SendError{Stage: "response", Code: code}
	switch {
	case code >= 200 && code < 300:
		return Result{Outcome: Sent}, false, 0
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return Result{Outcome: Temporary, Err: serr}, true, retryAfter(resp.Header.Get("Retry-After"))
	case code >= 400 && code < 500:
		return Result{Outcome: Rejected, Err: serr}, false, 0
	}
	// 1xx, 3xx: not accepted, and not a refusal of this message either.
	return Result{Outcome: Temporary, Err: serr}, false, 0
}

// retryAfter parses a Retry-After header given in seconds.
func retryAfter(h string) time.Duration {
	if n, err := strconv.Atoi(h); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// Close closes idle HTTP connections. Send returns ErrClosed afterwards.
func (w *Webhook) Close() error {
	w.closed.Store(true)
	w.client.CloseIdleConnections()
	return nil
}
