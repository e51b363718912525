package macros

import "strings"

// escMode is how an HTML part escapes a value beyond & < > " '.
type escMode uint8

const (
	escPlain   escMode = iota // element text, quoted attribute values
	escNoSpace                // unquoted attribute values and tags: spaces, = and ` too
	escAfterLT                // right after "<": the first character too, so no tag can start
)

// appendSubjectValue appends s with each CR and LF replaced by a space.
func appendSubjectValue(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			dst = append(dst, s[last:i]...)
			dst = append(dst, ' ')
			last = i + 1
		}
	}
	return append(dst, s[last:]...)
}

func appendRaw(dst []byte, s string) []byte { return append(dst, s...) }

// appendHTMLValue appends s with & < > " ' escaped as HTML entities.
func appendHTMLValue(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// appendHTMLNoSpace appends s escaped for an unquoted attribute value:
// besides & < > " ', every byte that would end the value or start another
// attribute (whitespace, NUL, =, `) becomes a numeric character reference.
func appendHTMLNoSpace(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&', '<', '>', '"', '\'', ' ', '\t', '\n', '\r', '\f', '\v', 0, '=', '`':
			dst = append(dst, s[last:i]...)
			dst = append(dst, "&#"...)
			dst = appendUint(dst, int(c))
			dst = append(dst, ';')
			last = i + 1
		}
	}
	return append(dst, s[last:]...)
}

// appendHTMLAfterLT appends s for a place right after "<": a first ASCII
// letter, / ! or ? would start a tag, so it becomes a character reference.
func appendHTMLAfterLT(dst []byte, s string) []byte {
	if s != "" && (isLetter(s[0]) || s[0] == '/' || s[0] == '!' || s[0] == '?') {
		dst = append(dst, "&#"...)
		dst = appendUint(dst, int(s[0]))
		dst = append(dst, ';')
		s = s[1:]
	}
	return appendHTMLValue(dst, s)
}

// appendURLEscaped appends s percent-encoded: every byte but the
// unreserved characters of RFC 3986 (letters, digits, - _ . ~) becomes
// %XX, so the result is one query value or path segment whatever s holds.
// A space becomes %20.
func appendURLEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLetter(c) || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

// urlAllowed reports whether v may stand at pos in a link: at its start
// (urlStart) v must be relative or an http, https or mailto URL; later but
// before the template's text settles the scheme (urlScheme) v must not
// bring a scheme of its own. Browsers ignore tabs and line breaks inside a
// URL and control characters and spaces before it, so this does too.
func urlAllowed(v string, pos urlPos) bool {
	if strings.ContainsAny(v, "\t\n\r") {
		v = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, v)
	}
	v = strings.TrimLeft(v, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	colon := strings.IndexByte(v, ':')
	if colon < 0 {
		return true
	}
	if i := strings.IndexAny(v, "/?#"); i >= 0 && i < colon {
		return true // a relative URL: its colon is not a scheme's
	}
	if pos != urlStart {
		return false
	}
	switch strings.ToLower(v[:colon]) {
	case "http", "https", "mailto":
		return true
	}
	return false
}

func appendUint(dst []byte, n int) []byte {
	if n >= 10 {
		dst = appendUint(dst, n/10)
	}
	return append(dst, byte('0'+n%10))
}
