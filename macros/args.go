package macros

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFallbackLen is the longest fallback text, in characters.
const maxFallbackLen = 1000

// filter is what a "| name" after a macro does to its value.
type filter uint8

const (
	filterNone    filter = iota
	filterURL            // | url: percent-encode for a URL
	filterQR             // | qr: a QR code image
	filterBarcode        // | barcode('FORMAT'): a barcode image
)

// barcodeFormats are the formats | barcode('…') accepts.
var barcodeFormats = []string{"code128", "code39", "ean13", "ean8", "qr"}

const knownFilters = "| url, | qr or | barcode('code128')"

// args parses the argument list that starts at p, just inside "(": the
// quoted name and, for promocode and last_promocode, an optional
// fallback='TEXT'. It fills m and returns the offset after ")" and true;
// or, on a problem, where scanning resumes and false.
func (sc *scanner) args(start int, m *macro, name string, p int) (int, bool) {
	s := sc.s
	f := m.fn
	if p >= len(s) {
		return sc.unexpected(start, p, anArg(f), "write "+sc.example(f, name, "")), false
	}
	if !f.takesArg() {
		// client.email(): let the caller say that a field takes no parentheses.
		if s[p] == ')' {
			return p + 1, true
		}
		return sc.fail(start, p, "client."+name+" is a field and takes no parentheses", "write "+sc.example(f, name, ""), ErrUnknownName), false
	}
	if s[p] == ')' {
		return sc.fail(start, p+1, "client."+name+" needs "+anArg(f), "write "+sc.example(f, name, ""), ErrSyntax), false
	}
	arg, q, ok := sc.quoted(start, p, argNoun(f), func(a string) string { return sc.example(f, name, a) })
	if !ok {
		return q, false
	}
	if msg, fix := sc.checkArg(f, name, arg); msg != "" {
		return sc.fail(start, q, msg, fix, ErrSyntax), false
	}
	m.arg = arg
	q = skipSpace(s, q)
	if q < len(s) && s[q] == ',' {
		if q, ok = sc.fallback(start, m, name, skipSpace(s, q+1)); !ok {
			return q, false
		}
		q = skipSpace(s, q)
	}
	if q < len(s) && s[q] == ',' {
		return sc.fail(start, q, sc.takes(f, name), "write "+sc.example(f, name, arg), ErrSyntax), false
	}
	if q < len(s) && s[q] == ')' {
		return q + 1, true
	}
	return sc.unexpected(start, q, ")", "write "+sc.example(f, name, arg)), false
}

// takes says what client.NAME takes.
func (sc *scanner) takes(f fn, name string) string {
	if f == fnAttr {
		return "client." + name + " takes a single attribute name"
	}
	return "client." + name + " takes a single group name and optionally fallback='TEXT'"
}

// fallback parses "fallback='TEXT'" at p, after the comma that follows
// the group name.
func (sc *scanner) fallback(start int, m *macro, name string, p int) (int, bool) {
	s := sc.s
	f := m.fn
	withFallback := strings.TrimSuffix(sc.example(f, name, m.arg), "')"+sc.d.close) + "', fallback='TEXT')" + sc.d.close
	kw := ident(s, p)
	if f == fnAttr || kw != "fallback" {
		fix := "write " + sc.example(f, name, m.arg)
		if f != fnAttr {
			fix = "write " + withFallback
		}
		return sc.fail(start, p, sc.takes(f, name), fix, ErrSyntax), false
	}
	if s[p:p+len(kw)] != kw {
		return sc.fail(start, p, "macro names are lowercase", "write "+withFallback, ErrSyntax), false
	}
	q := skipSpace(s, p+len(kw))
	if q >= len(s) || s[q] != '=' {
		return sc.unexpected(start, q, "=", "write "+withFallback), false
	}
	q = skipSpace(s, q+1)
	if q >= len(s) {
		return sc.unexpected(start, q, "the fallback text", "write "+withFallback), false
	}
	text, next, ok := sc.quoted(start, q, "fallback text", func(string) string { return withFallback })
	if !ok {
		return next, false
	}
	switch {
	case !utf8.ValidString(text):
		return sc.fail(start, next, "the fallback text is not valid UTF-8", "retype the fallback text", ErrSyntax), false
	case strings.IndexFunc(text, unicode.IsControl) >= 0:
		return sc.fail(start, next, "the fallback text contains a control character", "remove it from the fallback text", ErrSyntax), false
	case utf8.RuneCountInString(text) > maxFallbackLen:
		return sc.fail(start, next, "the fallback text is longer than 1000 characters", "shorten the fallback text", ErrSyntax), false
	}
	m.fallback, m.hasFallback = text, true
	return next, true
}

