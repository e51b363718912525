package admin

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"promopool/idp"
	"promopool/internal/oidctest"
	"promopool/internal/testdb"
)

// TestBrowserOIDC drives headless Chromium through sign-in at a real OpenID Connect
// provider (internal/oidctest: zitadel/oidc's example provider, with its own login
// page) against a real `promopool web`: the first admin is made with `promopool users
// create`, signs in with the provider (authorization code + PKCE), creates a group
// that the activity log names her for with name and email, sees herself on the Users
// page; a viewer's sign-in cannot create a group; disabled from the command line, the
// admin's open session is refused at its next page. Screenshots: testoutput/admin/oidc-*.
func TestBrowserOIDC(t *testing.T) {
	// The two browser tests wait on pages and processes more than they compute: they
	// run side by side (own web, own redis-server, own browser context each).
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and runs a browser")
	}
	db := testdb.New(t)
	bin := testBinary(t)
	// The callback must be registered with the provider before web starts: take a
	// free port for web first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	prov := oidctest.Start(t, "http://"+addr+idp.CallbackPath,
		oidctest.User{ID: "sub-ada", Username: "ada", Password: "ada-at-the-idp", Email: "ada@example.com", Name: "Ada", EmailVerified: true},
		oidctest.User{ID: "sub-vic", Username: "vic", Password: "vic-at-the-idp", Email: "vic@example.com", Name: "Vic", EmailVerified: true})
	env := append(os.Environ(), db.Env()...)
	env = append(env, "REDIS_URL="+startRedis(t), "HTTP_ADDR="+addr, "LOG_LEVEL=warn",
		"OIDC_ISSUER="+prov.Issuer, "OIDC_CLIENT_ID="+oidctest.ClientID, "OIDC_CLIENT_SECRET="+oidctest.ClientSecret,
		"OIDC_REDIRECT_URL=http://"+addr+idp.CallbackPath)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promopool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("users", "create", "ada@example.com", "-name", "Ada Lovelace", "-role", "admin"); !strings.Contains(out, "role admin") {
		t.Fatalf("users create: %s", out)
	}
	cli("users", "create", "vic@example.com", "-name", "Vic Viewer", "-role", "viewer")
	web := startWeb(t, bin, env)
	shots := filepath.Join("..", "testoutput", "admin")
	os.MkdirAll(shots, 0o755)

	signIn := func(username, password, wantSel string) (context.Context, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithTimeout(newTab(t), 45*time.Second)
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(web + "/admin/groups"), chromedp.WaitVisible(chromedp.CSS("#signin-oidc")),
			chromedp.Click(chromedp.CSS("#signin-oidc")),
			// The provider's own login page.
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), username), chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS("button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(wantSel)),
		}
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot(t, ctx, shots, "oidc-failed-"+username)
			t.Fatalf("sign-in of %s through the provider: %v", username, err)
		}
		return ctx, cancel
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	ctx, done := signIn("ada", "ada-at-the-idp", "#create-group")
	defer done()
	if who := text(ctx, "#who"); who != "Ada Lovelace <ada@example.com>" {
		t.Fatalf("signed in as %q", who)
	}
	shot(t, ctx, shots, "oidc-01-signed-in")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#group-name"), "Summer"), chromedp.Click(chromedp.CSS("#create-group")),
		chromedp.WaitVisible(chromedp.CSS("#activity li"))); err != nil {
		t.Fatalf("create a group: %v", err)
	}
	if a := text(ctx, "#activity li"); !strings.Contains(a, "create") || !strings.Contains(a, "Ada Lovelace <ada@example.com>") {
		t.Fatalf("activity entry %q, want the creation by Ada with her email", a)
	}
	shot(t, ctx, shots, "oidc-02-activity")
	if err := chromedp.Do(ctx, chromedp.Navigate(web+"/admin/users"), chromedp.WaitVisible(chromedp.CSS("#users"))); err != nil {
		t.Fatal(err)
	}
	if row := text(ctx, `#users tr[data-email="ada@example.com"]`); !strings.Contains(row, "identity provider") || !strings.Contains(row, "cli:") {
		t.Fatalf("users page row %q: want linked to the provider, created from the command line", row)
	}
	shot(t, ctx, shots, "oidc-03-users")

	// A viewer reads, and is refused a change.
	vctx, vdone := signIn("vic", "vic-at-the-idp", "#create-group")
	defer vdone()
	if err := chromedp.Do(vctx, chromedp.SendKeys(chromedp.CSS("#group-name"), "Nope"), chromedp.Click(chromedp.CSS("#create-group")),
		chromedp.WaitVisible(chromedp.CSS("p.error"))); err != nil {
		t.Fatal(err)
	}
	if e := text(vctx, "p.error"); !strings.Contains(e, "viewer") || !strings.Contains(e, "marketer") {
		t.Fatalf("viewer's create: %q", e)
	}

	// Disabled from the command line while her session is open: the next page is the
	// sign-in form.
	cli("users", "disable", "ada@example.com")
	if err := chromedp.Do(ctx, chromedp.Navigate(web+"/admin/groups"), chromedp.WaitVisible(chromedp.CSS("#signin-oidc"))); err != nil {
		t.Fatalf("a disabled user's next page: %v", err)
	}
	shot(t, ctx, shots, "oidc-04-disabled")
}

// shot saves a screenshot of the page in dir.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
}
