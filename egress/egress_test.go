package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	var p Policy
	blocked := []string{
		"127.0.0.1", "127.1.2.3", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "fd00::1",
		"169.254.169.254", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "100.64.0.1",
		"198.18.0.1", "240.0.0.1", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::7f00:1",
	}
	for _, s := range blocked {
		err := p.Check(netip.MustParseAddr(s))
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("%s: allowed, want blocked", s)
		}
	}
	for _, s := range []string{"1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"} {
		if err := p.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
	}
	allow, err := ParseAllow("127.0.0.0/8, 10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	p = Policy{Allow: allow}
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "::ffff:127.0.0.1"} {
		if err := p.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s with allow list: %v", s, err)
		}
	}
	if err := p.Check(netip.MustParseAddr("10.1.2.4")); err == nil {
		t.Error("10.1.2.4 allowed by an allow list naming 10.1.2.3 only")
	}
	if _, err := ParseAllow("10.0.0.0/8,nonsense"); err == nil {
		t.Error("ParseAllow accepted nonsense")
	}
}

// TestClientRefusesAtDialTime proves the check runs on the resolved address when the
// connection is made: a server on 127.0.0.1 is unreachable through the client by IP and
// by a name that resolves to it, and reachable once the policy allows loopback.
func TestClientRefusesAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	for _, target := range []string{srv.URL, "http://localhost:" + port} {
		resp, err := Policy{}.Client(5 * time.Second).Get(target)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: reached a loopback server through the default policy", target)
		}
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("%s: %v, want ErrBlocked", target, err)
		}
		if strings.Contains(err.Error(), "refused") {
			t.Fatalf("the error reveals the port's state: %v", err)
		}
	}
	allow, _ := ParseAllow("127.0.0.0/8,::1")
	resp, err := Policy{Allow: allow}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed loopback: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	var p Policy
	for _, bad := range []string{"ftp://x.example/", "http://", "javascript:alert(1)", "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]/", "http://169.254.169.254/latest/meta-data"} {
		if err := p.CheckURL(ctx, bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := p.CheckURL(ctx, "https://93.184.216.34/hook"); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"https://user:secret@hooks.example/x?token=abc&v=1#frag": "https://user:REDACTED@hooks.example/x?token=REDACTED&v=REDACTED",
		"https://hooks.example/plain":                            "https://hooks.example/plain",
	}
	for in, want := range cases {
		if got := RedactURL(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
