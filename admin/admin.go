// Package admin serves the marketers' web pages under /admin/: the portfolio home;
// groups (status tabs, pause/activate, the terms form, edit, delete, uploads with their
// reports, undo, a shared group's promotion codes, exports) with the group's tabs
// (Dashboard with cards and SVG charts, Codes, Redemption history, Publications,
// Distributions, Activity); customers' codes and redemptions; mailings (create, preview,
// start, pause, resume, cancel, live progress); segments; users; and the Asynq queues
// (asynqmon). Pages are server-rendered with html/template from embedded files, charts
// drawn as SVG on the server (admin/chart); the only JavaScript drives the upload
// progress bar, live mailing counts and confirmations.
//
// Sign-in takes the admin password (ADMIN_PASSWORD, at least MinPasswordLength
// characters) or an API key with the admin scope, throttled per address and overall,
// and opens a server-side session (admin_sessions) whose random token travels in a
// signed cookie (HttpOnly, SameSite=Lax, Secure over TLS). The server caps its life,
// and sign-out, a changed password or a revoked key end it. Every form carries a CSRF
// token bound to the session, and is read only url-encoded and up to a per-route size.
// Nothing under /admin/ but the sign-in page and the static assets answers without a
// session, so codes are shown to signed-in users only.
package admin

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"promopool/alerts"
	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/idp"
	"promopool/internal/deadline"
	"promopool/mailings"
	"promopool/users"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the admin pages.
type Config struct {
	// Password is the admin password (ADMIN_PASSWORD); empty allows sign-in with an API
	// key only.
	Password string
	// SessionSecret signs session cookies and CSRF tokens (ADMIN_SESSION_SECRET, at
	// least 32 bytes). When empty, a random secret is drawn by the first process that
	// starts and kept in PostgreSQL (the secrets table), so every web process shares it.
	// It is never derived from Password.
	SessionSecret string
	// SessionTTL is how long a session lasts from sign-in, whatever its cookie says
	// (ADMIN_SESSION_TTL, default 12 hours).
	SessionTTL time.Duration
	// MaxUploadBytes caps a file uploaded from the group page (default 1 GiB).
	MaxUploadBytes int64
	// StreamIdle is the longest a streamed upload or export may stall before its
	// connection is cut (default 1 minute); see internal/deadline.
	StreamIdle time.Duration
	// Queues, when set, is served at /admin/queues/ to admins (asynqmon built with
	// RootPath "/admin/queues").
	Queues http.Handler
	// NewUserRole is the role a person signing in through the identity provider gets
	// when no user has their email (OIDC_DEFAULT_ROLE: viewer or marketer); empty
	// refuses them.
	NewUserRole users.Role
}

// Deps are the domain services the pages use.
type Deps struct {
	Groups    *groups.Store
	Mailings  *mailings.Service
	Customers *customers.Store
	Keys      *auth.Keys
	// Users are the named users who sign in; nil leaves only the shared password and
	// API keys.
	Users *users.Store
	// IdP, when set, offers sign-in through the platform's identity provider.
	IdP *idp.Provider
	// DB keeps the sessions and the generated session secret (required).
	DB *sqlx.DB
	// Alerts lists a group's balance alerts on its page; nil leaves the section out.
	Alerts AlertLister
	// Segments answers the segment builder; nil leaves the page out.
	Segments SegmentPager
	// Reports answers the group dashboard, its Distributions tab and the portfolio
	// home; nil leaves them out.
	Reports Reporter
	// Redemptions pages the redemption history (the group's tab, the customer's
	// profile); nil leaves it out.
	Redemptions RedemptionLister
	Log         *slog.Logger
}

// AlertLister lists a group's alerts, newest first; *alerts.Service satisfies it.
type AlertLister interface {
	List(ctx context.Context, groupID, before int64, limit int) ([]alerts.Alert, error)
}

