package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"promopool/idp"
	"promopool/internal/oidctest"
	"promopool/users"
)

// oidcFixture serves the pages on an address known before they are built, so the
// provider (internal/oidctest: zitadel/oidc's example provider) can be told the
// callback, and the pages the provider.
func oidcFixture(t *testing.T, people ...oidctest.User) (*fixture, *oidctest.Provider) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	prov := oidctest.Start(t, base+idp.CallbackPath, people...)
	p, err := idp.New(idp.Config{Issuer: prov.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
		RedirectURL: base + idp.CallbackPath})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *Config, d *Deps) { d.IdP = p })
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: f.h}}
	srv.Start()
	t.Cleanup(srv.Close)
	f.srv = srv
	return f, prov
}

var providerFormID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// oidcSignIn goes through the provider as a browser would: our sign-in button, the
// provider's login page (username and password typed there), and back to our
// callback. It returns the callback's answer.
func (f *fixture) oidcSignIn(t *testing.T, c *http.Client, username, password string) (*http.Response, string) {
	t.Helper()
	_, body := f.get(t, c, "/admin/login?next=%2Fadmin%2Fmailings")
	resp, _ := f.post(t, c, "/admin/login/oidc", url.Values{"token": {hidden(t, body, "token")}, "next": {"/admin/mailings"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in button: %d", resp.StatusCode)
	}
	authURL := resp.Header.Get("Location")
	if q, _ := url.Parse(authURL); q.Query().Get("code_challenge_method") != "S256" || q.Query().Get("code_challenge") == "" {
		t.Fatalf("the authorization request has no PKCE challenge: %s", authURL)
	}
	// The provider's side, in a client of its own that stops when sent back to us.
	ours := f.srv.Listener.Addr().String()
	jar, _ := cookiejar.New(nil)
	pc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == ours {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	page, err := pc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := providerFormID.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("the provider's login page has no request id:\n%s", b)
	}
	back, err := pc.PostForm(page.Request.URL.Scheme+"://"+page.Request.URL.Host+"/login/username",
		url.Values{"id": {m[1]}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	back.Body.Close()
	cb := back.Header.Get("Location")
	if !strings.HasPrefix(cb, "http://"+ours+idp.CallbackPath) {
		t.Fatalf("the provider sent us to %q (%d)", cb, back.StatusCode)
	}
	u, _ := url.Parse(cb)
	return f.get(t, c, u.RequestURI())
}

// TestOIDCSignIn: a person signs in through a real provider (authorization code with
// PKCE; the provider puts the email in userinfo only, which is read); their email maps
// to their user, whose role the session carries. Someone the provider knows but
// promopool does not is refused; a callback whose state is not this browser's is refused.
func TestOIDCSignIn(t *testing.T) {
	f, _ := oidcFixture(t,
		oidctest.User{ID: "sub-ada", Username: "ada", Password: "ada's password", Email: "ada@example.com", Name: "Ada", EmailVerified: true},
		oidctest.User{ID: "sub-cy", Username: "cy", Password: "cy's password", Email: "cy@example.com", Name: "Cy", EmailVerified: true})
	ada, err := f.h.deps.Users.Create(context.Background(), users.NewUser{Email: "ada@example.com", Name: "Ada Lovelace", Role: users.RoleMarketer})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient()
	resp, body := f.oidcSignIn(t, c, "ada", "ada's password")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/mailings" {
		t.Fatalf("callback: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	_, body = f.get(t, c, "/admin/mailings")
	if !strings.Contains(body, "Ada Lovelace &lt;ada@example.com&gt;") || !strings.Contains(body, ">marketer<") {
		t.Fatalf("signed in as whom?\n%s", body)
	}
	if u, _ := f.h.deps.Users.Get(context.Background(), ada.ID); !u.Linked {
		t.Fatal("the user was not linked to the provider's subject")
	}
	// The flow cookie is spent: replaying the callback does not sign in again.
	if resp, _ := f.get(t, newClient(), idp.CallbackPath+"?code=x&state=y"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a callback without this browser's flow: %d, want 400", resp.StatusCode)
	}

	c2 := newClient()
	resp, body = f.oidcSignIn(t, c2, "cy", "cy's password")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no user with your email") {
		t.Fatalf("unknown person: %d\n%s", resp.StatusCode, body)
	}
	if _, ok := c2.Jar.(*cookieJar).m[sessionCookie]; ok {
		t.Fatal("an unknown person got a session")
	}
}
