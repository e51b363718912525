package api

import (
	"context"
	"net/http"

	"promopool/alerts"
)

// AlertLister lists a group's alerts; *alerts.Service satisfies it.
type AlertLister interface {
	List(ctx context.Context, groupID, before int64, limit int) ([]alerts.Alert, error)
}

// WithAlerts adds GET /v1/groups/{id}/alerts, served by l.
func (s *Server) WithAlerts(l AlertLister) *Server {
	s.handle("GET /v1/groups/{id}/alerts", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		before, limit := page(r)
		list, err := l.List(r.Context(), id, before, limit)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"alerts": list})
		return nil
	})
	return s
}
