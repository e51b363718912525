package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"promopool/auth"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"20/s": {20, time.Second}, "600/m": {600, time.Minute}, "5000/h": {5000, time.Hour}, "off": {}, "0": {}} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "20", "20/d", "-1/s", "x/s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

// TestLimiterMiddleware: the middleware a route built outside this package (the
// checkout's validate) uses counts per API key and answers 429 with Retry-After.
func TestLimiterMiddleware(t *testing.T) {
	l := NewLimiter("validate", Rate{N: 2, Per: time.Minute})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	call := func(key string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/checkout/validate", nil)
		req = req.WithContext(context.WithValue(req.Context(), principalCtx{}, auth.Principal{Name: key}))
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 2 {
		if rec := call("shop"); rec.Code != 204 {
			t.Fatalf("call %d: %d", i, rec.Code)
		}
	}
	rec := call("shop")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("third call: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := call("other-shop"); rec.Code != 204 {
		t.Fatalf("another key: %d", rec.Code)
	}
	var off *Limiter
	if ok, _ := off.Allow("x"); !ok {
		t.Fatal("a nil limiter limits")
	}
}

// TestRegisterRefusesAnUnscopedRoute: a route without a known scope cannot be served.
func TestRegisterRefusesAnUnscopedRoute(t *testing.T) {
	for _, scope := range []auth.Scope{"", "everything"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("a route with scope %q was registered", scope)
				}
			}()
			s := &Server{mux: http.NewServeMux()}
			s.register(route{pattern: "GET /v1/secret", scope: scope, h: func(http.ResponseWriter, *http.Request) error { return nil }})
		}()
	}
}
