package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"promopool/alerts"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/reports"
	"promopool/users"
)

const (
	testPassword = "correct horse battery staple"
	testKey      = "0123456789abcdef-admin-test"
)

type fixture struct {
	co     *checkout.Service
	h      *Handler
	store  *groups.Store
	db     *testdb.DB
	client *http.Client
	srv    *httptest.Server
}

// newFixture builds the pages over a fresh schema, with the users store; opts change
// the configuration and dependencies before the handler is built.
func newFixture(t *testing.T, opts ...func(*Config, *Deps)) *fixture {
	t.Helper()
	db := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys, err := auth.NewKeys(db.DB, "tester:"+testKey+":admin")
	if err != nil {
		t.Fatal(err)
	}
	store := groups.NewStore(db.DB, groups.Config{Usage: checkout.Usage, CodeRedemptions: checkout.CodeRedemptions})
	svc := mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB, Groups: store, Log: log})
	checker, err := alerts.New(alerts.Config{}, alerts.Deps{DB: db.DB, Groups: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := reports.New(reports.Config{}, reports.Deps{DB: db.DB, Groups: store, Mailings: svc, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	co, err := checkout.New(checkout.Config{}, checkout.Deps{DB: db.DB, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Password: testPassword}
	deps := Deps{Groups: store, Mailings: svc, Customers: customers.NewStore(db.DB), Keys: keys, DB: db.DB,
		Alerts: checker, Users: users.NewStore(db.DB), Reports: rep, Redemptions: co, Log: log}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	h, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{co: co, h: h, store: store, db: db, srv: newServer(t, h), client: newClient()}
}

// newServer serves h for the test.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newClient() *http.Client {
	jar := &cookieJar{m: map[string]*http.Cookie{}}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// cookieJar keeps cookies by name (the stdlib jar drops Secure/path details we assert on).
type cookieJar struct{ m map[string]*http.Cookie }

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.m, c.Name)
			continue
		}
		j.m[c.Name] = c
	}
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j.m {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (f *fixture) get(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) post(t *testing.T, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(f.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var hiddenRE = regexp.MustCompile(`name="(token|csrf)" value="([^"]+)"`)

func hidden(t *testing.T, body, name string) string {
	t.Helper()
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no hidden %s field in:\n%s", name, body)
	return ""
}

// signIn signs c in with secret and returns the CSRF token of the next page.
func (f *fixture) signIn(t *testing.T, c *http.Client, secret string) string {
	t.Helper()
	_, body := f.get(t, c, "/admin/login")
	resp, _ := f.post(t, c, "/admin/login", url.Values{"token": {hidden(t, body, "token")}, "secret": {secret}, "next": {"/admin/groups"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/groups" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = f.get(t, c, "/admin/groups")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("groups after sign-in: %d", resp.StatusCode)
	}
	return hidden(t, body, "csrf")
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	c := newClient()

	resp, _ := f.get(t, c, "/admin/groups")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login?next=") {
		t.Fatalf("without a session: %d to %q, want a redirect to the sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}

	_, body := f.get(t, c, "/admin/login")
	token := hidden(t, body, "token")
	for _, bad := range []string{"", "wrong password", testKey + "x"} {
		resp, _ := f.post(t, c, "/admin/login", url.Values{"token": {token}, "secret": {bad}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("secret %q: status %d, want 401", bad, resp.StatusCode)
		}
		if _, ok := c.Jar.(*cookieJar).m[sessionCookie]; ok {
			t.Fatalf("secret %q: got a session cookie", bad)
		}
		_, body = f.get(t, c, "/admin/login")
		token = hidden(t, body, "token")
	}
	// A sign-in form posted without its double-submit token (another site's form) fails.
	resp, _ = f.post(t, newClient(), "/admin/login", url.Values{"token": {token}, "secret": {testPassword}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without the login cookie: %d, want 403", resp.StatusCode)
	}

	resp, _ = f.post(t, c, "/admin/login", url.Values{"token": {token}, "secret": {testPassword}, "next": {"https://evil.example/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/groups" {
		t.Fatalf("password sign-in: %d to %q (an outside next must not be followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := c.Jar.(*cookieJar).m[sessionCookie]
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/admin/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP, path /admin/", sc)
	}
	resp, body = f.get(t, c, "/admin/groups")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Create new group") || !strings.Contains(body, ">admin<") {
		t.Fatalf("groups page after sign-in: %d\n%s", resp.StatusCode, body)
	}

	// A tampered cookie is no session.
	forged := newClient()
	forged.Jar.(*cookieJar).m[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA." + strings.Split(sc.Value, ".")[1]}
	if resp, _ := f.get(t, forged, "/admin/groups"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("forged session: %d, want a redirect to sign in", resp.StatusCode)
	}
	// An expired one neither.
	f.h.now = func() time.Time { return time.Now().Add(13 * time.Hour) }
	if resp, _ := f.get(t, c, "/admin/groups"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("expired session: %d, want a redirect to sign in", resp.StatusCode)
	}
	f.h.now = time.Now

	// An API key signs in too; the activity log names the key.
	kc := newClient()
	csrf := f.signIn(t, kc, testKey)
	resp, _ = f.post(t, kc, "/admin/groups", url.Values{"csrf": {csrf}, "name": {"By key"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create with key session: %d", resp.StatusCode)
	}
	var who string
	if err := f.db.Get(&who, `SELECT actor FROM activity WHERE action = 'create'`); err != nil || who != "tester" {
		t.Fatalf("activity actor %q (%v), want the key's name", who, err)
	}

	// Signing out ends the session in the browser.
	resp, _ = f.post(t, kc, "/admin/logout", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := f.get(t, kc, "/admin/groups"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d, want a redirect to sign in", resp.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	csrf := f.signIn(t, c, testPassword)
	count := func() int {
		var n int
		f.db.Get(&n, `SELECT count(*) FROM groups`)
		return n
	}
	for name, form := range map[string]url.Values{
		"no token":    {"name": {"Spring"}},
		"wrong token": {"name": {"Spring"}, "csrf": {csrf + "x"}},
	} {
		resp, body := f.post(t, c, "/admin/groups", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not come from this site") {
			t.Fatalf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	// Another session's token does not fit this one.
	other := newClient()
	otherCSRF := f.signIn(t, other, testPassword)
	if resp, _ := f.post(t, c, "/admin/groups", url.Values{"name": {"Spring"}, "csrf": {otherCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another session's token: %d, want 403", resp.StatusCode)
	}
	// A cross-site Origin is refused even with the token.
	req, _ := http.NewRequest("POST", f.srv.URL+"/admin/groups", strings.NewReader(url.Values{"name": {"Spring"}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site origin: %d, want 403", resp.StatusCode)
	}
	// A streamed upload needs the token in its header.
	g, err := f.store.Create(context.Background(), "t", groups.Input{Name: ptr("Stream")})
	if err != nil {
		t.Fatal(err)
	}
	up := func(token string) int {
		req, _ := http.NewRequest("POST", f.srv.URL+"/admin/groups/"+itoa(g.ID)+"/upload?filename=c.txt", strings.NewReader("A1\nA2\n"))
		req.Header.Set("Content-Type", "text/plain")
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := up(""); s != http.StatusForbidden {
		t.Fatalf("upload without token: %d, want 403", s)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d groups after refused forms, want 1", n)
	}
	if s := up(csrf); s != http.StatusCreated {
		t.Fatalf("upload with token: %d, want 201", s)
	}
	if resp, _ := f.post(t, c, "/admin/groups", url.Values{"name": {"Spring"}, "csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("with the token: %d, want 303", resp.StatusCode)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d groups, want 2", n)
	}
	// A paste too large for a form says so (and what to do) instead of "expired".
	resp, body := f.post(t, c, "/admin/groups/"+itoa(g.ID)+"/paste", url.Values{"csrf": {csrf}, "codes": {strings.Repeat("X", 11<<20)}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "upload a file instead") {
		t.Fatalf("11 MB paste: %d", resp.StatusCode)
	}
}

func TestCodesNeedSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", groups.Input{Name: ptr("Secret")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: "cli", Actor: "t"},
		strings.NewReader("HIDDEN-CODE-1\nHIDDEN-CODE-2\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`INSERT INTO customers (id, email) VALUES ('c1', 'c1@example.com')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.IssueDirect(ctx, g.ID, "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/admin/groups/" + itoa(g.ID) + "/unused.csv", "/admin/groups/" + itoa(g.ID) + "/issues.csv",
		"/admin/customers/c1", "/admin/groups/" + itoa(g.ID), "/admin/queues/api/queues"}
	anon := newClient()
	for _, p := range paths {
		resp, body := f.get(t, anon, p)
		if resp.StatusCode != http.StatusSeeOther || strings.Contains(body, "HIDDEN-CODE") {
			t.Fatalf("%s without a session: %d, body %q", p, resp.StatusCode, body)
		}
	}
	c := newClient()
	f.signIn(t, c, testPassword)
	for _, p := range paths[:3] {
		resp, body := f.get(t, c, p)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "HIDDEN-CODE") {
			t.Fatalf("%s signed in: %d, want the codes in\n%s", p, resp.StatusCode, body)
		}
	}
	// An unknown customer is customers.ErrNotFound: a 404 naming the id, not a 500.
	if resp, body := f.get(t, c, "/admin/customers/nobody"); resp.StatusCode != http.StatusNotFound ||
		!strings.Contains(body, "No customer has the id &#34;nobody&#34;.") {
		t.Fatalf("unknown customer: %d\n%s", resp.StatusCode, body)
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestMailingPages covers the draft page (a preview that takes no code), the progress
// the page polls, and cancelling.
func TestMailingPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", groups.Input{Name: ptr("Autumn")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: "cli", Actor: "t"},
		strings.NewReader("AUT-1\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`INSERT INTO customers (id, email) VALUES ('m1', 'm1@example.com')`); err != nil {
		t.Fatal(err)
	}
	c := newClient()
	csrf := f.signIn(t, c, testPassword)
	resp, body := f.post(t, c, "/admin/mailings", url.Values{"csrf": {csrf}, "name": {"Autumn news"}, "sender": {"shop@example.com"},
		"subject": {"Hi"}, "text": {"code {{client.promocode('Autumn')}}"}, "customer_ids": {"m1"}, "action": {"create"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	path := resp.Header.Get("Location")
	_, body = f.get(t, c, path)
	if !strings.Contains(body, "PREVIEW-Autumn") || !strings.Contains(body, `id="start-mailing"`) {
		t.Fatalf("draft page lacks the preview or the start button:\n%s", body)
	}
	var issues int
	f.db.Get(&issues, `SELECT count(*) FROM issues`)
	if issues != 0 {
		t.Fatalf("%d issues after a preview, want 0", issues)
	}
	resp, _ = f.post(t, c, path+"/cancel", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	resp, body = f.get(t, c, path+"/progress")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"cancelled"`) {
		t.Fatalf("progress after cancel: %d %s", resp.StatusCode, body)
	}
	// Cancelling again is refused with a message, not an error page.
	resp, _ = f.post(t, c, path+"/cancel", url.Values{"csrf": {csrf}})
	_, body = f.get(t, c, resp.Header.Get("Location"))
	if !strings.Contains(body, "does not allow that") {
		t.Fatalf("second cancel: want the status message\n%s", body)
	}
}
