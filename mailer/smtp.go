package mailer

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// TLS modes of SMTPConfig.TLS.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS, failing
	// when the server does not offer it (port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	TLSImplicit = "tls"
	// TLSNone never encrypts (port 25, local relays and tests).
	TLSNone = "none"
)

// SMTPConfig configures the SMTP transport.
type SMTPConfig struct {
	// Host is the SMTP server's host name or IP address. Required.
	Host string
	// Port is the server's port. Defaults to 465 with TLS "tls", 25 with
	// "none" and 587 with "starttls".
	Port int
	// TLS is the encryption mode: "starttls" (default), "tls" or "none".
	TLS string
	// TLSConfig is the TLS client configuration (root CAs, client
	// certificates). Defaults to the system roots; its ServerName defaults
	// to Host.
	TLSConfig *tls.Config
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN. net/smtp refuses to send them over an unencrypted connection
	// unless Host is localhost, 127.0.0.1 or ::1.
	Username string
	// Password is the AUTH PLAIN password; see Username.
	Password string
	// LocalName is the name sent with EHLO. Defaults to "localhost".
	LocalName string
	// Concurrency is the maximum number of connections the transport opens
	// at once, across all Send calls. Defaults to 2.
	Concurrency int
	// Rate is the maximum number of messages per second across the
	// transport. Defaults to 0: no limit.
	Rate float64
	// Timeout bounds connecting (dial, greeting, STARTTLS, AUTH) and the
	// exchange of each message. Defaults to 30s.
	Timeout time.Duration
	// IdleTimeout is how long an idle connection is kept for reuse; an older
	// one is closed and replaced. Defaults to 60s.
	IdleTimeout time.Duration
}

func (c *SMTPConfig) setDefaults() {
	c.TLS = cmp.Or(c.TLS, TLSStartTLS)
	switch c.TLS {
	case TLSImplicit:
		c.Port = cmp.Or(c.Port, 465)
	case TLSNone:
		c.Port = cmp.Or(c.Port, 25)
	default:
		c.Port = cmp.Or(c.Port, 587)
	}
	c.LocalName = cmp.Or(c.LocalName, "localhost")
	c.Concurrency = cmp.Or(c.Concurrency, 2)
	c.Timeout = cmp.Or(c.Timeout, 30*time.Second)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, 60*time.Second)
}

func (c *SMTPConfig) validate() error {
	switch {
	case c.Host == "":
		return fmt.Errorf("%w: smtp: host is required", ErrConfig)
	case c.TLS != TLSStartTLS && c.TLS != TLSImplicit && c.TLS != TLSNone:
		return fmt.Errorf("%w: smtp: tls must be starttls, tls or none, not %q", ErrConfig, c.TLS)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("%w: smtp: port %d out of range", ErrConfig, c.Port)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: smtp: concurrency must be positive", ErrConfig)
	case c.Rate < 0:
		return fmt.Errorf("%w: smtp: rate must not be negative", ErrConfig)
	case c.Timeout < 0 || c.IdleTimeout < 0:
		return fmt.Errorf("%w: smtp: timeouts must not be negative", ErrConfig)
	case c.Password != "" && c.Username == "":
		return fmt.Errorf("%w: smtp: password without username", ErrConfig)
	}
	return nil
}

// SMTP sends messages over SMTP with net/smtp. It keeps up to Concurrency
// connections open and reuses each for many messages.
type SMTP struct {
	cfg     SMTPConfig
	addr    string
	log     *slog.Logger
	limiter *rate.Limiter
	slots   chan struct{}  // one per connection that may be in use
	idle    chan *smtpConn // connections waiting for reuse

	mu     sync.Mutex
	closed bool
}

// NewSMTP returns an SMTP transport. It does not connect until the first
// Send. It returns an error wrapping ErrConfig when cfg is invalid.
func NewSMTP(cfg SMTPConfig, log *slog.Logger) (*SMTP, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	limit := rate.Inf
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	return &SMTP{
		cfg:     cfg,
		addr:    net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		log:     orDiscard(log).With(slog.String("transport", "smtp")),
		limiter: rate.NewLimiter(limit, 1),
		slots:   make(chan struct{}, cfg.Concurrency),
		idle:    make(chan *smtpConn, cfg.Concurrency),
	}, nil
}

