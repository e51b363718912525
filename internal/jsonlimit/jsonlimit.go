// Package jsonlimit bounds a JSON stream before encoding/json buffers it.
// encoding/json's Decoder holds a whole token (and Decode a whole value) in memory, so
// one 64 MiB string in an upload costs hundreds of MB before anything can refuse it,
// and its token stack grows with every level of nesting. Reader follows the JSON's
// strings and nesting byte by byte and fails the read as soon as a string, number or
// literal passes MaxToken bytes or the nesting passes MaxDepth.
package jsonlimit

import (
	"fmt"
	"io"
)

// Error is a JSON stream past one of the limits; Offset is the byte where it was found.
type Error struct {
	Offset int64
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Reason) }

// Reader passes a JSON stream through within its limits.
type Reader struct {
	r        io.Reader
	maxToken int
	maxDepth int
	inStr    bool
	esc      bool
	depth    int
	tok      int
	off      int64
	err      error
}

// NewReader returns a Reader of r whose tokens are at most maxToken bytes (a string's,
// escapes included, quotes not) and whose nesting is at most maxDepth.
func NewReader(r io.Reader, maxToken, maxDepth int) *Reader {
	return &Reader{r: r, maxToken: maxToken, maxDepth: maxDepth}
}

// Read implements io.Reader.
func (j *Reader) Read(p []byte) (int, error) {
	if j.err != nil {
		return 0, j.err
	}
	n, err := j.r.Read(p)
	for i := 0; i < n; i++ {
		if reason := j.step(p[i]); reason != "" {
			j.err = &Error{Offset: j.off, Reason: reason}
			return i, nil
		}
		j.off++
	}
	return n, err
}

// step advances over b; it returns why the stream is refused, or "".
func (j *Reader) step(b byte) string {
	if j.inStr {
		switch {
		case j.esc:
			j.esc = false
		case b == '\\':
			j.esc = true
		case b == '"':
			j.inStr, j.tok = false, 0
			return ""
		}
		if j.tok++; j.tok > j.maxToken {
			return fmt.Sprintf("a string longer than %d bytes", j.maxToken)
		}
		return ""
	}
	switch b {
	case '"':
		j.inStr, j.tok = true, 0
	case '[', '{':
		if j.depth++; j.depth > j.maxDepth {
			return fmt.Sprintf("nested deeper than %d levels", j.maxDepth)
		}
		j.tok = 0
	case ']', '}':
		j.depth--
		j.tok = 0
	case ',', ':', ' ', '\t', '\n', '\r':
		j.tok = 0
	default:
		if j.tok++; j.tok > j.maxToken {
			return fmt.Sprintf("a number or literal longer than %d bytes", j.maxToken)
		}
	}
	return ""
}
