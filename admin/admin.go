// Package admin serves the marketers' web pages under /admin/: groups (list, edit,
// delete, uploads with their reports, undo, activity, exports), customers' promo-code
// tabs, mailings (create, preview, start, pause, resume, cancel, live progress), and the
// Asynq queues (asynqmon). Pages are server-rendered with html/template from embedded
// files; the only JavaScript drives the upload progress bar and live mailing counts.
//
// Sign-in takes the admin password (ADMIN_PASSWORD) or an API key and hands back a
// signed session cookie (HttpOnly, SameSite=Lax, Secure over TLS). Every form carries
// a CSRF token bound to the session. Nothing under /admin/ but the sign-in page and the
// static assets answers without a session, so codes are shown to signed-in users only.
package admin

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"promopool/alerts"
	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/mailings"
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
	// SessionSecret signs session cookies (ADMIN_SESSION_SECRET). When empty it is
	// derived from Password, so every web process with the same password accepts the
	// same sessions and changing the password ends them; with neither set, a random
	// secret is drawn at start (sessions end when the process restarts).
	SessionSecret string
	// SessionTTL is how long a session lasts (default 12 hours).
	SessionTTL time.Duration
	// MaxUploadBytes caps a file uploaded from the group page (default 1 GiB).
	MaxUploadBytes int64
	// Queues, when set, is served at /admin/queues/ behind the sign-in (asynqmon built
	// with RootPath "/admin/queues").
	Queues http.Handler
}

// Deps are the domain services the pages use.
type Deps struct {
	Groups    *groups.Store
	Mailings  *mailings.Service
	Customers *customers.Store
	Keys      *auth.Keys
	// Alerts lists a group's balance alerts on its page; nil leaves the section out.
	Alerts AlertLister
	// Segments answers the segment builder; nil leaves the page out.
	Segments SegmentPager
	Log      *slog.Logger
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
}

// Cookie names.
const (
	sessionCookie = "promopool_admin"
	loginCookie   = "promopool_login"
	flashCookie   = "promopool_flash"
)

// New builds the admin handler. Errors: a template that does not parse.
func New(cfg Config, deps Deps) (*Handler, error) {
	cfg.SessionTTL = cmp.Or(cfg.SessionTTL, 12*time.Hour)
	cfg.MaxUploadBytes = cmp.Or(cfg.MaxUploadBytes, 1<<30)
	h := &Handler{cfg: cfg, deps: deps, mux: http.NewServeMux(), now: time.Now}
	switch {
	case cfg.SessionSecret != "":
		h.secret = []byte(cfg.SessionSecret)
	case cfg.Password != "":
		sum := sha256.Sum256([]byte("promopool admin session\x00" + cfg.Password))
		h.secret = sum[:]
	default:
		h.secret = make([]byte, 32)
		rand.Read(h.secret)
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
			"img-src * data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", cacheFor(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /admin/login", h.loginPage)
	h.mux.HandleFunc("POST /admin/login", h.login)
	h.handle("POST /admin/logout", h.logout)
	h.handle("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, "/admin/groups", http.StatusSeeOther)
		return nil
	})
	h.groupRoutes()
	h.customerRoutes()
	h.mailingRoutes()
	if h.deps.Segments != nil {
		h.handle("GET /admin/segments", h.segmentPage)
	}
	if h.cfg.Queues != nil {
		q := h.cfg.Queues
		h.mux.Handle("/admin/queues/", h.session(func(w http.ResponseWriter, r *http.Request) {
			// asynqmon's own API changes tasks with fetch requests that carry no token:
			// the SameSite cookie keeps other sites from sending them, and a request
			// whose Origin is another site is refused here as well.
			if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
				http.Error(w, "cross-site request refused", http.StatusForbidden)
				return
			}
			q.ServeHTTP(w, r)
		}))
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

// handle registers a page that needs a session; a POST also needs the CSRF token.
func (h *Handler) handle(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
	h.mux.Handle(pattern, h.session(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	}))
}

// Session is a signed-in user.
type Session struct {
	// Actor is who the activity log names: "admin" for the password, else the API key's name.
	Actor string `json:"a"`
	// Nonce is random per sign-in; the CSRF token derives from it.
	Nonce   string `json:"n"`
	Expires int64  `json:"e"`
}

type sessionCtx struct{}

func sessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionCtx{}).(*Session)
	return s
}

