// Package pgcluster runs PostgreSQL clusters of a test's own — never the machine's main
// cluster, whose configuration tests must not touch: a primary made by initdb in a
// directory of its own, and hot standbys streaming from it made by pg_basebackup, each
// on a port of its own (or inside a network namespace, given a command prefix such as
// `ip netns exec NS`). Debian's postgresql package provides the programs
// (/usr/lib/postgresql/*/bin). Run as root, the clusters run as the postgres user.
// Everything is stopped and removed when the test ends.
package pgcluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/postgres"
)

// Options say where a cluster runs.
type Options struct {
	// Host is the address it listens on (default 127.0.0.1).
	Host string
	// Port is its port (default: a free one on Host).
	Port int
	// Prefix runs its programs under a command, e.g. ip netns exec NS.
	Prefix []string
	// Settings are extra postgresql.conf lines.
	Settings []string
}

// Cluster is one running PostgreSQL cluster.
type Cluster struct {
	// Dir is its data directory.
	Dir string
	// Host and Port are where it listens.
	Host string
	Port int
	t    testing.TB
	o    Options
	bin  string
}

// bindir finds the newest PostgreSQL's programs.
func bindir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_basebackup")); err == nil {
			return dirs[i]
		}
	}
	t.Fatalf("no PostgreSQL programs under /usr/lib/postgresql/*/bin: install Debian's postgresql package (scripts/services.sh does)")
	return ""
}

// run runs a PostgreSQL program (as postgres when root) and returns its output.
func (c *Cluster) run(prog string, args ...string) (string, error) {
	argv := append([]string{}, c.o.Prefix...)
	if os.Getuid() == 0 {
		argv = append(argv, "runuser", "-u", "postgres", "--")
	}
	argv = append(argv, filepath.Join(c.bin, prog))
	argv = append(argv, args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// newDir makes an empty directory the cluster's user owns, removed when the test ends.
func newDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("user postgres: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newCluster(t testing.TB, o Options) *Cluster {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		o.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	return &Cluster{Host: o.Host, Port: o.Port, t: t, o: o, bin: bindir(t), Dir: newDir(t, "promopool-pg")}
}

// Primary runs initdb and starts a cluster that accepts replication connections from
// anywhere it listens, without passwords (a test's cluster only).
func Primary(t testing.TB, o Options) *Cluster {
	t.Helper()
	c := newCluster(t, o)
	if out, err := c.run("initdb", "-D", c.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba := "local all all trust\nhost all all 0.0.0.0/0 trust\nhost replication all 0.0.0.0/0 trust\n"
	if err := os.WriteFile(filepath.Join(c.Dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	c.configure()
	c.Start()
	t.Cleanup(func() { c.Stop("immediate") })
	return c
}

// Standby takes a base backup of c (pg_basebackup, WAL streamed) and starts it as a hot
// standby streaming from c.
func (c *Cluster) Standby(t testing.TB, o Options) *Cluster {
	t.Helper()
	s := newCluster(t, o)
	os.Remove(s.Dir) // pg_basebackup makes it
	if out, err := s.run("pg_basebackup", "-h", c.Host, "-p", strconv.Itoa(c.Port), "-U", "postgres", "-D", s.Dir,
		"-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	s.configure()
	s.Start()
	t.Cleanup(func() { s.Stop("immediate") })
	return s
}

// configure appends the cluster's own settings to postgresql.auto.conf (read last).
func (c *Cluster) configure() {
	c.t.Helper()
	lines := append([]string{
		fmt.Sprintf("listen_addresses = '%s'", c.Host), fmt.Sprintf("port = %d", c.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", c.Dir), "shared_buffers = '64MB'", "max_connections = 100",
		"hot_standby = on", "wal_level = replica", "max_wal_senders = 5", "logging_collector = off",
		"hot_standby_feedback = on",
	}, c.o.Settings...)
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, strings.Join(lines, "\n"))
}

// Start starts the cluster and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.Dir, "-l", filepath.Join(c.Dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the cluster: mode "immediate" is a crash as clients see it, "fast" a
// clean shutdown. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop(mode string) {
	if _, err := os.Stat(filepath.Join(c.Dir, "postmaster.pid")); err != nil {
		return
	}
	if out, err := c.run("pg_ctl", "-D", c.Dir, "-m", mode, "-w", "stop"); err != nil {
		c.t.Logf("pg_ctl stop: %v\n%s", err, out)
	}
}

// URL is the connection string of database db.
func (c *Cluster) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates database name (on a primary).
func (c *Cluster) CreateDatabase(name string) {
	c.t.Helper()
	db := c.Open("postgres")
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		c.t.Fatalf("creating database %s: %v", name, err)
	}
}

// Open connects to database db, closed when the test ends.
func (c *Cluster) Open(db string) *sqlx.DB {
	c.t.Helper()
	h, err := postgres.Open(context.Background(), postgres.Config{URL: c.URL(db), MaxConns: 4})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { h.Close() })
	return h
}

// WaitCaughtUp waits until standby has replayed everything primary had written when it
// was called, and returns how long that took.
func WaitCaughtUp(t testing.TB, primary, standby *sqlx.DB, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var target string
	if err := primary.Get(&target, `SELECT pg_current_wal_lsn()::text`); err != nil {
		t.Fatal(err)
	}
	for {
		var ok bool
		err := standby.Get(&ok, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, target)
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("standby did not replay up to %s within %s (%v)", target, limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
