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
	db.Get(&sent, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent'`, ml.ID)
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
	db.Get(&sent, `SELECT count(*) FROM mailing_recipient_status WHERE mailing_id = $1 AND status = 'sent'`, ml.ID)
	if sent != n {
		t.Fatalf("%d of %d recorded sent", sent, n)
	}
}

// TestStopWhileStarting sends SIGTERM to each service while it waits for a PostgreSQL
// that accepts connections and never answers: it stops at once and exits 0 (a stop
// it was asked for, not a crash a supervisor should count).
func TestStopWhileStarting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs service processes")
	}
	bin, redisURL := workerTestSetup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	for _, svc := range []string{"web", "worker", "scheduler"} {
		t.Run(svc, func(t *testing.T) {
			cmd := exec.Command(bin, svc)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://postgres@"+ln.Addr().String()+"/none?sslmode=disable",
				"REDIS_URL="+redisURL, "HTTP_ADDR=127.0.0.1:0", "METRICS_ADDR=", "API_KEYS=")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case c := <-accepted:
				defer c.Close()
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("%s never connected to PostgreSQL; stderr:\n%s", svc, stderr.String())
			}
			start := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s exited with %v after SIGTERM while starting; stderr:\n%s", svc, err, stderr.String())
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("%s still running 5 s after SIGTERM; stderr:\n%s", svc, stderr.String())
			}
			if !strings.Contains(stderr.String(), "stopped while starting") {
				t.Errorf("%s stderr does not say it stopped while starting:\n%s", svc, stderr.String())
			}
			t.Logf("%s stopped %v after SIGTERM", svc, time.Since(start).Round(time.Millisecond))
		})
	}
}
