package admin

import (
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"promopool/internal/httperr"
	"promopool/internal/httperr/httperrtest"
	"promopool/internal/testdb"
)

// TestErrorPageEveryDomainError walks every domain error through the admin pages'
// error page: the shared classification's status, never a 500, and words of its own.
func TestErrorPageEveryDomainError(t *testing.T) {
	h, err := New(Config{Password: testPassword}, Deps{DB: testdb.New(t).DB, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	page := func(err error) (int, string) {
		rec := httptest.NewRecorder()
		h.fail(rec, httptest.NewRequest("GET", "/admin/groups/1", nil), err)
		return rec.Code, rec.Body.String()
	}
	codes := map[string]bool{}
	for _, c := range httperrtest.Cases() {
		codes[c.Code] = true
		t.Run(c.Name, func(t *testing.T) {
			status, body := page(c.Err)
			if status == http.StatusInternalServerError || strings.Contains(body, html.EscapeString(internalMessage)) {
				t.Fatalf("a domain error drew the internal error page (%d)", status)
			}
			if status != c.Status {
				t.Errorf("status %d, want %d (the API's)", status, c.Status)
			}
			_, msg := describe(c.Err)
			if msg == "" || !strings.Contains(body, html.EscapeString(msg)) {
				t.Errorf("the page does not show %q", msg)
			}
		})
	}
	for _, u := range httperrtest.NotHTTP() {
		if status, body := page(u.Err); status != http.StatusInternalServerError || !strings.Contains(body, html.EscapeString(internalMessage)) {
			t.Errorf("%s: %d, want the internal error page", u.Name, status)
		}
	}
	for code := range wording {
		if !codes[code] {
			t.Errorf("wording for %q, a code no domain error has", code)
		}
	}
	if codes[httperr.CodeInternal] {
		t.Error("a case expects the internal code")
	}
}
