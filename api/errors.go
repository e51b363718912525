package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"promopool/auth"
	"promopool/groups"
	"promopool/macros"
	"promopool/mailings"
	"promopool/segments"
)

// errorKind maps a domain error to its HTTP status and stable code.
type errorKind struct {
	err    error
	status int
	code   string
}

// sentinels is the one table of domain errors and what the API answers for them.
var sentinels = []errorKind{
	{auth.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{groups.ErrGroupNotFound, http.StatusNotFound, "group_not_found"},
	{groups.ErrUploadNotFound, http.StatusNotFound, "upload_not_found"},
	{groups.ErrNameTaken, http.StatusConflict, "name_taken"},
	{groups.ErrUploadUndone, http.StatusConflict, "upload_already_undone"},
	{mailings.ErrNotFound, http.StatusNotFound, "mailing_not_found"},
	{mailings.ErrState, http.StatusConflict, "invalid_state"},
	{mailings.ErrEmptyAudience, http.StatusConflict, "empty_audience"},
	{mailings.ErrUnknownCustomer, http.StatusNotFound, "customer_not_found"},
	{groups.ErrPoolExhausted, http.StatusConflict, "pool_exhausted"},
	{groups.ErrIdempotencyConflict, http.StatusConflict, "idempotency_key_conflict"},
	{groups.ErrReservationLost, http.StatusServiceUnavailable, "retry"},
	{segments.ErrBadCursor, http.StatusBadRequest, "invalid_cursor"},
}

// requestError is an error of the request itself, found in this package.
type requestError struct {
	status  int
	code    string
	message string
}

func (e *requestError) Error() string { return e.message }

func badRequest(code, message string) error {
	return &requestError{status: http.StatusBadRequest, code: code, message: message}
}

// classify returns the status, code and user-facing message of err; ok is false for
// internal errors, whose message is not shown.
func classify(err error) (status int, code, message string, ok bool) {
	var re *requestError
	var inv *groups.InvalidError
	var ue *groups.UploadError
	var mbe *http.MaxBytesError
	var ve *macros.ValidationError
	var ic *mailings.InsufficientCodesError
	var fe *segments.InvalidError
	switch {
	case errors.As(err, &ve):
		return http.StatusBadRequest, "invalid_template", ve.Error(), true
	case errors.As(err, &fe):
		return http.StatusBadRequest, "invalid_filter", fe.Error(), true
	case errors.As(err, &ic):
		return http.StatusConflict, "insufficient_codes", ic.Error(), true
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than the limit of " + humanBytes(mbe.Limit), true
	case errors.As(err, &re):
		return re.status, re.code, re.message, true
	case errors.As(err, &inv):
		return http.StatusBadRequest, "invalid_field", inv.Error(), true
	case errors.As(err, &ue):
		return http.StatusBadRequest, "invalid_upload", ue.Error() + "; nothing was stored", true
	}
	for _, k := range sentinels {
		if errors.Is(err, k.err) {
			return k.status, k.code, err.Error(), true
		}
	}
	return http.StatusInternalServerError, "internal", "internal error", false
}

// details adds structured fields to the errors that carry them: a template's problems,
// the codes a mailing lacks.
func details(err error) map[string]any {
	var ve *macros.ValidationError
	var ic *mailings.InsufficientCodesError
	var fe *segments.InvalidError
	switch {
	case errors.As(err, &ve):
		problems := make([]map[string]any, len(ve.Problems))
		for i, p := range ve.Problems {
			problems[i] = map[string]any{"part": p.Part, "line": p.Line, "column": p.Column, "macro": p.Macro, "message": p.Message, "fix": p.Fix}
		}
		return map[string]any{"problems": problems}
	case errors.As(err, &ic):
		return map[string]any{"audience": ic.Audience, "missing": ic.Missing}
	case errors.As(err, &fe):
		return map[string]any{"path": fe.Path, "reason": fe.Reason}
	}
	return nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg, ok := classify(err)
	if !ok {
		if r.Context().Err() != nil {
			// The client went away; nothing to answer, nothing went wrong on our side.
			s.log.Info("request abandoned by client", "route", r.Pattern, "err", err)
		} else {
			s.log.Error("request failed", "route", r.Pattern, "err", err)
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="promopool"`)
	}
	body := map[string]any{"code": code, "message": msg}
	for k, v := range details(err) {
		body[k] = v
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Names and fields are returned as stored (HTML not escaped): no browser may sniff
	// a JSON answer holding "<script>" as a page.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
