package macros

import (
	"errors"
	"strings"
	"testing"
)

// TestAngleDelimiters checks that << >> is the same macro as {{ }}, in every
// form, and that the two closers do not mix.
func TestAngleDelimiters(t *testing.T) {
	tests := []struct{ braces, angles string }{
		{"{{client.promocode('Spring 30%')}}", "<<client.promocode('Spring 30%')>>"},
		{"{{ client.last_promocode( 'W' ) }}", "<< client.last_promocode( 'W' ) >>"},
		{"{{client.id}} {{client.email}} {{client.first_name}} {{client.last_name}}", "<<client.id>> <<client.email>> <<client.first_name>> <<client.last_name>>"},
		{"{{client.attr('tier')}}", "<<client.attr('tier')>>"},
		{"{{client.promocode('G', fallback='none')}}", "<<client.promocode('G', fallback='none')>>"},
		{"{{client.promocode('G').pin}} {{client.promocode('G') | url}}", "<<client.promocode('G').pin>> <<client.promocode('G') | url>>"},
		{"{{client.promocode('a}b')}}", "<<client.promocode('a}b')>>"},
		{"{{client.promocode('a>>b')}}", "<<client.promocode('a}}b')>>"}, // each form's own closer may not stand in a name
		{"{{{client.id}}}", "<<<client.id>>>"},
		{"x{{client.id}}<<client.email>>y", "x<<client.id>>{{client.email}}y"},
	}
	for _, tt := range tests {
		t.Run(tt.angles, func(t *testing.T) {
			a := mustParse(t, Source{Text: tt.braces})
			b := mustParse(t, Source{Text: tt.angles})
			va, vb := testValues(a), testValues(b)
			for i := range va.NewCodes {
				va.NewCodes[i], vb.NewCodes[i] = "C", "C"
			}
			va.Columns = []map[string]string{{"pin": "1"}}
			vb.Columns = va.Columns
			ga, gb := string(a.AppendText(nil, va)), string(b.AppendText(nil, vb))
			if strings.NewReplacer("{", "<", "}", ">").Replace(ga) != gb || strings.Contains(gb, "client") {
				t.Errorf("braces render %q, angles %q", ga, gb)
			}
		})
	}
	for _, bad := range []struct{ in, msg string }{
		{"{{client.id>>", "opens with {{ but closes with >>"},
		{"<<client.id}}", "opens with << but closes with }}"},
		{"<<client.id>", "not closed with >>"},
		{"<<client.promocode('G'>>", "expected ) but found >"},
		{"<<client.promocode('a>>b')>>", "no closing single quote"},
		{"<<client.unknown>>", "unknown field client.unknown"},
		{"<<client.promocod('G')>>", "unknown function client.promocod"},
		{"<<Client.email>>", "lowercase"},
	} {
		_, err := Parse(Source{Text: bad.in})
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || !strings.Contains(ve.Problems[0].Message, bad.msg) {
			t.Errorf("Parse(%q) = %v, want one problem %q", bad.in, err, bad.msg)
			continue
		}
		if p := ve.Problems[0]; !strings.HasPrefix(p.Macro, bad.in[:2]) || p.Column != 1 {
			t.Errorf("Parse(%q): problem at column %d on %q", bad.in, p.Column, p.Macro)
		}
	}
	// The fix speaks the author's form.
	_, err := Parse(Source{HTML: `<<client.promocode("Spring")>>`})
	if err == nil || !strings.Contains(err.Error(), "use single quotes: <<client.promocode('Spring')>>") {
		t.Errorf("fix for << >> = %v", err)
	}
}

