package faults

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"promopool/client"
	"promopool/internal/redisurl"
	"promopool/internal/testdb"

	"promopool/internal/syncbuf"
)

var (
	// bin is the promopool binary built for this run.
	bin string
	// long selects the long version (FAULTS_LONG=1, scripts/chaos.sh).
	long = os.Getenv("FAULTS_LONG") != ""
)

// redisURL is the suite's Redis database, flushed by every test. Never DB 15 (the other
// tests') nor 0 (a local promopool's).
func redisURL() string {
	return cmp.Or(os.Getenv("FAULTS_REDIS_URL"), "redis://127.0.0.1:6379/13")
}

func TestMain(m *testing.M) {
	if spec := os.Getenv("FAULTS_RELAY"); spec != "" {
		os.Exit(relayMain(spec)) // this binary as a relay on another host (netns_test.go)
	}
	dir, err := os.MkdirTemp("", "promopool-faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "promopool")
	if out, err := exec.Command("go", "build", "-o", bin, "promopool/cmd/promopool").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	report.print(os.Stdout)
	os.RemoveAll(dir)
	os.Exit(code)
}

type syncBuffer = syncbuf.Buffer

// proc is one promopool process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) term(limit time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		p.kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.name, limit)
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// harness is one test's world: a schema, Redis DB 13, a webhook receiver standing in for
// the platform's sender, and the promopool processes started on them.
type harness struct {
	t      *testing.T
	db     *testdb.DB
	rdb    *redis.Client
	env    []string
	key    string
	hook   *receiver
	webURL string
	web    *proc
	// place, when set, is the command prefix that starts the named process elsewhere
	// (ip netns exec NS: another host).
	place func(name string) []string

	mu    sync.Mutex
	procs []*proc
	// texts are error bodies and other answers kept for the leak scan (promise 5).
	texts []string
}

func newHarness(t *testing.T, env ...string) *harness {
	t.Helper()
	return newHarnessOn(t, testdb.New(t), redisURL(), env...)
}

// newHarnessOn is newHarness on a database and a Redis (any REDIS_URL form but a
// Cluster) of the test's own.
func newHarnessOn(t *testing.T, db *testdb.DB, rurl string, env ...string) *harness {
	t.Helper()
	h := &harness{t: t, db: db, key: "faults-key-0123456789abcdef"}
	conn, err := redisurl.Parse(rurl)
	if err != nil {
		t.Fatal(err)
	}
	if conn.DB == 15 || conn.DB == 0 {
		t.Fatalf("FAULTS_REDIS_URL must not name DB %d (flushed by this suite)", conn.DB)
	}
	rdb, ok := conn.Client().(*redis.Client)
	if !ok {
		t.Fatalf("the fault suite's checks need one Redis or a Sentinel-watched one, not %s", conn)
	}
	h.rdb = rdb
	t.Cleanup(func() { h.rdb.Close() })
	if err := h.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("Redis: %v", err)
	}
	h.hook = newReceiver()
	t.Cleanup(h.hook.srv.Close)
	h.env = append(h.db.Env(), "REDIS_URL="+rurl, "API_KEYS=faults:"+h.key+":admin",
		"MAILER_URL="+h.hook.srv.URL+"/send?concurrency=8&backoff=50ms", "WORKER_CONCURRENCY=8",
		"MAILING_BATCH_SIZE=100", "RECONCILE_INTERVAL=300ms", "WEBHOOK_ALLOW_PRIVATE=127.0.0.0/8,::1", "MAX_UPLOAD_BYTES=16777216", "LOG_LEVEL=debug", "DATABASE_MAX_CONNS=12",
		// The suite issues codes in loops of its own; TestSecurityInput sets a limit.
		"ISSUE_RATE_LIMIT=off")
	if long {
		h.env = append(h.env, "MAILING_LEASE=2m", "REENQUEUE_AFTER=10s", "RESERVATION_TIMEOUT=10s")
	} else {
		h.env = append(h.env, "MAILING_LEASE=2s", "REENQUEUE_AFTER=1s", "RESERVATION_TIMEOUT=1500ms")
	}
	h.env = append(h.env, env...)
	t.Cleanup(func() {
		h.mu.Lock()
		procs := h.procs
		h.mu.Unlock()
		for _, p := range procs {
			if p.alive() {
				p.term(15 * time.Second)
			}
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- %s output (tail) ---\n%s", p.name, tail(p.out.String(), 3000))
			}
		}
	})
	return h
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start runs `promopool <args>` with the harness's environment plus extra.
func (h *harness) start(name string, extra []string, args ...string) *proc {
	h.t.Helper()
	p := &proc{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if h.place != nil {
		if pre := h.place(name); len(pre) > 0 {
			p.cmd = exec.Command(pre[0], append(append(pre[1:], bin), args...)...)
		}
	}
	p.cmd.Env = append(append(os.Environ(), h.env...), extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startWeb runs `promopool web` on a free port and waits until it answers.
func (h *harness) startWeb(extra ...string) {
	h.t.Helper()
	h.web = h.start("web", append([]string{"HTTP_ADDR=127.0.0.1:0"}, extra...), "web")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listening.FindStringSubmatch(h.web.out.String()); m != nil {
			h.webURL = m[1]
			return
		}
		if !h.web.alive() || time.Now().After(deadline) {
			h.t.Fatalf("web did not start:\n%s", h.web.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) startWorker(extra ...string) *proc {
	return h.start("worker", extra, "worker")
}

// do sends a request with key (h.key if "default") and returns the status and body.
func (h *harness) do(method, path, ctype string, body io.Reader, key string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.webURL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if key == "default" {
		key = h.key
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		h.mu.Lock()
		h.texts = append(h.texts, string(b))
		h.mu.Unlock()
	}
	return resp.StatusCode, b
}

// api sends JSON with the harness key and decodes the JSON answer into out (if not nil).
// For documented calls the typed client (h.cli) reads better; api stays for bodies the
// client would not send.
func (h *harness) api(method, path, body string, want int, out any) []byte {
	h.t.Helper()
	st, b := h.do(method, path, "application/json", strings.NewReader(body), "default")
	if st != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// cli is the typed client (package client) of the web process, with the harness key.
// Like h.do it keeps the text of every error answer for the leak scan.
func (h *harness) cli() *client.ClientWithResponses {
	h.t.Helper()
	c, err := client.New(h.webURL, h.key, client.WithHTTPClient(keepErrors{h}))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// keepErrors sends with http.DefaultClient and keeps error answers' bodies in h.texts.
type keepErrors struct{ h *harness }

func (k keepErrors) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	k.h.mu.Lock()
	k.h.texts = append(k.h.texts, string(b))
	k.h.mu.Unlock()
	return resp, err
}

// ok fails the test unless a client call got the status want.
func (h *harness) ok(want int, r client.Response, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	if r.StatusCode() != want {
		h.t.Fatalf("%d, want %d: %s", r.StatusCode(), want, r.GetBody())
	}
}

func (h *harness) createGroup(name string) int64 {
	h.t.Helper()
	return h.createGroupWith(client.GroupInput{Name: &name})
}

func (h *harness) createGroupWith(in client.GroupInput) int64 {
	h.t.Helper()
	r, err := h.cli().CreateGroupWithResponse(context.Background(), in)
	h.ok(201, r, err)
	return int64(*r.JSON201.Id)
}

// issueCode gives customer a code of group gid directly (POST …/issue) under idempotency key.
func (h *harness) issueCode(gid int64, customer, key string) string {
	h.t.Helper()
	r, err := h.cli().IssueCodeWithResponse(context.Background(), int(gid), &client.IssueCodeParams{IdempotencyKey: key},
		client.IssueCodeJSONRequestBody{CustomerId: customer})
	h.ok(201, r, err)
	return *r.JSON201.Code
}

// uploadCodes uploads n codes named prefix-000000… over HTTP and returns the report.
func (h *harness) uploadCodes(gid int64, prefix string, n int) uploadReport {
	h.t.Helper()
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<16)
		for i := 0; i < n; i++ {
			fmt.Fprintf(bw, "%s-%08d\n", prefix, i)
		}
		bw.Flush()
		pw.Close()
	}()
	r, err := h.cli().UploadCodesWithBodyWithResponse(context.Background(), int(gid), nil, "text/plain", pr)
	if err != nil || r.JSON201 == nil {
		h.t.Fatalf("upload: %v %s", err, r.GetBody())
	}
	rep := r.JSON201
	n64 := func(p *int) int64 {
		if p == nil {
			return 0
		}
		return int64(*p)
	}
	return uploadReport{ID: n64(rep.Id), Lines: n64(rep.Lines), Accepted: n64(rep.Accepted), Duplicates: n64(rep.Duplicates), Invalid: n64(rep.Invalid)}
}

type uploadReport struct {
	ID         int64
	Lines      int64
	Accepted   int64
	Duplicates int64
	Invalid    int64
}

// customers inserts n customers c1…cn straight in SQL (the API's bulk upsert is tested
// elsewhere; here they are the mailing's audience).
func (h *harness) customers(n int) {
	h.t.Helper()
	if _, err := h.db.Exec(`INSERT INTO customers (id, email, first_name) SELECT 'c' || g, 'c' || g || '@example.com', 'N' || g FROM generate_series(1, $1) g`, n); err != nil {
		h.t.Fatal(err)
	}
}

// startMailing creates and starts a mailing to every customer drawing from group.
func (h *harness) startMailing(group string, batch int) int64 {
	h.t.Helper()
	ctx := context.Background()
	in := client.MailingInput{Name: "faults", Sender: "s@example.com", Subject: "your code",
		Text: new("code={{client.promocode('" + group + "')}};"), BatchSize: &batch}
	in.Audience.All = new(true)
	m, err := h.cli().CreateMailingWithResponse(ctx, in)
	h.ok(201, m, err)
	st, err := h.cli().StartMailingWithResponse(ctx, *m.JSON201.Id, client.StartMailingJSONRequestBody{})
	h.ok(200, st, err)
	return int64(*m.JSON201.Id)
}

// mailingStatus is the mailing's status, or "" when it cannot be read now.
func (h *harness) mailingStatus(id int64) string {
	r, err := h.cli().GetMailingWithResponse(context.Background(), int(id))
	if err != nil || r.JSON200 == nil || r.JSON200.Status == nil {
		return ""
	}
	return string(*r.JSON200.Status)
}

// sent is how many recipients of the mailing are recorded sent.
func (h *harness) sent(id int64) int {
	var n int
	h.db.Get(&n, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent'`, id)
	return n
}

func (h *harness) waitFor(limit time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receiver is the platform's sender: it counts deliveries per Idempotency-Key (one per
// customer and mailing) and remembers the code each carried.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes map[string][]string // key → code of each delivery
	fail  func() bool         // when set and true, answer 503
	delay time.Duration
}

var codeInText = regexp.MustCompile(`code=([^;]*);`)

func newReceiver() *receiver {
	r := &receiver{codes: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var msg struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		}
		if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
			w.WriteHeader(400)
			return
		}
		r.mu.Lock()
		fail, delay := r.fail, r.delay
		r.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		if fail != nil && fail() {
			w.WriteHeader(503)
			return
		}
		code := ""
		if m := codeInText.FindStringSubmatch(msg.Text); m != nil {
			code = m[1]
		}
		r.mu.Lock()
		k := req.Header.Get("Idempotency-Key")
		r.codes[k] = append(r.codes[k], code)
		r.mu.Unlock()
		w.WriteHeader(200)
	}))
	return r
}

// received returns how many distinct messages arrived.
func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.codes)
}

// snapshot copies the deliveries.
func (r *receiver) snapshot() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]string, len(r.codes))
	for k, v := range r.codes {
		out[k] = append([]string(nil), v...)
	}
	return out
}
