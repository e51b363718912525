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

// listAlerts answers GET /v1/groups/{id}/alerts.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	before, limit := page(r)
	list, err := s.alerts.List(r.Context(), id, before, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": list})
	return nil
}

// Acknowledger marks an alert seen; *alerts.Service satisfies it.
type Acknowledger interface {
	Acknowledge(ctx context.Context, id int64) (*alerts.Alert, error)
}

// acknowledgeAlert answers POST /v1/alerts/{id}/acknowledge: the alert, marked seen by
// the caller (the first acknowledgement stands; repeating it changes nothing).
func (s *Server) acknowledgeAlert(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a, err := s.alerts.(Acknowledger).Acknowledge(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