// Send sends msgs over up to Concurrency connections. Invalid messages are
// Rejected without touching the network. When no connection can be opened
// (refused, TLS or AUTH failure) the messages not yet sent are Temporary, and
// when that is all of them Send also returns the connection error (or
// ctx.Err() when ctx ended before anything was sent). It
// returns ErrClosed after Close.
func (s *SMTP) Send(ctx context.Context, msgs []Message) ([]Result, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	results := make([]Result, len(msgs))
	todo := make(chan int, len(msgs))
	for i := range msgs {
		todo <- i
	}
	close(todo)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		connErr  error // last connection failure
		attempts int   // messages that reached a connection or were settled
	)
	workers := min(s.cfg.Concurrency, len(msgs))
	left := make(chan int, len(msgs)) // messages a worker gave up on
	for range workers {
		wg.Go(func() {
			n, err := s.work(ctx, msgs, results, todo, left)
			mu.Lock()
			defer mu.Unlock()
			attempts += n
			if err != nil {
				connErr = err
			}
		})
	}
	wg.Wait()
	close(left)

	// Messages no worker could take: the connection failed or ctx ended.
	cause := cmp.Or(ctx.Err(), connErr)
	for i := range left {
		results[i] = Result{Outcome: Temporary, Err: &SendError{Stage: "connect", Err: cause}}
	}
	for i := range todo {
		results[i] = Result{Outcome: Temporary, Err: &SendError{Stage: "connect", Err: cause}}
	}
	logBatch(s.log, "smtp", results)
	if attempts == 0 && len(msgs) > 0 {
		s.log.Warn("mailer cannot connect", slog.String("server", s.addr), slog.String("error", cause.Error()))
		return results, fmt.Errorf("mailer: smtp: sending to %s: %w", s.addr, cause)
	}
	return results, nil
}

// work sends messages taken from todo until it runs out, holding one
// connection slot. It returns how many messages it settled and, when it
// stopped because it could not connect, why. A message it could not send
// for lack of a connection goes to left.
func (s *SMTP) work(ctx context.Context, msgs []Message, results []Result, todo <-chan int, left chan<- int) (int, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-s.slots }()

	var c *smtpConn
	defer func() {
		if c != nil {
			s.release(c)
		}
	}()
	settled := 0
	for i := range todo {
		if ctx.Err() != nil {
			left <- i
			return settled, ctx.Err()
		}
		m := &msgs[i]
		env, err := m.validate()
		var data []byte
		if err == nil {
			data, err = m.render(env, time.Now())
		}
		if err != nil {
			results[i] = Result{Outcome: Rejected, Err: err}
			logFailure(s.log, "smtp", m, results[i])
			settled++
			continue
		}
		if err := s.limiter.Wait(ctx); err != nil {
			left <- i
			return settled, err
		}
		if c == nil {
			if c, err = s.acquire(ctx); err != nil {
				left <- i
				return settled, err
			}
		}
		out, err, broken := c.send(ctx, s.cfg.Timeout, env, data)
		if broken {
			c.close()
			// A reused connection the server has meanwhile closed fails
			// before DATA: nothing was delivered, so retry once on a fresh one.
			if out == Temporary && c.uses > 0 && ctx.Err() == nil {
				var derr error
				if c, derr = s.dial(ctx); derr == nil {
					out, err, broken = c.send(ctx, s.cfg.Timeout, env, data)
					if broken {
						c.close()
						c = nil
					}
				}
			} else {
				c = nil
			}
		}
		if c != nil {
			c.uses++
		}
		results[i] = Result{Outcome: out, Err: err}
		if out != Sent {
			logFailure(s.log, "smtp", m, results[i])
		}
		settled++
	}
	return settled, nil
}

// acquire returns an idle connection that is still fresh enough, or dials a
// new one. The caller holds a slot, so at most Concurrency connections exist.
func (s *SMTP) acquire(ctx context.Context) (*smtpConn, error) {
	for {
		select {
		case c := <-s.idle:
			if time.Since(c.lastUsed) < s.cfg.IdleTimeout {
				return c, nil
			}
			c.quit(s.cfg.Timeout)
		default:
			return s.dial(ctx)
		}
	}
}

// release keeps c for reuse, or quits it when the transport is closed.
func (s *SMTP) release(c *smtpConn) {
	c.lastUsed = time.Now()
	s.mu.Lock()
	kept := false
	if !s.closed {
		select {
		case s.idle <- c:
			kept = true
		default:
		}
	}
	s.mu.Unlock()
	if !kept {
		c.quit(s.cfg.Timeout)
	}
}

