package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Outcome is what happened to one message handed to a Transport.
type Outcome int

const (
	// Sent means the next hop accepted the message.
	Sent Outcome = iota
	// Rejected means the message was definitively refused before delivery
	// (SMTP 5xx at MAIL FROM, RCPT TO, DATA or the final dot; webhook 4xx; an
	// invalid message): it was not delivered and will not be, so its codes may
	// go back to the pool.
	Rejected
	// Temporary means a transient failure before delivery (SMTP 4xx before the
	// body was accepted, connection refused, webhook 5xx after retries, a
	// timeout before the request was sent): it is safe to retry later.
	Temporary
	// Ambiguous means the failure happened after the message may have been
	// delivered (connection lost during or after DATA, webhook timeout after
	// the request was sent): it must not be retried blindly and its codes stay
	// issued.
	Ambiguous
)

// String returns the outcome's lower-case name, for logs and metrics.
func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Rejected:
		return "rejected"
	case Temporary:
		return "temporary"
	case Ambiguous:
		return "ambiguous"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result is the outcome for one message of a batch.
type Result struct {
	// Outcome says whether the message was sent and, if not, whether it may
	// be retried.
	Outcome Outcome
	// Err is nil when Outcome is Sent and says what happened otherwise. It
	// never contains the message's subject or body.
	Err error
}

// Transport sends batches of messages.
//
// Implementations are safe for concurrent use.
type Transport interface {
	// Send sends msgs and returns one Result per message, in order. It
	// returns an error only when it could send nothing at all for a reason
	// that applies to the whole batch (the transport is closed, the server
	// cannot be reached or refuses the credentials); every message then
	// counts as Temporary and the returned results, when not nil, say so.
	// Per-message failures go in the results.
	Send(ctx context.Context, msgs []Message) ([]Result, error)
	// Close releases the transport's connections. Send must not be called
	// after Close.
	Close() error
}

// Errors returned by this package, matched with errors.Is.
var (
	// ErrInvalidMessage means a Message cannot be rendered safely: a missing
	// or malformed field, a header with CR or LF in it, or an attempt to set a
	// header the package writes itself. Such messages are Rejected.
	ErrInvalidMessage = errors.New("mailer: invalid message")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("mailer: transport closed")
	// ErrConfig wraps every configuration error from New, NewSMTP,
	// NewWebhook, NewFile and ParseURL.
	ErrConfig = errors.New("mailer: invalid configuration")
)

// SendError says why one message was not sent. It is the Err of a Result
// for failures reported by the next hop or the network.
type SendError struct {
	// Stage is the step that failed: "connect", "mail", "rcpt", "data",
	// "body", "end" (the final dot), "reset" for SMTP; "request" or
	// "response" for the webhook; "write" for files.
	Stage string
	// Code is the SMTP reply code or the HTTP status, 0 when there was none.
	Code int
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *SendError) Error() string {
	if e.Code != 0 && e.Err == nil {
		return fmt.Sprintf("mailer: %s: status %d", e.Stage, e.Code)
	}
	return fmt.Sprintf("mailer: %s: %v", e.Stage, e.Err)
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// Config selects and configures a Transport, for New.
type Config struct {
	// Kind is the transport: "smtp", "webhook", "file" or "null". Required.
	Kind string
	// SMTP configures the "smtp" transport.
	SMTP SMTPConfig
	// Webhook configures the "webhook" transport.
	Webhook WebhookConfig
	// File configures the "file" transport.
	File FileConfig
	// Log receives the transport's logs (kind, counts, errors; never a
	// subject, a body or an address beyond its domain). Defaults to a logger
	// that discards everything.
	Log *slog.Logger
}

// New builds the transport that cfg describes. It returns an error wrapping
// ErrConfig when the configuration is incomplete or invalid.
func New(cfg Config) (Transport, error) {
	log := orDiscard(cfg.Log)
	switch cfg.Kind {
	case "smtp":
		return NewSMTP(cfg.SMTP, log)
	case "webhook":
		return NewWebhook(cfg.Webhook, log)
	case "file":
		return NewFile(cfg.File, log)
	case "null":
		return NewNull(log), nil
	case "":
		return nil, fmt.Errorf("%w: transport kind is required", ErrConfig)
	}
	return nil, fmt.Errorf("%w: unknown transport kind %q", ErrConfig, cfg.Kind)
}

// orDiscard returns log, or a logger that discards everything when log is nil.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// domainOf returns the domain of an address, the only part of it that may be
// logged.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(strings.TrimSuffix(addr[i+1:], ">"))
	}
	return ""
}

// counts tallies the outcomes of a batch, for logs.
func counts(results []Result) (sent, rejected, temporary, ambiguous int) {
	for _, r := range results {
		switch r.Outcome {
		case Sent:
			sent++
		case Rejected:
			rejected++
		case Temporary:
			temporary++
		case Ambiguous:
			ambiguous++
		}
	}
	return
}

// logBatch logs the summary of one Send call.
func logBatch(log *slog.Logger, kind string, results []Result) {
	sent, rejected, temporary, ambiguous := counts(results)
	level := slog.LevelInfo
	if sent != len(results) {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "mailer batch done",
		slog.String("transport", kind),
		slog.Int("messages", len(results)),
		slog.Int("sent", sent),
		slog.Int("rejected", rejected),
		slog.Int("temporary", temporary),
		slog.Int("ambiguous", ambiguous))
}

// logFailure logs one failed message: its recipient's domain and the stage
// and code of the failure. Server reply text is left out because servers
// often quote the full recipient address in it.
func logFailure(log *slog.Logger, kind string, msg *Message, r Result) {
	attrs := []any{
		slog.String("transport", kind),
		slog.String("outcome", r.Outcome.String()),
		slog.String("to_domain", domainOf(msg.To)),
	}
	var se *SendError
	switch {
	case errors.As(r.Err, &se):
		attrs = append(attrs, slog.String("stage", se.Stage))
		if se.Code != 0 {
			attrs = append(attrs, slog.Int("code", se.Code))
		} else {
			attrs = append(attrs, slog.String("error", se.Err.Error()))
		}
	case errors.Is(r.Err, ErrInvalidMessage):
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	case r.Err != nil:
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	}
	log.Warn("mailer message not sent", attrs...)
}
