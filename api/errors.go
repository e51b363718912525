package api

import (
	"encoding/json"
	"net/http"

	"promopool/internal/httperr"
)

// badRequest is a 400 error of the request itself, found in this package.
func badRequest(code, message string) error { return httperr.BadRequest(code, message) }

// writeError answers err as JSON with the status, code, message and details of the one
// classification (internal/httperr); an error it does not know is logged and answered
// as 500 "internal" without its text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := httperr.Classify(err)
	if p.Internal() {
		if r.Context().Err() != nil {
			// The client went away; nothing to answer, nothing went wrong on our side.
			s.log.Info("request abandoned by client", "route", r.Pattern, "err", err)
		} else {
			s.log.Error("request failed", "route", r.Pattern, "err", err)
		}
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="promopool"`)
	}
	body := map[string]any{"code": p.Code, "message": p.Message}
	for k, v := range p.Details {
		body[k] = v
	}
	writeJSON(w, p.Status, map[string]any{"error": body})
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		// A route that may be cached sets its own before answering.
		w.Header().Set("Cache-Control", "no-store")
	}
	// Names and fields are returned as stored (HTML not escaped): no browser may sniff
	// a JSON answer holding "<script>" as a page.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
