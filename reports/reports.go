package reports

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/groups"
	"promopool/mailings"
)

// Config tunes a Service; zero values take the defaults.
type Config struct {
	// FoldBatch is the most issues one fold transaction adds (default 200,000).
	FoldBatch int
	// QueryFold is the most issues a report folds before it answers; a longer tail is
	// left to the worker's folder and the report says the instant it is as of
	// (default 20,000).
	QueryFold int
	// ForecastDays is the window of the issue rate the balance forecast extrapolates
	// (default 7, as the balance alerts).
	ForecastDays int
	// Now is the clock of default periods, forecasts and balance snapshots (default
	// time.Now).
	Now func() time.Time
}

// Deliveries reads what mailings delivered; *mailings.Service satisfies it.
type Deliveries interface {
	Deliveries(ctx context.Context, ids []int64) (map[int64]mailings.Delivery, error)
}

// Deps are what a Service reads besides its own tables.
type Deps struct {
	// DB holds the rollups and the history they fold (required).
	DB *sqlx.DB
	// Groups looks groups up and reads their balances (required).
	Groups *groups.Store
	// Mailings gives the per-mailing delivery counts; nil leaves them at zero.
	Mailings Deliveries
	// Log receives the folder's logs (default: discarded).
	Log *slog.Logger
}

// Service keeps the report rollups and answers reports from them.
type Service struct {
	cfg      Config
	db       *sqlx.DB
	groups   *groups.Store
	mailings Deliveries
	log      *slog.Logger
}

// New returns a Service. Errors: a required dependency is missing.
func New(cfg Config, deps Deps) (*Service, error) {
	switch {
	case deps.DB == nil:
		return nil, errors.New("reports: Deps.DB is required")
	case deps.Groups == nil:
		return nil, errors.New("reports: Deps.Groups is required")
	}
	cfg.FoldBatch = cmp.Or(cfg.FoldBatch, 200_000)
	cfg.QueryFold = cmp.Or(cfg.QueryFold, 20_000)
	cfg.ForecastDays = cmp.Or(cfg.ForecastDays, 7)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, db: deps.DB, groups: deps.Groups, mailings: deps.Mailings, log: deps.Log}, nil
}
