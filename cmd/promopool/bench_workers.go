package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"promopool/cmd/promopool/internal/bench"
	"promopool/postgres"
)

// parseCounts reads the -workers flag of bench mailing: one count or a list (1,2,4).
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-workers: want a positive count or a list such as 1,2,4, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// scaleRow is one worker count's run.
type scaleRow struct {
	workers   int
	res       *bench.MailingResult
	workerCPU time.Duration // user+system time of the worker processes
	pgCPU     time.Duration // of the PostgreSQL backends serving them
	load      string        // /proc/loadavg before the run
}

// benchMailingWorkers runs bench mailing once per worker count and prints each run's
// report, then a table of throughput per worker count with the CPU time the workers and
// their PostgreSQL backends spent per 1,000 messages — the per-worker and per-core
// figures the sizing guide (docs/scaling.md) is derived from.
func (m *Main) benchMailingWorkers(ctx context.Context, cfg bench.MailingConfig, counts []int) error {
	var rows []scaleRow
	for _, n := range counts {
		cfg.Workers = n
		load, _ := os.ReadFile("/proc/loadavg")
		before := childCPU()
		sampler, err := startBackendSampler(ctx, cfg.URL)
		if err != nil {
			return err
		}
		res, err := bench.Mailing(ctx, cfg)
		pg := sampler.stop()
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "== %d worker(s)\n", n)
		res.Print(m.Stdout)
		rows = append(rows, scaleRow{workers: n, res: res, workerCPU: childCPU() - before, pgCPU: pg,
			load: strings.Join(strings.Fields(string(load))[:3], " ")})
	}
	printScale(m.Stdout, rows)
	return nil
}

func printScale(w io.Writer, rows []scaleRow) {
	fmt.Fprintln(w, "\n| workers | messages/s | per worker | raw claim+record+render | end to end / raw | worker CPU s per 1,000 msg | PostgreSQL backend CPU s per 1,000 msg | load average before |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		rate := float64(r.res.Sent) / r.res.EndToEnd.Seconds()
		k := float64(r.res.Sent) / 1000
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.0f | %.0f%% | %.3f | %.3f | %s |\n", r.workers, rate, rate/float64(r.workers),
			r.res.RawRate, 100*rate/r.res.RawRate, r.workerCPU.Seconds()/k, r.pgCPU.Seconds()/k, r.load)
	}
	fmt.Fprintln(w, "\nCPU seconds per 1,000 messages: the worker processes' own (getrusage of the children), and the PostgreSQL")
	fmt.Fprintln(w, "backends their connections ran on (/proc/PID/stat, sampled every 200 ms); WAL writer, checkpointer and")
	fmt.Fprintln(w, "autovacuum are not counted. 1 / (CPU s per message) is what one core of each sustains.")
}

// childCPU is the user+system time of this process's finished children.
func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendSampler follows the CPU time of the PostgreSQL backends of promopool-worker
// connections to the benchmark database (the server runs on this machine).
type backendSampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	ticks  map[int]int64
}

func startBackendSampler(ctx context.Context, url string) (*backendSampler, error) {
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 1, AppName: "promopool-bench-sampler"})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &backendSampler{cancel: cancel, done: make(chan struct{}), ticks: map[int]int64{}}
	go func() {
		defer close(s.done)
		defer db.Close()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			var pids []int
			db.SelectContext(sctx, &pids, `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'promopool-worker'`)
			s.mu.Lock()
			for _, pid := range pids {
				if n, err := procTicks(pid); err == nil && n > s.ticks[pid] {
					s.ticks[pid] = n
				}
			}
			s.mu.Unlock()
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// stop ends the sampling and returns the backends' CPU time.
func (s *backendSampler) stop() time.Duration {
	s.cancel()
	<-s.done
	var sum int64
	for _, n := range s.ticks {
		sum += n
	}
	return time.Duration(sum) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procTicks is a process's utime+stime in clock ticks (/proc/PID/stat fields 14, 15).
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return u + st, nil
}
