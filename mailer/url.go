package mailer

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ParseURL reads a transport URL (see the package documentation for the
// format) into a Config, without defaults filled in; New fills and checks
// them. It returns an error wrapping ErrConfig for an unknown scheme, an
// unknown or malformed parameter, or a missing host or path. Errors never
// quote the URL, which may hold a password.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("%w: transport URL does not parse", ErrConfig)
	}
	q := u.Query()
	p := params{q: q}
	var cfg Config
	switch u.Scheme {
	case "smtp", "smtps":
		cfg.Kind = "smtp"
		if err := parseSMTP(u, &p, &cfg.SMTP); err != nil {
			return Config{}, err
		}
	case "webhook+http", "webhook+https", "http", "https":
		cfg.Kind = "webhook"
		if err := parseWebhook(u, &p, &cfg.Webhook); err != nil {
			return Config{}, err
		}
		return cfg, nil // unknown parameters belong to the endpoint
	case "file":
		cfg.Kind = "file"
		dir := u.Opaque // file:relative/dir
		if dir == "" {
			host := u.Host
			if host == "localhost" {
				host = ""
			}
			dir = host + u.Path // file:///abs/dir, file://relative/dir
		}
		cfg.File.Dir, err = url.PathUnescape(dir)
		if err != nil || cfg.File.Dir == "" {
			return Config{}, fmt.Errorf("%w: file: a directory is required", ErrConfig)
		}
	case "null":
		cfg.Kind = "null"
	default:
		return Config{}, fmt.Errorf("%w: unknown transport scheme %q", ErrConfig, u.Scheme)
	}
	if p.err != nil {
		return Config{}, p.err
	}
	for k := range q {
		return Config{}, fmt.Errorf("%w: %s: unknown parameter %q", ErrConfig, u.Scheme, k)
	}
	return cfg, nil
}

// parseSMTP reads an smtp:// or smtps:// URL into c.
func parseSMTP(u *url.URL, p *params, c *SMTPConfig) error {
	c.Host = u.Hostname()
	if port := u.Port(); port != "" {
		var err error
		if c.Port, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("%w: smtp: bad port", ErrConfig)
		}
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	c.TLS = p.str("tls")
	if u.Scheme == "smtps" {
		if c.TLS != "" && c.TLS != TLSImplicit {
			return fmt.Errorf("%w: smtps:// implies tls=tls", ErrConfig)
		}
		c.TLS = TLSImplicit
	}
	c.LocalName = p.str("helo")
	c.Concurrency = p.int("concurrency")
	c.Rate = p.float("rate")
	c.Timeout = p.duration("timeout")
	c.IdleTimeout = p.duration("idle_timeout")
	if c.Host == "" {
		return fmt.Errorf("%w: smtp: host is required", ErrConfig)
	}
	return nil
}

// parseWebhook reads a webhook URL into c: the webhook's own parameters are taken out
// of the query, the others stay in the endpoint's URL.
func parseWebhook(u *url.URL, p *params, c *WebhookConfig) error {
	c.Timeout = p.duration("timeout")
	explicit := p.q.Has("retries")
	c.Retries = p.int("retries")
	if explicit && c.Retries == 0 {
		c.Retries = -1 // an explicit 0 means no retries
	}
	c.Backoff = p.duration("backoff")
	c.MaxBackoff = p.duration("max_backoff")
	c.Concurrency = p.int("concurrency")
	c.Token = p.str("token")
	target := *u
	target.Scheme = strings.TrimPrefix(u.Scheme, "webhook+")
	target.RawQuery = p.q.Encode() // the endpoint's own parameters are kept
	if len(p.q) == 0 {
		target.RawQuery = ""
	}
	c.URL = target.String()
	if u.Host == "" {
		return fmt.Errorf("%w: webhook: host is required", ErrConfig)
	}
	return p.err
}

// params takes typed values out of a query, removing each key it reads and
// keeping the first error.
type params struct {
	q   url.Values
	err error
}

func (p *params) str(key string) string {
	v := p.q.Get(key)
	p.q.Del(key)
	return v
}

func (p *params) fail(key string) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: parameter %s is malformed", ErrConfig, key)
	}
}

func (p *params) int(key string) int {
	v := p.str(key)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.fail(key)
	}
	return n
}

func (p *params) float(key string) float64 {
	v := p.str(key)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		p.fail(key)
	}
	return f
}

func (p *params) duration(key string) time.Duration {
	v := p.str(key)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(key)
	}
	return d
}
