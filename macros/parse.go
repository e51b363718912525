package macros

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxNameLen is the longest group name, in characters, that promopool accepts.
const maxNameLen = 200

// fn identifies what a client.* macro inserts.
type fn uint8

const (
	fnPromocode fn = iota + 1
	fnLastPromocode
	fnAttr
	fnID
	fnEmail
	fnFirstName
	fnLastName
	fnColumn     // promocode('G').NAME: an extra column of the code's row
	fnLastColumn // last_promocode('G').NAME: an extra column of the last code's row
)

// lookup returns the function of a client.* name.
func lookup(name string) (fn, bool) {
	switch name {
	case "promocode":
		return fnPromocode, true
	case "last_promocode":
		return fnLastPromocode, true
	case "attr":
		return fnAttr, true
	case "id":
		return fnID, true
	case "email":
		return fnEmail, true
	case "first_name":
		return fnFirstName, true
	case "last_name":
		return fnLastName, true
	}
	return 0, false
}

func (f fn) takesArg() bool { return f == fnPromocode || f == fnLastPromocode || f == fnAttr }

// isCode reports whether f inserts a promo code or a column of one.
func (f fn) isCode() bool {
	return f == fnPromocode || f == fnLastPromocode || f == fnColumn || f == fnLastColumn
}

const (
	knownFields    = "client.id, client.email, client.first_name, client.last_name or client.attr('NAME')"
	knownFunctions = "client.promocode('GROUP'), client.last_promocode('GROUP') or client.attr('NAME')"
)

// delim is a pair of macro delimiters. {{ }} is the documented form; << >>
// (the design card's) is equivalent.
type delim struct{ open, close string }

var (
	braces = delim{"{{", "}}"}
	angles = delim{"<<", ">>"}
)

func (d delim) other() delim {
	if d == braces {
		return angles
	}
	return braces
}

// macro is one well-formed client.* macro found in a part.
type macro struct {
	part        Part
	start, end  int    // byte span of the macro, delimiters included
	fn          fn     // what it inserts
	arg         string // decoded group or attribute name
	column      string // column name, for fnColumn and fnLastColumn
	fallback    string // fallback text, if hasFallback
	hasFallback bool
	filter      filter
	format      string   // barcode format, for filterBarcode and filterQR
	ctx         htmlCtx  // where it stands in an HTML part
	fold        bool     // last_promocode of a group the message also draws a new code from
	d           delim    // its delimiters
	loc         *locator // locates positions in its part
}

// budget counts the macros of a whole template against Limits.MaxMacros,
// and its warnings against maxWarnings.
type budget struct {
	max, n int
	over   bool
	warns  int
}

// maxWarnings is the most warnings reported for one template.
const maxWarnings = 100

// take counts one more macro; it reports false once the limit is passed.
func (b *budget) take() bool {
	b.n++
	if b.max >= 0 && b.n > b.max {
		b.over = true
	}
	return !b.over
}

// span is a byte range of a part already accounted for by a macro, a
// problem or a warning.
type span struct{ start, end int }

// scanner parses one part of a template.
type scanner struct {
	part   Part
	s      string
	d      delim // delimiters of the macro being parsed
	macros []macro
	probs  []Problem
	warns  []Problem
	spans  []span
	loc    *locator
	budget *budget
}

// parsePart finds every client.* macro of s, every problem in it and every
// text that looks like a macro but is not one. b counts macros across the
// parts of a template; once it is exhausted nothing more is parsed.
func parsePart(part Part, s string, b *budget) (macros []macro, probs, warns []Problem) {
	sc := scanner{part: part, s: s, loc: &locator{s: s, line: 1, col: 1}, budget: b}
	if part == PartSubject {
		if i := strings.IndexAny(s, "\r\n"); i >= 0 {
			sc.problem(i, i, "the subject contains a line break", "write the subject on a single line", ErrSyntax)
		}
	}
	of := openFinder{s: s}
	for i := 0; !b.over; {
		start, d := of.next(i)
		if start < 0 {
			break
		}
		k := skipSpace(s, start+2)
		dot := clientDot(s, k)
		if dot < 0 {
			sc.foreign(start, d, k)
			i = start + 1 // not ours: leave it as it is
			continue
		}
		if !b.take() {
			sc.tooMany(start)
			break
		}
		sc.d = d
		i = sc.macro(start, k, dot+1)
	}
	if !b.over {
		sc.strays()
	}
	sortProblems(sc.probs)
	sortProblems(sc.warns)
	return sc.macros, sc.probs, sc.warns
}

// clientDot returns the offset of the dot if s[k:] starts with client
// (in any case), optional spaces and a dot; otherwise -1.
func clientDot(s string, k int) int {
	if len(s)-k < len("client") || !strings.EqualFold(s[k:k+6], "client") {
		return -1
	}
	dot := skipSpace(s, k+6)
	if dot >= len(s) || s[dot] != '.' {
		return -1
	}
	return dot
}

