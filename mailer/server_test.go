package mailer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Recipients whose local part names a behaviour make the test server
// misbehave for them.
const (
	rcptReject     = "reject550"   // 550 at RCPT
	rcptTempfail   = "tempfail451" // 451 at RCPT
	rcptDrop       = "drop"        // the whole body is read, then the connection closed without a reply
	rcptDropMid    = "dropmid"     // the connection is closed after the first bytes of the body
	rcptRejectData = "reject554"   // 554 to the final dot
	rcptTempData   = "tempfail452" // 452 to the final dot
)

// received is one message the test server accepted.
type received struct {
	from, to string
	data     []byte
	tls      bool
	user     string
}

// testServer is an in-process go-smtp server that records what it accepts.
type testServer struct {
	addr  string
	host  string
	port  int
	conns atomic.Int32 // connections accepted

	user, pass string // when set, AUTH PLAIN is required

	mu       sync.Mutex
	msgs     []received
	sessions []*smtp.Conn
}

type serverOptions struct {
	tls      *tls.Config // STARTTLS offered with it
	implicit bool        // TLS from the first byte
	user     string
	pass     string
}

// newTestServer starts a server on 127.0.0.1:0, stopped at the end of t.
func newTestServer(t *testing.T, opt serverOptions) *testServer {
	t.Helper()
	ts := &testServer{user: opt.user, pass: opt.pass}
	srv := smtp.NewServer(ts)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = opt.tls == nil
	srv.TLSConfig = opt.tls
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = discardLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener = &countingListener{Listener: l, n: &ts.conns}
	if opt.implicit {
		ln = tls.NewListener(ln, opt.tls)
	}
	ts.addr = l.Addr().String()
	ts.host = "127.0.0.1"
	ts.port = l.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ln.Close() // Serve may not have registered it with srv yet
		srv.Close()
		<-done
	})
	return ts
}

func (ts *testServer) received() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

// dropAll closes every connection from the server side, as a server does
// with idle clients.
func (ts *testServer) dropAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.sessions {
		c.Conn().Close()
	}
	ts.sessions = nil
}

// NewSession implements smtp.Backend.
func (ts *testServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ts.mu.Lock()
	ts.sessions = append(ts.sessions, c)
	ts.mu.Unlock()
	return &testSession{srv: ts, conn: c}, nil
}

type testSession struct {
	srv  *testServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *testSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.srv.user || pass != s.srv.pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.user != "" && s.user == "" {
		// As Postfix says it (go-smtp's ErrAuthRequired is a 502).
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	s.from = from
	return nil
}

func localPart(addr string) string { return addr[:strings.IndexByte(addr, '@')] }

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch localPart(to) {
	case rcptReject:
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case rcptTempfail:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	if len(s.to) == 0 {
		return errors.New("no recipient")
	}
	switch localPart(s.to[0]) {
	case rcptDropMid:
		io.ReadFull(r, make([]byte, 16))
		s.conn.Conn().Close()
		return errors.New("dropped")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch localPart(s.to[0]) {
	case rcptDrop:
		s.conn.Conn().Close()
		return errors.New("dropped")
	case rcptRejectData:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
	case rcptTempData:
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "disk full"}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	for _, to := range s.to {
		s.srv.msgs = append(s.srv.msgs, received{from: s.from, to: to, data: data, tls: isTLS, user: s.user})
	}
	return nil
}

func (s *testSession) Reset() { s.from, s.to = "", nil }

func (s *testSession) Logout() error { return nil }

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// selfSigned returns a server TLS config with a fresh certificate for
// 127.0.0.1 and a client TLS config that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mailer test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool}
	return server, client
}