// Handler serves /admin/.
type Handler struct {
	cfg    Config
	deps   Deps
	secret []byte
	pages  map[string]*template.Template
	mux    *http.ServeMux
	now    func() time.Time
	// throttle slows sign-in guessing.
	throttle *throttle
	// table is every page registered behind the sign-in, with the role it needs.
	table []RouteInfo
}

// Cookie names.
const (
	sessionCookie = "promopool_admin"
	loginCookie   = "promopool_login"
	flashCookie   = "promopool_flash"
)

// New builds the admin handler; without a SessionSecret it reads (or first draws and
// stores) the shared one in PostgreSQL. Errors: a password shorter than
// MinPasswordLength, a secret shorter than 32 bytes, no DB, the secret not readable, a
// template that does not parse.
func New(cfg Config, deps Deps) (*Handler, error) {
	cfg.SessionTTL = cmp.Or(cfg.SessionTTL, 12*time.Hour)
	cfg.MaxUploadBytes = cmp.Or(cfg.MaxUploadBytes, 1<<30)
	cfg.StreamIdle = cmp.Or(cfg.StreamIdle, time.Minute)
	switch {
	case deps.DB == nil:
		return nil, errors.New("admin: Deps.DB is required")
	case cfg.Password != "" && utf8.RuneCountInString(cfg.Password) < MinPasswordLength:
		return nil, fmt.Errorf("ADMIN_PASSWORD: at least %d characters, please (it signs in to everything)", MinPasswordLength)
	case cfg.SessionSecret != "" && len(cfg.SessionSecret) < 32:
		return nil, errors.New("ADMIN_SESSION_SECRET: at least 32 random bytes (or unset: a random one is kept in PostgreSQL)")
	case (deps.IdP != nil || cfg.NewUserRole != "") && deps.Users == nil:
		return nil, errors.New("admin: sign-in through the identity provider needs Deps.Users")
	case cfg.NewUserRole != "" && cfg.NewUserRole != users.RoleViewer && cfg.NewUserRole != users.RoleMarketer:
		return nil, fmt.Errorf("OIDC_DEFAULT_ROLE: viewer or marketer (or empty: refuse unknown people), not %q", cfg.NewUserRole)
	}
	h := &Handler{cfg: cfg, deps: deps, mux: http.NewServeMux(), now: time.Now, throttle: newThrottle()}
	h.secret = []byte(cfg.SessionSecret)
	if len(h.secret) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		secret, err := loadSecret(ctx, deps.DB)
		if err != nil {
			return nil, err
		}
		h.secret = secret
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h.pages = pages
	h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "SAMEORIGIN")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/admin/queues/") {
		// Scripts and styles come from /admin/static only; a mailing's HTML preview (a
		// sandboxed srcdoc frame, which inherits this policy) keeps its inline styles and
		// images but runs no script.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
			"img-src * data:; object-src 'none'; base-uri 'none'; form-action "+h.formAction(r)+"; frame-ancestors 'self'")
	}
	h.mux.ServeHTTP(w, r)
}

// formAction is where the page's forms may lead: this site; on the sign-in page also
// the identity provider, since browsers hold the redirect a form answers with to
// form-action as well (the "Sign in with …" button is a form that is sent on there).
func (h *Handler) formAction(r *http.Request) string {
	if h.deps.IdP != nil && strings.HasPrefix(r.URL.Path, "/admin/login") {
		return "'self' " + h.deps.IdP.AuthOrigin(r.Context())
	}
	return "'self'"
}