// quoted parses the single-quoted string that starts at p, reporting
// wrong quotes and bad escapes in terms of noun; fix(guess) writes the
// macro as it should be. It returns the decoded string and the offset
// after the closing quote, or where scanning resumes and false.
func (sc *scanner) quoted(start, p int, noun string, fix func(guess string) string) (string, int, bool) {
	s := sc.s
	r, size := utf8.DecodeRuneInString(s[p:])
	switch {
	case r == '"':
		return "", sc.fail(start, p, "the "+noun+" is in double quotes", "use single quotes: "+fix(guessArg(s, p+size)), ErrSyntax), false
	case strings.ContainsRune(typographicQuotes, r):
		return "", sc.fail(start, p, "the "+noun+" is in typographic quotes", "use plain single quotes ('): "+fix(guessArg(s, p+size)), ErrSyntax), false
	case r != '\'':
		return "", sc.fail(start, p, "the "+noun+" must be in single quotes", "write "+fix(guessArg(s, p)), ErrSyntax), false
	}
	v, q, err := unquote(s, p, sc.d.close)
	switch err {
	case errNoClosingQuote:
		return "", sc.fail(start, q, "the "+noun+" has no closing single quote", "write "+fix(guessArg(s, p+1)), ErrSyntax), false
	case errBadEscape:
		return "", sc.fail(start, q, "unknown escape \\"+string(nextRune(s, q+1))+" in the "+noun, "inside the quotes only \\' (a quote) and \\\\ (a backslash) are escapes", ErrSyntax), false
	}
	return v, q, true
}

// column parses the column name of promocode('G').NAME at p, after the dot.
func (sc *scanner) column(start int, m *macro, name string, p int) (int, bool) {
	s := sc.s
	col := ""
	if p < len(s) && !('0' <= s[p] && s[p] <= '9') {
		col = s[p:skipIdent(s, p)]
	}
	switch {
	case m.fn != fnPromocode && m.fn != fnLastPromocode:
		return sc.fail(start, p, "client."+name+" has no columns; only client.promocode('GROUP') and client.last_promocode('GROUP') have",
			"write "+sc.d.open+"client.promocode('GROUP').NAME"+sc.d.close+" for a column of the code drawn in this message", ErrSyntax), false
	case col == "":
		return sc.unexpected(start, p, "a column name after the dot", "write "+sc.d.open+"client."+name+"('"+escapeArg(m.arg)+"').pin"+sc.d.close+" (a column of the upload)"), false
	case col == "code":
		return sc.fail(start, p, name+"('GROUP') already inserts the code; code is not an extra column",
			"write "+sc.example(m.fn, name, m.arg), ErrSyntax), false
	}
	m.column = col
	if m.fn == fnLastPromocode {
		m.fn = fnLastColumn
	} else {
		m.fn = fnColumn
	}
	return p + len(col), true
}

// filter parses the filter after "|", at p.
func (sc *scanner) filter(start int, m *macro, p int) (int, bool) {
	s := sc.s
	name := s[p:skipIdent(s, p)]
	q := skipSpace(s, p+len(name))
	switch name {
	case "url":
		m.filter = filterURL
	case "qr":
		m.filter, m.format = filterQR, "qr"
	case "barcode":
		return sc.barcodeFormat(start, m, q)
	default:
		return sc.unknownFilter(start, p, name), false
	}
	if q < len(s) && s[q] == '(' {
		return sc.fail(start, q, "| "+name+" takes no arguments", "write | "+name, ErrSyntax), false
	}
	if q < len(s) && s[q] == '|' {
		return sc.fail(start, q, "a macro takes at most one filter", "keep one of the filters", ErrSyntax), false
	}
	return q, true
}

// barcodeFormat parses the ('FORMAT') of | barcode at p.
func (sc *scanner) barcodeFormat(start int, m *macro, p int) (int, bool) {
	s := sc.s
	fix := "write | barcode('code128') (formats: " + strings.Join(barcodeFormats, ", ") + ")"
	if p >= len(s) || s[p] != '(' {
		return sc.unexpected(start, p, "(", fix), false
	}
	p = skipSpace(s, p+1)
	if p >= len(s) {
		return sc.unexpected(start, p, "a barcode format", fix), false
	}
	format, q, ok := sc.quoted(start, p, "barcode format", func(string) string { return "| barcode('code128')" })
	if !ok {
		return q, false
	}
	format = strings.ToLower(strings.TrimSpace(format))
	if !contains(barcodeFormats, format) {
		return sc.fail(start, p, "unknown barcode format '"+format+"'", fix, ErrSyntax), false
	}
	if q = skipSpace(s, q); q >= len(s) || s[q] != ')' {
		return sc.unexpected(start, q, ")", fix), false
	}
	m.filter, m.format = filterBarcode, format
	if format == "qr" {
		m.filter = filterQR
	}
	q = skipSpace(s, q+1)
	if q < len(s) && s[q] == '|' {
		return sc.fail(start, q, "a macro takes at most one filter", "keep one of the filters", ErrSyntax), false
	}
	return q, true
}

