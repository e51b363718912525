package netns_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"promopool/internal/netns"
	"promopool/internal/redistest"
)

// ping asks the Redis on host to:port from host from (a process in from's namespace).
func ping(lab *netns.Lab, from, to string) string {
	argv := append(lab.Exec(from), "timeout", "2", "redis-cli", "-h", lab.Addr(to), "-p", "6379", "ping")
	out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

// TestLab: a server in one namespace answers the test and another namespace over the
// bridge; a cut link silences that namespace only, and a restored one answers again.
func TestLab(t *testing.T) {
	lab := netns.New(t, "a", "b")
	srv := redistest.StartServer(t, redistest.Options{Bind: lab.Addr("a"), Port: 6379, Prefix: lab.Exec("a")})
	if err := srv.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the test reaches host a: %v", err)
	}
	if got := ping(lab, "b", "a"); got != "PONG" {
		t.Fatalf("host b reaches host a: %q", got)
	}
	lab.Cut("b")
	if got := ping(lab, "b", "a"); got == "PONG" {
		t.Fatal("host b still reaches host a through a cut link")
	}
	if err := srv.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("cutting b's link cut the test from a: %v", err)
	}
	lab.Restore("b")
	if got := ping(lab, "b", "a"); got != "PONG" {
		t.Fatalf("host b after the link is restored: %q", got)
	}
}
