// Package redistest runs real redis-server and redis-sentinel processes (Debian's
// redis-server and redis-sentinel packages; scripts/services.sh installs them) for
// tests: one server, a primary with a replica watched by three sentinels, or a
// three-node Redis Cluster. Each listens on a free loopback port of its own (or, given
// a command prefix such as `ip netns exec NS`, inside a network namespace) with no
// persistence, and is stopped and its directory removed when the test ends.
package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"promopool/internal/syncbuf"
)

// Options say where servers run.
type Options struct {
	// Bind is the address servers listen on (default 127.0.0.1).
	Bind string
	// Port is the port of a single server (default: a free one). Sets of servers
	// always take free ports.
	Port int
	// Prefix runs each process under a command, e.g. ip netns exec NS.
	Prefix []string
}

// Server is one running redis-server or redis-sentinel process.
type Server struct {
	// Addr is host:port.
	Addr string
	t    testing.TB
	argv []string
	out  *syncbuf.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// binary finds a Redis program or fails the test saying which package provides it.
func binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s package (scripts/services.sh does): %v", name, map[string]string{
			"redis-server": "redis-server", "redis-sentinel": "redis-sentinel", "redis-cli": "redis-tools"}[name], err)
	}
	return p
}

// FreePort returns a port nobody listens on at bind now.
func FreePort(t testing.TB, bind string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (o Options) bind() string {
	if o.Bind == "" {
		return "127.0.0.1"
	}
	return o.Bind
}

// StartServer runs a redis-server with extra arguments (e.g. --replicaof host port) and
// waits until it answers.
func StartServer(t testing.TB, o Options, extra ...string) *Server {
	t.Helper()
	port := o.Port
	if port == 0 {
		port = FreePort(t, o.bind())
	}
	dir := t.TempDir()
	argv := append(append([]string{}, o.Prefix...), binary(t, "redis-server"), "--port", strconv.Itoa(port), "--bind", o.bind(),
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "no", "--logfile", "")
	s := &Server{Addr: net.JoinHostPort(o.bind(), strconv.Itoa(port)), t: t, argv: append(argv, extra...)}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.out = &syncbuf.Buffer{}
	s.done = make(chan struct{})
	s.cmd = exec.Command(s.argv[0], s.argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.argv[0], err)
	}
	done := s.done
	go func() { s.cmd.Wait(); close(done) }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if !s.Alive() || time.Now().After(deadline) {
			s.t.Fatalf("%s on %s did not start:\n%s", filepath.Base(s.argv[len(s.argv)-1]), s.Addr, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Alive says whether the process still runs.
func (s *Server) Alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL, as a host that dies does, and waits for it.
func (s *Server) Kill() {
	if s.Alive() {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

// Stop ends the process with SIGTERM (SIGKILL after 5 s).
func (s *Server) Stop() {
	if !s.Alive() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.Kill()
	}
}

// Restart starts a stopped process again with the same arguments.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Output is what the process printed.
func (s *Server) Output() string { return s.out.String() }

// Client returns a client of this one process, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// writeFile writes a config file into dir.
func writeFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
