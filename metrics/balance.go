package metrics

import (
	"cmp"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Balance is one group's counters as the balance collector reports them.
type Balance struct {
	GroupID int64
	Name    string
	Active  int64
	Issued  int64
	Expired int64
	// Redemptions and Discount are the group's uses and net discount given, all time
	// (minor units of Currency; package reports' rollups). A group without redemptions
	// reports none of their series.
	Redemptions int64
	Discount    int64
	Currency    string
}

// BalanceFunc reads every live group's balance (groups.Store.List adapted by the caller).
type BalanceFunc func(ctx context.Context) ([]Balance, error)

// BalanceCollector reports each live group's active, issued and expired codes as
// gauges read from PostgreSQL at scrape time. A read is bounded by Timeout and its
// result reused for CacheFor, so frequent or concurrent scrapes cost one query; when the
// read fails the collector reports promopool_group_balance_up 0 and no group series.
type BalanceCollector struct {
	read     BalanceFunc
	timeout  time.Duration
	cacheFor time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	at      time.Time
	cached  []Balance
	lastErr error
}

var (
	activeDesc   = prometheus.NewDesc("promopool_group_active_codes", "Codes a group can still issue (not issued, not expired), read from PostgreSQL.", []string{"group_id", "group"}, nil)
	issuedDesc   = prometheus.NewDesc("promopool_group_issued_codes", "Codes a group has issued, read from PostgreSQL.", []string{"group_id", "group"}, nil)
	expiredDesc  = prometheus.NewDesc("promopool_group_expired_codes", "Codes of a group that expired unissued, read from PostgreSQL.", []string{"group_id", "group"}, nil)
	usesDesc     = prometheus.NewDesc("promopool_group_redemptions", "Succeeded redemptions (uses) of a group's codes, all time, from the report rollups.", []string{"group_id", "group"}, nil)
	discountDesc = prometheus.NewDesc("promopool_group_discount_minor_units", "Discount a group's redemptions gave, net of refunds, all time, in minor units of the currency.", []string{"group_id", "group", "currency"}, nil)
	upDesc       = prometheus.NewDesc("promopool_group_balance_up", "1 if the last read of group balances from PostgreSQL succeeded.", nil, nil)
)

// NewBalanceCollector returns a collector over read. timeout defaults to 2 s and
// cacheFor to 5 s.
func NewBalanceCollector(read BalanceFunc, timeout, cacheFor time.Duration, log *slog.Logger) *BalanceCollector {
	return &BalanceCollector{read: read, timeout: cmp.Or(timeout, 2*time.Second), cacheFor: cmp.Or(cacheFor, 5*time.Second), log: log}
}

// Describe implements prometheus.Collector.
func (c *BalanceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeDesc
	ch <- issuedDesc
	ch <- expiredDesc
	ch <- usesDesc
	ch <- discountDesc
	ch <- upDesc
}

// Collect implements prometheus.Collector.
func (c *BalanceCollector) Collect(ch chan<- prometheus.Metric) {
	bals, err := c.balances()
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
	for _, b := range bals {
		id := strconv.FormatInt(b.GroupID, 10)
		ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(b.Active), id, b.Name)
		ch <- prometheus.MustNewConstMetric(issuedDesc, prometheus.GaugeValue, float64(b.Issued), id, b.Name)
		ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.GaugeValue, float64(b.Expired), id, b.Name)
		if b.Redemptions > 0 || b.Discount > 0 {
			ch <- prometheus.MustNewConstMetric(usesDesc, prometheus.GaugeValue, float64(b.Redemptions), id, b.Name)
			ch <- prometheus.MustNewConstMetric(discountDesc, prometheus.GaugeValue, float64(b.Discount), id, b.Name, b.Currency)
		}
	}
}

// balances returns the cached read when it is fresh, else reads again (one reader at a
// time: concurrent scrapes wait for it and share its result).
func (c *BalanceCollector) balances() ([]Balance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.cacheFor {
		return c.cached, c.lastErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	bals, err := c.read(ctx)
	c.at, c.lastErr = time.Now(), err
	if err != nil {
		c.cached = nil
		if c.log != nil {
			c.log.Warn("reading group balances for metrics failed", "err", err)
		}
		return nil, err
	}
	c.cached = bals
	return bals, nil
}
