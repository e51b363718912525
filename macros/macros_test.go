package macros

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testValues returns values for a template that draws from groups in the
// order given, with distinct recognisable codes.
func testValues(t *Template) *Values {
	v := &Values{Customer: Customer{ID: "42", Email: "ann@example.com", FirstName: "Ann", LastName: "Lee",
		Attributes: map[string]string{"tier": "gold", "Loyalty level": "3"}}}
	for _, g := range t.NewCodeGroups() {
		v.NewCodes = append(v.NewCodes, "NEW-"+g)
	}
	for _, g := range t.RepeatGroups() {
		v.LastCodes = append(v.LastCodes, "OLD-"+g)
	}
	return v
}

func mustParse(t *testing.T, src Source) *Template {
	t.Helper()
	tpl, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", src, err)
	}
	return tpl
}

func TestRenderText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no macro", "Hello, world", "Hello, world"},
		{"empty", "", ""},
		{"fields", "{{client.id}} {{client.email}} {{client.first_name}} {{client.last_name}}", "42 ann@example.com Ann Lee"},
		{"promocode", "Code: {{client.promocode('Spring')}}.", "Code: NEW-Spring."},
		{"spaces inside braces", "{{ client.promocode('Spring 30%') }}", "NEW-Spring 30%"},
		{"spaces between every token", "{{ \tclient . promocode ( 'S' ) \n}}", "NEW-S"},
		{"macro over lines", "{{\n  client.email\n}}!", "ann@example.com!"},
		{"escaped quote", `{{client.promocode('Mother\'s day')}}`, "NEW-Mother's day"},
		{"escaped backslash", `{{client.promocode('A\\B')}}`, `NEW-A\B`},
		{"escaped backslash before quote", `{{client.promocode('A\\')}}`, `NEW-A\`},
		{"attribute", "{{client.attr('tier')}}/{{client.attr('Loyalty level')}}", "gold/3"},
		{"attribute names match exactly", "[{{client.attr('Tier')}}]", "[]"},
		{"missing attribute", "[{{client.attr('none')}}]", "[]"},
		{"last_promocode", "{{client.last_promocode('Winter')}}", "OLD-Winter"},
		{"non-client macro passes through", "{{unsubscribe}} {{ .Name }} {{client}} {{clientele.x}}", "{{unsubscribe}} {{ .Name }} {{client}} {{clientele.x}}"},
		{"client word without dot", "{{ client }} {{client_id}}", "{{ client }} {{client_id}}"},
		{"triple braces", "{{{client.id}}}", "{42}"},
		{"nested in foreign macro", "{{ if x }}{{client.id}}{{ end }}", "{{ if x }}42{{ end }}"},
		{"lone braces", "{ } }} {{", "{ } }} {{"},
		{"byte for byte", "a\x00b\xff\xfe\r\n\tü€😀 {{ nope }}", "a\x00b\xff\xfe\r\n\tü€😀 {{ nope }}"},
		{"group name with braces and quotes", `{{client.promocode('{x} "y"')}}`, `NEW-{x} "y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := mustParse(t, Source{Text: tt.in})
			if got := string(tpl.AppendText(nil, testValues(tpl))); got != tt.want {
				t.Errorf("AppendText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name       string
		src        Source
		line, col  int
		macro      string
		kind       error
		msg, fix   string // substrings of Message and Fix
		part       Part
		wantNoProb bool
	}{
		{name: "double quotes", src: Source{HTML: `<p>{{client.promocode("Spring")}}</p>`}, line: 1, col: 4,
			macro: `{{client.promocode("Spring")}}`, kind: ErrSyntax, msg: "double quotes", fix: "{{client.promocode('Spring')}}"},
		{name: "double quote after field", src: Source{HTML: `{{client.email"}}`}, line: 1, col: 1,
			kind: ErrSyntax, msg: "double quotes", fix: "{{client.email}}"},
		{name: "typographic quotes", src: Source{HTML: `{{client.promocode(‘Spring’)}}`}, line: 1, col: 1,
			kind: ErrSyntax, msg: "typographic quotes", fix: "{{client.promocode('Spring')}}"},
		{name: "no quotes", src: Source{HTML: `{{client.promocode(Spring)}}`}, line: 1, col: 1,
			kind: ErrSyntax, msg: "must be in single quotes", fix: "{{client.promocode('Spring')}}"},
		{name: "missing closing quote", src: Source{HTML: `{{client.promocode('Spring)}}`}, line: 1, col: 1,
			kind: ErrSyntax, msg: "no closing single quote", fix: "{{client.promocode('Spring')}}"},
		{name: "missing closing quote at end", src: Source{HTML: `{{client.promocode('Spring`}, line: 1, col: 1,
			kind: ErrSyntax, msg: "no closing single quote"},
		{name: "quote across lines", src: Source{HTML: "{{client.promocode('Spr\ning')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "no closing single quote"},
		{name: "missing closing braces at end", src: Source{Text: "Hi {{client.email"}, part: PartText, line: 1, col: 4,
			macro: "{{client.email", kind: ErrSyntax, msg: "not closed with }}", fix: "{{client.email}}"},
		{name: "single closing brace", src: Source{Text: "{{client.email} and more"}, part: PartText, line: 1, col: 1,
			kind: ErrSyntax, msg: "not closed with }}"},
		{name: "unclosed before next macro", src: Source{HTML: "{{client.email {{client.id}}"}, line: 1, col: 1,
			macro: "{{client.email", kind: ErrSyntax, msg: "not closed with }}"},
		{name: "missing closing parenthesis", src: Source{HTML: "{{client.promocode('G'}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "expected )", fix: "{{client.promocode('G')}}"},
		{name: "unexpected text", src: Source{HTML: "{{client.email please}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: `expected }} but found "p"`},
		{name: "unknown function", src: Source{HTML: "{{client.promo('G')}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "unknown function client.promo", fix: "client.promocode('GROUP')"},
		{name: "unknown function with parens", src: Source{HTML: "{{client.give('G')}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "unknown function client.give", fix: "client.last_promocode('GROUP')"},
		{name: "unknown field", src: Source{HTML: "{{client.phone}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "unknown field client.phone", fix: "client.attr('NAME')"},
		{name: "attributes dotted", src: Source{HTML: "{{client.attributes.tier}}"}, line: 1, col: 1,
			kind: ErrUnknownName, fix: "{{client.attr('NAME')}}"},
		{name: "uppercase name", src: Source{HTML: "{{client.Email}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "lowercase", fix: "{{client.email}}"},
		{name: "uppercase client", src: Source{HTML: "{{Client.email}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "lowercase", fix: "write {{client.email}}"},
		{name: "no name", src: Source{HTML: "{{client.}}"}, line: 1, col: 1, kind: ErrSyntax, msg: "a name after client."},
		{name: "field with parens", src: Source{HTML: "{{client.email()}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "takes no parentheses", fix: "{{client.email}}"},
		{name: "field with argument", src: Source{HTML: "{{client.email('x')}}"}, line: 1, col: 1,
			kind: ErrUnknownName, msg: "takes no parentheses"},
		{name: "function without parens", src: Source{HTML: "{{client.promocode}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "needs a group name", fix: "{{client.promocode('GROUP')}}"},
		{name: "empty argument list", src: Source{HTML: "{{client.last_promocode()}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "needs a group name", fix: "{{client.last_promocode('GROUP')}}"},
		{name: "empty group name", src: Source{HTML: "{{client.promocode('')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "group name is empty"},
		{name: "blank group name", src: Source{HTML: "{{client.promocode('  ')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "group name is empty"},
		{name: "empty attribute name", src: Source{HTML: "{{client.attr('')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "attribute name is empty", fix: "{{client.attr('NAME')}}"},
		{name: "group name too long", src: Source{HTML: "{{client.promocode('" + strings.Repeat("é", 201) + "')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "longer than 200"},
		{name: "control character in name", src: Source{HTML: "{{client.promocode('a\tb')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "control character"},
		{name: "unknown escape", src: Source{HTML: `{{client.promocode('a\nb')}}`}, line: 1, col: 1,
			kind: ErrSyntax, msg: `unknown escape \n`, fix: `\'`},
		{name: "two arguments", src: Source{HTML: "{{client.promocode('a', 'b')}}"}, line: 1, col: 1,
			kind: ErrSyntax, msg: "takes a single group name"},
		{name: "line break in subject", src: Source{Subject: "Hello\r\nBcc: x@example.com"}, part: PartSubject, line: 1, col: 6,
			kind: ErrSyntax, msg: "line break"},
		{name: "position counts runes", src: Source{HTML: "Señor\n  ¡Olé! {{client.nope}}"}, line: 2, col: 9,
			kind: ErrUnknownName},
		{name: "position after CRLF", src: Source{Text: "a\r\nb\r\n€€{{client.nope}}"}, part: PartText, line: 3, col: 3,
			kind: ErrUnknownName},
		{name: "long macro is shortened", src: Source{HTML: "{{client.promocode(\"" + strings.Repeat("x", 100) + "\")}}"}, line: 1, col: 1,
			macro: "{{client.promocode(\"" + strings.Repeat("x", 39) + "…", kind: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.src)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ve.Problems), err)
			}
			p := ve.Problems[0]
			part := cmpOr(tt.part, PartHTML)
			if p.Part != part || p.Line != tt.line || p.Column != tt.col {
				t.Errorf("at %s %d:%d, want %s %d:%d", p.Part, p.Line, p.Column, part, tt.line, tt.col)
			}
			if tt.macro != "" && p.Macro != tt.macro {
				t.Errorf("Macro = %q, want %q", p.Macro, tt.macro)
			}
			if !errors.Is(err, tt.kind) || p.Err != tt.kind {
				t.Errorf("kind = %v, want %v", p.Err, tt.kind)
			}
			if !strings.Contains(p.Message, tt.msg) {
				t.Errorf("Message = %q, want it to contain %q", p.Message, tt.msg)
			}
			if !strings.Contains(p.Fix, tt.fix) || p.Fix == "" {
				t.Errorf("Fix = %q, want it to contain %q", p.Fix, tt.fix)
			}
		})
	}
}

func cmpOr(p, def Part) Part {
	if p == "" {
		return def
	}
	return p
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	src := Source{
		Subject: "{{client.promocode(\"A\")}} for {{client.first_name}}",
		HTML: "<p>{{client.promocode('Spring')}}</p>\n" +
			"<p>{{client.phone}}</p>\n" +
			"<p>{{client.promocode('Nope')}} {{client.last_promocode('nope')}}</p>\n" +
			"<p>{{client.promocode('')}}</p>",
		Text: "{{client.email",
	}
	_, err := Compile(context.Background(), src, GroupList{"spring", "A"})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Compile error = %v, want a *ValidationError", err)
	}
	type at struct {
		part      Part
		line, col int
		kind      error
	}
	var got []at
	for _, p := range ve.Problems {
		got = append(got, at{p.Part, p.Line, p.Column, p.Err})
	}
	want := []at{
		{PartSubject, 1, 1, ErrSyntax},
		{PartHTML, 2, 4, ErrUnknownName},
		{PartHTML, 3, 4, ErrUnknownGroup},
		{PartHTML, 3, 33, ErrUnknownGroup},
		{PartHTML, 4, 4, ErrSyntax},
		{PartText, 1, 1, ErrSyntax},
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %v\nwant %v\n%v", got, want, err)
	}
	for _, kind := range []error{ErrSyntax, ErrUnknownName, ErrUnknownGroup} {
		if !errors.Is(err, kind) {
			t.Errorf("errors.Is(err, %v) = false", kind)
		}
	}
	if errors.Is(err, ErrMissingCode) {
		t.Error("errors.Is(err, ErrMissingCode) = true")
	}
	if n := strings.Count(err.Error(), "\n"); n != len(want) {
		t.Errorf("Error() has %d lines after the summary, want %d:\n%s", n, len(want), err)
	}
	if !strings.Contains(err.Error(), `html line 3, column 4: {{client.promocode('Nope')}}: group "Nope" does not exist; fix: `) {
		t.Errorf("Error() does not describe the unknown group:\n%s", err)
	}
}

// recordingChecker records its calls and answers from a fixed list.
type recordingChecker struct {
	groups GroupList
	err    error
	short  bool
	calls  [][]string
}

func (c *recordingChecker) GroupsExist(ctx context.Context, names []string) ([]bool, error) {
	c.calls = append(c.calls, slices.Clone(names))
	if c.err != nil {
		return nil, c.err
	}
	found, _ := c.groups.GroupsExist(ctx, names)
	if c.short {
		found = found[:len(found)-1]
	}
	return found, nil
}

func TestCompileChecksGroups(t *testing.T) {
	errDB := errors.New("connection refused")
	src := Source{
		Subject: "{{client.last_promocode('Winter')}}",
		HTML:    "{{client.promocode('Spring')}} {{client.promocode('SPRING')}} {{client.last_promocode('Autumn')}}",
		Text:    "{{client.promocode('Summer')}} {{client.last_promocode('winter')}}",
	}
	t.Run("one call with every group once", func(t *testing.T) {
		c := &recordingChecker{groups: GroupList{"spring", "summer", "winter", "autumn"}}
		if _, err := Compile(context.Background(), src, c); err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"Spring", "Summer", "Winter", "Autumn"}}
		if !slices.EqualFunc(c.calls, want, slices.Equal) {
			t.Errorf("calls = %q, want %q", c.calls, want)
		}
	})
	t.Run("not called without groups", func(t *testing.T) {
		c := &recordingChecker{}
		if _, err := Compile(context.Background(), Source{HTML: "{{client.email}}"}, c); err != nil {
			t.Fatal(err)
		}
		if len(c.calls) != 0 {
			t.Errorf("checker called %d times", len(c.calls))
		}
	})
	t.Run("checker error is wrapped", func(t *testing.T) {
		_, err := Compile(context.Background(), src, &recordingChecker{err: errDB})
		var ve *ValidationError
		if !errors.Is(err, errDB) || errors.As(err, &ve) {
			t.Errorf("err = %v, want it to wrap %v and not be a ValidationError", err, errDB)
		}
	})
	t.Run("short answer", func(t *testing.T) {
		_, err := Compile(context.Background(), src, &recordingChecker{groups: GroupList{"spring"}, short: true})
		if err == nil || !strings.Contains(err.Error(), "3 answers for 4 names") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nil checker", func(t *testing.T) {
		if _, err := Compile(context.Background(), src, nil); !errors.Is(err, ErrNilChecker) {
			t.Errorf("err = %v, want ErrNilChecker", err)
		}
	})
	t.Run("syntax problems do not hide unknown groups", func(t *testing.T) {
		_, err := Compile(context.Background(), Source{HTML: `{{client.promocode("x")}} {{client.promocode('Gone')}}`}, GroupList{})
		if !errors.Is(err, ErrSyntax) || !errors.Is(err, ErrUnknownGroup) {
			t.Errorf("err = %v, want both a syntax problem and an unknown group", err)
		}
	})
}

func TestGroupsAndAttributes(t *testing.T) {
	tests := []struct {
		name                string
		src                 Source
		newGroups, repeated []string
		attrs               []string
	}{
		{name: "none", src: Source{HTML: "{{client.email}}"}},
		{name: "first appearance across parts, case-insensitive",
			src: Source{
				Subject: "{{client.promocode('b')}}",
				HTML:    "{{client.promocode('A')}} {{client.promocode('B')}} {{client.promocode('a')}}",
				Text:    "{{client.promocode('c')}}",
			},
			newGroups: []string{"b", "A", "c"}},
		{name: "repeat groups exclude groups drawn in the message",
			src: Source{
				Subject: "{{client.last_promocode('Spring')}} {{client.last_promocode('Old')}}",
				Text:    "{{client.promocode('SPRING')}} {{client.last_promocode('old')}} {{client.last_promocode('Older')}}",
			},
			newGroups: []string{"SPRING"}, repeated: []string{"Old", "Older"}},
		{name: "attributes deduplicated exactly",
			src:   Source{HTML: "{{client.attr('tier')}} {{client.attr('Tier')}} {{client.attr('tier')}}"},
			attrs: []string{"tier", "Tier"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := mustParse(t, tt.src)
			if got := tpl.NewCodeGroups(); !slices.Equal(got, tt.newGroups) {
				t.Errorf("NewCodeGroups = %q, want %q", got, tt.newGroups)
			}
			if got := tpl.RepeatGroups(); !slices.Equal(got, tt.repeated) {
				t.Errorf("RepeatGroups = %q, want %q", got, tt.repeated)
			}
			if got := tpl.Attributes(); !slices.Equal(got, tt.attrs) {
				t.Errorf("Attributes = %q, want %q", got, tt.attrs)
			}
		})
	}
}

func TestOneCodePerGroupPerMessage(t *testing.T) {
	tpl := mustParse(t, Source{
		Subject: "{{client.last_promocode('spring')}} {{client.promocode('Spring')}}",
		HTML:    "{{client.promocode('SPRING')}} {{client.last_promocode('Spring')}} {{client.last_promocode('Winter')}}",
		Text:    "{{client.promocode('spring')}}",
	})
	v := &Values{NewCodes: []string{"S-1"}, LastCodes: []string{"W-0"}}
	for _, c := range []struct {
		part, got, want string
	}{
		{"subject", string(tpl.AppendSubject(nil, v)), "S-1 S-1"},
		{"html", string(tpl.AppendHTML(nil, v)), "S-1 S-1 W-0"},
		{"text", string(tpl.AppendText(nil, v)), "S-1"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.part, c.got, c.want)
		}
	}
	v.LastCodes = []string{""} // never issued from Winter
	if got, want := string(tpl.AppendHTML(nil, v)), "S-1 S-1 "; got != want {
		t.Errorf("html without a last code = %q, want %q", got, want)
	}
}

func TestEscaping(t *testing.T) {
	evil := `<script>alert("x" & 'y')</script>` + "\r\nBcc: eve@example.com"
	src := "{{client.id}}|{{client.email}}|{{client.first_name}}|{{client.last_name}}|{{client.attr('a')}}|{{client.promocode('G')}}|{{client.last_promocode('H')}}"
	tpl := mustParse(t, Source{Subject: src, HTML: "<b title='x'>" + src + "</b>", Text: src})
	v := &Values{
		Customer: Customer{ID: evil, Email: evil, FirstName: evil, LastName: evil, Attributes: map[string]string{"a": evil}},
		NewCodes: []string{evil}, LastCodes: []string{evil},
	}
	tests := []struct {
		part, got, value, prefix, suffix string
	}{
		{"html", string(tpl.AppendHTML(nil, v)),
			`&lt;script&gt;alert(&#34;x&#34; &amp; &#39;y&#39;)&lt;/script&gt;` + "\r\nBcc: eve@example.com", "<b title='x'>", "</b>"},
		{"text", string(tpl.AppendText(nil, v)), evil, "", ""},
		{"subject", string(tpl.AppendSubject(nil, v)), `<script>alert("x" & 'y')</script>  Bcc: eve@example.com`, "", ""},
	}
	for _, tt := range tests {
		want := tt.prefix + strings.Repeat(tt.value+"|", 6) + tt.value + tt.suffix
		if tt.got != want {
			t.Errorf("%s:\n got %q\nwant %q", tt.part, tt.got, want)
		}
	}
}

func TestValuesAreNeverParsed(t *testing.T) {
	tpl := mustParse(t, Source{Subject: "{{client.first_name}}", HTML: "{{client.first_name}}", Text: "{{client.first_name}}"})
	macro := "{{client.email}} {{ client.id }}"
	v := &Values{Customer: Customer{FirstName: macro, Email: "leak@example.com"}, NewCodes: []string{"LEAK"}}
	for _, got := range []string{
		string(tpl.AppendSubject(nil, v)), string(tpl.AppendHTML(nil, v)), string(tpl.AppendText(nil, v)),
	} {
		if got != macro {
			t.Errorf("rendered %q, want the first name %q as it is", got, macro)
		}
	}
}

func TestMissingValuesRenderEmpty(t *testing.T) {
	tpl := mustParse(t, Source{HTML: "[{{client.promocode('A')}}|{{client.promocode('B')}}|{{client.last_promocode('C')}}|{{client.attr('x')}}|{{client.email}}]"})
	for _, v := range []*Values{nil, {}, {NewCodes: []string{"a"}}} {
		want := "[||||]"
		if v != nil && len(v.NewCodes) == 1 {
			want = "[a||||]"
		}
		if got := string(tpl.AppendHTML(nil, v)); got != want {
			t.Errorf("AppendHTML(%+v) = %q, want %q", v, got, want)
		}
	}
}

func TestAppendKeepsBuffer(t *testing.T) {
	tpl := mustParse(t, Source{Text: "Hi {{client.first_name}}"})
	buf := make([]byte, 0, 64)
	buf = append(buf, "prefix:"...)
	out := tpl.AppendText(buf, &Values{Customer: Customer{FirstName: "Ann"}})
	if string(out) != "prefix:Hi Ann" || &out[0] != &buf[0] {
		t.Errorf("AppendText = %q (same array: %v)", out, &out[0] == &buf[0])
	}
}

func TestCheckValues(t *testing.T) {
	tpl := mustParse(t, Source{HTML: "{{client.promocode('A')}} {{client.promocode('B')}} {{client.last_promocode('C')}}"})
	tests := []struct {
		name  string
		v     *Values
		group string // the group named in the error, "" for no error
	}{
		{"complete", &Values{NewCodes: []string{"a", "b"}}, ""},
		{"last codes may be empty", &Values{NewCodes: []string{"a", "b"}, LastCodes: []string{""}}, ""},
		{"nil", nil, `"A"`},
		{"short", &Values{NewCodes: []string{"a"}}, `"B"`},
		{"empty code", &Values{NewCodes: []string{"", "b"}}, `"A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tpl.CheckValues(tt.v)
			if tt.group == "" {
				if err != nil {
					t.Errorf("CheckValues = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMissingCode) || !strings.Contains(err.Error(), tt.group) {
				t.Errorf("CheckValues = %v, want ErrMissingCode naming %s", err, tt.group)
			}
		})
	}
}

func TestPreviewValues(t *testing.T) {
	tpl := mustParse(t, Source{
		Subject: "{{client.first_name}}",
		HTML:    "{{client.promocode('Spring 30%')}} {{client.last_promocode('spring 30%')}} {{client.last_promocode('Winter')}} {{client.attr('tier')}} {{client.email}} {{client.id}} {{client.last_name}}",
	})
	got := string(tpl.AppendHTML(nil, tpl.PreviewValues(nil)))
	want := "PREVIEW-Spring 30% PREVIEW-Spring 30% PREVIEW-LAST-Winter PREVIEW-ATTR-tier customer@example.com 1234567 Sample"
	if got != want {
		t.Errorf("preview = %q, want %q", got, want)
	}
	c := &Customer{FirstName: "Ann", Email: "ann@example.com"}
	got = string(tpl.AppendHTML(nil, tpl.PreviewValues(c)))
	want = "PREVIEW-Spring 30% PREVIEW-Spring 30% PREVIEW-LAST-Winter  ann@example.com  "
	if got != want {
		t.Errorf("preview for a customer = %q, want %q", got, want)
	}
	if err := tpl.CheckValues(tpl.PreviewValues(nil)); err != nil {
		t.Errorf("preview values are incomplete: %v", err)
	}
}

func TestGroupKey(t *testing.T) {
	tests := []struct{ a, b string }{
		{"Spring", "spring"}, {"SPRING 30%", "spring 30%"}, {"Ёлка", "ёлка"}, {"ÄÖÜ", "äöü"},
	}
	for _, tt := range tests {
		if GroupKey(tt.a) != GroupKey(tt.b) {
			t.Errorf("GroupKey(%q) != GroupKey(%q)", tt.a, tt.b)
		}
	}
	if GroupKey("Spring ") == GroupKey("Spring") {
		t.Error("GroupKey ignores spaces; it must not")
	}
}

func TestGroupList(t *testing.T) {
	found, err := GroupList{"Spring", "Winter"}.GroupsExist(context.Background(), []string{"SPRING", "summer", "winter"})
	if err != nil || !slices.Equal(found, []bool{true, false, true}) {
		t.Errorf("GroupsExist = %v, %v", found, err)
	}
}

// TestConcurrentRender renders one template from many goroutines; run with
// -race it proves that rendering does not write to the Template.
func TestConcurrentRender(t *testing.T) {
	tpl := mustParse(t, Source{Subject: "{{client.first_name}}", HTML: "<p>{{client.promocode('G')}}</p>", Text: "{{client.attr('a')}}"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			v := &Values{Customer: Customer{FirstName: fmt.Sprint(i), Attributes: map[string]string{"a": "x"}}, NewCodes: []string{fmt.Sprint("C", i)}}
			var buf []byte
			for range 200 {
				buf = tpl.AppendHTML(buf[:0], v)
				buf = tpl.AppendSubject(buf, v)
				buf = tpl.AppendText(buf, v)
				if want := fmt.Sprintf("<p>C%d</p>%dx", i, i); string(buf) != want {
					errs <- fmt.Errorf("got %q, want %q", buf, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
