package groups

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"promopool/internal/csvlimit"
)

// Format is the encoding of an upload.
type Format string

// Upload formats.
const (
	FormatPlain Format = "plain" // one code per line
	FormatCSV   Format = "csv"   // a header with a code column, an optional expires_at column and extra columns
	FormatJSON  Format = "json"  // ["A","B"] or {"expires_at":…, "codes":["A", {"code":"B","expires_at":…}]}
)

// MaxCodeLength is the longest code, in characters.
const MaxCodeLength = 200

// maxCSVLine bounds one CSV record in bytes; a longer one fails the upload (encoding/csv
// would otherwise buffer it whole).
const maxCSVLine = 1 << 20

// row is one valid code of an upload. line is the 1-based line (item, for JSON).
type row struct {
	line    int64
	code    string
	expires *time.Time
	// cols is the JSON object of the code's extra columns (CSV), nil when the upload
	// has none.
	cols []byte
}

// codeReader yields an upload's valid codes and reports its invalid lines to a tally.
type codeReader interface {
	// next returns the next valid code, io.EOF at the end, or an error that ends the
	// upload (the body could not be read or parsed as a whole).
	next() (row, error)
	// defaultExpiry is an upload-wide expiry the body itself carried (JSON), known at EOF.
	defaultExpiry() *time.Time
}

// tally counts lines and keeps the first few invalid ones.
type tally struct {
	lines   int64
	invalid int64
	// examples holds the first maxExamples invalid lines.
	examples []LineProblem
}

// maxExamples is how many examples of each kind a report keeps.
const maxExamples = 5

func (t *tally) bad(line int64, text, reason string) {
	t.invalid++
	if len(t.examples) < maxExamples {
		t.examples = append(t.examples, LineProblem{Line: line, Code: preview(text), Reason: reason})
	}
}

// preview shortens a rejected line for a report: at most 40 characters, valid UTF-8.
// It reads no further than the 41st character, whatever the length of s.
func preview(s string) string {
	n := 0
	for i := range s {
		if n == 40 {
			return strings.ToValidUTF8(s[:i], "\uFFFD") + "…"
		}
		n++
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// checkCode says what is wrong with a trimmed, non-empty code, or "" when it is valid:
// 1–200 printable characters of valid UTF-8, no control characters.
func checkCode(s string) string {
	n := 0
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			ascii = false
			break
		}
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("contains a control character (U+%04X) at character %d", c, i+1)
		}
	}
	if ascii {
		if len(s) > MaxCodeLength {
			return fmt.Sprintf("longer than %d characters (%d)", MaxCodeLength, len(s))
		}
		return ""
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		n++
		switch {
		case unicode.IsControl(r):
			return fmt.Sprintf("contains a control character (U+%04X) at character %d", r, n)
		case r != ' ' && !unicode.IsPrint(r):
			return fmt.Sprintf("contains a non-printable character (U+%04X) at character %d", r, n)
		}
	}
	if n > MaxCodeLength {
		return fmt.Sprintf("longer than %d characters (%d)", MaxCodeLength, n)
	}
	return ""
}

// cleanField trims a line or field; the first line may start with a byte-order mark.
func cleanField(s string, first bool) string {
	if first {
		s = strings.TrimPrefix(s, "\uFEFF")
	}
	return strings.TrimSpace(s)
}

// plainReader reads one code per line with a fixed buffer: a line longer than the buffer
// is skipped to its end and reported, never held in memory.
type plainReader struct {
	br *bufio.Reader
	t  *tally
}

func newPlainReader(r io.Reader, t *tally) *plainReader {
	return &plainReader{br: bufio.NewReaderSize(r, 64<<10), t: t}
}

func (p *plainReader) defaultExpiry() *time.Time { return nil }

func (p *plainReader) next() (row, error) {
	for {
		b, err := p.br.ReadSlice('\n')
		if len(b) == 0 && err != nil {
			if err == io.EOF {
				return row{}, io.EOF
			}
			return row{}, err
		}
		p.t.lines++
		line := p.t.lines
		if errors.Is(err, bufio.ErrBufferFull) {
			head := string(b[:64])
			n := int64(len(b))
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = p.br.ReadSlice('\n')
				n += int64(len(b))
			}
			if err != nil && err != io.EOF {
				return row{}, err
			}
			p.t.bad(line, head, fmt.Sprintf("longer than %d characters (%d bytes)", MaxCodeLength, n))
			continue
		}
		if err != nil && err != io.EOF {
			return row{}, err
		}
		s := cleanField(string(b), line == 1)
		if s == "" {
			continue
		}
		if reason := checkCode(s); reason != "" {
			p.t.bad(line, s, reason)
			continue
		}
		return row{line: line, code: s}, nil
	}
}

// csvReader reads a CSV with a header naming a code column, optionally expires_at, and
// extra columns (pin, barcode, …) stored with each code (row.cols).
type csvReader struct {
	cr      *csv.Reader
	guard   *lineGuard
	t       *tally
	codeCol int
	expCol  int
	header  bool
	// extra are the extra columns' names and positions, in header order.
	extra    []string
	extraCol []int
	// declared, when not nil, are the only extra columns the group accepts.
	declared []string
}

func newCSVReader(r io.Reader, t *tally) *csvReader {
	g := &lineGuard{r: bufio.NewReaderSize(r, 64<<10), max: maxCSVLine, line: 1}
	// A quoted field may span lines: the record, not only the line, is bounded before
	// encoding/csv buffers it.
	cr := csv.NewReader(csvlimit.NewReader(g, maxCSVLine, ','))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return &csvReader{cr: cr, guard: g, t: t, codeCol: -1, expCol: -1}
}

