package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"promopool/auth"
	"promopool/users"
)

// MinPasswordLength is the shortest ADMIN_PASSWORD accepted.
const MinPasswordLength = 12

// loginBodyLimit caps a sign-in form: a token, a secret and a path fit in far less.
const loginBodyLimit = 4 << 10

func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.RequestURI()
	http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

type loginData struct {
	Next, Error, Token string
	PasswordEnabled    bool
	// Users: named users may sign in with their email and password.
	Users bool
	// IdP is the identity provider's host when sign-in through it is on.
	IdP string
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
	next := r.URL.Query().Get("next")
	if r.PostForm != nil {
		next = r.PostForm.Get("next")
	}
	d := loginData{Next: safeNext(next), Error: msg, Token: tok, PasswordEnabled: h.cfg.Password != "", Users: h.deps.Users != nil}
	if h.deps.IdP != nil {
		d.IdP = h.deps.IdP.Host()
	}
	h.render(w, r, status, "login", page{Title: "Sign in", Error: msg, Data: d})
}

// safeNext keeps a post-sign-in redirect inside /admin/.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/admin/groups"
	}
	return next
}

// loginForm reads a sign-in form (url-encoded, at most loginBodyLimit bytes, carrying
// its double-submit token, from this site); false: the answer was sent.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) bool {
	if !isURLEncoded(r) {
		h.renderLogin(w, r, http.StatusUnsupportedMediaType, "The sign-in form must be sent as application/x-www-form-urlencoded.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, loginBodyLimit)
	if err := r.ParseForm(); err != nil {
		h.renderLogin(w, r, http.StatusRequestEntityTooLarge, "The sign-in form is too large.")
		return false
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || !hmac.Equal([]byte(c.Value), []byte(r.PostForm.Get("token"))) || !sameOrigin(r) {
		h.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return false
	}
	return true
}

// throttled answers 429 when addr must wait before it may try to sign in again.
func (h *Handler) throttled(w http.ResponseWriter, r *http.Request, addr string) bool {
	wait := h.throttle.wait(addr, h.now())
	if wait <= 0 {
		return false
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	h.deps.Log.Warn("admin sign-in throttled", "remote", addr, "wait", wait)
	h.renderLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins. Try again in %d seconds.", secs))
	return true
}

// login checks a sign-in form from an address the throttle lets try: a user's email
// and password, the admin password, or an API key holding the admin scope. Success
// opens a session; failure counts against the address and the global budget.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.loginForm(w, r) {
		return
	}
	addr := clientAddr(r)
	if h.throttled(w, r, addr) {
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("secret"))
	var p *auth.Principal
	var u *users.User
	var status int
	var msg string
	if email := strings.TrimSpace(r.PostForm.Get("email")); email != "" {
		u, status, msg = h.checkUser(r, email, secret)
	} else {
		p, status, msg = h.checkSecret(r, secret)
	}
	switch {
	case status == http.StatusUnauthorized:
		h.throttle.fail(addr, h.now())
		h.deps.Log.Warn("admin sign-in refused", "remote", addr)
		fallthrough
	case status != 0:
		h.renderLogin(w, r, status, msg)
		return
	}
	h.throttle.succeed(addr)
	if err := h.openSession(r.Context(), w, r, p, u); err != nil {
		h.deps.Log.Error("admin sign-in", "err", err)
		h.renderLogin(w, r, http.StatusInternalServerError, "Sign-in failed on our side; try again in a moment.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/admin/login", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// checkSecret returns the API key the secret is (nil for the admin password), or a
// status and message: 401 for a secret that is neither, 403 for a key without the
// admin scope, 500 when the key could not be checked.
func (h *Handler) checkSecret(r *http.Request, secret string) (*auth.Principal, int, string) {
	if h.cfg.Password != "" {
		a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(h.cfg.Password))
		if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			return nil, 0, ""
		}
	}
	if secret == "" || h.deps.Keys == nil {
		return nil, http.StatusUnauthorized, "That password or API key is not valid."
	}
	p, err := h.deps.Keys.Authenticate(r.Context(), secret)
	switch {
	case errors.Is(err, auth.ErrUnauthorized):
		return nil, http.StatusUnauthorized, "That password or API key is not valid."
	case err != nil:
		h.deps.Log.Error("admin sign-in", "err", err)
		return nil, http.StatusInternalServerError, "Sign-in failed on our side; try again in a moment."
	case !p.Has(auth.ScopeAdmin):
		return nil, http.StatusForbidden, "That API key may not sign in here: it lacks the admin scope."
	}
	return &p, 0, ""
}

// checkUser returns the user these are the email and password of, or a status and
// message: 401 for a wrong pair (the same words whichever half was wrong), 403 for a
// disabled user, 500 when the password could not be checked.
func (h *Handler) checkUser(r *http.Request, email, password string) (*users.User, int, string) {
	if h.deps.Users == nil {
		return nil, http.StatusUnauthorized, "Sign-in with an email is not set up here."
	}
	u, err := h.deps.Users.Authenticate(r.Context(), email, password)
	switch {
	case errors.Is(err, users.ErrBadPassword):
		return nil, http.StatusUnauthorized, "That email and password do not match."
	case errors.Is(err, users.ErrDisabled):
		return nil, http.StatusForbidden, "This user is disabled; an admin can enable it again."
	case err != nil:
		h.deps.Log.Error("admin sign-in", "err", err)
		return nil, http.StatusInternalServerError, "Sign-in failed on our side; try again in a moment."
	}
	return u, 0, ""
}

// logout ends the session on the server and in the browser.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if err := h.endSession(r.Context(), sessionFrom(r.Context())); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin/", MaxAge: -1, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}
