package admin

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"promopool/auth"
)

// sibling builds another handler on f's database, as a second web process would, with
// password (and the keys of keySpec).
func (f *fixture) sibling(t *testing.T, password, keySpec string) *fixture {
	t.Helper()
	keys, err := auth.NewKeys(f.db.DB, keySpec)
	if err != nil {
		t.Fatal(err)
	}
	deps := f.h.deps
	deps.Keys = keys
	h, err := New(Config{Password: password}, deps)
	if err != nil {
		t.Fatal(err)
	}
	g := *f
	g.h = h
	g.srv = newServer(t, h)
	return &g
}

// TestSessionsServerSide: the session secret is random, kept in PostgreSQL and shared
// by every process (never derived from the password); a session ends on the server when
// it is signed out (its copied cookie no longer works), when the password changes,
// when its key is revoked or loses the admin scope, and at its server-side expiry.
func TestSessionsServerSide(t *testing.T) {
	f := newFixture(t)
	var stored []byte
	if err := f.db.Get(&stored, `SELECT value FROM secrets WHERE name = 'admin_session'`); err != nil || len(stored) != 32 {
		t.Fatalf("no random secret stored: %v", err)
	}
	derived := sha256.Sum256([]byte("promopool admin session\x00" + testPassword))
	if string(f.h.secret) != string(stored) || string(f.h.secret) == string(derived[:]) {
		t.Fatal("the session secret is not the stored random one")
	}

	// Another process with the same password and database accepts the session.
	c := newClient()
	f.signIn(t, c, testPassword)
	cookie := *c.Jar.(*cookieJar).m[sessionCookie]
	other := f.sibling(t, testPassword, "tester:"+testKey+":admin")
	replay := func(on *fixture, ck http.Cookie) int {
		cl := newClient()
		cl.Jar.(*cookieJar).m[sessionCookie] = &ck
		resp, _ := on.get(t, cl, "/admin/groups")
		return resp.StatusCode
	}
	if st := replay(other, cookie); st != http.StatusOK {
		t.Fatalf("the session on a second process: %d", st)
	}
	// A changed password ends the sessions it opened.
	if st := replay(f.sibling(t, "another password, long enough", ""), cookie); st != http.StatusSeeOther {
		t.Fatalf("after a password change: %d, want a redirect to sign in", st)
	}

	// Sign-out revokes the session: a copy of the cookie taken before no longer works.
	_, body := f.get(t, c, "/admin/groups")
	if resp, _ := f.post(t, c, "/admin/logout", url.Values{"csrf": {hidden(t, body, "csrf")}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if st := replay(f, cookie); st != http.StatusSeeOther {
		t.Fatalf("a signed-out session's cookie replayed: %d, want a redirect to sign in", st)
	}

	// The server decides expiry: a session is over TTL after sign-in, whatever the
	// cookie's own Expires says.
	c = newClient()
	f.signIn(t, c, testPassword)
	var created, expires time.Time
	f.db.QueryRow(`SELECT created_at, expires_at FROM admin_sessions WHERE revoked_at IS NULL`).Scan(&created, &expires)
	if d := expires.Sub(created); d != 12*time.Hour {
		t.Fatalf("session lasts %s, want 12h", d)
	}

	// A stored key with the admin scope signs in; revoking it, or taking its admin
	// scope, ends the session.
	keys, _ := auth.NewKeys(f.db.DB, "")
	ctx := context.Background()
	for _, end := range []func() error{
		func() error { return keys.Revoke(ctx, "ops") },
		func() error { return keys.SetScopes(ctx, "ops", []auth.Scope{auth.ScopeRead}) },
	} {
		keys.Revoke(ctx, "ops")
		key, err := keys.Create(ctx, "ops", []auth.Scope{auth.ScopeAdmin})
		if err != nil {
			t.Fatal(err)
		}
		kc := newClient()
		f.signIn(t, kc, key)
		ck := *kc.Jar.(*cookieJar).m[sessionCookie]
		if st := replay(f, ck); st != http.StatusOK {
			t.Fatalf("key session: %d", st)
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
		if st := replay(f, ck); st != http.StatusSeeOther {
			t.Fatalf("after the key lost its standing: %d, want a redirect to sign in", st)
		}
	}
	// A static key dropped from API_KEYS ends its sessions too.
	kc := newClient()
	f.signIn(t, kc, testKey)
	if st := replay(f.sibling(t, testPassword, ""), *kc.Jar.(*cookieJar).m[sessionCookie]); st != http.StatusSeeOther {
		t.Fatalf("a session of a static key no longer configured: %d", st)
	}
}

// TestSignInNeedsAdminScope: an API key without the admin scope cannot sign in.
func TestSignInNeedsAdminScope(t *testing.T) {
	f := newFixture(t)
	keys, _ := auth.NewKeys(f.db.DB, "")
	key, err := keys.Create(context.Background(), "mailer", []auth.Scope{auth.ScopeRender, auth.ScopeRead, auth.ScopeExport})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient()
	_, body := f.get(t, c, "/admin/login")
	resp, body := f.post(t, c, "/admin/login", url.Values{"token": {hidden(t, body, "token")}, "secret": {key}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "lacks the admin scope") {
		t.Fatalf("render key sign-in: %d", resp.StatusCode)
	}
	if _, ok := c.Jar.(*cookieJar).m[sessionCookie]; ok {
		t.Fatal("a key without admin got a session")
	}
}

// TestSignInThrottle: after freeFailures wrong secrets from one address, it must wait,
// doubling with each further failure, and even the right password is refused (429 with
// Retry-After) until the wait is over; failures from many addresses drain the global
// budget, which then slows everyone.
func TestSignInThrottle(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.h.now = func() time.Time { return now }
	c := newClient()
	attempt := func(secret string) *http.Response {
		_, body := f.get(t, c, "/admin/login")
		resp, _ := f.post(t, c, "/admin/login", url.Values{"token": {hidden(t, body, "token")}, "secret": {secret}})
		return resp
	}
	for i := range freeFailures + 1 {
		if resp := attempt(fmt.Sprintf("guess %d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, resp.StatusCode)
		}
	}
	resp := attempt(testPassword)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("right password while throttled: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	now = now.Add(1100 * time.Millisecond)
	if resp := attempt("guess again"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the wait: %d", resp.StatusCode)
	}
	if resp := attempt(testPassword); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("the second wait doubles: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	now = now.Add(2100 * time.Millisecond)
	if resp := attempt(testPassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right password after the wait: %d", resp.StatusCode)
	}

	// Global: failures spread over many addresses.
	th := newThrottle()
	for i := range globalBurst {
		th.fail(fmt.Sprintf("10.0.%d.%d", i/250, i%250), now)
	}
	if w := th.wait("192.0.2.77", now); w <= 0 || w > globalEvery {
		t.Fatalf("a fresh address after %d failures elsewhere waits %s", globalBurst, w)
	}
	if w := th.wait("192.0.2.77", now.Add(globalEvery)); w != 0 {
		t.Fatalf("the budget refills: still %s", w)
	}
}

// TestSignInBody: the sign-in reads url-encoded forms of at most a few KB; a multipart
// body (which the standard library would spool to disk) is refused unread.
func TestSignInBody(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	_, body := f.get(t, c, "/admin/login")
	token := hidden(t, body, "token")
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var sent int64
	go func() {
		mw.WriteField("token", token)
		fw, _ := mw.CreateFormFile("secret", "big.bin")
		chunk := make([]byte, 1<<20)
		for range 64 {
			n, err := fw.Write(chunk)
			sent += int64(n)
			if err != nil {
				break
			}
		}
		mw.Close()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", f.srv.URL+"/admin/login", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("multipart sign-in: %d, want 415", resp.StatusCode)
	}
	resp, _ = f.post(t, c, "/admin/login", url.Values{"token": {token}, "secret": {strings.Repeat("x", 8<<10)}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("8 KB sign-in form: %d, want 413", resp.StatusCode)
	}
}

// TestPasswordAndSecretLength: a short ADMIN_PASSWORD or ADMIN_SESSION_SECRET is refused.
func TestPasswordAndSecretLength(t *testing.T) {
	f := newFixture(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(Config{Password: "hunter2"}, Deps{DB: f.db.DB, Log: log}); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := New(Config{Password: testPassword, SessionSecret: "short"}, Deps{DB: f.db.DB, Log: log}); err == nil {
		t.Fatal("a short session secret was accepted")
	}
}

// TestQueuesNeedCSRF: asynqmon's mutations need the XSRF token its client echoes from
// the cookie the page view set, and no foreign Origin; a request without it never
// reaches asynqmon.
func TestQueuesNeedCSRF(t *testing.T) {
	f := newFixture(t)
	var reached []string
	q := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = append(reached, r.Method+" "+r.URL.Path) })
	h, err := New(Config{Password: testPassword, Queues: q}, f.h.deps)
	if err != nil {
		t.Fatal(err)
	}
	f.h, f.srv = h, newServer(t, h)
	c := newClient()
	f.signIn(t, c, testPassword)
	if resp, _ := f.get(t, c, "/admin/queues/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("queues page: %d", resp.StatusCode)
	}
	xsrf := c.Jar.(*cookieJar).m[xsrfCookie]
	if xsrf == nil || xsrf.HttpOnly || xsrf.Value == "" {
		t.Fatalf("XSRF cookie %+v: want one the page's script can read", xsrf)
	}
	del := func(token, origin string) int {
		req, _ := http.NewRequest("DELETE", f.srv.URL+"/admin/queues/api/queues/default", nil)
		if token != "" {
			req.Header.Set(xsrfHeader, token)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := del("", ""); st != http.StatusForbidden {
		t.Fatalf("a mutation without token or Origin: %d, want 403", st)
	}
	if st := del(xsrf.Value+"x", ""); st != http.StatusForbidden {
		t.Fatalf("a wrong token: %d", st)
	}
	if st := del(xsrf.Value, "https://evil.example"); st != http.StatusForbidden {
		t.Fatalf("a foreign Origin: %d", st)
	}
	if len(reached) != 1 {
		t.Fatalf("asynqmon saw %v, want only the page view", reached)
	}
	if st := del(xsrf.Value, ""); st != http.StatusOK || len(reached) != 2 {
		t.Fatalf("with the token: %d, reached %v", st, reached)
	}
}
