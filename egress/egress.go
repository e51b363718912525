// Package egress decides where promopool may connect when it reaches out on a user's
// behalf: group alert webhooks, redemption webhooks, anything whose address a marketer
// or an API client typed. By default only public unicast addresses are allowed; loopback,
// private, link-local (the cloud metadata address 169.254.169.254 among them),
// carrier-grade NAT, multicast and reserved ranges are refused unless the operator names
// them in the policy (WEBHOOK_ALLOW_PRIVATE).
//
// The check runs at dial time on the address actually being connected to (a
// net.Dialer Control hook), after DNS resolution, so a name that resolves to a public
// address when the URL is saved and to 127.0.0.1 when it is used (DNS rebinding) is
// still refused, and so is every hop of a redirect.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is returned (wrapped in a *BlockedError) for a connection to an address
// the policy does not allow.
var ErrBlocked = errors.New("destination address not allowed")

// BlockedError names the refused address and the class it belongs to. Its message is
// safe to store and show: it says nothing about whether anything listens there.
type BlockedError struct {
	Addr  netip.Addr
	Class string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("destination address not allowed: %s is %s (set WEBHOOK_ALLOW_PRIVATE to allow it)", e.Addr, e.Class)
}

// Unwrap makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Policy is the set of addresses outgoing connections may reach: every public unicast
// address, plus the prefixes in Allow.
type Policy struct {
	// Allow lists prefixes that are allowed although they are not public (a test's
	// 127.0.0.0/8, an on-premise 10.0.0.0/8). Empty: public addresses only.
	Allow []netip.Prefix
}

// ParseAllow reads WEBHOOK_ALLOW_PRIVATE: a comma-separated list of CIDR prefixes or
// single addresses ("127.0.0.0/8,10.1.2.3,::1"). Empty allows nothing extra.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("WEBHOOK_ALLOW_PRIVATE: %q is neither an address nor a CIDR prefix", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// special lists the non-public ranges not covered by netip's own predicates.
var special = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a reserved address (this network)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved protocol address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a NAT64 address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
	{netip.MustParsePrefix("100::/64"), "a discard address"},
}

// Check returns nil if the policy allows connecting to a, or a *BlockedError.
func (p Policy) Check(a netip.Addr) error {
	a = a.Unmap()
	for _, allowed := range p.Allow {
		if allowed.Contains(a) {
			return nil
		}
	}
	if class := classify(a); class != "" {
		return &BlockedError{Addr: a, Class: class}
	}
	return nil
}

func classify(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "not an address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata lives there)"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	for _, s := range special {
		if s.prefix.Contains(a) {
			return s.class
		}
	}
	return ""
}

// control is the net.Dialer hook: address is the IP:port being connected to.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", ErrBlocked, address)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a net.Dialer that refuses, at connect time, every address the policy
// does not allow.
func (p Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
}

// Client returns an HTTP client whose every connection, redirects included, passes the
// policy. It uses no proxy from the environment (a proxy would connect on the client's
// behalf, out of the check's sight) and follows no redirect: a webhook answers where it
// was sent.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := p.Dialer(10 * time.Second)
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckURL checks a webhook URL when it is saved: http or https, a host, no more than
// 2,048 bytes, and — when the host is an IP literal or resolves now — an address the
// policy allows. Resolution failures are not errors here (the name may appear later);
// the dial-time check is the one that holds.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > 2048 {
		return errors.New("is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return errors.New("must be an http:// or https:// URL with a host")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return p.Check(netip.MustParseAddr("127.0.0.1"))
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return err
		}
	}
	return nil
}

// RedactURL hides what a URL may carry as a secret: the userinfo's password and every
// query value ("https://hooks.example/x?token=REDACTED"). Use it for every URL that
// reaches a log line or a stored error.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment = ""
	return u.String()
}
