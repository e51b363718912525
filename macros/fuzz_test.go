package macros

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseRender parses arbitrary templates and renders them with hostile
// values. It checks that parsing and rendering never panic, that problems
// and warnings point inside their part, that literal text survives byte
// for byte, that no inserted value adds a markup character to HTML (apart
// from the engine's own images) or a line break to the subject, that
// values are inserted once, unparsed, that Render agrees with Append*, and
// that writing every macro with the other delimiters ({{ }} and << >>)
// renders the same.
func FuzzParseRender(f *testing.F) {
	seeds := [][4]string{
		{"Hi {{client.first_name}}", "<p>{{ client.promocode('Spring 30%') }}</p>", "{{client.last_promocode('W')}}", "<script>"},
		{"", `{{client.promocode('a\'b\\c')}}{{client.attr('x')}}{{client.id}}{{client.email}}{{client.last_name}}`, "", "'\"&<>"},
		{"{{client.promocode(\"x\")}}", "{{client.email", "{{client.phone}} {{client.Email}}", "\r\n"},
		{"a\nb", "{{{client.id}}} {{ nope }} {{client}} {{client.}}", "{{client.promocode('')}}", "{{client.email}}"},
		{"", "{{client.promocode('G'}} {{client.email} x {{client.promocode(‘G’)}}", "é{{client.x('a','b')}}", "\xff"},
		{"", "{{client.last_promocode('g')}}{{client.promocode('G')}}", "{{\nclient\n.\nemail\n}}", ""},
		{"<<client.first_name>>", "<p><<client.promocode('G', fallback='none')>></p><<client.id}}", "<<client.unknown>> {client.id} <client.email>", "x"},
		{"", `<a href="{{client.attr('u')}}">x</a><a href=https://s/?p={{client.promocode('G') | url}}>`, "{{client.promocode('G').pin | url}}", "javascript:alert(1)"},
		{"{{client.promocode('G') | qr}}", `<img src="<<client.promocode('G') | barcode('code128')>>"><p>{{client.promocode('G') | qr}}`, "{{client.promocode('G') | barcode('ean13')}}", "400638133393"},
		{"", "<p title={{client.first_name}} {{client.id}}><script>{{client.email}}</script><{{client.id}}", "{{clinet.email}} {{promocode('G')}} client.email &lt;&lt;client.id&gt;&gt;", " =`"},
		{"", "{{client.last_promocode('W', fallback='never')}} {{client.promocode('G', fallback='x').pin}} {{client.promocode('G', fallback='y')}}", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, subject, html, text, value string) {
		src := Source{Subject: subject, HTML: html, Text: text}
		tpl, err := Parse(src)
		if err != nil {
			checkProblems(t, src, err)
			return
		}
		checkWarnings(t, src, tpl.Warnings())
		checkLiterals(t, src, tpl)
		checkGroups(t, tpl)

		empty := valuesFor(tpl, func(string) string { return "" })
		hostile := valuesFor(tpl, func(k string) string { return value + "<script>\"'&\r\n>" + k })
		for i := range hostile.UseFallback {
			hostile.UseFallback[i] = tpl.HasFallback(i) && len(value)%2 == 1
		}

		// HTML: inserted values add no markup character, apart from images.
		plain, got := tpl.AppendHTML(nil, empty), tpl.AppendHTML(nil, hostile)
		stripped := engineImages.ReplaceAll(got, nil)
		for _, c := range []string{"<", ">", `"`, "'"} {
			if n, m := strings.Count(string(plain), c), strings.Count(string(stripped), c); n != m {
				t.Fatalf("HTML has %d %q with hostile values, %d without:\n%q", m, c, n, got)
			}
		}

		// Text: every value inserted raw (or percent-encoded), exactly once per macro.
		want := len(tpl.text.tail)
		for i := range tpl.text.ops {
			o := &tpl.text.ops[i]
			v, _ := o.resolve(hostile)
			if o.filter == filterURL {
				v = string(appendURLEscaped(nil, v))
			}
			want += len(o.lit) + len(v)
		}
		if got := tpl.AppendText(nil, hostile); len(got) != want {
			t.Fatalf("text is %d bytes, want %d: %q", len(got), want, got)
		}

		// Subject: no line break at all (the template has none; values lose theirs).
		if got := tpl.AppendSubject(nil, hostile); strings.ContainsAny(string(got), "\r\n") {
			t.Fatalf("subject contains a line break: %q", got)
		}

		// Render agrees with Append*.
		m, _, err := tpl.Render(nil, hostile)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		if m.Subject != string(tpl.AppendSubject(nil, hostile)) || m.HTML != string(got) || m.Text != string(tpl.AppendText(nil, hostile)) {
			t.Fatalf("Render differs from Append*")
		}

		checkOtherDelimiters(t, src, tpl, hostile)

		// Compile agrees with Parse, and flags every group when none exists.
		_, err = Compile(context.Background(), src, GroupList{})
		hasGroups := len(tpl.NewCodeGroups())+len(tpl.RepeatGroups()) > 0
		if hasGroups != errors.Is(err, ErrUnknownGroup) || (!hasGroups && err != nil) {
			t.Fatalf("Compile with no groups: %v (template has groups: %v)", err, hasGroups)
		}
	})
}

