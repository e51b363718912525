package groups

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"promopool/internal/jsonlimit"
)

// JSON uploads are bounded before encoding/json buffers anything: no string, number or
// literal over maxJSONToken bytes (a code is at most 200 characters; 64 KiB leaves room
// for escapes and for an element the report then calls invalid), no nesting deeper than
// maxJSONDepth. Past either the upload is refused whole, with the byte offset.
const (
	maxJSONToken = 64 << 10
	maxJSONDepth = 8
)

// jsonReader streams a JSON upload token by token: a top-level array of codes, or an
// object {"expires_at": …, "codes": […]}. An element is a string or
// {"code": "…", "expires_at": "…"}. Lines in reports are 1-based item numbers. No
// element is decoded whole: each is read a token at a time (Decoder.Token), so memory
// is bounded by the token limit whatever the element holds.
type jsonReader struct {
	dec      *json.Decoder
	t        *tally
	started  bool
	inObject bool // the codes array sits in a top-level object
	sawCodes bool
	done     bool
	expiry   *time.Time
}

func newJSONReader(r io.Reader, t *tally) *jsonReader {
	dec := json.NewDecoder(jsonlimit.NewReader(bufio.NewReaderSize(r, 64<<10), maxJSONToken, maxJSONDepth))
	dec.UseNumber()
	return &jsonReader{dec: dec, t: t}
}

func (j *jsonReader) defaultExpiry() *time.Time { return j.expiry }

func (j *jsonReader) syntax(err error) error {
	var se *json.SyntaxError
	var le *jsonlimit.Error
	switch {
	case errors.As(err, &se):
		return &UploadError{Reason: fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)}
	case errors.As(err, &le):
		return &UploadError{Reason: fmt.Sprintf("the JSON has %s at byte %d (a code is at most %d characters)", le.Reason, le.Offset, MaxCodeLength)}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &UploadError{Reason: "the JSON ends early"}
	}
	return err
}

// open positions the decoder inside the codes array.
func (j *jsonReader) open() error {
	j.started = true
	tok, err := j.dec.Token()
	if err != nil {
		return j.syntax(err)
	}
	switch tok {
	case json.Delim('['):
		j.sawCodes = true
		return nil
	case json.Delim('{'):
		j.inObject = true
		return j.objectFields()
	}
	return &UploadError{Reason: "want a JSON array of codes or an object with a \"codes\" array"}
}

// objectFields reads the top-level object's fields until the codes array opens, or
// until the object ends (then done is set).
func (j *jsonReader) objectFields() error {
	for j.dec.More() {
		tok, err := j.dec.Token()
		if err != nil {
			return j.syntax(err)
		}
		key, _ := tok.(string)
		switch key {
		case "codes":
			if j.sawCodes {
				return &UploadError{Reason: "\"codes\" given twice"}
			}
			j.sawCodes = true
			tok, err := j.dec.Token()
			if err != nil {
				return j.syntax(err)
			}
			if tok != json.Delim('[') {
				return &UploadError{Reason: "\"codes\" must be an array"}
			}
			return nil
		case "expires_at":
			tok, err := j.dec.Token()
			if err != nil {
				return j.syntax(err)
			}
			s, ok := tok.(string)
			if !ok {
				return &UploadError{Reason: "\"expires_at\" must be a string"}
			}
			t, err := ParseTime(s)
			if err != nil {
				return &UploadError{Reason: "expires_at: " + err.Error()}
			}
			j.expiry = &t
		default:
			return &UploadError{Reason: fmt.Sprintf("unknown field %q (want \"codes\" and optionally \"expires_at\")", preview(key))}
		}
	}
	if _, err := j.dec.Token(); err != nil { // the closing brace
		return j.syntax(err)
	}
	j.done = true
	return nil
}

