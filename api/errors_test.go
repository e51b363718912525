package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"promopool/internal/apitest"
	"promopool/internal/httperr/httperrtest"
)

// TestWriteErrorEveryDomainError walks every domain error through the API's error
// answer: its status and stable code, never a 500, and its message shown.
func TestWriteErrorEveryDomainError(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	answer := func(t *testing.T, err error) (*httptest.ResponseRecorder, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest("GET", "/v1/groups/1", nil), err)
		var body struct {
			Error map[string]any `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("body is not JSON: %q", rec.Body)
		}
		// Every field any domain error adds is one the document's Error schema names.
		apitest.Schema(t, "Error", rec.Body.Bytes())
		return rec, body.Error
	}
	for _, c := range httperrtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			rec, body := answer(t, c.Err)
			if rec.Code == http.StatusInternalServerError {
				t.Fatalf("a domain error answered 500: %v", body)
			}
			if rec.Code != c.Status || body["code"] != c.Code {
				t.Errorf("got %d %v, want %d %q", rec.Code, body["code"], c.Status, c.Code)
			}
			if msg, _ := body["message"].(string); msg == "" || msg == "internal error" {
				t.Errorf("message %q", msg)
			}
			if (rec.Code == http.StatusUnauthorized) != (rec.Header().Get("WWW-Authenticate") != "") {
				t.Errorf("WWW-Authenticate %q on a %d", rec.Header().Get("WWW-Authenticate"), rec.Code)
			}
		})
	}
	for _, u := range httperrtest.NotHTTP() {
		t.Run(u.Name, func(t *testing.T) {
			if rec, body := answer(t, u.Err); rec.Code != http.StatusInternalServerError || body["code"] != "internal" {
				t.Errorf("got %d %v, want 500 internal", rec.Code, body)
			}
		})
	}
}