// session lets a request through with a valid session cookie, and for any method but
// GET/HEAD a CSRF token (form field csrf or header X-CSRF-Token) matching it.
func (h *Handler) session(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.readSession(r)
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				h.toLogin(w, r)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !strings.HasPrefix(r.URL.Path, "/admin/queues/") {
			token := r.Header.Get("X-CSRF-Token")
			if token == "" {
				// Forms send the token in the body (at most 10 MB of it is read); a
				// streamed upload sends the header instead, so its body is not read here.
				if err := r.ParseForm(); err != nil {
					h.errorPage(w, r, http.StatusRequestEntityTooLarge, "The form is too large to read (pasted codes are limited to 10 MB): upload a file instead.")
					return
				}
				token = r.PostFormValue("csrf")
			}
			if !hmac.Equal([]byte(token), []byte(h.csrfToken(s))) || !sameOrigin(r) {
				h.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionCtx{}, s)))
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

func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.RequestURI()
	http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

func (h *Handler) sign(b []byte) string {
	m := hmac.New(sha256.New, h.secret)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) readSession(r *http.Request) (*Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(h.sign([]byte(payload)))) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, false
	}
	var s Session
	if json.Unmarshal(b, &s) != nil || s.Actor == "" || h.now().Unix() >= s.Expires {
		return nil, false
	}
	return &s, true
}

func (h *Handler) csrfToken(s *Session) string {
	return h.sign([]byte("csrf\x00" + s.Nonce))
}

func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func (h *Handler) setSession(w http.ResponseWriter, r *http.Request, actor string) {
	n := make([]byte, 16)
	rand.Read(n)
	exp := h.now().Add(h.cfg.SessionTTL)
	b, _ := json.Marshal(Session{Actor: actor, Nonce: base64.RawURLEncoding.EncodeToString(n), Expires: exp.Unix()})
	payload := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: payload + "." + h.sign([]byte(payload)), Path: "/admin/",
		Expires: exp, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
}

type loginData struct {
	Next, Error, Token string
	PasswordEnabled    bool
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin shows the sign-in form with a fresh double-submit token (a cookie and a
// hidden field that must match), so another site cannot sign a browser in.
func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	n := make([]byte, 16)
	rand.Read(n)
	tok := base64.RawURLEncoding.EncodeToString(n)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/admin/login", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	h.render(w, r, status, "login", page{Title: "Sign in", Data: loginData{Next: safeNext(r.FormValue("next")),
		Error: msg, Token: tok, PasswordEnabled: h.cfg.Password != ""}})
}

// safeNext keeps a post-sign-in redirect inside /admin/.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/admin/groups"
	}
	return next
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || !hmac.Equal([]byte(c.Value), []byte(r.PostFormValue("token"))) || !sameOrigin(r) {
		h.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("secret"))
	actor := ""
	if h.cfg.Password != "" {
		a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(h.cfg.Password))
		if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			actor = "admin"
		}
	}
	if actor == "" && secret != "" && h.deps.Keys != nil {
		name, err := h.deps.Keys.Authenticate(r.Context(), secret)
		switch {
		case err == nil:
			actor = name
		case !errors.Is(err, auth.ErrUnauthorized):
			h.deps.Log.Error("admin sign-in", "err", err)
			h.renderLogin(w, r, http.StatusInternalServerError, "Sign-in failed on our side; try again in a moment.")
			return
		}
	}
	if actor == "" {
		h.deps.Log.Warn("admin sign-in refused", "remote", r.RemoteAddr)
		h.renderLogin(w, r, http.StatusUnauthorized, "That password or API key is not valid.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/admin/login", MaxAge: -1})
	h.setSession(w, r, actor)
	h.deps.Log.Info("admin signed in", "actor", actor)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin/", MaxAge: -1, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Actor   string
	CSRF    string
	Flash   string
	Error   string
	Queues  bool
	Data    any
	Segment bool
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if s := sessionFrom(r.Context()); s != nil {
		p.Actor, p.CSRF = s.Actor, h.csrfToken(s)
	}
	p.Queues = h.cfg.Queues != nil
	p.Segment = h.deps.Segments != nil
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
