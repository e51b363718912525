package admin

import (
	"crypto/hmac"
	"fmt"
	"net/http"

	"promopool/users"
)

// xsrfCookie and xsrfHeader are the names asynqmon's HTTP client (axios) reads a CSRF
// token from and sends it back in, on every same-origin request.
const (
	xsrfCookie = "XSRF-TOKEN"
	xsrfHeader = "X-XSRF-TOKEN"
)

// queues serves asynqmon to admins (it can delete and run tasks). asynqmon's pages change tasks (delete,
// run, archive, pause a queue) with requests our forms do not build, so they cannot
// carry the csrf field; its client sends back the XSRF-TOKEN cookie in an X-XSRF-TOKEN
// header instead. Every page view sets that cookie to the session's CSRF token, and a
// request that changes anything must echo it and come with no foreign Origin: another
// site can neither read the cookie nor set the header.
func (h *Handler) queues(q http.Handler) http.Handler {
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
		if !s.Role.AtLeast(users.RoleAdmin) {
			h.errorPage(w, r, http.StatusForbidden, fmt.Sprintf("Your role (%s) may not see the queues: they are for admins.", s.Role))
			return
		}
		token := h.csrfToken(s)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			// Readable by the page's script (not HttpOnly), sent to /admin/queues/ only.
			http.SetCookie(w, &http.Cookie{Name: xsrfCookie, Value: token, Path: "/admin/queues/",
				Secure: secure(r), SameSite: http.SameSiteStrictMode})
			q.ServeHTTP(w, r)
			return
		}
		if !hmac.Equal([]byte(r.Header.Get(xsrfHeader)), []byte(token)) || !sameOrigin(r) {
			http.Error(w, "cross-site request refused: reload the queues page", http.StatusForbidden)
			return
		}
		q.ServeHTTP(w, r)
	})
}
