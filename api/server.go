// Package api is promopool's HTTP layer: the JSON API under /v1, authenticated with
// bearer API keys, plus health checks and the OpenAPI document. Domain packages never
// see HTTP: their errors are answered with the one classification the admin pages
// share (internal/httperr).
package api

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/idp"
	"promopool/mailings"
	"promopool/reports"
	"promopool/segments"
)

// Config configures the HTTP layer.
type Config struct {
	// MaxUploadBytes caps an upload's body; a larger one gets 413 (default 1 GiB).
	MaxUploadBytes int64
	// MaxJSONBytes caps other JSON bodies (default 1 MiB); some routes take less
	// (direct issue: 4 KiB).
	MaxJSONBytes int64
	// Metrics, when set, is served at GET /metrics to keys with the read scope
	// (Prometheus sends one as a bearer token). METRICS_ADDR serves it without a key.
	Metrics http.Handler
	// IssueRate limits direct issues per API key (ISSUE_RATE_LIMIT); zero: no limit.
	IssueRate Rate
	// ValidateRate limits checkout validations per API key (VALIDATE_RATE_LIMIT); zero:
	// no limit. The checkout routes apply it with route.limit = s.validateLimit.
	ValidateRate Rate
	// ValidateMissRate limits the codes not found one key may ask about at validate and
	// redeem (VALIDATE_MISS_LIMIT); CustomerMissRate those of one customer (by id, else
	// email; VALIDATE_CUSTOMER_MISS_LIMIT). Zero: no limit.
	ValidateMissRate, CustomerMissRate Rate
	// StreamIdle is the longest a streamed upload or export may stall (no byte read or
	// written) before its connection is cut; such routes are exempt from the server's
	// ReadTimeout and WriteTimeout (default 1 minute).
	StreamIdle time.Duration
}

// PersonAuthenticator returns the person a bearer JWT stands for; idp.People
// satisfies it. Errors that are the token's or the person's (not the provider's or the
// database's) wrap idp.ErrBadToken or idp.ErrPersonRefused.
type PersonAuthenticator interface {
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
}

// Pinger is a dependency /readyz checks (PostgreSQL, Redis).
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingFunc adapts a function to Pinger.
type PingFunc func(ctx context.Context) error

// Ping implements Pinger.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }

// Deps are the domain services the API serves.
type Deps struct {
	// Groups serves the groups, uploads, issues and exports (required).
	Groups *groups.Store
	// Customers serves PUT /v1/customers (required).
	Customers *customers.Store
	// Keys authenticates the bearer API keys (required).
	Keys *auth.Keys
	// People, when set, accepts platform-signed JWTs as bearer tokens for calls made on
	// behalf of a person (their role's scopes); nil accepts API keys only.
	People PersonAuthenticator
	// Mailings serves the mailing, template and render routes; nil leaves them out.
	Mailings *mailings.Service
	// Segments serves the segment builder's routes (SPEC §6); nil leaves them out.
	Segments *segments.Service
	// Checkout serves validate, redeem and the redemptions (SPEC §11); nil leaves them out.
	Checkout *checkout.Service
	// Alerts serves GET /v1/groups/{id}/alerts; nil leaves it out.
	Alerts AlertLister
	// Reports serves the metrics routes (SPEC §12); nil leaves them out.
	Reports *reports.Service
	// Ready names the dependencies /readyz checks (PostgreSQL, Redis).
	Ready map[string]Pinger
	// Log takes the request log and the errors of failed requests (required).
	Log *slog.Logger
}

func (d Deps) validate() error {
	switch {
	case d.Groups == nil:
		return errors.New("api: Deps.Groups is required")
	case d.Customers == nil:
		return errors.New("api: Deps.Customers is required")
	case d.Keys == nil:
		return errors.New("api: Deps.Keys is required")
	case d.Log == nil:
		return errors.New("api: Deps.Log is required")
	}
	return nil
}

// Server serves the API.
type Server struct {
	cfg       Config
	groups    *groups.Store
	customers *customers.Store
	mailings  *mailings.Service
	segments  *segments.Service
	alerts    AlertLister
	reports   *reports.Service
	checkout  *checkout.Service
	keys      *auth.Keys
	people    PersonAuthenticator
	log       *slog.Logger
	ready     map[string]Pinger
	mux       *http.ServeMux
	// issueLimit and validateLimit hold the per-key buckets of ISSUE_RATE_LIMIT and
	// VALIDATE_RATE_LIMIT.
	issueLimit, validateLimit *Limiter
	// missLimit holds the buckets of VALIDATE_MISS_LIMIT.
	missLimit *MissLimiter
	// table is every authenticated route as registered, for Routes.
	table []route
}

// New builds the API server with the routes its deps serve. Errors: a required
// dependency is missing.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := deps.validate(); err != nil {
		return nil, err
	}
	cfg.MaxUploadBytes = cmp.Or(cfg.MaxUploadBytes, 1<<30)
	cfg.MaxJSONBytes = cmp.Or(cfg.MaxJSONBytes, 1<<20)
	cfg.StreamIdle = cmp.Or(cfg.StreamIdle, time.Minute)
	s := &Server{cfg: cfg, groups: deps.Groups, customers: deps.Customers, mailings: deps.Mailings,
		segments: deps.Segments, alerts: deps.Alerts, reports: deps.Reports, keys: deps.Keys, people: deps.People, log: deps.Log, ready: deps.Ready,
		mux: http.NewServeMux(), issueLimit: NewLimiter("issue", cfg.IssueRate), validateLimit: NewLimiter("validate", cfg.ValidateRate),
		checkout: deps.Checkout, missLimit: NewMissLimiter(cfg.ValidateMissRate, cfg.CustomerMissRate)}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /v1/openapi.json", serveOpenAPI)
	for _, rt := range s.routeTable() {
		s.register(rt)
	}
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

type principalCtx struct{}

// principal is the API key the request came with.
func principal(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalCtx{}).(auth.Principal)
	return p
}

// actor is the name of the API key the request came with.
func actor(r *http.Request) string { return principal(r).Name }

// authenticate lets through a request whose bearer key is live and holds scope, or
// whose platform JWT stands for an enabled user whose role grants it. The handler's
// context carries the caller as the history records it (auth.WithActor).
func (s *Server) authenticate(scope auth.Scope, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="promopool"`)
			writeJSONError(w, http.StatusUnauthorized, "unauthorized", "send an API key (or a platform JWT) as Authorization: Bearer <key>")
			return
		}
		p, err := s.principalOf(r.Context(), strings.TrimSpace(key))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.key = p.Name
		}
		if err := p.Require(scope); err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := auth.WithActor(context.WithValue(r.Context(), principalCtx{}, p), p.Who)
		next(w, r.WithContext(ctx))
	})
}

// principalOf returns who a bearer token is: a person for a JWT when People is set,
// else an API key. A JWT refused for the token's or the person's sake is a 401 whose
// message says why (idp.ErrBadToken, idp.ErrPersonRefused); a provider that cannot be
// reached is a 503 (idp.ErrUnavailable).
func (s *Server) principalOf(ctx context.Context, token string) (auth.Principal, error) {
	if s.people == nil || !idp.LooksLikeJWT(token) {
		return s.keys.Authenticate(ctx, token)
	}
	return s.people.Authenticate(ctx, token)
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
