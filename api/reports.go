package api

import (
	"net/http"
)

// groupMetrics answers GET /v1/groups/{id}/metrics?from=&to=: the group's report over
// the period (reports.Metrics).
func (s *Server) groupMetrics(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	p, err := s.reports.ParsePeriod(q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	m, err := s.reports.GroupMetrics(r.Context(), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// portfolio answers GET /v1/metrics?from=&to=&sort=: every live group's figures over
// the period, side by side (reports.Portfolio).
func (s *Server) portfolio(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := s.reports.ParsePeriod(q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	out, err := s.reports.Portfolio(r.Context(), p, q.Get("sort"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