// unknownFilter reports the filter name at p.
func (sc *scanner) unknownFilter(start, p int, name string) int {
	switch lower := strings.ToLower(name); {
	case name == "":
		return sc.unexpected(start, p, "a filter name after |", "use "+knownFilters)
	case lower == "url" || lower == "qr" || lower == "barcode":
		return sc.fail(start, p, "filter names are lowercase", "write | "+lower, ErrUnknownName)
	case lower == "html" || lower == "escape" || lower == "html_escape" || lower == "escape_html":
		return sc.fail(start, p, "unknown filter | "+name+": values in the HTML part are HTML-escaped already",
			"remove | "+name+" (use | url inside links)", ErrUnknownName)
	case strings.Contains(lower, "url") || strings.Contains(lower, "uri"):
		return sc.fail(start, p, "unknown filter | "+name, "write | url", ErrUnknownName)
	case strings.Contains(lower, "qr") || strings.Contains(lower, "bar"):
		return sc.fail(start, p, "unknown filter | "+name, "write | qr or | barcode('code128')", ErrUnknownName)
	}
	return sc.fail(start, p, "unknown filter | "+name, "use "+knownFilters, ErrUnknownName)
}

var argUnescaper = strings.NewReplacer(`\'`, `'`, `\\`, `\`)

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
// contain the macro's closing delimiter close: either means that its
// closing quote is missing.
func unquote(s string, p int, close string) (string, int, quoteErr) {
	escaped := false
	for i := p + 1; i < len(s); i++ {
		switch s[i] {
		case '\'':
			v := s[p+1 : i]
			if escaped {
				v = argUnescaper.Replace(v)
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
		case close[0]:
			if strings.HasPrefix(s[i:], close) {
				return "", i, errNoClosingQuote
			}
		}
	}
	return "", len(s), errNoClosingQuote
}

// checkArg checks a decoded group or attribute name.
func (sc *scanner) checkArg(f fn, name, arg string) (msg, fix string) {
	noun := argNoun(f)
	switch {
	case strings.TrimSpace(arg) == "":
		return "the " + noun + " is empty", "write the " + noun + " between the quotes: " + sc.example(f, name, "")
	case !utf8.ValidString(arg):
		return "the " + noun + " is not valid UTF-8", "retype the " + noun
	case strings.IndexFunc(arg, unicode.IsControl) >= 0:
		return "the " + noun + " contains a control character", "remove it from the " + noun
	case f != fnAttr && utf8.RuneCountInString(arg) > maxNameLen:
		return "the group name is longer than 200 characters", "use the group's exact name"
	}
	return "", ""
}

// example writes the canonical form of a macro in the scanner's current
// delimiters, with arg (or a placeholder) as its argument.
func (sc *scanner) example(f fn, name, arg string) string {
	d := sc.d
	if d.open == "" {
		d = braces
	}
	if !f.takesArg() {
		return d.open + "client." + name + d.close
	}
	if arg == "" {
		arg = "GROUP"
		if f == fnAttr {
			arg = "NAME"
		}
	}
	return d.open + "client." + name + "('" + escapeArg(arg) + "')" + d.close
}

// escapeArg writes arg as it goes between single quotes.
func escapeArg(arg string) string { return argEscaper.Replace(arg) }

var argEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

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
// brace, angle bracket or line break: what the author probably meant as
// the name.
func guessArg(s string, p int) string {
	end := len(s)
	for i, r := range s[p:] {
		if strings.ContainsRune(typographicQuotes+"'\"(){}<>\r\n", r) {
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

// ident returns the identifier at p, lowercased.
func ident(s string, p int) string { return strings.ToLower(s[p:skipIdent(s, p)]) }

// skipIdent returns the offset after the identifier bytes at p.
func skipIdent(s string, p int) int {
	for p < len(s) && isIdentByte(s[p]) {
		p++
	}
	return p
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
	for i < len(s) && isSpaceByte(s[i]) {
		i++
	}
	return i
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isIdentByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
