// Package csvlimit bounds the size of each CSV record before encoding/csv buffers it.
// encoding/csv reads a whole record into memory, and a quoted field may span any number
// of lines, so a line-length guard does not bound it: one quote left open turns the rest
// of a gigabyte file into one field. Reader follows the quoting as encoding/csv reads it
// (a quote opens a field only at the field's start; "" inside is an escaped quote) and
// fails the read as soon as one record passes the limit.
package csvlimit

import (
	"fmt"
	"io"
)

// TooLongError is a record longer than the limit. Line is the line it starts on.
type TooLongError struct {
	Line  int64
	Limit int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("the record starting on line %d is longer than %d bytes (a quoted field may span lines: look for a quote left open)",
		e.Line, e.Limit)
}

type state uint8

const (
	fieldStart state = iota
	unquoted
	quoted
	quoteInQuoted // a quote seen inside a quoted field: closing, or the first of ""
)

// Reader passes a CSV stream through, failing with *TooLongError when a record is
// longer than Limit bytes.
type Reader struct {
	r     io.Reader
	limit int
	comma byte
	st    state
	size  int   // bytes of the current record so far
	line  int64 // the line being read, from 1
	start int64 // the line the current record started on
	err   error
}

// NewReader returns a Reader of r with records of at most limit bytes, fields separated
// by comma.
func NewReader(r io.Reader, limit int, comma byte) *Reader {
	return &Reader{r: r, limit: limit, comma: comma, line: 1, start: 1}
}

// Read implements io.Reader.
func (c *Reader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	for i := 0; i < n; i++ {
		if c.step(p[i]) {
			c.err = &TooLongError{Line: c.start, Limit: c.limit}
			// Pass what precedes the record, so the records before it parse.
			return i, nil
		}
	}
	return n, err
}

// step advances the state over b; it reports whether the record is now too long.
func (c *Reader) step(b byte) bool {
	if b == '\n' {
		c.line++
	}
	switch c.st {
	case fieldStart, unquoted, quoteInQuoted:
		switch {
		case b == '\n':
			c.st, c.size, c.start = fieldStart, 0, c.line
			return false
		case b == c.comma:
			c.st = fieldStart
		case b == '"' && c.st == fieldStart:
			c.st = quoted
		case b == '"' && c.st == quoteInQuoted:
			c.st = quoted // "" inside a quoted field
		case b == '\r' && c.st == quoteInQuoted:
			// "…"\r\n: the field closed; the newline ends the record
		case c.st != unquoted:
			c.st = unquoted // a field's text, or text after a closing quote (encoding/csv reports it)
		}
	case quoted:
		if b == '"' {
			c.st = quoteInQuoted
		}
	}
	c.size++
	return c.size > c.limit
}
