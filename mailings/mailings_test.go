package mailings_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"promopool/groups"
	"promopool/internal/smtptest"
	"promopool/internal/syncbuf"
	"promopool/internal/testdb"
	"promopool/mailer"
	"promopool/mailings"
	"promopool/segments"
	"promopool/worker"
)

// flushedRedis empties the test Redis DB and returns its Asynq options and a client
// (closed when the test ends).
func flushedRedis(t *testing.T) (asynq.RedisConnOpt, *redis.Client) {
	t.Helper()
	ropt, err := asynq.ParseRedisURI(testdb.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rurl, err := redis.ParseURL(testdb.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(rurl)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("test Redis: %v", err)
	}
	return ropt, rdb
}

type env struct {
	db    *testdb.DB
	store *groups.Store
	svc   *mailings.Service
	smtp  *smtptest.Server
	log   *syncbuf.Buffer
}

func newEnv(t *testing.T, enq mailings.Enqueuer, cfg mailings.Config) *env {
	t.Helper()
	return newEnvSending(t, enq, cfg, "")
}

// newEnvSending is newEnv with the transport at mailerURL (a MAILER_URL) instead of the
// test SMTP server.
func newEnvSending(t *testing.T, enq mailings.Enqueuer, cfg mailings.Config, mailerURL string) *env {
	t.Helper()
	e := &env{db: testdb.New(t), smtp: smtptest.Start(t), log: &syncbuf.Buffer{}}
	e.store = groups.NewStore(e.db.DB, groups.Config{})
	tcfg, err := mailer.ParseURL(cmp.Or(mailerURL, e.smtp.URL()))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.log, nil))
	tcfg.Log = log
	tr, err := mailer.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	e.svc = mailings.New(cfg, mailings.Deps{DB: e.db.DB, Groups: e.store, Enqueuer: enq, Sender: tr, Log: log,
		Segments: segments.New(e.db.DB, segments.Config{})})
	return e
}

func (e *env) customers(t *testing.T, n int) []string {
	t.Helper()
	_, err := e.db.Exec(`INSERT INTO customers (id, email, first_name) SELECT 'c' || g, 'c' || g || '@example.com', 'Name' || g FROM generate_series(1, $1) g`, n)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d", i+1)
	}
	return ids
}