// tooMany reports the macro at start as the first one over the limit.
func (sc *scanner) tooMany(start int) {
	sc.problem(start, start+2, fmt.Sprintf("the template has more than %d macros", sc.budget.max),
		"split the message, or raise the template limit (MaxMacros)", ErrTemplateTooLarge)
}

// openFinder finds the next "{{" or "<<" of s, remembering where each
// opener was last found so that scanning stays linear.
type openFinder struct {
	s            string
	brace, angle int // offset+1 of the next opener found; 0: look again; -1: none left
}

func (f *openFinder) next(i int) (int, delim) {
	f.brace = f.find(f.brace, i, "{{")
	f.angle = f.find(f.angle, i, "<<")
	switch {
	case f.brace < 0 && f.angle < 0:
		return -1, delim{}
	case f.angle < 0 || f.brace > 0 && f.brace < f.angle:
		return f.brace - 1, braces
	}
	return f.angle - 1, angles
}

func (f *openFinder) find(cached, i int, open string) int {
	if cached < 0 || cached > i {
		return cached
	}
	j := strings.Index(f.s[i:], open)
	if j < 0 {
		return -1
	}
	return i + j + 1
}

// macro parses the macro opening at start with sc.d, whose "client" word
// is at clientAt and whose name begins after the dot at p. It returns
// where scanning resumes.
func (sc *scanner) macro(start, clientAt, p int) int {
	s := sc.s
	if s[clientAt:clientAt+6] != "client" {
		fix := "write client in lowercase"
		if name := ident(s, skipSpace(s, p)); name != "" {
			if f, ok := lookup(name); ok {
				fix = "write " + sc.example(f, name, "")
			}
		}
		return sc.fail(start, clientAt, "macro names are lowercase", fix, ErrUnknownName)
	}
	p = skipSpace(s, p)
	nameAt := p
	for p < len(s) && isIdentByte(s[p]) {
		p++
	}
	name := s[nameAt:p]
	if name == "" {
		return sc.unexpected(start, p, "a name after client.", "write one of "+knownFields)
	}
	p = skipSpace(s, p)
	paren := p < len(s) && s[p] == '('
	f, ok := lookup(name)
	if !ok {
		return sc.unknownName(start, nameAt, name, paren)
	}
	m := macro{part: sc.part, start: start, fn: f, d: sc.d, loc: sc.loc}
	if paren {
		next, ok := sc.args(start, &m, name, skipSpace(s, p+1))
		if !ok {
			return next
		}
		p = skipSpace(s, next)
	}
	var done bool
	if p, done = sc.suffixes(start, &m, name, p); done {
		return p
	}
	return sc.close(start, &m, name, paren, p)
}

// suffixes parses the optional .COLUMN and | FILTER after a macro's name
// or arguments. It returns where the closing delimiter should be, or, with
// done, where scanning resumes after a problem.
func (sc *scanner) suffixes(start int, m *macro, name string, p int) (int, bool) {
	s := sc.s
	if p < len(s) && s[p] == '.' {
		next, ok := sc.column(start, m, name, skipSpace(s, p+1))
		if !ok {
			return next, true
		}
		p = skipSpace(s, next)
	}
	if p < len(s) && s[p] == '|' {
		next, ok := sc.filter(start, m, skipSpace(s, p+1))
		if !ok {
			return next, true
		}
		p = skipSpace(s, next)
	}
	return p, false
}

// close checks the closing delimiter at p and records the macro.
func (sc *scanner) close(start int, m *macro, name string, paren bool, p int) int {
	s := sc.s
	f := m.fn
	switch f {
	case fnColumn:
		f = fnPromocode
	case fnLastColumn:
		f = fnLastPromocode
	}
	if !strings.HasPrefix(s[p:], sc.d.close) {
		if strings.HasPrefix(s[p:], sc.d.other().close) {
			return sc.problem(start, p+2, "the macro opens with "+sc.d.open+" but closes with "+sc.d.other().close,
				"close it with "+sc.d.close+": "+sc.example(f, name, m.arg), ErrSyntax)
		}
		return sc.unexpected(start, p, sc.d.close, "write "+sc.example(f, name, m.arg))
	}
	end := p + 2
	switch {
	case paren && !f.takesArg():
		return sc.problem(start, end, "client."+name+" is a field and takes no parentheses", "write "+sc.example(f, name, ""), ErrUnknownName)
	case !paren && f.takesArg():
		return sc.problem(start, end, "client."+name+" needs "+anArg(f), "write "+sc.example(f, name, ""), ErrSyntax)
	}
	m.end = end
	sc.macros = append(sc.macros, *m)
	sc.spans = append(sc.spans, span{start, end})
	return end
}

