package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"promopool/groups"
	"promopool/metrics"
	"promopool/reports"
)

// balances adapts the group list to the metrics' balance reader.
func balances(store *groups.Store, rep *reports.Service) metrics.BalanceFunc {
	return func(ctx context.Context) ([]metrics.Balance, error) {
		gs, err := store.List(ctx)
		if err != nil {
			return nil, err
		}
		var totals map[int64]reports.Totals
		if rep != nil {
			if totals, err = rep.Totals(ctx); err != nil {
				return nil, err
			}
		}
		out := make([]metrics.Balance, len(gs))
		for i, g := range gs {
			t := totals[g.ID]
			out[i] = metrics.Balance{GroupID: g.ID, Name: g.Name, Active: g.Active, Issued: g.Issued, Expired: g.Expired,
				Redemptions: t.Uses, Discount: t.Discount, Currency: t.Currency}
		}
		return out, nil
	}
}

// serveMetrics serves h at /metrics (and /healthz) on METRICS_ADDR, without a key, until
// ctx ends; with no METRICS_ADDR it does nothing. The address is the operator's to keep
// private (a loopback or internal interface): group names and balances are business
// data. A listen failure stops the process: an operator who asked for metrics should
// not run without them unknowingly.
func (m *Main) serveMetrics(ctx context.Context, h http.Handler) error {
	if m.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server failed", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	m.log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}