// dial opens, secures and authenticates a connection.
func (s *SMTP) dial(ctx context.Context) (*smtpConn, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		tlsConfig = s.cfg.TLSConfig.Clone()
	}
	tlsConfig.ServerName = cmp.Or(tlsConfig.ServerName, s.cfg.Host)

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	dialer := &net.Dialer{}
	var (
		conn net.Conn
		err  error
	)
	if s.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsConfig}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	stop := watchDeadline(ctx, conn, s.cfg.Timeout)
	c, err := s.handshake(conn, tlsConfig)
	if !stop() || err != nil {
		conn.Close()
		return nil, cmp.Or(err, ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	s.log.Debug("mailer connected", slog.String("server", s.addr), slog.String("tls", s.cfg.TLS))
	return c, nil
}

// handshake reads the greeting, says EHLO, upgrades with STARTTLS and
// authenticates, as configured.
func (s *SMTP) handshake(conn net.Conn, tlsConfig *tls.Config) (*smtpConn, error) {
	client, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("reading greeting: %w", err)
	}
	if err := client.Hello(s.cfg.LocalName); err != nil {
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := client.Extension("STARTTLS"); !ok {
			return nil, errors.New("server does not offer STARTTLS")
		}
		if err := client.StartTLS(tlsConfig); err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.cfg.Username != "" {
		if ok, _ := client.Extension("AUTH"); !ok {
			return nil, errors.New("server does not offer AUTH")
		}
		if err := client.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return nil, fmt.Errorf("AUTH PLAIN: %w", err)
		}
	}
	return &smtpConn{conn: conn, client: client}, nil
}

// Close quits the idle connections; connections in use are quit when their
// Send call finishes. Send returns ErrClosed afterwards.
func (s *SMTP) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for {
		select {
		case c := <-s.idle:
			c.quit(s.cfg.Timeout)
		default:
			return nil
		}
	}
}

func (s *SMTP) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// smtpConn is one SMTP connection, used by one goroutine at a time.
type smtpConn struct {
	conn     net.Conn // the raw connection, for deadlines
	client   *smtp.Client
	uses     int // messages attempted on it
	lastUsed time.Time
}

// watchDeadline bounds conn's I/O by timeout and cuts it short when ctx ends.
// The returned stop reports whether the connection is still usable.
func watchDeadline(ctx context.Context, conn net.Conn, timeout time.Duration) (stop func() bool) {
	conn.SetDeadline(time.Now().Add(timeout))
	unwatch := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return unwatch
}

// send runs MAIL, RCPT and DATA for one message and classifies the failure.
// broken reports that the connection can no longer be used.
func (c *smtpConn) send(ctx context.Context, timeout time.Duration, env envelope, data []byte) (out Outcome, err error, broken bool) {
	stop := watchDeadline(ctx, c.conn, timeout)
	defer func() {
		if !stop() {
			broken = true // ctx ended: the deadline is in the past
		}
	}()

	// Before the body: nothing can have been delivered. A reply code
	// decides between Rejected and Temporary; anything else is Temporary
	// on a connection we no longer trust.
	before := func(stage string, err error) (Outcome, error, bool) {
		var tpe *textproto.Error
		if errors.As(err, &tpe) {
			out := Temporary
			// 530 (authentication required) is our configuration, not
			// this message: it must not be recorded as refused.
			if tpe.Code >= 500 && tpe.Code != 530 {
				out = Rejected
			}
			// 421: the server is closing the connection.
			broken := tpe.Code == 421 || c.client.Reset() != nil
			return out, &SendError{Stage: stage, Code: tpe.Code, Err: err}, broken
		}
		return Temporary, &SendError{Stage: stage, Err: err}, true
	}
	if err := c.client.Mail(env.from.Address); err != nil {
		return before("mail", err)
	}
	if err := c.client.Rcpt(env.to.Address); err != nil {
		return before("rcpt", err)
	}
	w, err := c.client.Data()
	if err != nil {
		return before("data", err)
	}

	// After DATA was accepted: only a definite reply to the final dot says
	// the message was not taken; anything else is Ambiguous.
	if _, err := w.Write(data); err != nil {
		return Ambiguous, &SendError{Stage: "body", Err: err}, true
	}
	if err := w.Close(); err != nil {
		var tpe *textproto.Error
		if errors.As(err, &tpe) {
			switch {
			case tpe.Code >= 500 && tpe.Code < 600:
				return Rejected, &SendError{Stage: "end", Code: tpe.Code, Err: err}, tpe.Code == 421
			case tpe.Code >= 400 && tpe.Code < 500:
				return Temporary, &SendError{Stage: "end", Code: tpe.Code, Err: err}, tpe.Code == 421
			}
		}
		return Ambiguous, &SendError{Stage: "end", Err: err}, true
	}
	return Sent, nil, false
}

// quit says QUIT and closes the connection, waiting at most timeout.
func (c *smtpConn) quit(timeout time.Duration) {
	c.conn.SetDeadline(time.Now().Add(timeout))
	if err := c.client.Quit(); err != nil {
		c.close()
	}
}

func (c *smtpConn) close() { c.client.Close() }
