// Package bench holds promopool's benchmark commands: each builds its own data in a
// schema of its own, measures promopool against a raw-SQL baseline in the same run and
// prints the figures with the PostgreSQL settings they ran under.
package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/migrations"
	"promopool/postgres"
)

// Env is a benchmark's database: a fresh schema in the benchmark database, migrated.
type Env struct {
	DB     *sqlx.DB
	URL    string
	Schema string
}

// NewEnv creates the database named in url if missing (through the server's postgres
// database), then a fresh schema in it, and migrates it.
func NewEnv(ctx context.Context, url string) (*Env, error) {
	if err := postgres.EnsureDatabase(ctx, url); err != nil {
		return nil, err
	}
	schema := "bench_" + randomHex(4)
	admin, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		return nil, err
	}
	_, err = admin.ExecContext(ctx, `CREATE SCHEMA `+schema)
	admin.Close()
	if err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: url, SearchPath: schema, MaxConns: 10})
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Env{DB: db, URL: url, Schema: schema}, nil
}

// OpenEnv connects to an existing benchmark schema (kept by an earlier run) and applies
// the migrations it lacks, as a deploy would: a kept load is timed with this binary's
// schema (a migration's backfill over it is part of what a deploy pays). A schema
// ahead of this binary is an error.
func OpenEnv(ctx context.Context, url, schema string) (*Env, error) {
	db, err := postgres.Open(ctx, postgres.Config{URL: url, SearchPath: schema, MaxConns: 10})
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema); err != nil || !exists {
		db.Close()
		return nil, fmt.Errorf("schema %s: not found (%v)", schema, err)
	}
	if _, err := migrations.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("schema %s: %w", schema, err)
	}
	if err := migrations.Check(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("schema %s: %w", schema, err)
	}
	return &Env{DB: db, URL: url, Schema: schema}, nil
}

// openEnv opens the schema reuse names (kept by an earlier run), or a new one. done
// disconnects, and drops the schema unless it was reused or keep is set.
func openEnv(ctx context.Context, url, reuse string, keep bool) (env *Env, done func(), err error) {
	if reuse != "" {
		env, err = OpenEnv(ctx, url, reuse)
	} else {
		env, err = NewEnv(ctx, url)
	}
	if err != nil {
		return nil, nil, err
	}
	if keep || reuse != "" {
		return env, func() { env.DB.Close() }, nil
	}
	return env, env.Close, nil
}

// Close drops the schema and disconnects.
func (e *Env) Close() {
	e.DB.ExecContext(context.Background(), `DROP SCHEMA `+e.Schema+` CASCADE`)
	e.DB.Close()
}

// Settings returns the PostgreSQL settings that decide write throughput, for the report.
func Settings(ctx context.Context, db *sqlx.DB) (string, error) {
	// current_setting gives each value in its display unit ("128MB"); pg_settings'
	// setting is in units of its unit column ("16384" of "8kB"), easy to misread.
	var rows []struct {
		Name    string `db:"name"`
		Setting string `db:"setting"`
	}
	err := db.SelectContext(ctx, &rows, `
		SELECT name, current_setting(name) AS setting FROM pg_settings
		WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'maintenance_work_mem', 'synchronous_commit',
		               'wal_level', 'max_wal_size', 'checkpoint_timeout', 'jit', 'effective_cache_size', 'wal_compression', 'fsync')
		ORDER BY name`)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s=%s ", r.Name, r.Setting)
	}
	return strings.TrimSpace(b.String()), nil
}

// Process is a promopool subprocess (web, worker) under measurement.
type Process struct {
	cmd  *exec.Cmd
	Addr string // for web: host:port it listens on
}

// StartProcess runs `exe args…` with env added to this process's environment and, for
// web, waits for its "listening on" line.
func StartProcess(ctx context.Context, exe string, env []string, args ...string) (*Process, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd}
	if len(args) > 0 && args[0] == "web" {
		line := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if a, ok := strings.CutPrefix(sc.Text(), "listening on http://"); ok {
					line <- a
				}
			}
			close(line)
		}()
		select {
		case a, ok := <-line:
			if !ok {
				p.Stop()
				return nil, fmt.Errorf("%s web exited before listening", exe)
			}
			p.Addr = a
		case <-time.After(20 * time.Second):
			p.Stop()
			return nil, fmt.Errorf("%s web did not start listening in 20s", exe)
		}
	}
	return p, nil
}

// PeakRSS is the process's resident-set high-water mark in bytes (Linux VmHWM).
func (p *Process) PeakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", p.cmd.Process.Pid)
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s).
func (p *Process) Stop() {
	if p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
