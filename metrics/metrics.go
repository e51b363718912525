// Package metrics is promopool's operator view: Prometheus metrics that every process
// exposes on /metrics (`promopool web` on its HTTP_ADDR; worker and scheduler on
// METRICS_ADDR when set).
//
// The counters are package variables, as is usual for Prometheus instruments: the code
// that counts (claims, uploads, mailing batches, the Asynq middleware, alerts) increments
// them directly, and Registry gathers them with the Go and process collectors. Values
// that live in PostgreSQL (a group's balance) are read at scrape time by a
// BalanceCollector, with a timeout and a short cache, so /metrics never blocks on a slow
// database and every process reports the same figure.
//
// No label ever carries a promo code, a customer id or an email address: labels are group
// ids and names, task types, outcomes and alert kinds.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	// CodesIssued counts codes issued (new initial issues, not repeats or replays) by
	// group id, in this process.
	CodesIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promopool_codes_issued_total",
		Help: "Promo codes issued by this process (new initial issues), by group id.",
	}, []string{"group_id"})

	// UploadRows counts the rows of committed uploads by result: accepted, duplicate,
	// invalid. rate(promopool_upload_rows_total{result="accepted"}[1m]) is rows/s.
	UploadRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promopool_upload_rows_total",
		Help: "Rows of committed code uploads, by result (accepted, duplicate, invalid).",
	}, []string{"result"})

	// MailingMessages counts mailing recipients brought to a final state by this
	// process, by status: sent, failed, skipped.
	MailingMessages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promopool_mailing_messages_total",
		Help: "Mailing recipients recorded by this process, by final status (sent, failed, skipped).",
	}, []string{"status"})

	// TaskDuration is the run time of Asynq tasks by type and result (ok, error).
	TaskDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "promopool_task_duration_seconds",
		Help:    "Run time of Asynq tasks, by type and result (ok, error).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"type", "result"})

	// TaskRetries counts task runs that were retries (Asynq retry count > 0), by type.
	TaskRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promopool_task_retries_total",
		Help: "Asynq task runs that were retries of an earlier failed run, by type.",
	}, []string{"type"})

	// SegmentFoldIssues counts issues the worker's segment folder added to the summaries,
	// and SegmentFoldSeconds the time it spent folding: their ratio is the folder's rate
	// while it works, which must stay above the rate mailings issue codes at
	// (`promopool bench mailing` prints both).
	SegmentFoldIssues = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "promopool_segment_fold_issues_total",
		Help: "Issues the segment folder of this process added to the segment summaries.",
	})
	SegmentFoldSeconds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "promopool_segment_fold_seconds_total",
		Help: "Time the segment folder of this process spent folding, in seconds.",
	})

	// ValidateDuration is the time checkout.Service.Validate takes (the shop waits for it
	// at every cart change), by outcome: valid, refused (the code does not apply), error.
	ValidateDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "promopool_checkout_validate_duration_seconds",
		Help:    "Time to validate a code against a cart, by outcome (valid, refused, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"outcome"})

	// CheckoutRefusals counts codes refused at checkout, by operation (validate, redeem)
	// and reason (the stable codes of offers.Reason: not_found, expired, exhausted, …).
	CheckoutRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promopool_checkout_refusals_total",
		Help: "Codes refused at checkout by this process, by operation (validate, redeem) and reason.",
	}, []string{"operation", "reason"})

	// RedeemBatchSize is how many redemptions of one group each batch recorded in one
	// transaction (checkout's combiner: requests that arrive while a group's batch runs
	// wait for the next; 1 means no contention).
	RedeemBatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "promopool_checkout_redeem_batch_size",
		Help:    "Redemptions of one group recorded per transaction by this process's checkout.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})

	// AlertsSent counts alerts delivered, by kind (e.g. low, empty, exhausted) and
	// channel (e.g. email, webhook). The alerts package increments it.
	AlertsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promopool_alerts_sent_total",
		Help: "Balance alerts sent, by kind and channel.",
	}, []string{"kind", "channel"})
)

// Registry holds every promopool metric plus the Go runtime and process collectors.
// Processes add a BalanceCollector to it when they have a database.
var Registry = newRegistry()

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(CodesIssued, UploadRows, MailingMessages, TaskDuration, TaskRetries, AlertsSent, ValidateDuration, CheckoutRefusals,
		RedeemBatchSize,
		SegmentFoldIssues, SegmentFoldSeconds, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves Registry, plus the collectors given (a process's BalanceCollector),
// in the Prometheus text format. The extra collectors are registered with this handler
// only, so several handlers in one process (tests) do not collide.
func Handler(extra ...prometheus.Collector) http.Handler {
	own := prometheus.NewRegistry()
	own.MustRegister(extra...)
	return promhttp.HandlerFor(prometheus.Gatherers{Registry, own}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
