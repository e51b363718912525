package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"promopool/api"
	"promopool/auth"
	"promopool/client"
	"promopool/customers"
	"promopool/groups"
	"promopool/internal/apitest"
	"promopool/internal/redistest"
	"promopool/internal/smtptest"
	"promopool/internal/testdb"
	"promopool/mailer"
	"promopool/mailings"
	"promopool/segments"
	"promopool/worker"
)

const adminKey = "client-test-key-0123456789abcdef"

var sentCode = regexp.MustCompile(`code=3D([SJ][0-9]);`)

// world is promopool served in-process: the API (every exchange checked against
// api/openapi.json by apitest) on a schema of the test's PostgreSQL, mailings queued on
// a redis-server of the test's own and sent by an in-process worker to an SMTP server.
type world struct {
	url  string
	db   *testdb.DB
	keys *auth.Keys
	smtp *smtptest.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{db: testdb.New(t), smtp: smtptest.Start(t)}
	var err error
	if w.keys, err = auth.NewKeys(w.db.DB, "tests:"+adminKey+":admin"); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A Redis of this test's own: the queue is not shared with other packages' tests,
	// which flush theirs.
	redisURL := "redis://" + redistest.StartServer(t, redistest.Options{}).Addr + "/0"
	ropt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	queue := asynq.NewClient(ropt)
	t.Cleanup(func() { queue.Close() })
	tcfg, err := mailer.ParseURL(w.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mailer.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	store := groups.NewStore(w.db.DB, groups.Config{})
	segs := segments.New(w.db.DB, segments.Config{})
	svc := mailings.New(mailings.Config{}, mailings.Deps{DB: w.db.DB, Groups: store, Segments: segs,
		Enqueuer: worker.Enqueuer{Client: queue}, Sender: tr, Log: log})
	s, err := api.New(api.Config{}, api.Deps{Groups: store, Customers: customers.NewStore(w.db.DB), Keys: w.keys,
		Mailings: svc, Segments: segs, Log: log, Ready: map[string]api.Pinger{"postgres": api.PingFunc(w.db.PingContext)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.Handler(t, s))
	t.Cleanup(srv.Close)
	w.url = srv.URL

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	mux := asynq.NewServeMux()
	mux.Handle(worker.TypeMailingBatch, &worker.MailingBatchHandler{Mailings: svc})
	go func() {
		done <- worker.Run(wctx, worker.Config{RedisURL: redisURL, Concurrency: 2, ShutdownTimeout: 5 * time.Second}, log, mux)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return w
}

func (w *world) client(t *testing.T, key string) *client.ClientWithResponses {
	t.Helper()
	c, err := client.New(w.url, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The integration a platform team writes, through the generated client only: a group,
// codes uploaded as text and as JSON, customers, a direct issue (and its replay), a
// mailing started and sent to the end.
func TestClientFlow(t *testing.T) {
	w := newWorld(t)
	c := w.client(t, adminKey)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	g, err := client.Check(c.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("Spring"), LowBalanceThreshold: new(2)}))
	must(err)
	if g.StatusCode() != 201 || g.JSON201 == nil || g.JSON201.Id == nil || *g.JSON201.Name != "Spring" {
		t.Fatalf("create group: %d %s", g.StatusCode(), g.Body)
	}
	if g.Headers201 == nil || g.Headers201.Location == nil || *g.Headers201.Location != fmt.Sprintf("/v1/groups/%d", *g.JSON201.Id) {
		t.Errorf("create group: Location %+v", g.Headers201)
	}
	gid := *g.JSON201.Id

	up, err := client.Check(c.UploadCodesWithBodyWithResponse(ctx, gid, &client.UploadCodesParams{Filename: new("spring.txt")},
		"text/plain", strings.NewReader("S1\nS2\nS3\nS1\nS4\n")))
	must(err)
	if r := up.JSON201; r == nil || *r.Lines != 5 || *r.Accepted != 4 || *r.Duplicates != 1 || *r.Filename != "spring.txt" {
		t.Fatalf("text upload: %d %s", up.StatusCode(), up.Body)
	}
	list, err := client.CodeList("J1", "J2")
	must(err)
	up, err = client.Check(c.UploadCodesWithResponse(ctx, gid, nil, list))
	must(err)
	if r := up.JSON201; r == nil || *r.Accepted != 2 || *r.Format != client.UploadReportFormatJson {
		t.Fatalf("JSON upload: %d %s", up.StatusCode(), up.Body)
	}

	ndjson := `{"id":"c1","email":"c1@example.com","first_name":"Ann"}` + "\n" +
		`{"id":"c2","email":"c2@example.com","first_name":"Bob"}` + "\n" + `{"id":"c3","email":"c3@example.com"}` + "\n"
	cust, err := client.Check(c.UpsertCustomersWithBodyWithResponse(ctx, "application/x-ndjson", strings.NewReader(ndjson)))
	must(err)
	if r := cust.JSON200; r == nil || *r.Upserted != 3 || *r.Invalid != 0 {
		t.Fatalf("customers: %d %s", cust.StatusCode(), cust.Body)
	}

	key := &client.IssueCodeParams{IdempotencyKey: "order-1"}
	iss, err := client.Check(c.IssueCodeWithResponse(ctx, gid, key, client.IssueCodeJSONRequestBody{CustomerId: "c1"}))
	must(err)
	if iss.StatusCode() != 201 || iss.JSON201 == nil || iss.JSON201.Code == nil || *iss.JSON201.CustomerId != "c1" {
		t.Fatalf("issue: %d %s", iss.StatusCode(), iss.Body)
	}
	again, err := client.Check(c.IssueCodeWithResponse(ctx, gid, key, client.IssueCodeJSONRequestBody{CustomerId: "c1"}))
	must(err)
	if again.StatusCode() != 200 || again.JSON200 == nil || *again.JSON200.Code != *iss.JSON201.Code || !*again.JSON200.Replayed {
		t.Fatalf("replayed issue: %d %s, want 200 with code %s", again.StatusCode(), again.Body, *iss.JSON201.Code)
	}

	in := client.MailingInput{Name: "Spring sale", Sender: "Shop <news@shop.example>", Subject: "{{client.first_name}}, your code",
		Text: new("code={{client.promocode('Spring')}};")}
	in.Audience.CustomerIds = &[]string{"c2", "c3"}
	m, err := client.Check(c.CreateMailingWithResponse(ctx, in))
	must(err)
	if m.JSON201 == nil || *m.JSON201.Status != client.MailingStatusDraft {
		t.Fatalf("create mailing: %d %s", m.StatusCode(), m.Body)
	}
	mid := *m.JSON201.Id
	st, err := client.Check(c.StartMailingWithResponse(ctx, mid, client.StartMailingJSONRequestBody{}))
	must(err)
	if st.JSON200 == nil || *st.JSON200.Status == client.MailingStatusDraft {
		t.Fatalf("start mailing: %d %s", st.StatusCode(), st.Body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := client.Check(c.GetMailingWithResponse(ctx, mid))
		must(err)
		if *got.JSON200.Status == client.MailingStatusFinished {
			if p := got.JSON200.Progress; p == nil || *p.Sent != 2 || (*p.CodesIssued)["Spring"] != 2 {
				t.Fatalf("finished mailing: %s", got.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailing not finished within 30 s: %s", got.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	msgs := w.smtp.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages sent, want 2", len(msgs))
	}
	// Each carries a code of its own (quoted-printable: "=" is "=3D"), not c1's.
	sent := map[string]bool{*iss.JSON201.Code: true}
	for _, msg := range msgs {
		m := sentCode.FindSubmatch(msg.Data)
		if m == nil || sent[string(m[1])] {
			t.Errorf("message to %v: no code of its own:\n%s", msg.To, msg.Data)
			continue
		}
		sent[string(m[1])] = true
	}

	got, err := client.Check(c.GetGroupWithResponse(ctx, gid))
	must(err)
	if r := got.JSON200; *r.Total != 6 || *r.Issued != 3 || *r.Active != 3 {
		t.Errorf("group after the flow: %s, want total 6, issued 3, active 3", got.Body)
	}
	promos, err := client.Check(c.ListCustomerPromocodesWithResponse(ctx, "c2", nil))
	must(err)
	if promos.JSON200 == nil || !bytes.Contains(promos.Body, []byte(`"mailing_id":`+fmt.Sprint(mid))) {
		t.Errorf("c2's codes: %s", promos.Body)
	}
}

// Answers outside 2xx reach a caller as *client.APIError with the document's error body,
// and the typed JSONnnn field of the response holds the same.
func TestClientErrors(t *testing.T) {
	w := newWorld(t)
	c := w.client(t, adminKey)
	ctx := context.Background()

	if _, err := client.Check(c.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("Summer")})); err != nil {
		t.Fatal(err)
	}
	dup, err := client.Check(c.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("summer")}))
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "name_taken" || apiErr.Message == "" {
		t.Fatalf("duplicate name: %v", err)
	}
	if dup.JSON409 == nil || dup.JSON409.Error.Code != "name_taken" {
		t.Errorf("duplicate name: JSON409 %+v", dup.JSON409)
	}
	if !strings.Contains(err.Error(), "409 name_taken") {
		t.Errorf("error text %q", err)
	}

	_, err = client.Check(c.GetGroupWithResponse(ctx, 999999))
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "group_not_found" {
		t.Errorf("unknown group: %v", err)
	}

	// The ...WithBody calls take any body, e.g. JSON built elsewhere.
	bad := `{"name":"x","sender":"Shop <a@b.example>","subject":"s","text":"x","audience":{"segment":{"quantity":{"op":"between","min":1}}}}`
	_, err = client.Check(c.CreateMailingWithBodyWithResponse(ctx, "application/json", strings.NewReader(bad)))
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != "invalid_filter" ||
		apiErr.Body.Error.Path == nil || !strings.HasPrefix(*apiErr.Body.Error.Path, "$.audience.segment") || apiErr.Body.Error.Reason == nil {
		t.Errorf("bad segment: %v %+v", err, apiErr)
	}

	anon := w.client(t, "not-a-key-not-a-key")
	res, err := client.Check(anon.ListGroupsWithResponse(ctx, nil))
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != "unauthorized" {
		t.Errorf("unknown key: %v", err)
	}
	if res.Headers401 == nil || !strings.HasPrefix(res.Headers401.WWWAuthenticate, "Bearer") {
		t.Errorf("unknown key: WWW-Authenticate %+v", res.Headers401)
	}

	readKey, err := w.keys.Create(ctx, "reader", []auth.Scope{auth.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	reader := w.client(t, readKey)
	if _, err := client.Check(reader.ListGroupsWithResponse(ctx, nil)); err != nil {
		t.Errorf("read key listing groups: %v", err)
	}
	_, err = client.Check(reader.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("Autumn")}))
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "insufficient_scope" ||
		apiErr.Body.Error.Scope == nil || *apiErr.Body.Error.Scope != client.ErrorErrorScopeWrite {
		t.Errorf("read key creating a group: %v %+v", err, apiErr)
	}

	// A body that is not the document's error (a proxy's page) keeps its text.
	if e := client.ErrorOf(502, []byte("<html>Bad Gateway</html>")); e.Code != "" || e.Message != "<html>Bad Gateway</html>" || e.Status != 502 {
		t.Errorf("ErrorOf a proxy page: %+v", e)
	}
	// A transport failure is returned as it is, not as an APIError.
	gone, err := client.New("http://127.0.0.1:1", adminKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Check(gone.ListGroupsWithResponse(ctx, nil)); err == nil || errors.As(err, &apiErr) {
		t.Errorf("no server: %v", err)
	}
}
