package mailer

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Null drops every message and counts them, for benchmarks. Every message
// is Sent.
type Null struct {
	log   *slog.Logger
	count atomic.Int64
}

// NewNull returns a null transport.
func NewNull(log *slog.Logger) *Null {
	return &Null{log: orDiscard(log).With(slog.String("transport", "null"))}
}

// Send counts msgs and reports them all Sent. It returns no error.
func (n *Null) Send(_ context.Context, msgs []Message) ([]Result, error) {
	n.count.Add(int64(len(msgs)))
	n.log.Debug("mailer batch dropped", slog.Int("messages", len(msgs)))
	return make([]Result, len(msgs)), nil
}

// Count returns how many messages Send has dropped.
func (n *Null) Count() int64 { return n.count.Load() }

// Close does nothing.
func (n *Null) Close() error { return nil }