func (h *Handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", cacheFor(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /admin/login", h.loginPage)
	h.mux.HandleFunc("POST /admin/login", h.login)
	if h.deps.IdP != nil {
		h.mux.HandleFunc("POST /admin/login/oidc", h.startOIDC)
		h.mux.HandleFunc("GET "+idp.CallbackPath, h.finishOIDC)
	}
	h.handle("POST /admin/logout", h.logout)
	h.handle("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) error {
		home := "/admin/groups"
		if h.deps.Reports != nil {
			home = "/admin/portfolio"
		}
		http.Redirect(w, r, home, http.StatusSeeOther)
		return nil
	})
	h.groupRoutes()
	h.tabRoutes()
	h.customerRoutes()
	h.mailingRoutes()
	if h.deps.Users != nil {
		h.userRoutes()
	}
	if h.deps.Alerts != nil {
		h.handle("POST /admin/alerts/{id}/acknowledge", h.acknowledgeAlert)
	}
	if h.deps.Segments != nil {
		h.handle("GET /admin/segments", h.segmentPage)
	}
	if h.cfg.Queues != nil {
		h.table = append(h.table, RouteInfo{Pattern: "/admin/queues/", Role: users.RoleAdmin})
		h.mux.Handle("/admin/queues/", h.queues(h.cfg.Queues))
		h.mux.Handle("GET /admin/queues", http.RedirectHandler("/admin/queues/", http.StatusMovedPermanently))
	}
	h.mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := h.readSession(r); !ok {
			h.toLogin(w, r)
			return
		}
		h.errorPage(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
}

func cacheFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// Form body caps (session): a page's form is small; pasted codes and mailing templates
// take more.
const (
	formLimit    = 64 << 10
	pasteLimit   = 10 << 20
	mailingLimit = 4 << 20
)

// handle registers a page that needs a session with the role roleFor names; a POST
// also needs the CSRF token, in a url-encoded form of at most formLimit bytes.
func (h *Handler) handle(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
	h.handleForm(pattern, formLimit, fn)
}

// handleForm is handle with a form of at most limit bytes.
func (h *Handler) handleForm(pattern string, limit int64, fn func(w http.ResponseWriter, r *http.Request) error) {
	role := roleFor(pattern)
	h.table = append(h.table, RouteInfo{Pattern: pattern, Role: role})
	h.mux.Handle(pattern, h.session(limit, role, func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	}))
}

// handleStream is handle for a streamed upload or export: its deadlines roll while
// bytes move (internal/deadline) instead of the server's ReadTimeout/WriteTimeout.
func (h *Handler) handleStream(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
	h.handle(pattern, func(w http.ResponseWriter, r *http.Request) error {
		w, r = deadline.Roll(w, r, h.cfg.StreamIdle)
		return fn(w, r)
	})
}

// sameOrigin is false when the request names an Origin that is not this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	// Actor is who is signed in, as pages show them; Role what they may do.
	Actor   string
	Role    users.Role
	CSRF    string
	Flash   string
	Error   string
	Queues  bool
	Data    any
	Segment bool
	// Users: the users page exists (shown to admins).
	Users bool
	// Home: the portfolio home exists.
	Home bool
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if s := sessionFrom(r.Context()); s != nil {
		p.Actor, p.Role, p.CSRF = s.Who.String(), s.Role, h.csrfToken(s)
	}
	p.Queues = h.cfg.Queues != nil
	p.Segment = h.deps.Segments != nil
	p.Users = h.deps.Users != nil
	p.Home = h.deps.Reports != nil
	if c, err := r.Cookie(flashCookie); err == nil && p.Flash == "" {
		if v, err := url.QueryUnescape(c.Value); err == nil {
			p.Flash = v
		}
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/admin/", MaxAge: -1})
	}
	t, ok := h.pages[name]
	if !ok {
		panic("admin: no template " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		h.deps.Log.Error("admin template", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprint(w, b.String())
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if s, ok := h.readSession(r); ok && sessionFrom(r.Context()) == nil {
		r = r.WithContext(context.WithValue(r.Context(), sessionCtx{}, s))
	}
	h.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// fail shows an error page for an error a handler returned: a clear message for the
// domain's errors, a generic one (and a log line) for the rest.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := describe(err)
	if status >= 500 {
		h.deps.Log.Error("admin page failed", "path", r.URL.Path, "err", err)
	}
	h.errorPage(w, r, status, msg)
}

// redirect sends the browser to path with a one-line message shown there (carried in a
// short-lived cookie, so a link from elsewhere cannot put words on the page).
func redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(flash), Path: "/admin/", MaxAge: 60,
			HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}