func (c *csvReader) defaultExpiry() *time.Time { return nil }

func (c *csvReader) readHeader() error {
	rec, err := c.cr.Read()
	if err == io.EOF {
		return &UploadError{Reason: "the CSV is empty: want a header line with a code column"}
	}
	if err != nil {
		return c.fatal(err)
	}
	for i, name := range rec {
		name = cleanField(name, i == 0)
		switch strings.ToLower(name) {
		case "code":
			c.codeCol = i
		case "expires_at":
			c.expCol = i
		case "":
			// an unnamed column (a trailing comma): ignored
		default:
			c.extra = append(c.extra, name)
			c.extraCol = append(c.extraCol, i)
		}
	}
	if c.codeCol < 0 {
		return &UploadError{Line: 1, Reason: "the CSV header has no code column (want e.g. \"code,expires_at\")"}
	}
	if err := checkColumnNames("columns", c.extra); err != nil {
		return &UploadError{Line: 1, Reason: "the CSV header's extra columns: " + err.(*InvalidError).Reason}
	}
	if c.declared != nil {
		for _, name := range c.extra {
			if !slices.Contains(c.declared, name) {
				return &UploadError{Line: 1, Reason: fmt.Sprintf("the group declares its columns (%s) and %q is not one of them: remove it, or add it to the group's columns",
					strings.Join(c.declared, ", "), name)}
			}
		}
	}
	c.header = true
	return nil
}

// start reads the header now, the group's declared columns (nil: any) in hand, and
// reports whether the CSV has extra columns.
func (c *csvReader) start(declared []string) (bool, error) {
	c.declared = declared
	if err := c.readHeader(); err != nil {
		return false, err
	}
	return len(c.extra) > 0, nil
}

// columns encodes the extra cells of rec as a JSON object: a cell the line lacks is
// absent, an empty one "". It returns the reason a line is invalid instead, if so.
func (c *csvReader) columns(rec []string) ([]byte, string) {
	cells := make(map[string]string, len(c.extra))
	for i, col := range c.extraCol {
		if col >= len(rec) {
			continue
		}
		v := strings.TrimSpace(rec[col])
		if !utf8.ValidString(v) {
			return nil, fmt.Sprintf("column %s is not valid UTF-8", c.extra[i])
		}
		if n := utf8.RuneCountInString(v); n > MaxColumnValueLen {
			return nil, fmt.Sprintf("column %s is longer than %d characters (%d)", c.extra[i], MaxColumnValueLen, n)
		}
		cells[c.extra[i]] = v
	}
	b, err := json.Marshal(cells)
	if err != nil {
		return nil, err.Error()
	}
	return b, ""
}

// fatal turns a reader error into the error that ends the upload.
func (c *csvReader) fatal(err error) error {
	var tooLong *lineTooLongError
	if errors.As(err, &tooLong) {
		return &UploadError{Line: tooLong.line, Reason: fmt.Sprintf("line longer than %d bytes", maxCSVLine)}
	}
	var record *csvlimit.TooLongError
	if errors.As(err, &record) {
		return &UploadError{Line: record.Line, Reason: record.Error()}
	}
	return err
}

func (c *csvReader) next() (row, error) {
	if !c.header {
		if err := c.readHeader(); err != nil {
			return row{}, err
		}
	}
	for {
		rec, err := c.cr.Read()
		if err == io.EOF {
			c.t.lines = c.guard.line - 1
			if c.guard.sawTail {
				c.t.lines = c.guard.line
			}
			return row{}, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && !errors.As(err, new(*lineTooLongError)) && !errors.As(err, new(*csvlimit.TooLongError)) {
			c.t.bad(int64(pe.StartLine), "", "not valid CSV: "+pe.Err.Error())
			continue
		}
		if err != nil {
			return row{}, c.fatal(err)
		}
		line, _ := c.cr.FieldPos(0)
		if c.codeCol >= len(rec) {
			c.t.bad(int64(line), strings.Join(rec, ","), "no code column on this line")
			continue
		}
		s := cleanField(rec[c.codeCol], false)
		if s == "" {
			continue
		}
		if reason := checkCode(s); reason != "" {
			c.t.bad(int64(line), s, reason)
			continue
		}
		r := row{line: int64(line), code: s}
		if len(c.extra) > 0 {
			cols, reason := c.columns(rec)
			if reason != "" {
				c.t.bad(int64(line), s, reason)
				continue
			}
			r.cols = cols
		}
		if c.expCol >= 0 && c.expCol < len(rec) {
			if e := strings.TrimSpace(rec[c.expCol]); e != "" {
				t, err := ParseTime(e)
				if err != nil {
					c.t.bad(int64(line), s, "expires_at: "+err.Error())
					continue
				}
				r.expires = &t
			}
		}
		return r, nil
	}
}

// ParseTime reads a timestamp as RFC 3339 ("2026-12-31T23:59:59Z"), a date and time
// without zone (UTC) or a date alone (midnight UTC).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time (want RFC 3339, e.g. 2026-12-31T23:59:59Z, or a date 2026-12-31)", preview(s))
}

// lineGuard passes bytes through, counting lines, and fails once a line exceeds max bytes.
type lineGuard struct {
	r       *bufio.Reader
	max     int
	cur     int
	line    int64
	sawTail bool // the last line had bytes after its final newline
}

type lineTooLongError struct{ line int64 }

func (e *lineTooLongError) Error() string { return fmt.Sprintf("line %d is too long", e.line) }

func (g *lineGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			g.line++
			g.cur = 0
			g.sawTail = false
			continue
		}
		g.cur++
		g.sawTail = true
		if g.cur > g.max {
			return 0, &lineTooLongError{line: g.line}
		}
	}
	return n, err
}
