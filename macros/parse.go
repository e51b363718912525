package macros

import (
	"strings"
	"unicode"
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

const (
	knownFields    = "client.id, client.email, client.first_name, client.last_name or client.attr('NAME')"
	knownFunctions = "client.promocode('GROUP'), client.last_promocode('GROUP') or client.attr('NAME')"
)

// macro is one well-formed client.* macro found in a part.
type macro struct {
	part       Part
	start, end int    // byte span of "{{ … }}" in the part
	fn         fn     // what it inserts
	arg        string // decoded group or attribute name
}

// scanner parses one part of a template.
type scanner struct {
	part   Part
	s      string
	macros []macro
	probs  []Problem
	loc    locator
}

// parsePart finds every client.* macro of s and every problem in it.
func parsePart(part Part, s string) ([]macro, []Problem) {
	sc := scanner{part: part, s: s, loc: locator{s: s, line: 1, col: 1}}
	if part == PartSubject {
		if i := strings.IndexAny(s, "\r\n"); i >= 0 {
			sc.problem(i, i, "the subject contains a line break", "write the subject on a single line", ErrSyntax)
		}
	}
	i := 0
	for {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			break
		}
		start := i + j
		k := skipSpace(s, start+2)
		if len(s)-k < len("client") || !strings.EqualFold(s[k:k+6], "client") {
			i = start + 1 // not ours: leave it as it is
			continue
		}
		dot := skipSpace(s, k+6)
		if dot >= len(s) || s[dot] != '.' {
			i = start + 1
			continue
		}
		i = sc.macro(start, k, dot+1)
	}
	sortProblems(sc.probs)
	return sc.macros, sc.probs
}

