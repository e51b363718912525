package mailer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// Message is one rendered message for one recipient.
type Message struct {
	// ID is stable per (mailing, customer). It builds the Message-ID header
	// (so a resend carries the same Message-ID), the file name of the file
	// transport and the webhook's Idempotency-Key. Required.
	ID string
	// From is the sender, "Name <addr>" or "addr". Required.
	From string
	// To is the recipient address, "Name <addr>" or "addr". Required.
	To string
	// Subject is the subject line; it may hold any UTF-8 text but no CR or LF.
	Subject string
	// HTML is the HTML body; it may be empty.
	HTML string
	// Text is the plain-text body; it may be empty. At least one of HTML and
	// Text is set.
	Text string
	// Headers are extra headers such as List-Unsubscribe. Names must be
	// valid header names and not one the package writes itself (From, To,
	// Subject, Date, Message-ID, MIME-Version, Content-*), values must not
	// contain CR or LF.
	Headers map[string]string
}

// reservedHeaders are written by Bytes and may not be set through
// Message.Headers; Cc and Bcc are refused because they would add recipients
// the envelope does not know about.
var reservedHeaders = []string{
	"Bcc", "Cc", "Content-Transfer-Encoding", "Content-Type", "Date", "From",
	"Message-Id", "Mime-Version", "Subject", "To",
}

// envelope is a validated message's sender and recipient addresses.
type envelope struct {
	from, to *mail.Address
}

// validate checks m and returns its parsed addresses. Errors wrap
// ErrInvalidMessage and never quote the offending value.
func (m *Message) validate() (envelope, error) {
	var env envelope
	if m.ID == "" {
		return env, fmt.Errorf("%w: ID is empty", ErrInvalidMessage)
	}
	for _, f := range []struct{ name, v string }{
		{"ID", m.ID}, {"From", m.From}, {"To", m.To}, {"Subject", m.Subject},
	} {
		if strings.ContainsAny(f.v, "\r\n\x00") {
			return env, fmt.Errorf("%w: %s contains CR, LF or NUL", ErrInvalidMessage, f.name)
		}
	}
	var err error
	if env.from, err = mail.ParseAddress(m.From); err != nil {
		return env, fmt.Errorf("%w: From is not an address", ErrInvalidMessage)
	}
	if env.to, err = mail.ParseAddress(m.To); err != nil {
		return env, fmt.Errorf("%w: To is not an address", ErrInvalidMessage)
	}
	if m.HTML == "" && m.Text == "" {
		return env, fmt.Errorf("%w: both HTML and Text are empty", ErrInvalidMessage)
	}
	for k, v := range m.Headers {
		if !validHeaderName(k) {
			return env, fmt.Errorf("%w: header name %q is not valid", ErrInvalidMessage, k)
		}
		if slices.Contains(reservedHeaders, textproto.CanonicalMIMEHeaderKey(k)) {
			return env, fmt.Errorf("%w: header %s is set by the mailer", ErrInvalidMessage, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return env, fmt.Errorf("%w: header %s contains CR, LF or NUL", ErrInvalidMessage, k)
		}
	}
	return env, nil
}

// validHeaderName reports whether k is an RFC 5322 field name: printable
// ASCII other than the colon.
func validHeaderName(k string) bool {
	if k == "" || len(k) > 76 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// Bytes renders m as an RFC 5322 message with CRLF line endings, dated now.
//
// A message with both HTML and Text is multipart/alternative (text first,
// then HTML); one with a single body is a single text/plain or text/html
// part. Bodies are UTF-8, quoted-printable; non-ASCII header values are
// RFC 2047 encoded. The Message-ID is <escaped ID@domain of From>, the same
// for every rendering of the message. It returns an error wrapping
// ErrInvalidMessage when m fails validation.
func (m *Message) Bytes(now time.Time) ([]byte, error) {
	env, err := m.validate()
	if err != nil {
		return nil, err
	}
	return m.render(env, now)
}

func (m *Message) render(env envelope, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(m.HTML) + len(m.Text) + 1024)
	writeHeader(&b, "Date", now.Format(time.RFC1123Z))
	writeHeader(&b, "From", env.from.String())
	writeHeader(&b, "To", env.to.String())
	writeHeader(&b, "Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	writeHeader(&b, "Message-ID", m.MessageID())
	writeHeader(&b, "MIME-Version", "1.0")
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		writeHeader(&b, textproto.CanonicalMIMEHeaderKey(k), mime.QEncoding.Encode("utf-8", m.Headers[k]))
	}

	if m.HTML == "" || m.Text == "" {
		body, ctype := m.Text, "text/plain"
		if body == "" {
			body, ctype = m.HTML, "text/html"
		}
		writeHeader(&b, "Content-Type", ctype+"; charset=utf-8")
		writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, body); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}

	var parts bytes.Buffer
	mw := multipart.NewWriter(&parts)
	writeHeader(&b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	for _, p := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("rendering message part: %w", err)
		}
		if err := writeQP(w, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("rendering message parts: %w", err)
	}
	b.Write(parts.Bytes())
	return b.Bytes(), nil
}

// writeQP writes body quoted-printable encoded, with CRLF line endings.
func writeQP(w interface{ Write([]byte) (int, error) }, body string) error {
	qw := quotedprintable.NewWriter(w)
	if _, err := qw.Write([]byte(body)); err != nil {
		return fmt.Errorf("encoding body: %w", err)
	}
	if err := qw.Close(); err != nil {
		return fmt.Errorf("encoding body: %w", err)
	}
	return nil
}

// writeHeader writes "key: value", folded at spaces so lines stay within
// 78 characters where the value allows it (an RFC 2047 word is at most 75).
// Values were checked for CR and LF.
func writeHeader(b *bytes.Buffer, key, value string) {
	b.WriteString(key)
	b.WriteByte(':')
	line := len(key) + 1
	for _, word := range strings.Split(value, " ") {
		if line > 0 && line+1+len(word) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
}

// MessageID returns the Message-ID header of m, "<escaped ID@domain>", where
// the domain is the one of From. It is stable across resends.
func (m *Message) MessageID() string {
	domain := "promopool.invalid"
	if a, err := mail.ParseAddress(m.From); err == nil {
		if d := domainOf(a.Address); d != "" {
			domain = d
		}
	}
	return "<" + escapeID(m.ID) + "@" + domain + ">"
}

// escapeID maps id to a string of ASCII letters, digits, '-', '_' and '%'
// (anything else is %XX-escaped), usable both as the left part of a
// Message-ID and as a file name. The mapping is one-to-one, except that
// very long IDs are shortened to a prefix plus a SHA-256 of the whole ID.
func escapeID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	s := b.String()
	if len(s) > 160 {
		sum := sha256.Sum256([]byte(id))
		s = s[:100] + "-" + hex.EncodeToString(sum[:16])
	}
	return s
}