func (e *env) group(t *testing.T, name string, codes int, prefix string) *groups.Group {
	t.Helper()
	g, err := e.store.Create(context.Background(), "t", groups.Input{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, g.ID, codes, prefix)
	return g
}

func (e *env) upload(t *testing.T, group int64, n int, prefix string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s-%05d\n", prefix, i)
	}
	if _, err := e.store.Load(context.Background(), groups.UploadRequest{GroupID: group, Format: groups.FormatPlain, Source: "api", Actor: "t"}, strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
}

func (e *env) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// processAll runs every open batch once, as the worker would.
func (e *env) processAll(t *testing.T, id int64) {
	t.Helper()
	var batches []int
	e.db.Select(&batches, `SELECT batch FROM mailing_batches WHERE mailing_id = $1 AND done_at IS NULL ORDER BY batch`, id)
	for _, b := range batches {
		if err := e.svc.ProcessBatch(context.Background(), id, b); err != nil && !errors.Is(err, mailings.ErrTransient) {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
}

const tmplText = "Hello {{client.first_name}}, your code: {{client.promocode('Spring')}} (same: {{ client.promocode('spring') }}) autumn: [{{client.last_promocode('Autumn')}}]"

func (e *env) mailing(t *testing.T, ids []string, batch int) *mailings.Mailing {
	t.Helper()
	m, err := e.svc.Create(context.Background(), "tester", mailings.Input{Name: "Spring", Sender: "Shop <shop@example.com>",
		Subject: "Hi {{client.first_name}}", HTML: "<p>{{client.promocode('Spring')}}</p>", Text: tmplText,
		Audience: mailings.Audience{CustomerIDs: ids}, BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var codeRe = regexp.MustCompile(`your code: (SPRING[A-Z0-9]*-\d+) \(same: (SPRING[A-Z0-9]*-\d+)\) autumn: \[([A-Z0-9-]*)\]`)

// delivered maps each recipient to the codes its message carried, failing on a second message.
func (e *env) delivered(t *testing.T) map[string][3]string {
	t.Helper()
	out := map[string][3]string{}
	for _, m := range e.smtp.Messages() {
		if len(m.To) != 1 {
			t.Fatalf("message to %v", m.To)
		}
		if _, dup := out[m.To[0]]; dup {
			t.Fatalf("%s got two messages", m.To[0])
		}
		sm := codeRe.FindSubmatch([]byte(textPart(t, m.Data)))
		if sm == nil {
			t.Fatalf("message to %s carries no code:\n%s", m.To[0], m.Data)
		}
		out[m.To[0]] = [3]string{string(sm[1]), string(sm[2]), string(sm[3])}
	}
	return out
}

// checkInvariants asserts in SQL that no code went to two customers and that every
// group's counters add up.
func (e *env) checkInvariants(t *testing.T) {
	t.Helper()
	if n := e.count(t, `SELECT count(*) FROM (SELECT code_id FROM issues WHERE kind = 'initial' AND released_at IS NULL GROUP BY code_id HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d codes issued twice", n)
	}
	if n := e.count(t, `SELECT count(*) FROM (SELECT 1 FROM issues WHERE kind = 'initial' AND released_at IS NULL GROUP BY scope, customer_id, group_id HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d (scope, customer, group) issued twice", n)
	}
	if n := e.count(t, `SELECT count(*) FROM code_ranges r WHERE r.taken <> (SELECT count(*) FROM issues i WHERE i.kind = 'initial' AND i.released_at IS NULL AND i.code_id BETWEEN r.first_id AND r.next_id - 1)`); n != 0 {
		t.Fatalf("%d ranges whose taken differs from their live issues", n)
	}
}

func TestMailingSendsEachCustomerOneOwnCode(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 23)
	spring := e.group(t, "Spring", 30, "SPRING")
	autumn := e.group(t, "Autumn", 5, "AUTUMN")
	// c1 was issued an Autumn code earlier: last_promocode re-inserts it.
	prev, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: autumn.ID, Scope: "earlier", CustomerIDs: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	// A customer listed twice and an unknown one.
	m := e.mailing(t, append(ids, "c5", "ghost"), 5)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got, err := e.svc.Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != mailings.StatusFinished || got.Progress.Sent != 23 || got.Progress.Skipped != 1 || got.Progress.Recipients != 24 ||
		got.Progress.CodesIssued["Spring"] != 23 {
		t.Fatalf("mailing %s progress %+v", got.Status, got.Progress)
	}
	d := e.delivered(t)
	if len(d) != 23 {
		t.Fatalf("%d recipients got a message, want 23", len(d))
	}
	seen := map[string]bool{}
	for to, c := range d {
		if c[0] != c[1] {
			t.Fatalf("%s: two occurrences of promocode gave %s and %s", to, c[0], c[1])
		}
		if seen[c[0]] {
			t.Fatalf("code %s sent twice", c[0])
		}
		seen[c[0]] = true
		if want := ""; to != "c1@example.com" && c[2] != want {
			t.Fatalf("%s: last_promocode gave %q for a customer never issued Autumn", to, c[2])
		}
	}
	if d["c1@example.com"][2] != prev.Codes["c1"] {
		t.Fatalf("c1's last_promocode %q, want its earlier code %q", d["c1@example.com"][2], prev.Codes["c1"])
	}
	g, _ := e.store.Get(ctx, spring.ID)
	if g.Active != 7 || g.Issued != 23 {
		t.Fatalf("Spring active %d issued %d, want 7 and 23", g.Active, g.Issued)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE kind = 'repeat' AND mailing_id = $1`, m.ID); n != 1 {
		t.Fatalf("%d repeat issues, want 1 (c1's)", n)
	}
	e.checkInvariants(t)
	// Running every batch again sends and issues nothing.
	e.db.Exec(`UPDATE mailing_batches SET done_at = NULL WHERE mailing_id = $1`, m.ID)
	e.processAll(t, m.ID)
	if len(e.smtp.Messages()) != 23 || e.count(t, `SELECT count(*) FROM issues WHERE kind = 'initial'`) != 24 {
		t.Fatal("a re-run batch sent or issued again")
	}
	if strings.Contains(e.log.String(), "SPRING-") {
		t.Fatal("a code reached the log")
	}
}

func TestConcurrentDeliveriesOfOneBatch(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ids := e.customers(t, 40)
	e.group(t, "Spring", 40, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	m := e.mailing(t, ids, 40)
	if _, err := e.svc.Start(context.Background(), m.ID, false); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.svc.ProcessBatch(context.Background(), m.ID, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if d := e.delivered(t); len(d) != 40 {
		t.Fatalf("%d messages, want 40", len(d))
	}
	e.checkInvariants(t)
}

func TestDefinitiveRejectionReleasesCodes(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 4)
	spring := e.group(t, "Spring", 4, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	e.smtp.Reject("c2@example.com", 550)
	m := e.mailing(t, ids, 10)
	e.svc.Start(ctx, m.ID, false)
	e.processAll(t, m.ID)
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Progress.Sent != 3 || got.Progress.Failed != 1 || got.Status != mailings.StatusFinished {
		t.Fatalf("progress %s %+v", got.Status, got.Progress)
	}
	var detail string
	e.db.Get(&detail, `SELECT detail FROM mailing_recipient_status WHERE customer_id = 'c2'`)
	if !strings.Contains(detail, "rejected") {
		t.Fatalf("c2 detail %q", detail)
	}
	if g, _ := e.store.Get(ctx, spring.ID); g.Active != 1 || g.Issued != 3 {
		t.Fatalf("the rejected message's code was not returned: active %d issued %d", g.Active, g.Issued)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE customer_id = 'c2' AND released_at IS NOT NULL`); n != 1 {
		t.Fatal("the release is not recorded in the history")
	}
	e.checkInvariants(t)
}

func TestTransientRejectionStaysQueued(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 3)
	e.group(t, "Spring", 3, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	e.smtp.Reject("c3@example.com", 451)
	m := e.mailing(t, ids, 10)
	e.svc.Start(ctx, m.ID, false)
	if err := e.svc.ProcessBatch(ctx, m.ID, 0); !errors.Is(err, mailings.ErrTransient) {
		t.Fatalf("got %v, want ErrTransient", err)
	}
	e.smtp.Reject("c3@example.com", 0)
	if err := e.svc.ProcessBatch(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.Get(ctx, m.ID)
	if got.Progress.Sent != 3 || got.Status != mailings.StatusFinished {
		t.Fatalf("after retry: %s %+v", got.Status, got.Progress)
	}
	if d := e.delivered(t); d["c3@example.com"][0] == "" {
		t.Fatal("c3 never got its message")
	}
	e.checkInvariants(t)
}

func TestTemplateProblemsRefuseCreation(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	e.customers(t, 1)
	_, err := e.svc.Create(context.Background(), "t", mailings.Input{Name: "x", Sender: "a@example.com", Subject: "s",
		Text: "{{client.promocode(\"Spring\")}} {{client.promocode('Nope')}}", Audience: mailings.Audience{All: true}})
	if err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("got %v, want problems naming the unknown group", err)
	}
}

// TestWorkerEndToEndAndReconciler runs the real Asynq worker on the test Redis: a
// mailing goes out in full; then Redis is flushed mid-mailing (tasks lost) and the
// reconciler finishes it.
func TestWorkerEndToEndAndReconciler(t *testing.T) {
	ropt, rdb := flushedRedis(t)
	client := asynq.NewClient(ropt)
	defer client.Close()
	e := newEnv(t, worker.Enqueuer{Client: client}, mailings.Config{ReenqueueAfter: time.Millisecond, Lease: 30 * time.Second})
	ctx := context.Background()
	ids := e.customers(t, 60)
	e.group(t, "Spring", 60, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")

	// Start with no worker running, then lose every queued task.
	m := e.mailing(t, ids, 10)
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Reconcile(ctx)
	if err != nil || n != 6 {
		t.Fatalf("reconcile re-enqueued %d batches (%v), want 6", n, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	mux := asynq.NewServeMux()
	mux.Handle(worker.TypeMailingBatch, &worker.MailingBatchHandler{Mailings: e.svc})
	go func() {
		done <- worker.Run(wctx, worker.Config{RedisURL: testdb.RedisURL(), Concurrency: 4, ShutdownTimeout: 5 * time.Second},
			slog.New(slog.NewTextHandler(io.Discard, nil)), mux)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := e.svc.Get(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == mailings.StatusFinished {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailing not finished in 30s: %s %+v", got.Status, got.Progress)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := e.delivered(t); len(d) != 60 {
		t.Fatalf("%d recipients reached, want 60", len(d))
	}
	e.checkInvariants(t)
}

// textPart returns the decoded text/plain part of a raw message, as a mail client shows it.
func textPart(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a mail message: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		return string(b)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable itself
		if err != nil {
			t.Fatalf("no text/plain part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, _ := io.ReadAll(p)
			return string(b)
		}
	}
}

// TestLastBatchesFinishingTogether: when the last two batches record at the same moment,
// the mailing still ends finished (each checks after its own commit).
func TestLastBatchesFinishingTogether(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 50)
	e.group(t, "Spring", 50, "SPRING")
	e.group(t, "Autumn", 1, "AUTUMN")
	for round := range 25 {
		m := e.mailing(t, ids[2*round:2*round+2], 1)
		if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for b := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.svc.ProcessBatch(ctx, m.ID, b); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, _ := e.svc.Get(ctx, m.ID); got.Status != mailings.StatusFinished {
			t.Fatalf("round %d: both batches done but the mailing is %s", round, got.Status)
		}
	}
}

// TestSegmentAudienceReissue: "send everyone who was issued a code from Spring a reminder
// with last_promocode('Spring')" — the audience is a segment filter.
func TestSegmentAudienceReissue(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	ids := e.customers(t, 10)
	spring := e.group(t, "Spring", 20, "SPRING")
	res, err := e.store.Claim(ctx, groups.ClaimRequest{GroupID: spring.ID, Scope: "direct:x", CustomerIDs: ids[2:6]})
	if err != nil || len(res.Codes) != 4 {
		t.Fatalf("claim: %v %+v", err, res)
	}
	bad, _ := segments.Parse(strings.NewReader(`{"and":[{"issued_from":{"groups":["Winter"]}}]}`))
	_, err = e.svc.Create(ctx, "t", mailings.Input{Name: "R", Sender: "shop@example.com", Subject: "s", Text: "x",
		Audience: mailings.Audience{Segment: bad}})
	var ie *segments.InvalidError
	if !errors.As(err, &ie) || ie.Path != "$.audience.segment.and[0].issued_from.groups[0]" {
		t.Fatalf("bad segment: %v", err)
	}
	f, err := segments.Parse(strings.NewReader(`{"issued_from":{"groups":["spring"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.svc.Create(ctx, "t", mailings.Input{Name: "Reminder", Sender: "shop@example.com", Subject: "Your Spring code",
		Text: "Reminder: your code {{client.last_promocode('Spring')}} is still valid", Audience: mailings.Audience{Segment: f}, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The preview of a customer shows the code the send will re-insert, and records nothing.
	if p, err := e.svc.Preview(ctx, m.ID, ids[2]); err != nil || !strings.Contains(p.Text, "your code "+res.Codes[ids[2]]+" is still valid") {
		t.Fatalf("preview for %s: %+v %v", ids[2], p, err)
	}
	if p, err := e.svc.Preview(ctx, m.ID, ids[0]); err != nil || !strings.Contains(p.Text, "your code  is still valid") {
		t.Fatalf("preview for %s (no Spring code): %+v %v", ids[0], p, err)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE kind = 'repeat'`); n != 0 {
		t.Fatalf("previews recorded %d repeat issues", n)
	}
	if _, err := e.svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	e.processAll(t, m.ID)
	got := map[string]string{}
	for _, msg := range e.smtp.Messages() {
		got[msg.To[0]] = textPart(t, msg.Data)
	}
	if len(got) != 4 {
		t.Fatalf("%d messages, want 4: %v", len(got), got)
	}
	for c, code := range res.Codes {
		body := got[c+"@example.com"]
		if !strings.Contains(body, "your code "+code+" is still valid") {
			t.Fatalf("%s got %q, want its code %s", c, body, code)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE kind = 'repeat' AND scope = $1`, mailings.Scope(m.ID)); n != 4 {
		t.Fatalf("%d repeat issues recorded, want 4", n)
	}
	if n := e.count(t, `SELECT count(*) FROM issues WHERE kind = 'initial'`); n != 4 {
		t.Fatalf("a reminder issued new codes: %d initial issues", n)
	}
}