// macro parses the macro opening at start, whose "client" word is at
// clientAt and whose name begins after the dot at p. It returns where
// scanning resumes.
func (sc *scanner) macro(start, clientAt, p int) int {
	s := sc.s
	if s[clientAt:clientAt+6] != "client" {
		fix := "write client in lowercase"
		if name := ident(s, skipSpace(s, p)); name != "" {
			if f, ok := lookup(name); ok {
				fix = "write " + example(f, name, "")
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
	arg := ""
	if paren {
		var next int
		var ok bool
		if arg, next, ok = sc.argument(start, f, name, skipSpace(s, p+1)); !ok {
			return next
		}
		p = skipSpace(s, next)
	}
	if !strings.HasPrefix(s[p:], "}}") {
		return sc.unexpected(start, p, "}}", "write "+example(f, name, arg))
	}
	end := p + 2
	switch {
	case paren && !f.takesArg():
		return sc.problem(start, end, "client."+name+" is a field and takes no parentheses", "write "+example(f, name, ""), ErrUnknownName)
	case !paren && f.takesArg():
		return sc.problem(start, end, "client."+name+" needs "+anArg(f), "write "+example(f, name, ""), ErrSyntax)
	}
	sc.macros = append(sc.macros, macro{part: sc.part, start: start, end: end, fn: f, arg: arg})
	return end
}

// argument parses the quoted argument that starts at p, just inside "(",
// and the ")" after it. It returns the decoded argument, the offset after
// the ")" and true; or, on a problem, where scanning resumes and false.
func (sc *scanner) argument(start int, f fn, name string, p int) (string, int, bool) {
	s := sc.s
	noun := argNoun(f)
	if p >= len(s) {
		return "", sc.unexpected(start, p, anArg(f), "write "+example(f, name, "")), false
	}
	if !f.takesArg() {
		// client.email(): let the caller say that a field takes no parentheses.
		if s[p] == ')' {
			return "", p + 1, true
		}
		return "", sc.fail(start, p, "client."+name+" is a field and takes no parentheses", "write "+example(f, name, ""), ErrUnknownName), false
	}
	r, size := utf8.DecodeRuneInString(s[p:])
	switch {
	case r == ')':
		return "", sc.fail(start, p+1, "client."+name+" needs "+anArg(f), "write "+example(f, name, ""), ErrSyntax), false
	case r == '"':
		return "", sc.fail(start, p, "the "+noun+" is in double quotes", "use single quotes: "+example(f, name, guessArg(s, p+size)), ErrSyntax), false
	case strings.ContainsRune(typographicQuotes, r):
		return "", sc.fail(start, p, "the "+noun+" is in typographic quotes", "use plain single quotes ('): "+example(f, name, guessArg(s, p+size)), ErrSyntax), false
	case r != '\'':
		return "", sc.fail(start, p, "the "+noun+" must be in single quotes", "write "+example(f, name, guessArg(s, p)), ErrSyntax), false
	}
	arg, q, err := unquote(s, p)
	switch err {
	case errNoClosingQuote:
		return "", sc.fail(start, q, "the "+noun+" has no closing single quote", "write "+example(f, name, guessArg(s, p+1)), ErrSyntax), false
	case errBadEscape:
		return "", sc.fail(start, q, "unknown escape \\"+string(nextRune(s, q+1))+" in the "+noun, "inside the quotes only \\' (a quote) and \\\\ (a backslash) are escapes", ErrSyntax), false
	}
	if msg, fix := checkArg(f, name, arg); msg != "" {
		return "", sc.fail(start, q, msg, fix, ErrSyntax), false
	}
	q = skipSpace(s, q)
	if q < len(s) && s[q] == ',' {
		return "", sc.fail(start, q, "client."+name+" takes a single "+noun, "write "+example(f, name, arg), ErrSyntax), false
	}
	if q < len(s) && s[q] == ')' {
		return arg, q + 1, true
	}
	return "", sc.unexpected(start, q, ")", "write "+example(f, name, arg)), false
}

type quoteErr uint8

const (
	errNoClosingQuote quoteErr = iota + 1
	errBadEscape
)

// typographicQuotes are quotes that word processors substitute for ' and ".
const typographicQuotes = "‘’‚‛“”„‟`´′″"

// unquote decodes the single-quoted string starting at s[p] == '\”. It
// returns the value and the offset after the closing quote; or an error and
// the offset of the offending character. The string may not span lines or
// contain "}}": either means that its closing quote is missing.
func unquote(s string, p int) (string, int, quoteErr) {
	escaped := false
	for i := p + 1; i < len(s); i++ {
		switch s[i] {
		case '\'':
			v := s[p+1 : i]
			if escaped {
				v = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(v)
			}
			return v, i + 1, 0
		case '\\':
			if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '\\') {
				escaped = true
				i++
				continue
			}
			if i+1 < len(s) && s[i+1] != '\n' && s[i+1] != '\r' {
				return "", i, errBadEscape
			}
			return "", i, errNoClosingQuote
		case '\n', '\r':
			return "", i, errNoClosingQuote
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				return "", i, errNoClosingQuote
			}
		}
	}
	return "", len(s), errNoClosingQuote
}

// checkArg checks a decoded group or attribute name.
func checkArg(f fn, name, arg string) (msg, fix string) {
	noun := argNoun(f)
	switch {
	case strings.TrimSpace(arg) == "":
		return "the " + noun + " is empty", "write the " + noun + " between the quotes: " + example(f, name, "")
	case !utf8.ValidString(arg):
		return "the " + noun + " is not valid UTF-8", "retype the " + noun
	case strings.IndexFunc(arg, unicode.IsControl) >= 0:
		return "the " + noun + " contains a control character", "remove it from the " + noun
	case f != fnAttr && utf8.RuneCountInString(arg) > maxNameLen:
		return "the group name is longer than 200 characters", "use the group's exact name"
	}
	return "", ""
}

// unknownName reports a client.* name that the engine does not know.
func (sc *scanner) unknownName(start, at int, name string, paren bool) int {
	lower := strings.ToLower(name)
	if f, ok := lookup(lower); ok {
		return sc.fail(start, at, "macro names are lowercase", "write "+example(f, lower, ""), ErrUnknownName)
	}
	switch lower {
	case "attributes", "attribute", "attrs", "custom":
		return sc.fail(start, at, "unknown field client."+name, "custom attributes are written {{client.attr('NAME')}}", ErrUnknownName)
	case "promo_code", "promo", "code", "promocodes", "new_promocode":
		return sc.fail(start, at, "unknown function client."+name, "write {{client.promocode('GROUP')}}", ErrUnknownName)
	case "last_promo_code", "lastpromocode", "last_code", "last_promo":
		return sc.fail(start, at, "unknown function client."+name, "write {{client.last_promocode('GROUP')}}", ErrUnknownName)
	}
	if paren {
		return sc.fail(start, at, "unknown function client."+name, "use "+knownFunctions, ErrUnknownName)
	}
	return sc.fail(start, at, "unknown field client."+name, "use "+knownFields, ErrUnknownName)
}

// unexpected reports that want was expected at p. If the macro is never
// closed with "}}" it reports the missing braces instead.
func (sc *scanner) unexpected(start, p int, want, fix string) int {
	s := sc.s
	resume, closed := resync(s, p)
	switch {
	case !closed:
		return sc.problem(start, resume, "the macro is not closed with }}", fix, ErrSyntax)
	case s[p] == '"':
		return sc.problem(start, resume, "double quotes are not allowed in a macro", fix, ErrSyntax)
	case s[p] == '}':
		// A single "}" or one that closes early, as in {{client.promocode('G'}}.
		return sc.problem(start, resume, "expected "+want+" but found }", fix, ErrSyntax)
	}
	r, _ := utf8.DecodeRuneInString(s[p:])
	return sc.problem(start, resume, "expected "+want+" but found "+quoteRune(r), fix, ErrSyntax)
}

// fail records a problem for the macro at start, detected at p, and returns
// where scanning resumes: after the next "}}", or at the next "{{" if that
// comes first.
func (sc *scanner) fail(start, p int, msg, fix string, kind error) int {
	resume, closed := resync(sc.s, p)
	if !closed {
		msg += "; the macro is also not closed with }}"
	}
	return sc.problem(start, resume, msg, fix, kind)
}

// problem records a problem for the text s[start:end] and returns end.
func (sc *scanner) problem(start, end int, msg, fix string, kind error) int {
	line, col := sc.loc.at(start)
	sc.probs = append(sc.probs, Problem{
		Part: sc.part, Line: line, Column: col, Macro: shorten(sc.s[start:end]),
		Message: msg, Fix: fix, Err: kind, offset: start,
	})
	return end
}

// resync returns where to resume scanning after a problem detected at p:
// just after the next "}}" (closed is true), or at the next "{{" or the end
// of s if that comes first (closed is false).
func resync(s string, p int) (resume int, closed bool) {
	// Look for "}}" only up to the next "{{", so that scanning stays
	// linear however many macros are broken.
	limit := len(s)
	if o := strings.Index(s[p:], "{{"); o >= 0 {
		limit = p + o
	}
	if e := strings.Index(s[p:limit], "}}"); e >= 0 {
		return p + e + 2, true
	}
	return limit, false
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

// example writes the canonical form of a macro, with arg (or a
// placeholder) as its argument.
func example(f fn, name, arg string) string {
	if !f.takesArg() {
		return "{{client." + name + "}}"
	}
	if arg == "" {
		arg = "GROUP"
		if f == fnAttr {
			arg = "NAME"
		}
	}
	arg = strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(arg)
	return "{{client." + name + "('" + arg + "')}}"
}

// argNoun names the argument of f.
func argNoun(f fn) string {
	if f == fnAttr {
		return "attribute name"
	}
	return "group name"
}

// anArg names the argument of f with its article.
func anArg(f fn) string {
	if f == fnAttr {
		return "an attribute name"
	}
	return "a group name"
}

// guessArg returns the text from p up to the next quote, parenthesis,
// brace or line break: what the author probably meant as the name.
func guessArg(s string, p int) string {
	end := len(s)
	for i, r := range s[p:] {
		if strings.ContainsRune(typographicQuotes+"'\"(){}\r\n", r) {
			end = p + i
			break
		}
	}
	g := strings.TrimSpace(s[p:end])
	if g == "" || utf8.RuneCountInString(g) > maxNameLen || !utf8.ValidString(g) {
		return ""
	}
	return g
}

func nextRune(s string, p int) rune {
	r, _ := utf8.DecodeRuneInString(s[p:])
	return r
}

func ident(s string, p int) string {
	q := p
	for q < len(s) && isIdentByte(s[q]) {
		q++
	}
	return strings.ToLower(s[p:q])
}

func quoteRune(r rune) string {
	switch r {
	case utf8.RuneError:
		return "an invalid character"
	case '\n', '\r':
		return "a line break"
	case ' ', '\t':
		return "a space"
	}
	if unicode.IsControl(r) {
		return "a control character"
	}
	return "\"" + string(r) + "\""
}

// shorten trims a macro's text for a problem report.
func shorten(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	if utf8.RuneCountInString(s) <= 60 {
		return s
	}
	n := 0
	for i := range s {
		if n == 59 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isIdentByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
