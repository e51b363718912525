package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/alerts"
	"promopool/egress"
	"promopool/groups"
	"promopool/internal/smtptest"
	"promopool/internal/testdb"
	"promopool/mailer"
	"promopool/mailings"

	"promopool/internal/syncbuf"
)

// env is one test's database, SMTP server and webhook receiver.
type env struct {
	db    *testdb.DB
	store *groups.Store
	smtp  *smtptest.Server
	mail  mailer.Transport
	hook  *hook
	log   *syncBuffer
	seq   int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: testdb.New(t), smtp: smtptest.Start(t), log: &syncBuffer{}}
	e.store = groups.NewStore(e.db.DB, groups.Config{Webhooks: loopback})
	tcfg, err := mailer.ParseURL(e.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	e.mail, err = mailer.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.mail.Close() })
	e.hook = newHook(t)
	return e
}

// checker returns a Service on db (the env's pool when nil).
func (e *env) checker(t *testing.T, db *sqlx.DB) *alerts.Service {
	t.Helper()
	if db == nil {
		db = e.db.DB
	}
	c, err := alerts.New(alerts.Config{Email: e.mail, MailFrom: "promopool <alerts@promopool.test>", WebhookTimeout: 5 * time.Second,
		Webhooks: loopback}, alerts.Deps{DB: db, Groups: groups.NewStore(db, groups.Config{}), Log: slog.New(slog.NewTextHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type syncBuffer = syncbuf.Buffer

// loopback lets the tests' webhook receivers, on 127.0.0.1, be saved and reached
// (WEBHOOK_ALLOW_PRIVATE=127.0.0.0/8).
var loopback = egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// hook is a webhook receiver that counts hits per path and fails the paths told to.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string][]alerts.WebhookPayload
	fail map[string]int // path → status to answer
}

func newHook(t *testing.T) *hook {
	h := &hook{hits: map[string][]alerts.WebhookPayload{}, fail: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p alerts.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil || r.Method != http.MethodPost || r.Header.Get("Idempotency-Key") == "" {
			t.Errorf("webhook got a bad request: %s %q (%v)", r.Method, body, err)
		}
		h.mu.Lock()
		h.hits[r.URL.Path] = append(h.hits[r.URL.Path], p)
		status := h.fail[r.URL.Path]
		h.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) url(path string) string { return h.srv.URL + path }

func (h *hook) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hits[path])
}

func (h *hook) failWith(path string, status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[path] = status
}

func ptr[T any](v T) *T { return &v }

// group creates a group with a threshold, one alert address and a webhook at /<name>,
// holding n codes.
func (e *env) group(t *testing.T, name string, threshold int64, n int) *groups.Group {
	t.Helper()
	in := groups.Input{Name: &name, AlertEmails: []string{"ops+" + strings.ToLower(name) + "@shop.test"}, AlertWebhook: ptr(e.hook.url("/" + name))}
	if threshold >= 0 {
		in.LowBalanceThreshold = groups.NullInt{Set: true, Value: &threshold}
	}
	g, err := e.store.Create(context.Background(), "tester", in)
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, g.ID, n, nil)
	return g
}

func (e *env) upload(t *testing.T, groupID int64, n int, expires *time.Time) {
	t.Helper()
	if n == 0 {
		return
	}
	e.seq++
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "G%d-U%d-%06d\n", groupID, e.seq, i)
	}
	_, err := e.store.Load(context.Background(), groups.UploadRequest{GroupID: groupID, Format: groups.FormatPlain,
		Source: groups.SourceAPI, Actor: "tester", ExpiresAt: expires}, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
}

// take issues n codes of the group to fresh customers.
func (e *env) take(t *testing.T, groupID int64, n int) {
	t.Helper()
	e.seq++
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cust-%d-%d", e.seq, i)
	}
	res, err := e.store.Claim(context.Background(), groups.ClaimRequest{GroupID: groupID, Scope: fmt.Sprintf("test:%d", e.seq), CustomerIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Uncovered) != 0 {
		t.Fatalf("take %d: %d uncovered", n, len(res.Uncovered))
	}
}