// unknownName reports a client.* name that the engine does not know.
func (sc *scanner) unknownName(start, at int, name string, paren bool) int {
	lower := strings.ToLower(name)
	if f, ok := lookup(lower); ok {
		return sc.fail(start, at, "macro names are lowercase", "write "+sc.example(f, lower, ""), ErrUnknownName)
	}
	o, c := sc.d.open, sc.d.close
	switch lower {
	case "attributes", "attribute", "attrs", "custom":
		return sc.fail(start, at, "unknown field client."+name, "custom attributes are written "+o+"client.attr('NAME')"+c, ErrUnknownName)
	case "promo_code", "promo", "code", "promocodes", "new_promocode":
		return sc.fail(start, at, "unknown function client."+name, "write "+o+"client.promocode('GROUP')"+c, ErrUnknownName)
	case "last_promo_code", "lastpromocode", "last_code", "last_promo":
		return sc.fail(start, at, "unknown function client."+name, "write "+o+"client.last_promocode('GROUP')"+c, ErrUnknownName)
	}
	if paren {
		return sc.fail(start, at, "unknown function client."+name, "use "+knownFunctions, ErrUnknownName)
	}
	return sc.fail(start, at, "unknown field client."+name, "use "+knownFields, ErrUnknownName)
}

// unexpected reports that want was expected at p. If the macro is never
// closed it reports the missing closing delimiter instead.
func (sc *scanner) unexpected(start, p int, want, fix string) int {
	s := sc.s
	resume, closed := sc.resync(p)
	switch {
	case !closed:
		return sc.problem(start, resume, "the macro is not closed with "+sc.d.close, fix, ErrSyntax)
	case s[p] == '"':
		return sc.problem(start, resume, "double quotes are not allowed in a macro", fix, ErrSyntax)
	case s[p] == sc.d.close[0]:
		// A single "}" or one that closes early, as in {{client.promocode('G'}}.
		return sc.problem(start, resume, "expected "+want+" but found "+sc.d.close[:1], fix, ErrSyntax)
	}
	r, _ := utf8.DecodeRuneInString(s[p:])
	return sc.problem(start, resume, "expected "+want+" but found "+quoteRune(r), fix, ErrSyntax)
}

// fail records a problem for the macro at start, detected at p, and returns
// where scanning resumes: after the next closing delimiter, or at the next
// opener if that comes first.
func (sc *scanner) fail(start, p int, msg, fix string, kind error) int {
	resume, closed := sc.resync(p)
	if !closed {
		msg += "; the macro is also not closed with " + sc.d.close
	}
	return sc.problem(start, resume, msg, fix, kind)
}

// problem records a problem for the text s[start:end] and returns end.
func (sc *scanner) problem(start, end int, msg, fix string, kind error) int {
	sc.probs = append(sc.probs, sc.report(start, end, msg, fix, kind))
	sc.spans = append(sc.spans, span{start, end})
	return end
}

// warn records a warning for the text s[start:end], unless the template
// already has maxWarnings.
func (sc *scanner) warn(start, end int, msg, fix string, kind error) {
	sc.spans = append(sc.spans, span{start, end})
	if sc.budget.warns >= maxWarnings {
		return
	}
	sc.budget.warns++
	sc.warns = append(sc.warns, sc.report(start, end, msg, fix, kind))
}

func (sc *scanner) report(start, end int, msg, fix string, kind error) Problem {
	line, col := sc.loc.at(start)
	return Problem{
		Part: sc.part, Line: line, Column: col, Macro: shorten(sc.s[start:end]),
		Message: msg, Fix: fix, Err: kind, offset: start,
	}
}

// resync returns where to resume scanning after a problem detected at p:
// just after the next closing delimiter (closed is true), or at the next
// opener or the end of s if that comes first (closed is false).
func (sc *scanner) resync(p int) (resume int, closed bool) {
	s := sc.s
	// Look for the closer only up to the next opener, so that scanning
	// stays linear however many macros are broken.
	limit := nextOpener(s, p)
	if e := strings.Index(s[p:limit], sc.d.close); e >= 0 {
		return p + e + 2, true
	}
	return limit, false
}

// nextOpener returns the offset of the first "{{" or "<<" at or after p,
// or len(s).
func nextOpener(s string, p int) int {
	for p < len(s) {
		i := strings.IndexAny(s[p:], "{<")
		if i < 0 {
			break
		}
		p += i
		if p+1 < len(s) && s[p+1] == s[p] {
			return p
		}
		p++
	}
	return len(s)
}

// locator turns byte offsets into 1-based line and rune columns. Offsets
// are usually asked in increasing order, so it resumes from the last one.
type locator struct {
	s              string
	off, line, col int
}

func (l *locator) at(off int) (line, col int) {
	if off < l.off {
		l.off, l.line, l.col = 0, 1, 1
	}
	for l.off < off && l.off < len(l.s) {
		r, size := utf8.DecodeRuneInString(l.s[l.off:])
		if r == '\n' {
			l.line, l.col = l.line+1, 1
		} else {
			l.col++
		}
		l.off += size
	}
	return l.line, l.col
}
