package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"github.com/jmoiron/sqlx"

	"promopool/api"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/egress"
	"promopool/groups"
	"promopool/internal/redisurl"
	"promopool/macros"
	"promopool/mailer"
	"promopool/mailings"
	"promopool/metrics"
	"promopool/reports"
	"promopool/segments"
	"promopool/worker"
)

func (m *Main) redis() (redis.UniversalClient, error) {
	conn, err := redisurl.Parse(m.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := conn.Client()
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
	if _, err := m.openReader(ctx, db); err != nil {
		return err
	}
	store := m.groupStore(db)
	svc, err := m.mailingService(db, store, nil)
	if err != nil {
		return err
	}
	alertList, err := m.alertChecker(db, false)
	if err != nil {
		return err
	}
	people, err := m.people(ctx, db)
	if err != nil {
		return err
	}
	co, err := m.checkout(db)
	if err != nil {
		return err
	}
	rep, err := m.reportService(db, store, svc)
	if err != nil {
		return err
	}
	metricsHandler := metrics.Handler(metrics.NewBalanceCollector(balances(store, rep), 2*time.Second, 5*time.Second, m.log))
	srv, err := api.New(api.Config{MaxUploadBytes: m.cfg.MaxUploadBytes, Metrics: metricsHandler,
		IssueRate: m.cfg.IssueRateLimit, ValidateRate: m.cfg.ValidateRateLimit, StreamIdle: m.cfg.HTTPStreamIdle,
		ValidateMissRate: m.cfg.ValidateMissLimit, CustomerMissRate: m.cfg.CustomerMissLimit},
		api.Deps{Groups: store, Customers: customers.NewStore(db), Keys: keys, People: people.api(), Mailings: svc, Segments: m.segments(db),
			Checkout: co, Alerts: alertList, Reports: rep, Log: m.log, Ready: map[string]api.Pinger{
				"postgres": api.PingFunc(db.PingContext),
				"redis":    api.PingFunc(func(ctx context.Context) error { return rdb.Ping(ctx).Err() }),
			}})
	if err != nil {
		return err
	}
	if err := m.mountAdmin(srv, db, store, svc, keys, alertList, people, rep, co); err != nil {
		return err
	}
	if err := m.serveMetrics(ctx, metricsHandler); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	// Every request is bounded in time: its headers, its body, its answer. Streamed
	// uploads and exports replace the last two with deadlines that roll while bytes
	// move (internal/deadline, HTTP_STREAM_IDLE).
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: m.cfg.HTTPReadTimeout,
		WriteTimeout: m.cfg.HTTPWriteTimeout, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
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

// webhookPolicy is where webhooks a user typed may connect (WEBHOOK_ALLOW_PRIVATE).
// MAILER_URL and ALERTS_MAILER_URL are the operator's and are not held to it.
func (m *Main) webhookPolicy() egress.Policy { return egress.Policy{Allow: m.cfg.WebhookAllow} }

// groupStore is the process's groups store, alert webhooks held to webhookPolicy, its
// exports read through the read pool when web opened one.
func (m *Main) groupStore(db *sqlx.DB) *groups.Store {
	// Caps and the budget are never lowered below what checkout's counters say is used.
	cfg := groups.Config{Webhooks: m.webhookPolicy(), Usage: checkout.Usage, CodeRedemptions: checkout.CodeRedemptions}
	if m.reader != nil {
		cfg.Reader = m.reader
	}
	return groups.NewStore(db, cfg)
}

// asynqClient connects the task producer to Redis.
func (m *Main) asynqClient() (*asynq.Client, error) {
	conn, err := redisurl.Parse(m.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	c := asynq.NewClient(conn.Asynq())
	m.closer = append(m.closer, func() { c.Close() })
	return c, nil
}

// segments returns the process's segment service (one per process: it is stateless
// but for its configuration).
func (m *Main) segments(db *sqlx.DB) *segments.Service {
	if m.segs == nil {
		cfg := segments.Config{}
		if m.reader != nil {
			cfg.Reader = m.reader
		}
		m.segs = segments.New(db, cfg)
	}
	return m.segs
}

// reportService builds the reports service (rollups and their reports).
func (m *Main) reportService(db *sqlx.DB, store *groups.Store, svc *mailings.Service) (*reports.Service, error) {
	var d reports.Deliveries
	if svc != nil {
		d = svc
	}
	return reports.New(reports.Config{}, reports.Deps{DB: db, Groups: store, Mailings: d, Log: m.log})
}

// mailingService builds the mailings service; sender is nil in processes that do not send.
func (m *Main) mailingService(db *sqlx.DB, store *groups.Store, sender mailings.Sender) (*mailings.Service, error) {
	client, err := m.asynqClient()
	if err != nil {
		return nil, err
	}
	// A process that sends raises the alert of a mailing paused for lack of codes at once.
	var alerter mailings.Alerter
	if sender != nil {
		checker, err := m.alertChecker(db, true)
		if err != nil {
			return nil, err
		}
		alerter = checker
	}
	return mailings.New(mailings.Config{BatchSize: m.cfg.MailingBatchSize, Lease: m.cfg.MailingLease,
		ReenqueueAfter: m.cfg.ReenqueueAfter, ReservationTimeout: m.cfg.ReservationTimeout,
		Limits: macros.Limits{MaxMessageBytes: m.cfg.MaxMessageBytes}, BatchBytes: m.cfg.MailingBatchBytes},
		mailings.Deps{DB: db, Groups: store, Enqueuer: worker.Enqueuer{Client: client, Inspector: m.asynqInspector()},
			Sender: sender, Alerter: alerter, Segments: m.segments(db), Log: m.log}), nil
}

// asynqInspector lets the reconciler see which batches still wait in the queue. The
// Redis URL was parsed already by asynqClient.
func (m *Main) asynqInspector() *asynq.Inspector {
	conn, _ := redisurl.Parse(m.cfg.RedisURL)
	insp := asynq.NewInspector(conn.Asynq())
	m.closer = append(m.closer, func() { insp.Close() })
	return insp
}

// worker runs the Asynq task handlers (mailing batches) with the transport of
// MAILER_URL, and the reconciler that re-enqueues batches whose tasks were lost.
func (m *Main) worker(ctx context.Context) error {
	m.tuneGC()
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	tcfg, err := mailer.ParseURL(m.cfg.MailerURL)
	if err != nil {
		return fmt.Errorf("MAILER_URL: %w", err)
	}
	tcfg.Log = m.log
	transport, err := mailer.New(tcfg)
	if err != nil {
		return fmt.Errorf("MAILER_URL: %w", err)
	}
	m.closer = append(m.closer, func() { transport.Close() })
	store := m.groupStore(db)
	svc, err := m.mailingService(db, store, transport)
	if err != nil {
		return err
	}
	mux := asynq.NewServeMux()
	mux.Handle(worker.TypeMailingBatch, &worker.MailingBatchHandler{Mailings: svc})
	deliverer, err := m.webhookDeliverer(ctx, db)
	if err != nil {
		return err
	}
	if deliverer != nil {
		mux.Handle(worker.TypeRedemptionWebhooks, &worker.RedemptionWebhooksHandler{Deliverer: deliverer})
	}
	if err := m.serveMetrics(ctx, metrics.Handler()); err != nil {
		return err
	}
	go svc.RunReconciler(ctx, m.cfg.ReconcileInterval)
	go m.segments(db).RunFolder(ctx, m.cfg.SegmentFoldInterval, m.log)
	rep, err := m.reportService(db, store, svc)
	if err != nil {
		return err
	}
	go rep.RunFolder(ctx, m.cfg.SegmentFoldInterval)
	return worker.Run(ctx, worker.Config{RedisURL: m.cfg.RedisURL, Concurrency: m.cfg.WorkerConcurrency,
		ShutdownTimeout: m.cfg.WorkerShutdownTimeout}, m.log, mux)
}

// scheduler runs the periodic jobs on their cron schedules: the balance alerts'
// check on ALERTS_SCHEDULE.
func (m *Main) scheduler(ctx context.Context) error {
	db, err := m.openDB(ctx, true)
	if err != nil {
		return err
	}
	checker, err := m.alertChecker(db, true)
	if err != nil {
		return err
	}
	if err := m.serveMetrics(ctx, metrics.Handler()); err != nil {
		return err
	}
	c := cron.New(m.cronOptions()...)
	if err := m.addAlertsJob(ctx, c, checker); err != nil {
		return err
	}
	if err := m.addCheckoutJobs(ctx, c, db); err != nil {
		return err
	}
	c.Start()
	m.log.Info("scheduler started", "jobs", len(c.Entries()))
	<-ctx.Done()
	<-c.Stop().Done()
	m.log.Info("scheduler stopped")
	return nil
}

// tuneGC trades the worker's memory for CPU, unless GOGC or GOMEMLIMIT say otherwise.
// A mailing batch allocates a few MB and keeps almost none of it, so at Go's default
// (GOGC=100 over a ~10 MB live heap) the worker collected garbage many times a second:
// 8% of the machine's CPU during bench mailing (perf), taken from PostgreSQL on the
// same cores. GOGC=400 collects a quarter as often; the 200 MB soft limit makes the
// collector work harder before the worker nears the 250 MB it is budgeted.
func (m *Main) tuneGC() {
	if m.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if m.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(200 << 20)
	}
}

// checkout builds the checkout service (SPEC §11). With REDEMPTION_WEBHOOK_URL set,
// events write webhooks to the outbox and enqueue their delivery.
func (m *Main) checkout(db *sqlx.DB) (*checkout.Service, error) {
	deps := checkout.Deps{DB: db, Log: m.log, CustomerByEmail: customers.NewStore(db).IDByEmail}
	webhooks := m.cfg.RedemptionWebhookURL != ""
	if webhooks {
		client, err := m.asynqClient()
		if err != nil {
			return nil, err
		}
		deps.Notifier = worker.WebhookEnqueuer{Client: client}
	}
	return checkout.New(checkout.Config{HoldTTL: m.cfg.RedemptionHoldTTL, Webhooks: webhooks,
		FailedWebhooks: webhooks && m.cfg.RedemptionWebhookFailed}, deps)
}

// webhookDeliverer posts the redemption webhooks; nil without REDEMPTION_WEBHOOK_URL.
func (m *Main) webhookDeliverer(ctx context.Context, db *sqlx.DB) (*checkout.Deliverer, error) {
	if m.cfg.RedemptionWebhookURL == "" {
		return nil, nil
	}
	return checkout.NewDeliverer(ctx, checkout.DeliverConfig{URL: m.cfg.RedemptionWebhookURL,
		Secret: []byte(m.cfg.RedemptionWebhookSecret), Policy: m.webhookPolicy()}, db, m.log)
}

// addCheckoutJobs runs, every REDEMPTION_SWEEP_INTERVAL (1 min), the sweep of expired holds and (with webhooks)
// a delivery run that picks up every webhook due for a retry or missed by its enqueue.
func (m *Main) addCheckoutJobs(ctx context.Context, cr *cron.Cron, db *sqlx.DB) error {
	co, err := m.checkout(db)
	if err != nil {
		return err
	}
	var sweep checkout.Notifier
	if m.cfg.RedemptionWebhookURL != "" {
		client, err := m.asynqClient()
		if err != nil {
			return err
		}
		sweep = worker.WebhookEnqueuer{Client: client}
	}
	every := m.cfg.RedemptionSweepInterval
	_, err = cr.AddFunc("@every "+every.String(), func() {
		runCtx, cancel := context.WithTimeout(ctx, max(every*5/6, 50*time.Second))
		defer cancel()
		res, err := co.ExpireHolds(runCtx)
		if err != nil {
			m.log.Error("expiring holds failed", "err", err)
		} else if res.Expired > 0 {
			m.log.Info("holds expired", "count", res.Expired)
		}
		if sweep != nil {
			if err := sweep.WebhooksWritten(runCtx, nil); err != nil {
				m.log.Warn("enqueueing the webhook sweep failed", "err", err)
			}
		}
	})
	return err
}
