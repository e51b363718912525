package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"promopool/internal/testdb"
	"promopool/mailings"
)

// TestWorkerGracefulShutdown sends SIGTERM to a worker in the middle of a mailing sent
// through a (slow) webhook: the worker stops taking tasks, finishes the batches in
// flight, records them, releases their leases and exits 0 within
// WORKER_SHUTDOWN_TIMEOUT. Every message delivered by then is recorded as sent (none in
// limbo), and a new worker finishes the mailing without sending anyone a second message.
func TestWorkerGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs worker processes")
	}
	db := testdb.New(t)
	ctx := context.Background()
	bin, redisURL := workerTestSetup(t)

	var mu sync.Mutex
	got := map[string]int{} // Idempotency-Key → deliveries
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ ID string }
		json.NewDecoder(r.Body).Decode(&msg)
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		got[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()
	received := func() (distinct, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			distinct++
			total += n
		}
		return
	}

	env := append(db.Env(), "REDIS_URL="+redisURL, "MAILER_URL="+hook.URL+"/send?concurrency=4", "WORKER_CONCURRENCY=8",
		"WORKER_SHUTDOWN_TIMEOUT=30s", "MAILING_LEASE=60s", "RECONCILE_INTERVAL=500ms", "REENQUEUE_AFTER=1s", "LOG_LEVEL=info")
	startWorker := func(stderr io.Writer) *exec.Cmd {
		cmd := exec.Command(bin, "worker")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	const n = 3000
	svc, ml, _, _ := draftMailing(t, db, testMain(t, env), "Term", "s", n, n, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	env = append(env, "METRICS_ADDR="+metricsAddr)
	w := startWorker(&logs)
	env = env[:len(env)-1]
	if _, err := svc.Start(ctx, ml.ID, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, func() bool { d, _ := received(); return d >= n/4 })
	atTerm, _ := received()
	// The worker's /metrics on METRICS_ADDR: its task latencies and messages, no code.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("METRICS_ADDR: %v", err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`promopool_task_duration_seconds_count{result="ok",type="mailing:batch"}`, `promopool_mailing_messages_total{status="sent"}`, "process_resident_memory_bytes"} {
		if !strings.Contains(string(scraped), want) {
			t.Errorf("worker /metrics lacks %s", want)
		}
	}
	if strings.Contains(string(scraped), "TERM-") {
		t.Errorf("worker /metrics shows a code")
	}
	start := time.Now()
	w.Process.Signal(syscall.SIGTERM)
	if err := w.Wait(); err != nil {
		t.Fatalf("worker exited with %v after SIGTERM\n%s", err, logs.String())
	}
	took := time.Since(start)
	distinct, total := received()
	t.Logf("SIGTERM at %d delivered; exited after %s with %d delivered", atTerm, took, distinct)
	if took > 30*time.Second {
		t.Fatalf("shutdown took %s, longer than WORKER_SHUTDOWN_TIMEOUT", took)
	}
	if !strings.Contains(logs.String(), "worker stopped") {
		t.Fatalf("no clean stop in the log:\n%s", logs.String())
	}
	var sent, leased int
	db.Get(&sent, `SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1 AND status = 'sent'`, ml.ID)
	db.Get(&leased, `SELECT count(*) FROM mailing_batches WHERE mailing_id = $1 AND lease_until > now()`, ml.ID)
	if sent != distinct || total != distinct {
		t.Fatalf("after the graceful stop: %d recipients recorded sent, %d messages delivered (%d deliveries): in-flight work was cut", sent, distinct, total)
	}
	if leased != 0 {
		t.Fatalf("%d batches still leased after a graceful stop", leased)
	}
	if distinct >= n {
		t.Fatalf("the mailing finished before SIGTERM took effect; nothing was in flight")
	}

	w = startWorker(io.Discard)
	defer func() { w.Process.Signal(syscall.SIGTERM); w.Wait() }()
	waitUntil(t, 90*time.Second, func() bool {
		got, err := svc.Get(ctx, ml.ID)
		return err == nil && got.Status == mailings.StatusFinished
	})
	distinct, total = received()
	if distinct != n || total != n {
		t.Fatalf("%d customers got %d messages, want %d each once", distinct, total, n)
	}
	db.Get(&sent, `SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1 AND status = 'sent'`, ml.ID)
	if sent != n {
		t.Fatalf("%d of %d recorded sent", sent, n)
	}
}
