package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"promopool/api"
	"promopool/auth"
	"promopool/groups"
	"promopool/worker"
)

func (m *Main) redis() (*redis.Client, error) {
	opt, err := redis.ParseURL(m.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	m.closer = append(m.closer, func() { rdb.Close() })
	return rdb, nil
}

// web serves the HTTP API until ctx is cancelled, then drains requests for up to 30 s.
func (m *Main) web(ctx context.Context) error {
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	rdb, err := m.redis()
	if err != nil {
		return err
	}
	keys, err := auth.NewKeys(db, m.cfg.APIKeys)
	if err != nil {
		return err
	}
	store := groups.NewStore(db, groups.Config{})
	srv := api.New(api.Config{MaxUploadBytes: m.cfg.MaxUploadBytes}, store, keys, m.log, map[string]api.Pinger{
		"postgres": api.PingFunc(db.PingContext),
		"redis":    api.PingFunc(func(ctx context.Context) error { return rdb.Ping(ctx).Err() }),
	})
	ln, err := net.Listen("tcp", m.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	m.log.Info("web listening", "addr", ln.Addr().String())
	fmt.Fprintf(m.Stdout, "listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	m.log.Info("web stopped")
	return nil
}

// worker runs the Asynq task handlers. No task type is registered yet: mailings and
// exports bring theirs.
func (m *Main) worker(ctx context.Context) error {
	if _, err := m.openDB(ctx, true); err != nil {
		return err
	}
	mux := asynq.NewServeMux()
	return worker.Run(ctx, worker.Config{RedisURL: m.cfg.RedisURL, Concurrency: m.cfg.WorkerConcurrency}, m.log, mux)
}

// scheduler runs the periodic jobs on their cron schedules. None is registered yet:
// balance alerts bring theirs.
func (m *Main) scheduler(ctx context.Context) error {
	if _, err := m.openDB(ctx, true); err != nil {
		return err
	}
	c := cron.New()
	c.Start()
	m.log.Info("scheduler started", "jobs", len(c.Entries()))
	<-ctx.Done()
	<-c.Stop().Done()
	m.log.Info("scheduler stopped")
	return nil
}