// engineImages matches the <img> elements the image filters render.
var engineImages = regexp.MustCompile(`<img src="data:image/png;base64,[A-Za-z0-9+/=]*" alt="[^"'<>]*" width="[0-9]+" height="[0-9]+">`)

// checkOtherDelimiters writes every macro of src with the other form's
// delimiters and checks that the result renders the same, whenever it
// parses; it must parse unless a macro holds the other form's closer.
func checkOtherDelimiters(t *testing.T, src Source, tpl *Template, v *Values) {
	t.Helper()
	var swapped Source
	holdsCloser := false
	for _, p := range []struct {
		part Part
		s    string
		dst  *string
	}{{PartSubject, src.Subject, &swapped.Subject}, {PartHTML, src.HTML, &swapped.HTML}, {PartText, src.Text, &swapped.Text}} {
		macros, _, _ := parsePart(p.part, p.s, &budget{max: -1})
		var b strings.Builder
		last := 0
		for _, m := range macros {
			inner := p.s[m.start+2 : m.end-2]
			o := m.d.other()
			holdsCloser = holdsCloser || strings.Contains(inner, o.close) || strings.Contains(inner, o.open)
			b.WriteString(p.s[last:m.start] + o.open + inner + o.close)
			last = m.end
		}
		*p.dst = b.String() + p.s[last:]
	}
	other, err := Parse(swapped)
	if err != nil {
		if !holdsCloser {
			t.Fatalf("the template with the other delimiters does not parse: %v\n%+v", err, swapped)
		}
		return
	}
	if a, b := tpl.AppendText(nil, v), other.AppendText(nil, v); !bytes.Equal(a, b) {
		t.Fatalf("text renders %q with the other delimiters, %q with its own", b, a)
	}
	if a, b := tpl.AppendHTML(nil, v), other.AppendHTML(nil, v); !bytes.Equal(a, b) {
		t.Fatalf("HTML renders %q with the other delimiters, %q with its own", b, a)
	}
}

// valuesFor builds values for every group and attribute of tpl, and every
// customer field, from val(name).
func valuesFor(tpl *Template, val func(string) string) *Values {
	v := &Values{Customer: Customer{ID: val("id"), Email: val("email"), FirstName: val("first"), LastName: val("last"),
		Attributes: map[string]string{}}}
	for _, g := range tpl.NewCodeGroups() {
		v.NewCodes = append(v.NewCodes, val("new:"+g))
	}
	for _, g := range tpl.RepeatGroups() {
		v.LastCodes = append(v.LastCodes, val("last:"+g))
	}
	for _, a := range tpl.Attributes() {
		v.Customer.Attributes[a] = val("attr:" + a)
	}
	v.UseFallback = make([]bool, len(v.NewCodes))
	for i, g := range tpl.NewCodeGroups() {
		cols := map[string]string{}
		for _, c := range tpl.Columns(i) {
			cols[c] = val("col:" + g + "." + c)
		}
		v.Columns = append(v.Columns, cols)
	}
	return v
}

