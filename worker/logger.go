// Package worker holds promopool's Asynq side: the server that runs task handlers and
// the adapter that makes Asynq log through slog. Task types arrive with the features
// that need them (mailings, exports).
package worker

import (
	"fmt"
	"log/slog"
	"os"
)

// Logger adapts a slog.Logger to asynq.Logger.
type Logger struct{ L *slog.Logger }

func (l Logger) Debug(args ...any) { l.L.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l Logger) Info(args ...any)  { l.L.Info(fmt.Sprint(args...), "component", "asynq") }
func (l Logger) Warn(args ...any)  { l.L.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l Logger) Error(args ...any) { l.L.Error(fmt.Sprint(args...), "component", "asynq") }

// Fatal logs and exits, as asynq.Logger requires.
func (l Logger) Fatal(args ...any) {
	l.L.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
	os.Exit(1)
}
