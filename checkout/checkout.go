package checkout

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// Config configures the checkout.
type Config struct {
	// HoldTTL is how long a hold counts against the caps before it expires unless
	// confirmed (REDEMPTION_HOLD_TTL, default 30 minutes).
	HoldTTL time.Duration
	// Webhooks makes every redemption event write a webhook to the outbox
	// (REDEMPTION_WEBHOOK_URL is set); false writes none.
	Webhooks bool
	// FailedWebhooks also writes a redemption.failed webhook for every refused
	// redemption of a code that exists (REDEMPTION_WEBHOOK_EVENTS names
	// redemption.failed); it needs Webhooks.
	FailedWebhooks bool
	// Now is the clock (default time.Now); tests set it to move holds past their TTL.
	Now func() time.Time
}

// Notifier is told, after a commit, that webhooks were written to the outbox (the
// worker's enqueuer satisfies it). A failure is logged; the scheduler's sweep sends
// what was missed.
type Notifier interface {
	WebhooksWritten(ctx context.Context, ids []int64) error
}

// Deps are the checkout's dependencies.
type Deps struct {
	// DB is the record of truth (required).
	DB *sqlx.DB
	// Notifier enqueues the delivery of new webhooks; nil leaves them to the sweep.
	Notifier Notifier
	// Log takes what goes wrong outside a request's answer (required).
	Log *slog.Logger
	// CustomerByEmail finds the customer of an email, case-insensitively ("" for none):
	// validate and redeem use it when a request names an email and no customer id
	// (customers.Store.IDByEmail). Nil: an email alone names no customer.
	CustomerByEmail func(ctx context.Context, email string) (string, error)
}

// Service validates, redeems, confirms, cancels and refunds.
type Service struct {
	cfg     Config
	db      *sqlx.DB
	note    Notifier
	log     *slog.Logger
	byEmail func(ctx context.Context, email string) (string, error)
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	// qmu guards queues: each busy group's redemptions waiting for a batch (combine.go).
	qmu    sync.Mutex
	queues map[int64]*groupQueue
	// codeGroups is the group each code was last found in (lower-cased code → group id;
	// a routing hint, bounded by maxKnownCodes).
	codeGroups map[string]int64
	// batches and batched count the batches committed and the items they held.
	batches, batched atomic.Int64
}

// New returns the checkout service. Errors: a required dependency is missing, or a
// setting is out of range.
func New(cfg Config, deps Deps) (*Service, error) {
	cfg.HoldTTL = cmp.Or(cfg.HoldTTL, 30*time.Minute)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case deps.DB == nil:
		return nil, errors.New("checkout: Deps.DB is required")
	case deps.Log == nil:
		return nil, errors.New("checkout: Deps.Log is required")
	case cfg.FailedWebhooks && !cfg.Webhooks:
		return nil, errors.New("checkout: FailedWebhooks needs Webhooks")
	case cfg.HoldTTL < time.Second || cfg.HoldTTL > 7*24*time.Hour:
		return nil, fmt.Errorf("checkout: HoldTTL %s is outside 1s–168h", cfg.HoldTTL)
	}
	return &Service{cfg: cfg, db: deps.DB, note: deps.Notifier, log: deps.Log, byEmail: deps.CustomerByEmail, stmts: map[string]*sql.Stmt{},
		queues: map[int64]*groupQueue{}, codeGroups: map[string]int64{}}, nil
}

// HoldTTL is how long a hold lasts.
func (s *Service) HoldTTL() time.Duration { return s.cfg.HoldTTL }

// now is the service's clock, in UTC and to the microsecond PostgreSQL keeps.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// stmt returns query prepared on the pool: parsed once per connection, one round trip
// per call (lib/pq otherwise describes every parameterised query in a round trip of
// its own).
func (s *Service) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("preparing a statement: %w", err)
	}
	s.stmts[query] = st
	return st, nil
}

// customerOf resolves the customer of a request: its customer id, else the customer
// whose email it names ("" when none has it or no email was sent).
func (s *Service) customerOf(ctx context.Context, customer *string, email *string) error {
	*email = strings.TrimSpace(*email)
	if *customer != "" || *email == "" {
		return nil
	}
	if len(*email) > 320 || !strings.Contains(*email, "@") {
		return invalid("email", "is not an email address (at most 320 characters)")
	}
	if s.byEmail == nil {
		return nil
	}
	id, err := s.byEmail(ctx, *email)
	if err != nil {
		return err
	}
	*customer = id
	return nil
}