// checkProblems checks that a parse error lists problems (and warnings)
// that point inside their part.
func checkProblems(t *testing.T, src Source, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("Parse error %v is not a ValidationError with problems", err)
	}
	checkReports(t, src, ve.Problems, false)
	checkReports(t, src, ve.Warnings, true)
	for _, p := range ve.Problems {
		if !errors.Is(err, p.Err) {
			t.Fatalf("errors.Is(err, %v) = false", p.Err)
		}
	}
}

// checkWarnings checks the warnings of a template that parsed.
func checkWarnings(t *testing.T, src Source, warns []Problem) {
	t.Helper()
	checkReports(t, src, warns, true)
}

// checkReports checks that problems or warnings point inside their part,
// have a kind of their list, a message and a fix.
func checkReports(t *testing.T, src Source, reports []Problem, warnings bool) {
	t.Helper()
	if len(reports) > maxWarnings && warnings {
		t.Fatalf("%d warnings, more than %d", len(reports), maxWarnings)
	}
	for _, p := range reports {
		var s string
		switch p.Part {
		case PartSubject:
			s = src.Subject
		case PartHTML:
			s = src.HTML
		case PartText:
			s = src.Text
		default:
			t.Fatalf("problem in unknown part %q", p.Part)
		}
		lines := strings.Split(s, "\n")
		if p.Line < 1 || p.Line > len(lines) || p.Column < 1 || p.Column > utf8.RuneCountInString(lines[p.Line-1])+1 {
			t.Fatalf("problem at %d:%d is outside its part %q", p.Line, p.Column, s)
		}
		kinds := []error{ErrSyntax, ErrUnknownName, ErrTemplateTooLarge}
		if warnings {
			kinds = []error{ErrLooksLikeMacro, ErrURLNotEncoded, ErrUnsafeURL, ErrUnsafeContext}
		}
		if !slices.Contains(kinds, p.Err) {
			t.Fatalf("report kind %v (warning: %v)", p.Err, warnings)
		}
		if p.Message == "" || p.Fix == "" {
			t.Fatalf("report without message or fix: %+v", p)
		}
	}
}

// checkLiterals checks that each compiled part is its source with only
// the client.* macros taken out.
func checkLiterals(t *testing.T, src Source, tpl *Template) {
	t.Helper()
	for _, p := range []struct {
		part Part
		s    string
		c    *part
	}{{PartSubject, src.Subject, &tpl.subject}, {PartHTML, src.HTML, &tpl.html}, {PartText, src.Text, &tpl.text}} {
		macros, _, _ := parsePart(p.part, p.s, &budget{max: -1})
		if len(macros) != len(p.c.ops) {
			t.Fatalf("%s: %d macros, %d ops", p.part, len(macros), len(p.c.ops))
		}
		var b strings.Builder
		for i, m := range macros {
			b.WriteString(p.c.ops[i].lit)
			text := p.s[m.start:m.end]
			if !strings.HasPrefix(text, m.d.open) || !strings.HasSuffix(text, m.d.close) || !strings.Contains(text, "client") {
				t.Fatalf("%s: macro %q", p.part, text)
			}
			b.WriteString(text)
		}
		b.WriteString(p.c.tail)
		if b.String() != p.s {
			t.Fatalf("%s: literals and macros make %q, want %q", p.part, b.String(), p.s)
		}
	}
}

// checkGroups checks that group lists are deduplicated and disjoint.
func checkGroups(t *testing.T, tpl *Template) {
	t.Helper()
	seen := map[string]bool{}
	for _, g := range append(append([]string(nil), tpl.NewCodeGroups()...), tpl.RepeatGroups()...) {
		if seen[GroupKey(g)] || strings.TrimSpace(g) == "" {
			t.Fatalf("group %q listed twice or empty: %q %q", g, tpl.NewCodeGroups(), tpl.RepeatGroups())
		}
		seen[GroupKey(g)] = true
	}
}
