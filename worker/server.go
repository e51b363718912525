package worker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"promopool/internal/redisurl"
	"promopool/metrics"
)

// Config configures the worker process.
type Config struct {
	// RedisURL is the Redis carrying the queues, in any form internal/redisurl reads.
	RedisURL string
	// Concurrency is how many tasks run at once (default 10).
	Concurrency int
	// ShutdownTimeout is how long in-flight tasks get to finish on SIGTERM (default 30s).
	ShutdownTimeout time.Duration
}

// Run serves tasks from Redis with mux until ctx is cancelled.
func Run(ctx context.Context, cfg Config, log *slog.Logger, mux *asynq.ServeMux) error {
	conn, err := redisurl.Parse(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	srv := asynq.NewServer(conn.Asynq(), asynq.Config{
		Concurrency:     cmp.Or(cfg.Concurrency, 10),
		Queues:          map[string]int{QueueMailings: 6, "default": 3},
		Logger:          Logger{L: log},
		ShutdownTimeout: cmp.Or(cfg.ShutdownTimeout, 30*time.Second),
	})
	mux.Use(logTasks(log), measureTasks())
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("starting worker: %w", err)
	}
	log.Info("worker started", "concurrency", cmp.Or(cfg.Concurrency, 10))
	<-ctx.Done()
	srv.Shutdown()
	log.Info("worker stopped")
	return nil
}

// logTasks logs every task's type, id, outcome and duration (never its payload).
func logTasks(log *slog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			id, _ := asynq.GetTaskID(ctx)
			retry, _ := asynq.GetRetryCount(ctx)
			attrs := []any{"type", t.Type(), "task_id", id, "retry", retry, "duration", time.Since(start)}
			if err != nil {
				log.Warn("task failed", append(attrs, "err", err)...)
			} else {
				log.Debug("task done", attrs...)
			}
			return err
		})
	}
}

// measureTasks records every task's run time by type and result, and counts the runs
// that are retries (metrics.TaskDuration, metrics.TaskRetries).
func measureTasks() asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if retry, _ := asynq.GetRetryCount(ctx); retry > 0 {
				metrics.TaskRetries.WithLabelValues(t.Type()).Inc()
			}
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			result := "ok"
			if err != nil {
				result = "error"
			}
			metrics.TaskDuration.WithLabelValues(t.Type(), result).Observe(time.Since(start).Seconds())
			return err
		})
	}
}
