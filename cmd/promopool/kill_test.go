package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"promopool/groups"
	"promopool/internal/redistest"
	"promopool/internal/testdb"
	"promopool/mailings"
)

// workerTestSetup builds the binary for tests that run worker processes and returns it
// with a Redis of their own: a redis-server on a free loopback port, stopped when the
// test ends, so that no other test run (another package, another checkout's run on this
// machine) shares or flushes its queues.
func workerTestSetup(t *testing.T) (bin, redisURL string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "promopool")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := redistest.StartServer(t, redistest.Options{})
	return bin, "redis://" + srv.Addr + "/0"
}

// testMain is a Main configured by env alone (as a process started with it would be),
// closed when the test ends.
func testMain(t *testing.T, env []string) *Main {
	t.Helper()
	m := &Main{Getenv: func(k string) string {
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				return v
			}
		}
		return ""
	}, Stdout: io.Discard, Stderr: io.Discard}
	var err error
	if m.cfg, err = loadConfig(m.Getenv); err != nil {
		t.Fatal(err)
	}
	m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Cleanup(m.Close)
	return m
}

// draftMailing makes customers prefix1…prefixN, a group named group holding codes codes,
// and a draft mailing from it to all of them, through the mailing service of m.
func draftMailing(t *testing.T, db *testdb.DB, m *Main, group, prefix string, customers, codes, batch int) (*mailings.Service, *mailings.Mailing, *groups.Store, *groups.Group) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(`INSERT INTO customers (id, email) SELECT $2 || g, $2 || g || '@example.com' FROM generate_series(1, $1) g`, customers, prefix); err != nil {
		t.Fatal(err)
	}
	store := groups.NewStore(db.DB, groups.Config{})
	g, err := store.Create(ctx, "t", groups.Input{Name: &group})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; i < codes; i++ {
		fmt.Fprintf(&b, "%s-%06d\n", strings.ToUpper(group), i)
	}
	if _, err := store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: "cli", Actor: "t"}, strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	svc, err := m.mailingService(db.DB, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, customers)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	ml, err := svc.Create(ctx, "t", mailings.Input{Name: strings.ToLower(group), Sender: "s@example.com", Subject: "code",
		Text: "code {{client.promocode('" + group + "')}}", Audience: mailings.Audience{CustomerIDs: ids}, BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	return svc, ml, store, g
}

// TestWorkerKilledMidMailing runs real `promopool worker` processes, SIGKILLs them in the
// middle of a mailing, starts new ones, and checks in SQL that every recipient got
// exactly one code, none was issued twice, and every recipient reached a final state.
func TestWorkerKilledMidMailing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs worker processes")
	}
	db := testdb.New(t)
	ctx := context.Background()
	bin, redisURL := workerTestSetup(t)
	outbox := t.TempDir()
	env := append(db.Env(), "REDIS_URL="+redisURL, "MAILER_URL=file://"+outbox, "WORKER_CONCURRENCY=8",
		"MAILING_LEASE=2s", "RECONCILE_INTERVAL=500ms", "REENQUEUE_AFTER=1s", "RESERVATION_TIMEOUT=2s", "LOG_LEVEL=warn")
	startWorker := func() *exec.Cmd {
		cmd := exec.Command(bin, "worker")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	const n = 4000
	// Enqueue through a Main wired like `promopool web`, on the same Redis.
	svc, ml, store, g := draftMailing(t, db, testMain(t, env), "Kill", "k", n, n+100, 50)
	workers := []*exec.Cmd{startWorker(), startWorker()}
	if _, err := svc.Start(ctx, ml.ID, false); err != nil {
		t.Fatal(err)
	}
	sent := func() int {
		var s int
		db.Get(&s, `SELECT coalesce(sum(sent), 0) FROM mailing_batches WHERE mailing_id = $1`, ml.ID)
		return s
	}
	// Kill both workers twice, at different points of the mailing.
	for round, at := range []int{n / 5, n / 2} {
		waitUntil(t, 60*time.Second, func() bool { return sent() >= at })
		for _, w := range workers {
			w.Process.Signal(syscall.SIGKILL)
			w.Wait()
		}
		t.Logf("round %d: killed both workers at %d sent", round+1, sent())
		workers = []*exec.Cmd{startWorker(), startWorker()}
	}
	defer func() {
		for _, w := range workers {
			w.Process.Signal(syscall.SIGTERM)
			w.Wait()
		}
	}()
	waitUntil(t, 90*time.Second, func() bool {
		got, err := svc.Get(ctx, ml.ID)
		return err == nil && got.Status == mailings.StatusFinished
	})

	count := func(q string) int {
		var c int
		if err := db.Get(&c, q, ml.ID); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return c
	}
	if c := count(`SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent'`); c != n {
		t.Fatalf("%d of %d recipients sent", c, n)
	}
	if c := count(`SELECT count(*) FROM (SELECT code_id FROM issues WHERE kind = 'initial' AND released_at IS NULL AND mailing_id = $1 GROUP BY code_id HAVING count(*) > 1) x`); c != 0 {
		t.Fatalf("%d codes issued twice", c)
	}
	if c := count(`SELECT count(DISTINCT customer_id) FROM issues WHERE kind = 'initial' AND released_at IS NULL AND mailing_id = $1`); c != n {
		t.Fatalf("%d customers hold a code, want %d", c, n)
	}
	if c := count(`SELECT count(*) FROM issues WHERE kind = 'initial' AND mailing_id = $1`); c != n {
		t.Fatalf("%d initial issues, want exactly %d (one per customer)", c, n)
	}
	// A worker killed mid-write leaves its temporary file (.tmp-*), never a partial
	// message under a real name; resends overwrite the same name.
	files, _ := os.ReadDir(outbox)
	delivered := 0
	for _, f := range files {
		if !strings.HasPrefix(f.Name(), ".tmp-") {
			delivered++
		}
	}
	if delivered != n {
		t.Fatalf("%d messages in the outbox, want %d", delivered, n)
	}
	// A worker killed between a claim's two transactions leaves a reservation; the
	// surviving workers' reconciler returns its codes, so the balance comes back exact.
	waitUntil(t, 30*time.Second, func() bool {
		grp, err := store.Get(ctx, g.ID)
		return err == nil && grp.Issued == n && grp.Active == 100
	})
}

func waitUntil(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
