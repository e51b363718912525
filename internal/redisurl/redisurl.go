// Package redisurl reads REDIS_URL in its three forms — one server, a Sentinel-watched
// primary, a Redis Cluster — and gives both the Asynq connection options and a go-redis
// client for it, so every process reaches the queues the same way:
//
//	redis://[user:password@]host:6379/0            one server (rediss:// for TLS)
//	redis-sentinel://[user:password@]h1:26379,h2:26379,h3:26379/mymaster?db=0
//	redis-cluster://[user:password@]h1:7000,h2:7001,h3:7002
//
// In the Sentinel form the user and password are the primary's; sentinel_username and
// sentinel_password authenticate to the sentinels; a port left out is 26379 (6379 in
// the Cluster form). Both multi-host forms take ?tls=true and, for the Sentinel form,
// ?db=N (or a second path segment, /mymaster/N) and ?master=NAME in place of the path
// (Asynq's own spelling). A Cluster has one database only.
//
// The clients are go-redis's: its failover client asks the sentinels for the primary's
// address at every new connection and drops the old primary's connections when a
// sentinel announces a switch, which is how Asynq's workers and producers follow a
// failover without a restart.
package redisurl

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Kind is the deployment a URL names.
type Kind int

// The kinds of deployment.
const (
	Single   Kind = iota // one server (redis://, rediss://)
	Sentinel             // a primary and its replicas watched by sentinels (redis-sentinel://)
	Cluster              // a Redis Cluster (redis-cluster://)
)

// Conn is a parsed REDIS_URL.
type Conn struct {
	// Kind is the deployment.
	Kind Kind
	// Addrs are host:port of the server (Single), the sentinels (Sentinel) or the
	// cluster's seed nodes (Cluster).
	Addrs []string
	// MasterName is the name the sentinels monitor the primary under (Sentinel only).
	MasterName string
	// DB is the database number (always 0 in a Cluster).
	DB int
	// Username and Password authenticate to the data nodes.
	Username, Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels.
	SentinelUsername, SentinelPassword string
	// TLS is set when connections use TLS.
	TLS *tls.Config

	single *redis.Options
	asynq  asynq.RedisConnOpt
}

// Parse reads a REDIS_URL. Errors say which part is wrong and show the expected form.
func Parse(s string) (*Conn, error) {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("want redis://host:6379/0, redis-sentinel://host:26379,…/master or redis-cluster://host:7000,…, got %q", redact(s))
	}
	switch scheme {
	case "redis", "rediss":
		return parseSingle(s)
	case "redis-sentinel":
		return parseMulti(s, Sentinel)
	case "redis-cluster":
		return parseMulti(s, Cluster)
	}
	return nil, fmt.Errorf("unknown scheme %q: want redis, rediss, redis-sentinel or redis-cluster", scheme)
}

func parseSingle(s string) (*Conn, error) {
	opt, err := redis.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(s), err)
	}
	aopt, err := asynq.ParseRedisURI(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(s), err)
	}
	return &Conn{Kind: Single, Addrs: []string{opt.Addr}, DB: opt.DB, Username: opt.Username, Password: opt.Password,
		TLS: opt.TLSConfig, single: opt, asynq: aopt}, nil
}

// parseMulti reads the Sentinel and Cluster forms. The host list is cut out by hand:
// net/url refuses a list of bracketed IPv6 addresses.
func parseMulti(s string, kind Kind) (*Conn, error) {
	form := "redis-sentinel://[user:password@]host:26379,host2:26379/mastername?db=0"
	defPort := "26379"
	if kind == Cluster {
		form, defPort = "redis-cluster://[user:password@]host:7000,host2:7001", "6379"
	}
	_, rest, _ := strings.Cut(s, "://")
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	c := &Conn{Kind: kind}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		u, err := url.Parse("x://" + authority[:at+1] + "h")
		if err != nil {
			return nil, fmt.Errorf("%s: user and password: %w", redact(s), err)
		}
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		authority = authority[at+1:]
	}
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			return nil, fmt.Errorf("%s: empty host in the host list; want %s", redact(s), form)
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defPort)
		}
		c.Addrs = append(c.Addrs, h)
	}
	u, err := url.Parse("x://h" + tail)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(s), err)
	}
	if err := c.options(u, kind, form); err != nil {
		return nil, fmt.Errorf("%s: %w", redact(s), err)
	}
	return c, nil
}

