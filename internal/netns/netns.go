// Package netns builds a small network of hosts for tests out of Linux network
// namespaces (`ip netns`, iproute2): each host is a namespace with one veth link to a
// bridge in a switch namespace, on a /24 of its own in 10.0.0.0/8 picked at random; the
// test's own namespace joins the bridge as host .1, so the test reaches every host and
// every host reaches the test. A host's link can be cut (set down on the switch side:
// its packets go nowhere, as when a cable is pulled) and restored. Everything is
// removed when the test ends. It needs root (CAP_NET_ADMIN) and the ip command.
//
// The kernel here has no netem qdisc ("Specified qdisc kind is unknown"), so latency
// between hosts is added by a relay in the test (see faults/netns_test.go), not by tc.
package netns

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Lab is the network.
type Lab struct {
	// Subnet is the /24's first three octets, e.g. "10.213.7".
	Subnet string
	tag    string
	hosts  []string
	t      testing.TB
}

// ip runs an ip command and fails the test on error.
func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// New builds the network with the named hosts (addresses .2, .3, … in order).
func New(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the ip command is missing: install Debian's iproute2 package (scripts/services.sh does)")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("network namespaces need root (CAP_NET_ADMIN): run as root, as scripts/chaos.sh does")
	}
	l := &Lab{t: t, hosts: hosts, tag: fmt.Sprintf("pp%d", os.Getpid()%100000)}
	out, _ := exec.Command("ip", "-4", "-o", "addr").Output()
	for {
		l.Subnet = fmt.Sprintf("10.%d.%d", 200+rand.IntN(50), rand.IntN(256))
		if !strings.Contains(string(out), " "+l.Subnet+".") {
			break
		}
	}
	t.Cleanup(l.remove)
	sw := l.ns("sw")
	l.ip("netns", "add", sw)
	l.ip("-n", sw, "link", "set", "lo", "up")
	l.ip("-n", sw, "link", "add", "br0", "type", "bridge")
	l.ip("-n", sw, "link", "set", "br0", "up")
	// The test's own namespace: a veth whose far end is on the bridge.
	l.ip("link", "add", l.tag+"t0", "type", "veth", "peer", "name", l.tag+"s0")
	l.ip("link", "set", l.tag+"s0", "netns", sw)
	l.ip("-n", sw, "link", "set", l.tag+"s0", "master", "br0", "up")
	l.ip("addr", "add", l.Subnet+".1/24", "dev", l.tag+"t0")
	l.ip("link", "set", l.tag+"t0", "up")
	for i, h := range hosts {
		ns, in, port := l.ns(h), fmt.Sprintf("%sh%d", l.tag, i+1), l.port(h)
		l.ip("netns", "add", ns)
		l.ip("-n", ns, "link", "set", "lo", "up")
		l.ip("link", "add", in, "type", "veth", "peer", "name", port)
		l.ip("link", "set", in, "netns", ns)
		l.ip("link", "set", port, "netns", sw)
		l.ip("-n", sw, "link", "set", port, "master", "br0", "up")
		l.ip("-n", ns, "link", "set", in, "name", "eth0")
		l.ip("-n", ns, "addr", "add", l.Addr(h)+"/24", "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
	}
	return l
}

// ns is the namespace's name.
func (l *Lab) ns(host string) string { return l.tag + "-" + host }

// port is the switch side of a host's link.
func (l *Lab) port(host string) string {
	for i, h := range l.hosts {
		if h == host {
			return fmt.Sprintf("%ss%d", l.tag, i+1)
		}
	}
	l.t.Fatalf("no host %q in the lab", host)
	return ""
}

// Addr is a host's address.
func (l *Lab) Addr(host string) string {
	for i, h := range l.hosts {
		if h == host {
			return fmt.Sprintf("%s.%d", l.Subnet, i+2)
		}
	}
	l.t.Fatalf("no host %q in the lab", host)
	return ""
}

// TestAddr is the test's own address on the network.
func (l *Lab) TestAddr() string { return l.Subnet + ".1" }

// Exec is the command prefix that runs a program on a host.
func (l *Lab) Exec(host string) []string { return []string{"ip", "netns", "exec", l.ns(host)} }

// Cut takes a host's link down: its connections stall, nothing reaches it or leaves it.
func (l *Lab) Cut(host string) { l.ip("-n", l.ns("sw"), "link", "set", l.port(host), "down") }

// Restore brings a cut link back up.
func (l *Lab) Restore(host string) { l.ip("-n", l.ns("sw"), "link", "set", l.port(host), "up") }

// remove deletes the namespaces (their links go with them) and the test's veth.
func (l *Lab) remove() {
	for _, h := range l.hosts {
		exec.Command("ip", "netns", "del", l.ns(h)).Run()
	}
	exec.Command("ip", "netns", "del", l.ns("sw")).Run()
	exec.Command("ip", "link", "del", l.tag+"t0").Run()
}
