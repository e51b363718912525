package macros

import (
	"html"
	"slices"
	"strings"
)

// Near misses: text that looks like a macro but is not one would reach the
// customer as written. The rule that sorts them:
//
//   - An error, when the text is certainly meant as a promopool macro: an
//     opener ({{ or <<) followed by client. that does not parse (handled
//     by the scanner), a macro closed with the other form's closer, and a
//     client.NAME of the engine's vocabulary opened with a single { or <
//     or HTML-escaped as &lt;&lt;.
//   - A warning, when it may be meant literally or belong to the platform:
//     a client.NAME anywhere else outside a macro, an opener followed by a
//     misspelt client ({{clinet.email}}), by client without its dot
//     ({{client promocode('G')}}, {{client_email}}), or by an engine name
//     without client. ({{promocode('G')}}, {{first_name}}).

// maxStrayArgs is how far after client.NAME( a report looks for ")".
const maxStrayArgs = 300

// engineFunctions and engineFields are the names that, written without
// client., are taken for a promopool macro missing its prefix.
var (
	engineFunctions = []string{"promocode", "last_promocode", "attr"}
	engineFields    = []string{"email", "first_name", "last_name"}
)

// foreign looks at an opener at start, with delimiters d, whose contents
// do not start with client. — such macros pass through as they are, for
// the platform's own — and warns when they look like a broken promopool
// macro. k is the offset of the first word inside the opener.
func (sc *scanner) foreign(start int, d delim, k int) {
	s := sc.s
	word := s[k:skipIdent(s, k)]
	if word == "" {
		return
	}
	sc.d = d
	lw := strings.ToLower(word)
	p := skipSpace(s, k+len(word))
	var name, msg string
	anyName := false // an unknown name followed by "(" counts too
	switch {
	case lw == "client":
		q := p
		if q < len(s) && strings.IndexByte(",:;-/\\", s[q]) >= 0 {
			q = skipSpace(s, q+1)
		}
		p, name = q, ident(s, q)
		msg = "this looks like a promopool macro but has no dot after client, so it would be sent as written"
	case strings.HasPrefix(lw, "client_") || strings.HasPrefix(lw, "client-"):
		p, name = k+len("client_"), lw[len("client_"):]
		msg = "this is not a promopool macro and would be sent as written (if your platform fills it in itself, ignore this)"
	case p < len(s) && s[p] == '.' && len(lw) >= 4 && distance(lw, "client") <= 2:
		p = skipSpace(s, p+1)
		name, anyName = ident(s, p), true
		msg = "this looks like a promopool macro but starts with " + word + " instead of client, so it would be sent as written"
	case contains(engineFunctions, lw) && p < len(s) && s[p] == '(', contains(engineFields, lw) && strings.HasPrefix(s[p:], d.close):
		name, p = lw, k
		msg = "this looks like a promopool macro but lacks client., so it would be sent as written (if your platform fills it in itself, ignore this)"
	default:
		return
	}
	f, ok := lookup(name)
	if _, paren := sc.after(p + len(name)); !ok && !(anyName && name != "" && paren) {
		return
	}
	fix := "write " + sc.example(f, name, "")
	if !ok {
		fix = "write " + d.open + "client." + name + "(…)" + d.close
	}
	end, closed := sc.resync(p)
	if closed {
		fix = "write " + d.open + "client." + name + strings.TrimSpace(s[p+len(name):end-2]) + d.close
	}
	sc.warn(start, end, msg, fix, ErrLooksLikeMacro)
}

// after returns the offset after spaces at p and whether "(" follows.
func (sc *scanner) after(p int) (int, bool) {
	q := skipSpace(sc.s, p)
	return q, q < len(sc.s) && sc.s[q] == '('
}