func (j *jsonReader) next() (row, error) {
	if !j.started {
		if err := j.open(); err != nil {
			return row{}, err
		}
	}
	for !j.done {
		if !j.dec.More() {
			if _, err := j.dec.Token(); err != nil { // the closing bracket
				return row{}, j.syntax(err)
			}
			if !j.inObject {
				break
			}
			if err := j.objectFields(); err != nil {
				return row{}, err
			}
			continue
		}
		r, text, reason, err := j.element()
		if err != nil {
			return row{}, err
		}
		j.t.lines++
		item := j.t.lines
		if reason != "" {
			j.t.bad(item, text, reason)
			continue
		}
		if r.code == "" {
			continue
		}
		r.line = item
		return r, nil
	}
	// Nothing may follow the top-level value.
	if _, err := j.dec.Token(); err != io.EOF {
		return row{}, &UploadError{Reason: "unexpected data after the JSON value"}
	}
	return row{}, io.EOF
}

const wantElement = `want a string or an object with a "code"`

// element reads one element of the codes array: a string or {"code", "expires_at"}.
// It returns the row (an empty code: nothing to load), or the text and reason of an
// invalid element; err ends the upload.
func (j *jsonReader) element() (r row, text, reason string, err error) {
	tok, err := j.dec.Token()
	if err != nil {
		return r, "", "", j.syntax(err)
	}
	switch v := tok.(type) {
	case string:
		r, text, reason = codeRow(v, nil)
		return r, text, reason, nil
	case json.Delim:
		if v == '{' {
			return j.object()
		}
		if err := j.skip(); err != nil {
			return r, "", "", err
		}
		return r, "[…]", wantElement + ", got an array", nil
	case nil:
		return r, "null", wantElement + `, got "null"`, nil
	}
	text = preview(fmt.Sprint(tok))
	return r, text, wantElement + ", got " + strconv.Quote(text), nil
}

// object reads an element {"code": "…", "expires_at": "…"} after its opening brace.
func (j *jsonReader) object() (r row, text, reason string, err error) {
	var code, expires *string
	const want = `want {"code": "…", "expires_at": "…"}: `
	for j.dec.More() {
		var key, val any
		if key, err = j.dec.Token(); err != nil {
			return r, "", "", j.syntax(err)
		}
		if val, err = j.dec.Token(); err != nil {
			return r, "", "", j.syntax(err)
		}
		if d, ok := val.(json.Delim); ok && (d == '[' || d == '{') {
			if err := j.skip(); err != nil {
				return r, "", "", err
			}
		}
		name, _ := key.(string)
		s, isString := val.(string)
		switch {
		case reason != "":
		case (name == "code" || name == "expires_at") && val == nil:
		case name == "code" && isString:
			code = &s
		case name == "expires_at" && isString:
			expires = &s
		case name == "code" || name == "expires_at":
			reason, text = want+fmt.Sprintf("%q must be a string", name), preview(fmt.Sprintf(`{"%s": …}`, name))
		default:
			reason, text = want+fmt.Sprintf("unknown field %q", preview(name)), preview(fmt.Sprintf(`{"%s": …}`, name))
		}
	}
	if _, err := j.dec.Token(); err != nil { // the closing brace
		return r, "", "", j.syntax(err)
	}
	switch {
	case reason != "":
		return r, text, reason, nil
	case code == nil:
		return r, "{…}", `the object has no "code"`, nil
	}
	r, text, reason = codeRow(*code, expires)
	return r, text, reason, nil
}

// skip reads past the rest of an array or object whose opening token was just read.
func (j *jsonReader) skip() error {
	for depth := 1; depth > 0; {
		tok, err := j.dec.Token()
		if err != nil {
			return j.syntax(err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
	return nil
}

// codeRow checks an element's code and expiry: an empty code is no row and no problem.
func codeRow(code string, expires *string) (r row, text, reason string) {
	if expires != nil && *expires != "" {
		t, err := ParseTime(*expires)
		if err != nil {
			return r, code, "expires_at: " + err.Error()
		}
		r.expires = &t
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return r, "", ""
	}
	if reason := checkCode(code); reason != "" {
		return r, code, reason
	}
	r.code = code
	return r, "", ""
}