// mailsTo counts the alert emails an address received.
func (e *env) mailsTo(addr string) int {
	n := 0
	for _, m := range e.smtp.Messages() {
		for _, to := range m.To {
			if to == addr {
				n++
			}
		}
	}
	return n
}

func (e *env) list(t *testing.T, c *alerts.Service, groupID int64) []alerts.Alert {
	t.Helper()
	list, err := c.List(context.Background(), groupID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func check(t *testing.T, c *alerts.Service, now time.Time) alerts.Result {
	t.Helper()
	res, err := c.Check(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || res.GroupErrors != 0 {
		t.Fatalf("check: %+v", res)
	}
	return res
}

func levels(list []alerts.Alert) string {
	var s []string
	for _, a := range list {
		l := a.Level
		if a.Suppressed {
			l += "(suppressed)"
		}
		s = append(s, l)
	}
	return strings.Join(s, ",")
}

func TestEachLevelFiresOnceAsTheBalanceFalls(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	g := e.group(t, "Spring", 40, 100)
	other := e.group(t, "Quiet", 10, 100) // stays above its threshold
	fresh := e.group(t, "Fresh", 10, 0)   // never held a code: not "running low"
	steps := []struct {
		take  int
		level string // the alert this step raises, "" for none
	}{
		{0, ""},
		{50, ""},          // 50 > 40
		{10, "threshold"}, // 40
		{5, ""},           // 35
		{15, "half"},      // 20
		{9, ""},           // 11
		{1, "quarter"},    // 10
		{9, ""},           // 1
		{1, "empty"},      // 0
	}
	want := 0
	for i, s := range steps {
		if s.take > 0 {
			e.take(t, g.ID, s.take)
		}
		for range 2 { // a second tick raises nothing new
			check(t, c, time.Now())
		}
		list := e.list(t, c, g.ID)
		if s.level != "" {
			want++
			if len(list) != want || list[0].Level != s.level || list[0].Suppressed {
				t.Fatalf("step %d: alerts %s, want %d with %s newest", i, levels(list), want, s.level)
			}
		} else if len(list) != want {
			t.Fatalf("step %d: alerts %s, want %d", i, levels(list), want)
		}
		if got := e.mailsTo("ops+spring@shop.test"); got != want {
			t.Fatalf("step %d: %d emails, want %d", i, got, want)
		}
		if got := e.hook.count("/Spring"); got != want {
			t.Fatalf("step %d: %d webhook hits, want %d", i, got, want)
		}
	}
	list := e.list(t, c, g.ID)
	if levels(list) != "empty,quarter,half,threshold" {
		t.Fatalf("alerts: %s", levels(list))
	}
	for _, a := range list {
		if len(a.Deliveries) != 2 {
			t.Fatalf("%s: deliveries %+v", a.Level, a.Deliveries)
		}
		for _, d := range a.Deliveries {
			if d.Status != alerts.DeliverySent || d.Attempts != 1 || d.SentAt == nil {
				t.Fatalf("%s: delivery %+v", a.Level, d)
			}
		}
	}
	half := list[2]
	if half.Balance != 20 || *half.Threshold != 40 || *half.LevelValue != 20 || half.IssuedInWindow != 80 {
		t.Fatalf("half alert: %+v", half)
	}
	if !strings.Contains(half.Message, `Group "Spring" is at half its threshold: 20 active codes left (threshold 40).`) ||
		!strings.Contains(half.Message, "codes a day) it runs dry on") {
		t.Fatalf("half message: %q", half.Message)
	}
	if list[0].Balance != 0 || !strings.Contains(list[0].Message, "run out of codes") {
		t.Fatalf("empty alert: %+v", list[0])
	}
	if n := len(e.list(t, c, other.ID)); n != 0 || e.hook.count("/Quiet") != 0 {
		t.Fatalf("the quiet group raised %d alerts", n)
	}
	if n := len(e.list(t, c, fresh.ID)); n != 0 {
		t.Fatalf("a group that never held a code raised %d alerts", n)
	}
	// The email says it all.
	var body string
	for _, m := range e.smtp.Messages() {
		if strings.Contains(string(m.Data), "at half its threshold") {
			body = string(m.Data)
		}
	}
	if !strings.Contains(body, `Subject: [promopool] "Spring" is low: 20 codes left`) || !strings.Contains(body, "Active balance: 20 of 100 codes") {
		t.Fatalf("half email:\n%s", body)
	}
	if !strings.Contains(e.log.String(), "balance alert") {
		t.Fatal("alerts were not logged")
	}
}

func TestLevelsCrossedInOneTickSendOnlyTheLowest(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	g := e.group(t, "Spring", 40, 100)
	e.take(t, g.ID, 92) // 8 left: under threshold, half and quarter at once
	check(t, c, time.Now())
	list := e.list(t, c, g.ID)
	if levels(list) != "quarter,half(suppressed),threshold(suppressed)" {
		t.Fatalf("alerts: %s", levels(list))
	}
	if e.mailsTo("ops+spring@shop.test") != 1 || e.hook.count("/Spring") != 1 || len(list[1].Deliveries) != 0 {
		t.Fatalf("%d emails, %d hooks, want 1 each", e.mailsTo("ops+spring@shop.test"), e.hook.count("/Spring"))
	}
	e.take(t, g.ID, 8)
	check(t, c, time.Now())
	if l := levels(e.list(t, c, g.ID)); !strings.HasPrefix(l, "empty,") || e.mailsTo("ops+spring@shop.test") != 2 {
		t.Fatalf("after emptying: %s", l)
	}
}

func TestUploadRearmsLevels(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	g := e.group(t, "Spring", 10, 20)
	e.take(t, g.ID, 12) // 8: threshold fires
	check(t, c, time.Now())
	e.upload(t, g.ID, 2, nil) // 10: not above the level, still disarmed
	check(t, c, time.Now())
	e.take(t, g.ID, 1) // 9
	check(t, c, time.Now())
	if l := levels(e.list(t, c, g.ID)); l != "threshold" {
		t.Fatalf("before re-arming: %s", l)
	}
	e.upload(t, g.ID, 11, nil) // 20: above the threshold, half and quarter: re-armed
	check(t, c, time.Now())
	if l := levels(e.list(t, c, g.ID)); l != "threshold" {
		t.Fatalf("an upload raised an alert: %s", l)
	}
	e.take(t, g.ID, 10) // 10: threshold again
	check(t, c, time.Now())
	list := e.list(t, c, g.ID)
	if levels(list) != "threshold,threshold" || list[0].Arming != 1 || list[1].Arming != 0 {
		t.Fatalf("after re-arming: %s", levels(list))
	}
	if n := e.mailsTo("ops+spring@shop.test"); n != 2 {
		t.Fatalf("%d emails, want 2", n)
	}
	// The empty level re-arms the same way.
	e.take(t, g.ID, 10)
	check(t, c, time.Now())
	e.upload(t, g.ID, 1, nil)
	check(t, c, time.Now())
	e.take(t, g.ID, 1)
	check(t, c, time.Now())
	if l := levels(e.list(t, c, g.ID)); l != "empty,empty,quarter(suppressed),half(suppressed),threshold,threshold" {
		t.Fatalf("empty twice: %s", l)
	}
}

func TestPercentageThreshold(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	g := e.group(t, "Spring", 5, 200)
	g, err := e.store.Update(context.Background(), "tester", g.ID, groups.Input{LowBalancePercent: groups.NullFloat{Set: true, Value: ptr(12.5)}})
	if err != nil {
		t.Fatal(err)
	}
	if et := g.EffectiveThreshold(); et == nil || *et != 25 {
		t.Fatalf("effective threshold %v, want 25 (12.5%% of 200 beats 5)", et)
	}
	e.take(t, g.ID, 175)
	check(t, c, time.Now())
	list := e.list(t, c, g.ID)
	if levels(list) != "threshold" || *list[0].Threshold != 25 {
		t.Fatalf("alerts %s", levels(list))
	}
	acts, err := e.store.ActivityPage(context.Background(), g.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	logged := false
	for _, a := range acts {
		logged = logged || a.Action == groups.ActionUpdate && string(a.Before) == `{"low_balance_percent": null}` && string(a.After) == `{"low_balance_percent": 12.5}`
	}
	if !logged {
		t.Fatalf("the percentage change is not in the activity log: %+v", acts)
	}
}

func TestConcurrentCheckersSendEachAlertOnce(t *testing.T) {
	e := newEnv(t)
	var gs []*groups.Group
	for _, name := range []string{"A", "B", "C"} {
		gs = append(gs, e.group(t, name, 40, 100))
	}
	checkers := make([]*alerts.Service, 3)
	for i := range checkers {
		checkers[i] = e.checker(t, testdb.Reopen(t, e.db))
	}
	// run starts fn on three goroutines at once and waits for them.
	run := func(fn func(c *alerts.Service) error) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, len(checkers))
		for _, c := range checkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs <- fn(c)
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	want := 0
	for round, take := range []int{60, 20, 10, 10} { // threshold, half, quarter, empty
		for _, g := range gs {
			e.take(t, g.ID, take)
		}
		want++
		now := time.Now()
		if round%2 == 0 {
			// Three scheduler ticks at once: the tick lock lets one work.
			var skipped atomic.Int32
			run(func(c *alerts.Service) error {
				res, err := c.Check(context.Background(), now)
				if res.Skipped {
					skipped.Add(1)
				}
				return err
			})
			// Whoever did the work, a second round finds nothing to send.
			run(func(c *alerts.Service) error { _, err := c.Check(context.Background(), now); return err })
		} else {
			// Without the tick lock: three checkers of each group race on its unique alert row.
			for _, g := range gs {
				run(func(c *alerts.Service) error { _, err := c.CheckGroup(context.Background(), g.ID, now); return err })
			}
		}
		for _, g := range gs {
			addr := "ops+" + strings.ToLower(g.Name) + "@shop.test"
			if n, h := e.mailsTo(addr), e.hook.count("/"+g.Name); n != want || h != want {
				t.Fatalf("round %d, group %s: %d emails and %d webhook hits, want %d each", round, g.Name, n, h, want)
			}
		}
	}
	for _, g := range gs {
		if l := levels(e.list(t, checkers[0], g.ID)); l != "empty,quarter,half,threshold" {
			t.Fatalf("group %s: %s", g.Name, l)
		}
	}
}

func TestFailingWebhookIsRetriedAndBlocksNoOne(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	bad := e.group(t, "Bad", 10, 20)
	good := e.group(t, "Good", 10, 20)
	e.hook.failWith("/Bad", http.StatusInternalServerError)
	e.take(t, bad.ID, 10)
	e.take(t, good.ID, 10)
	t0 := time.Now()
	res := check(t, c, t0)
	if res.Raised != 2 || res.Sent != 3 || res.Failed != 1 {
		t.Fatalf("first tick: %+v", res)
	}
	if e.hook.count("/Good") != 1 || e.mailsTo("ops+good@shop.test") != 1 || e.mailsTo("ops+bad@shop.test") != 1 || e.hook.count("/Bad") != 1 {
		t.Fatal("the good group's alert did not go out beside the failing webhook")
	}
	d := webhookDelivery(t, e.list(t, c, bad.ID)[0])
	if d.Status != alerts.DeliveryPending || d.Attempts != 1 || !strings.Contains(d.LastError, "status 500") {
		t.Fatalf("failed delivery: %+v", d)
	}
	if !strings.Contains(e.log.String(), "alert delivery failed") {
		t.Fatal("the failure was not logged")
	}
	// The next tick retries it, and only it.
	res = check(t, c, t0.Add(time.Minute))
	if res.Raised != 0 || res.Sent != 0 || res.Failed != 1 || e.hook.count("/Bad") != 2 {
		t.Fatalf("second tick: %+v, %d hits", res, e.hook.count("/Bad"))
	}
	e.hook.failWith("/Bad", 0)
	res = check(t, c, t0.Add(2*time.Minute))
	if res.Sent != 1 || res.Failed != 0 || e.hook.count("/Bad") != 3 {
		t.Fatalf("third tick: %+v", res)
	}
	d = webhookDelivery(t, e.list(t, c, bad.ID)[0])
	if d.Status != alerts.DeliverySent || d.Attempts != 3 || d.SentAt == nil {
		t.Fatalf("retried delivery: %+v", d)
	}
	res = check(t, c, t0.Add(3*time.Minute))
	if res.Sent+res.Failed != 0 || e.hook.count("/Bad") != 3 || e.hook.count("/Good") != 1 || e.mailsTo("ops+good@shop.test") != 1 {
		t.Fatalf("fourth tick: %+v", res)
	}
}

func webhookDelivery(t *testing.T, a alerts.Alert) alerts.Delivery {
	t.Helper()
	for _, d := range a.Deliveries {
		if d.Channel == alerts.ChannelWebhook {
			return d
		}
	}
	t.Fatalf("alert %d has no webhook delivery: %+v", a.ID, a.Deliveries)
	return alerts.Delivery{}
}

func TestMailingPauseRaisesTheEmptyAlertAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.checker(t, nil)
	g := e.group(t, "Spring", -1, 5) // no threshold: the zero level still fires
	if _, err := e.db.Exec(`INSERT INTO customers (id, email) SELECT 'c' || i, 'c' || i || '@example.com' FROM generate_series(1, 8) i`); err != nil {
		t.Fatal(err)
	}
	ids := []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}
	svc := mailings.New(mailings.Config{}, mailings.Deps{DB: e.db.DB, Groups: e.store, Sender: e.mail, Alerter: c,
		Log: slog.New(slog.NewTextHandler(e.log, nil))})
	m, err := svc.Create(ctx, "tester", mailings.Input{Name: "Sale", Sender: "Shop <shop@example.com>", Subject: "Hi",
		Text: "code {{client.promocode('Spring')}}", Audience: mailings.Audience{CustomerIDs: ids}, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, g.ID, 3, nil) // 8 codes: the pre-flight passes
	if _, err := svc.Start(ctx, m.ID, false); err != nil {
		t.Fatal(err)
	}
	e.take(t, g.ID, 3) // another consumer: 5 left for 8 recipients
	for b := range 2 {
		if err := svc.ProcessBatch(ctx, m.ID, b); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	got, _ := svc.Get(ctx, m.ID)
	if got.Status != mailings.StatusPaused {
		t.Fatalf("mailing %s, want paused", got.Status)
	}
	// No tick ran: the alert went out from the pause itself.
	list := e.list(t, c, g.ID)
	if levels(list) != "empty" || list[0].MailingID == nil || *list[0].MailingID != m.ID ||
		!strings.Contains(list[0].Message, fmt.Sprintf("Mailing %d is paused with 3 recipients waiting", m.ID)) {
		t.Fatalf("alerts: %+v", list)
	}
	if e.mailsTo("ops+spring@shop.test") != 1 || e.hook.count("/Spring") != 1 {
		t.Fatalf("%d emails, %d hooks, want 1 each", e.mailsTo("ops+spring@shop.test"), e.hook.count("/Spring"))
	}
	// The tick that follows does not send it again.
	check(t, c, time.Now())
	if n := len(e.list(t, c, g.ID)); n != 1 || e.mailsTo("ops+spring@shop.test") != 1 {
		t.Fatalf("after a tick: %d alerts", n)
	}
}

func TestListUnknownGroup(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	if _, err := c.List(context.Background(), 999, 0, 0); err == nil || !strings.Contains(err.Error(), "group not found") {
		t.Fatalf("got %v", err)
	}
}
