package macros

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseRender parses arbitrary templates and renders them with hostile
// values. It checks that parsing and rendering never panic, that problems
// point inside their part, that literal text survives byte for byte, that
// no inserted value adds a markup character to HTML or a line break to the
// subject, and that values are inserted once, unparsed.
func FuzzParseRender(f *testing.F) {
	seeds := [][4]string{
		{"Hi {{client.first_name}}", "<p>{{ client.promocode('Spring 30%') }}</p>", "{{client.last_promocode('W')}}", "<script>"},
		{"", `{{client.promocode('a\'b\\c')}}{{client.attr('x')}}{{client.id}}{{client.email}}{{client.last_name}}`, "", "'\"&<>"},
		{"{{client.promocode(\"x\")}}", "{{client.email", "{{client.phone}} {{client.Email}}", "\r\n"},
		{"a\nb", "{{{client.id}}} {{ nope }} {{client}} {{client.}}", "{{client.promocode('')}}", "{{client.email}}"},
		{"", "{{client.promocode('G'}} {{client.email} x {{client.promocode(‘G’)}}", "é{{client.x('a','b')}}", "\xff"},
		{"", "{{client.last_promocode('g')}}{{client.promocode('G')}}", "{{\nclient\n.\nemail\n}}", ""},
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
		checkLiterals(t, src, tpl)
		checkGroups(t, tpl)

		empty := valuesFor(tpl, func(string) string { return "" })
		hostile := valuesFor(tpl, func(k string) string { return value + "<script>\"'&\r\n>" + k })

		// HTML: inserted values add no markup character.
		plain, got := tpl.AppendHTML(nil, empty), tpl.AppendHTML(nil, hostile)
		for _, c := range []string{"<", ">", `"`, "'"} {
			if n, m := strings.Count(string(plain), c), strings.Count(string(got), c); n != m {
				t.Fatalf("HTML has %d %q with hostile values, %d without:\n%q", m, c, n, got)
			}
		}

		// Text: every value inserted raw, exactly once per macro.
		want := len(tpl.AppendText(nil, empty))
		for i := range tpl.text.ops {
			want += len(tpl.text.ops[i].value(hostile))
		}
		if got := tpl.AppendText(nil, hostile); len(got) != want {
			t.Fatalf("text is %d bytes, want %d: %q", len(got), want, got)
		}

		// Subject: no line break at all (the template has none; values lose theirs).
		if got := tpl.AppendSubject(nil, hostile); strings.ContainsAny(string(got), "\r\n") {
			t.Fatalf("subject contains a line break: %q", got)
		}

		// Compile agrees with Parse, and flags every group when none exists.
		_, err = Compile(context.Background(), src, GroupList{})
		hasGroups := len(tpl.NewCodeGroups())+len(tpl.RepeatGroups()) > 0
		if hasGroups != errors.Is(err, ErrUnknownGroup) || (!hasGroups && err != nil) {
			t.Fatalf("Compile with no groups: %v (template has groups: %v)", err, hasGroups)
		}
	})
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
	return v
}

// checkProblems checks that a parse error lists problems that point
// inside their part.
func checkProblems(t *testing.T, src Source, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("Parse error %v is not a ValidationError with problems", err)
	}
	for _, p := range ve.Problems {
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
		if p.Err != ErrSyntax && p.Err != ErrUnknownName || !errors.Is(err, p.Err) {
			t.Fatalf("problem kind %v", p.Err)
		}
		if p.Message == "" || p.Fix == "" {
			t.Fatalf("problem without message or fix: %+v", p)
		}
		if p.Macro != "" && !strings.HasPrefix(p.Macro, "{{") {
			t.Fatalf("problem macro %q does not start with {{", p.Macro)
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
			if !strings.HasPrefix(text, "{{") || !strings.HasSuffix(text, "}}") || !strings.Contains(text, "client") {
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