// TestNearMisses checks what looks like a macro but is not one: an error
// when it is certainly meant as a promopool macro, a warning otherwise,
// and nothing for the platform's own macros and ordinary text.
func TestNearMisses(t *testing.T) {
	tests := []struct {
		name, in string
		part     Part
		kind     error // ErrSyntax etc. for an error, ErrLooksLikeMacro for a warning, nil for neither
		col      int
		msg, fix string
	}{
		{"single brace", "Hi {client.first_name}!", PartText, ErrSyntax, 4, "single {", "{{client.first_name}}"},
		{"single brace, double close", "{client.promocode('G')}}", PartText, ErrSyntax, 1, "single {", "{{client.promocode('G')}}"},
		{"single brace keeps a spaced group name", "{client.promocode( 'Spring 30%' )}}", PartText, ErrSyntax, 1, "single {", "write {{client.promocode('Spring 30%')}}"},
		{"single angle keeps a spaced group name", "<client.promocode('Spring 30%')>>", PartText, ErrSyntax, 1, "single <", "write <<client.promocode('Spring 30%')>> or {{client.promocode('Spring 30%')}}"},
		{"single angle", "<client.email>", PartText, ErrSyntax, 1, "single <", "<<client.email>>"},
		{"spaced single brace", "{ client.id }", PartText, ErrSyntax, 1, "single {", "{{client.id}}"},
		{"HTML-escaped angles", "<p>&lt;&lt;client.promocode(&#39;Spring&#39;)&gt;&gt;</p>", PartHTML, ErrSyntax, 4, "HTML-escaped", "<<client.promocode('Spring')>>"},
		{"escaped angles in text part are text", "&lt;&lt;client.id&gt;&gt;", PartText, ErrLooksLikeMacro, 9, "not inside", "{{client.id}}"},
		{"bare field in prose", "Your client.email is", PartText, ErrLooksLikeMacro, 6, "client.email is not inside", "{{client.email}}"},
		{"bare function", "code: client.promocode('G').", PartText, ErrLooksLikeMacro, 7, "not inside", "{{client.promocode('G')}}"},
		{"bare misspelt function", "client.promocod('G')", PartText, ErrLooksLikeMacro, 1, "not inside", "{{client.promocod('G')}}"},
		{"square brackets", "[client.email]", PartText, ErrLooksLikeMacro, 2, "not inside", ""},
		{"misspelt client", "{{clinet.email}}", PartText, ErrLooksLikeMacro, 1, "starts with clinet", "write {{client.email}}"},
		{"swapped letters", "<<cleint.promocode('G')>>", PartText, ErrLooksLikeMacro, 1, "starts with cleint", "<<client.promocode('G')>>"},
		{"plural", "{{ clients.first_name }}", PartText, ErrLooksLikeMacro, 1, "clients", "{{client.first_name}}"},
		{"misspelt client, unknown function", "{{clinet.promocod('G')}}", PartText, ErrLooksLikeMacro, 1, "clinet", "{{client.promocod('G')}}"},
		{"no dot", "{{ client promocode('G') }}", PartText, ErrLooksLikeMacro, 1, "no dot", "{{client.promocode('G')}}"},
		{"comma for dot", "{{client,email}}", PartText, ErrLooksLikeMacro, 1, "no dot", "{{client.email}}"},
		{"underscore for dot", "{{client_first_name}}", PartText, ErrLooksLikeMacro, 1, "not a promopool macro", "{{client.first_name}}"},
		{"no client.", "{{promocode('G')}}", PartText, ErrLooksLikeMacro, 1, "lacks client.", "{{client.promocode('G')}}"},
		{"no client., angles", "<<first_name>>", PartText, ErrLooksLikeMacro, 1, "lacks client.", "<<client.first_name>>"},
		{"platform macro", "{{unsubscribe_url}} {{ .Name }} {{client}} {{ client }} {{id}}", PartText, nil, 0, "", ""},
		{"platform macro with client words", "{{clientele.x}} {{client_id_hash}} {{silent.mode}}", PartText, nil, 0, "", ""},
		{"hostnames and identifiers", "https://client.example.com/ myclient.email client.unknown", PartText, nil, 0, "", ""},
		{"inside a group name", "{{client.promocode('client.email')}}", PartText, nil, 0, "", ""},
		{"inside a fallback", "{{client.promocode('G', fallback='see client.id')}}", PartText, nil, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Source{Text: tt.in}
			if tt.part == PartHTML {
				src = Source{HTML: tt.in}
			}
			tpl, err := Parse(src)
			var ve *ValidationError
			var probs, warns []Problem
			switch {
			case errors.As(err, &ve):
				probs, warns = ve.Problems, ve.Warnings
			case err != nil:
				t.Fatal(err)
			default:
				warns = tpl.Warnings()
			}
			got := append(probs, warns...)
			if tt.kind == nil {
				if len(got) != 0 {
					t.Fatalf("want nothing reported, got %v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one report, got %d: %v", len(got), got)
			}
			p := got[0]
			if isWarn := len(warns) == 1; isWarn != (tt.kind == ErrLooksLikeMacro) || p.Err != tt.kind {
				t.Errorf("kind %v (warning: %v), want %v", p.Err, isWarn, tt.kind)
			}
			if p.Part != tt.part || p.Line != 1 || p.Column != tt.col {
				t.Errorf("at %s %d:%d, want %s 1:%d", p.Part, p.Line, p.Column, tt.part, tt.col)
			}
			if !strings.Contains(p.Message, tt.msg) || !strings.Contains(p.Fix, tt.fix) || p.Fix == "" {
				t.Errorf("message %q / fix %q, want %q / %q", p.Message, p.Fix, tt.msg, tt.fix)
			}
		})
	}
}

// TestWarningsDoNotChangeRendering checks that a warned template still
// renders its text byte for byte, and that warnings are bounded.
func TestWarningsDoNotChangeRendering(t *testing.T) {
	in := strings.Repeat("client.email {{first_name}} ", 300)
	tpl := mustParse(t, Source{Text: in})
	if got := string(tpl.AppendText(nil, testValues(tpl))); got != in {
		t.Errorf("rendering changed the text")
	}
	if n := len(tpl.Warnings()); n != maxWarnings {
		t.Errorf("%d warnings, want the cap %d", n, maxWarnings)
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"client", "client", 0}, {"clinet", "client", 1}, {"cliente", "client", 1}, {"clent", "client", 1}, {"klient", "client", 1}, {"silent", "client", 2}, {"clientele", "client", 3}, {"", "client", 6}} {
		if got := distance(tt.a, tt.b); got != tt.d {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}
