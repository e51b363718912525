// Package api is promopool's HTTP layer: the JSON API under /v1, authenticated with
// bearer API keys, plus health checks and the OpenAPI document. Domain packages never
// see HTTP: this package maps their errors to statuses in one table (errors.go).
package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/mailings"
	"promopool/segments"
)

// Config configures the HTTP layer.
type Config struct {
	// MaxUploadBytes caps an upload's body; a larger one gets 413 (default 1 GiB).
	MaxUploadBytes int64
	// MaxJSONBytes caps other JSON bodies (default 1 MiB).
	MaxJSONBytes int64
	// Metrics, when set, is served at GET /metrics with no key (Prometheus scrapes).
	Metrics http.Handler
}

// Pinger is a dependency /readyz checks (PostgreSQL, Redis).
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingFunc adapts a function to Pinger.
type PingFunc func(ctx context.Context) error

// Ping implements Pinger.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }

// Server serves the API.
type Server struct {
	cfg      Config
	groups   *groups.Store
	custs    *customers.Store
	mailings *mailings.Service
	segments *segments.Service
	keys     *auth.Keys
	log      *slog.Logger
	ready    map[string]Pinger
	mux      *http.ServeMux
}

// New builds the API server. ready names the dependencies /readyz checks.
func New(cfg Config, store *groups.Store, keys *auth.Keys, log *slog.Logger, ready map[string]Pinger) *Server {
	cfg.MaxUploadBytes = cmp.Or(cfg.MaxUploadBytes, 1<<30)
	cfg.MaxJSONBytes = cmp.Or(cfg.MaxJSONBytes, 1<<20)
	s := &Server{cfg: cfg, groups: store, keys: keys, log: log, ready: ready, mux: http.NewServeMux()}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.cfg.Metrics)
	}
	s.mux.HandleFunc("GET /v1/openapi.json", serveOpenAPI)

	s.handle("POST /v1/groups", s.createGroup)
	s.handle("GET /v1/groups", s.listGroups)
	s.handle("GET /v1/groups/{id}", s.getGroup)
	s.handle("PATCH /v1/groups/{id}", s.updateGroup)
	s.handle("DELETE /v1/groups/{id}", s.deleteGroup)
	s.handle("POST /v1/groups/{id}/codes", s.uploadCodes)
	s.handle("GET /v1/groups/{id}/uploads", s.listUploads)
	s.handle("DELETE /v1/uploads/{id}", s.undoUpload)
	s.handle("GET /v1/groups/{id}/activity", s.activity)
	s.issueRoutes()
}

// handle registers an authenticated /v1 route.
func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.Handle(pattern, s.authenticate(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}))
}

// Mount serves h for every path under prefix (e.g. "/admin/" for the web pages), in the
// same request log as the API.
func (s *Server) Mount(prefix string, h http.Handler) { s.mux.Handle(prefix, h) }

// ServeHTTP implements http.Handler: it logs every request (method, route, status,
// duration, key name; never a body) and answers unknown routes with JSON errors.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	var h http.Handler = s.mux
	probe, pattern := s.mux.Handler(r)
	if pattern == "" {
		h = s.noRoute(probe)
	}
	h.ServeHTTP(rec, r)
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "http request",
		slog.String("method", r.Method), slog.String("route", cmp.Or(pattern, "unmatched")),
		slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
		slog.String("key", rec.key))
}

// noRoute turns the mux's plain-text 404 and 405 answers into JSON errors.
func (s *Server) noRoute(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := &statusWriter{ResponseWriter: discardWriter{header: w.Header()}, status: http.StatusOK}
		h.ServeHTTP(probe, r)
		w.Header().Del("X-Content-Type-Options")
		if probe.status == http.StatusMethodNotAllowed {
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		writeJSONError(w, http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path)
	})
}

type keyNameCtx struct{}

// actor is the name of the API key the request came with.
func actor(r *http.Request) string {
	name, _ := r.Context().Value(keyNameCtx{}).(string)
	return name
}

func (s *Server) authenticate(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="promopool"`)
			writeJSONError(w, http.StatusUnauthorized, "unauthorized", "send an API key as Authorization: Bearer <key>")
			return
		}
		name, err := s.keys.Authenticate(r.Context(), strings.TrimSpace(key))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.key = name
		}
		next(w, r.WithContext(context.WithValue(r.Context(), keyNameCtx{}, name)))
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	out := map[string]string{}
	status := http.StatusOK
	for name, p := range s.ready {
		if err := p.Ping(ctx); err != nil {
			out[name] = "unavailable"
			status = http.StatusServiceUnavailable
			s.log.Warn("readiness check failed", "dependency", name, "err", err)
			continue
		}
		out[name] = "ok"
	}
	writeJSON(w, status, out)
}

// statusWriter remembers the status and the key name for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	key    string
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