// options reads the path and query of a multi-host URL.
func (c *Conn) options(u *url.URL, kind Kind, form string) error {
	q := u.Query()
	path := strings.Split(strings.Trim(u.Path, "/"), "/")
	db := q.Get("db")
	for k := range q {
		switch k {
		case "db", "tls":
		case "master", "sentinel_username", "sentinel_password":
			if kind != Sentinel {
				return fmt.Errorf("parameter %q is for redis-sentinel:// only", k)
			}
		default:
			return fmt.Errorf("unknown parameter %q (known: db, master, sentinel_username, sentinel_password, tls)", k)
		}
	}
	switch {
	case kind == Cluster && path[0] != "":
		return fmt.Errorf("a cluster URL has no path (a cluster has one database); want %s", form)
	case kind == Sentinel:
		c.MasterName = q.Get("master")
		if path[0] != "" {
			c.MasterName = path[0]
		}
		if len(path) == 2 && db == "" {
			db = path[1]
		}
		if c.MasterName == "" || len(path) > 2 {
			return fmt.Errorf("name the primary as the sentinels monitor it; want %s", form)
		}
		c.SentinelUsername, c.SentinelPassword = q.Get("sentinel_username"), q.Get("sentinel_password")
	}
	if db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return fmt.Errorf("db: want a database number, got %q", db)
		}
		if kind == Cluster && n != 0 {
			return fmt.Errorf("db: a cluster has database 0 only, got %d", n)
		}
		c.DB = n
	}
	if t := q.Get("tls"); t != "" {
		on, err := strconv.ParseBool(t)
		if err != nil {
			return fmt.Errorf("tls: want true or false, got %q", t)
		}
		if on {
			host, _, _ := net.SplitHostPort(c.Addrs[0])
			c.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
	}
	return nil
}

// Asynq returns the options Asynq's client, server, inspector and asynqmon connect with.
func (c *Conn) Asynq() asynq.RedisConnOpt {
	switch c.Kind {
	case Sentinel:
		return asynq.RedisFailoverClientOpt{MasterName: c.MasterName, SentinelAddrs: c.Addrs,
			SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword,
			Username: c.Username, Password: c.Password, DB: c.DB, TLSConfig: c.TLS}
	case Cluster:
		return asynq.RedisClusterClientOpt{Addrs: c.Addrs, Username: c.Username, Password: c.Password, TLSConfig: c.TLS}
	}
	return c.asynq
}

// Client returns a new go-redis client for the URL; the caller closes it.
func (c *Conn) Client() redis.UniversalClient {
	switch c.Kind {
	case Sentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: c.MasterName, SentinelAddrs: c.Addrs,
			SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword,
			Username: c.Username, Password: c.Password, DB: c.DB, TLSConfig: c.TLS})
	case Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, Username: c.Username, Password: c.Password, TLSConfig: c.TLS})
	}
	return redis.NewClient(c.single)
}

// String describes the deployment for logs, without passwords.
func (c *Conn) String() string {
	switch c.Kind {
	case Sentinel:
		return fmt.Sprintf("primary %q of sentinels %s, db %d", c.MasterName, strings.Join(c.Addrs, ","), c.DB)
	case Cluster:
		return "cluster " + strings.Join(c.Addrs, ",")
	}
	return fmt.Sprintf("%s, db %d", c.Addrs[0], c.DB)
}

var sentinelPassword = regexp.MustCompile(`(sentinel_password=)[^&]*`)

// redact hides the passwords of a URL quoted in an error.
func redact(s string) string {
	s = sentinelPassword.ReplaceAllString(s, "${1}xxxxx")
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