// strays reports every client.NAME outside a macro, where NAME is one of
// the engine's names or is followed by "(": an error if a single { or <
// (or an HTML-escaped &lt;) opens it, a warning otherwise.
func (sc *scanner) strays() {
	s := sc.s
	spans := slices.Clone(sc.spans)
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	j, covered := 0, 0
	for i := 1; i < len(s); {
		// client or Client (an all-capitals CLIENT is not looked for).
		l := strings.Index(s[i:], "lient")
		if l < 0 {
			return
		}
		at := i + l - 1
		i = at + 6
		if s[at]|0x20 != 'c' || at > 0 && isIdentByte(s[at-1]) {
			continue
		}
		dot := skipSpace(s, at+6)
		if dot >= len(s) || s[dot] != '.' {
			continue
		}
		nameAt := skipSpace(s, dot+1)
		nameEnd := skipIdent(s, nameAt)
		_, known := lookup(strings.ToLower(s[nameAt:nameEnd]))
		next, paren := sc.after(nameEnd)
		if nameEnd == nameAt || !known && !paren {
			continue
		}
		for j < len(spans) && spans[j].start <= at {
			covered = max(covered, spans[j].end)
			j++
		}
		if at < covered {
			continue
		}
		end := nameEnd
		if paren {
			// Look for the ")" on the same line and not far, so that
			// scanning stays linear.
			if e := strings.IndexAny(s[next:min(len(s), next+maxStrayArgs)], ")\n"); e >= 0 && s[next+e] == ')' {
				end = next + e + 1
			}
		}
		if i = sc.stray(at, end); i < 0 {
			return
		}
	}
}

// stray reports the client.NAME… text s[at:end] found outside a macro and
// returns where to look for the next one, or -1 once the template has too
// many macros.
func (sc *scanner) stray(at, end int) int {
	s := sc.s
	call := squeeze(s[at:end])
	b := at
	for b > 0 && (s[b-1] == ' ' || s[b-1] == '\t') {
		b--
	}
	opener := ""
	switch {
	case b > 0 && (s[b-1] == '{' || s[b-1] == '<'):
		b--
		opener = s[b : b+1]
	case sc.part == PartHTML && hasSuffixFold(s[:b], "&lt;"):
		b -= 4
		if hasSuffixFold(s[:b], "&lt;") {
			b -= 4
		}
		opener = "&lt;"
		call = html.UnescapeString(call)
	}
	e := end
	for e < len(s) && (s[e] == ' ' || s[e] == '\t') {
		e++
	}
	for e < len(s) {
		switch {
		case s[e] == '}' || s[e] == '>':
			e++
			continue
		case sc.part == PartHTML && hasPrefixFold(s[e:], "&gt;"):
			e += 4
			continue
		}
		break
	}
	var msg, fix string
	switch opener {
	case "":
		sc.warn(at, e, call+" is not inside {{ }} or << >>, so it would be sent as written",
			"write {{"+call+"}} to insert it; if the text is meant literally, ignore this", ErrLooksLikeMacro)
		return e
	case "{":
		msg, fix = "this looks like a macro but opens with a single {, so it would be sent as written", "write {{"+call+"}}"
	case "<":
		msg, fix = "this looks like a macro but opens with a single <, so it would be sent as written", "write <<"+call+">> or {{"+call+"}}"
	default:
		msg = "this macro is HTML-escaped (&lt;&lt;…&gt;&gt;), so it would be sent as written"
		fix = "edit the HTML source and write <<" + call + ">> (or {{" + call + "}}) there, unescaped"
	}
	if !sc.budget.take() {
		sc.tooMany(b)
		return -1
	}
	return sc.problem(b, e, msg, fix, ErrSyntax)
}

// squeeze drops the white space of a client.NAME(…) call that is outside
// its quoted arguments, so that a suggested fix keeps a group name such as
// 'Spring 30%' as the marketer wrote it.
func squeeze(call string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(call); i++ {
		c := call[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// distance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of neighbours), for
// short ASCII words.
func distance(a, b string) int {
	if len(a) > 16 || len(b) > 16 {
		return 99
	}
	var d [17][17]int
	for i := 0; i <= len(a); i++ {
		d[i][0] = i
	}
	for j := 0; j <= len(b); j++ {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
