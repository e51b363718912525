package admin

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"promopool/idp"
	"promopool/users"
)

// oidcCookie carries a sign-in through the identity provider from its start to the
// callback: the state, nonce and PKCE verifier, where to go after, and until when it
// may finish — signed with the session secret, HttpOnly, sent to the callback only.
// SameSite=Lax: the provider sends the browser back with a top-level GET from its own
// site, which Lax lets through and Strict would not.
const oidcCookie = "promopool_oidc"

// oidcFlowTTL is how long a sign-in at the provider may take.
const oidcFlowTTL = 10 * time.Minute

type oidcState struct {
	idp.Flow
	Next    string `json:"next"`
	Expires int64  `json:"exp"`
}

// startOIDC answers the sign-in page's "Sign in with …" button (a form with the
// double-submit token): it sends the browser to the provider with a fresh state,
// nonce and PKCE challenge, kept in the signed flow cookie.
func (h *Handler) startOIDC(w http.ResponseWriter, r *http.Request) {
	if !h.loginForm(w, r) {
		return
	}
	u, f, err := h.deps.IdP.Start(r.Context())
	if err != nil {
		h.deps.Log.Error("starting a sign-in at the identity provider", "err", err)
		h.renderLogin(w, r, http.StatusBadGateway, "The identity provider cannot be reached right now; try again in a moment.")
		return
	}
	st := oidcState{Flow: f, Next: safeNext(r.PostForm.Get("next")), Expires: h.now().Add(oidcFlowTTL).Unix()}
	b, _ := json.Marshal(st)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: v + "." + h.sign([]byte("oidc\x00"+v)), Path: idp.CallbackPath,
		MaxAge: int(oidcFlowTTL.Seconds()), HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// readOIDCState returns the flow this browser started, if its cookie is ours and fresh.
func (h *Handler) readOIDCState(r *http.Request) (oidcState, bool) {
	var st oidcState
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		return st, false
	}
	v, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(h.sign([]byte("oidc\x00"+v)))) {
		return st, false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || json.Unmarshal(b, &st) != nil || h.now().Unix() > st.Expires {
		return st, false
	}
	return st, true
}

// finishOIDC is the callback the provider sends the browser back to: it completes the
// flow (state, code exchange with the PKCE verifier, ID token), finds the user the
// identity stands for (users.SignIn: linked, else by verified email, else created with
// OIDC_DEFAULT_ROLE or refused) and opens a session. A refused person counts against
// the address's sign-in throttle, as a wrong password does.
func (h *Handler) finishOIDC(w http.ResponseWriter, r *http.Request) {
	st, ok := h.readOIDCState(r)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: idp.CallbackPath, MaxAge: -1})
	if !ok {
		h.renderLogin(w, r, http.StatusBadRequest, "This sign-in expired or was started in another browser. Try again.")
		return
	}
	addr := clientAddr(r)
	if h.throttled(w, r, addr) {
		return
	}
	ident, err := h.deps.IdP.Finish(r.Context(), st.Flow, r.URL.Query())
	if err != nil {
		h.deps.Log.Warn("sign-in through the identity provider failed", "remote", addr, "err", err)
		h.renderLogin(w, r, http.StatusBadRequest, "The sign-in through the identity provider did not complete. Try again.")
		return
	}
	u, err := h.deps.Users.SignIn(r.Context(), ident, users.Policy{NewUserRole: h.cfg.NewUserRole})
	if err != nil {
		status, msg := describe(err)
		if status < 500 {
			h.throttle.fail(addr, h.now())
		}
		if status >= 500 {
			h.deps.Log.Error("admin sign-in", "err", err)
		}
		h.deps.Log.Warn("sign-in through the identity provider refused", "remote", addr, "email", ident.Email, "err", err)
		h.renderLogin(w, r, status, signInRefusal(err, msg))
		return
	}
	h.throttle.succeed(addr)
	if err := h.openSession(r.Context(), w, r, nil, u); err != nil {
		h.deps.Log.Error("admin sign-in", "err", err)
		h.renderLogin(w, r, http.StatusInternalServerError, "Sign-in failed on our side; try again in a moment.")
		return
	}
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

// signInRefusal is what a person refused at the callback reads.
func signInRefusal(err error, msg string) string {
	switch {
	case errors.Is(err, users.ErrUnknownUser):
		return "You signed in at the identity provider, but promopool has no user with your email. Ask an admin to add you."
	case errors.Is(err, users.ErrDisabled):
		return "Your promopool user is disabled; an admin can enable it again."
	}
	return msg
}
