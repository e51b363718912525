package macros

import (
	"errors"
	"strings"
	"testing"
)

func TestURLFilter(t *testing.T) {
	tpl := mustParse(t, Source{
		Subject: "{{client.promocode('G') | url}}",
		HTML:    `<a href="https://shop.example/?promo={{client.promocode('G') | url}}&amp;e={{ client.email|url }}">{{client.promocode('G')}}</a>`,
		Text:    "https://shop.example/{{client.attr('path') | url}}?promo={{client.promocode('G') | url}}",
	})
	if w := tpl.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	v := &Values{NewCodes: []string{`A&B C/D?E#F+G%H"I'<J>~._-é`}, Customer: Customer{Email: "ann+promo@example.com",
		Attributes: map[string]string{"path": "../admin"}}}
	enc := "A%26B%20C%2FD%3FE%23F%2BG%25H%22I%27%3CJ%3E~._-%C3%A9"
	m, _, err := tpl.Render(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != enc {
		t.Errorf("subject %q, want %q", m.Subject, enc)
	}
	if want := `<a href="https://shop.example/?promo=` + enc + `&amp;e=ann%2Bpromo%40example.com">A&amp;B C/D?E#F+G%H&#34;I&#39;&lt;J&gt;~._-é</a>`; m.HTML != want {
		t.Errorf("html\n got %q\nwant %q", m.HTML, want)
	}
	if want := "https://shop.example/..%2Fadmin?promo=" + enc; m.Text != want {
		t.Errorf("text %q, want %q", m.Text, want)
	}
	for _, bad := range []struct{ in, msg string }{
		{"{{client.id | URL}}", "lowercase"},
		{"{{client.id | html}}", "HTML-escaped already"},
		{"{{client.id | urlencode}}", "write | url"},
		{"{{client.id | url()}}", "takes no arguments"},
		{"{{client.id | url | qr}}", "at most one filter"},
		{"{{client.id | }}", "a filter name after |"},
		{"{{client.id | upper}}", "unknown filter | upper"},
	} {
		if _, err := Parse(Source{Text: bad.in}); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("Parse(%q) = %v, want %q", bad.in, err, bad.msg)
		}
	}
}

// TestHTMLContexts checks the escaping and link checks by place in the HTML,
// and the warnings validation gives for each.
func TestHTMLContexts(t *testing.T) {
	hostile := "javascript:alert(1)"
	tests := []struct {
		name, html string
		value      string // the value of client.attr('v') and of the code
		want       string
		warn       error // the one warning expected, or nil
	}{
		{"text", "<p>{{client.attr('v')}}</p>", `x" onmouseover="y`, "<p>x&#34; onmouseover=&#34;y</p>", nil},
		{"quoted attribute", `<p title="{{client.attr('v')}}">`, `x" onmouseover="y`, `<p title="x&#34; onmouseover=&#34;y">`, nil},
		{"single-quoted attribute", `<p title='{{client.attr('v')}}'>`, `x' a='y`, `<p title='x&#39; a=&#39;y'>`, nil},
		{"unquoted attribute", `<p title={{client.attr('v')}}>`, "x onmouseover=alert(1)", `<p title=x&#32;onmouseover&#61;alert(1)>`, nil},
		{"unquoted attribute, tab and backtick", `<p title={{client.attr('v')}}>`, "a\tb`c", `<p title=a&#9;b&#96;c>`, nil},
		{"href start: javascript renders empty", `<a href="{{client.attr('v')}}">`, hostile, `<a href="">`, ErrUnsafeURL},
		{"href start: hidden javascript", `<a href="{{client.attr('v')}}">`, " \x01java\tscript:alert(1)", `<a href="">`, ErrUnsafeURL},
		{"href start: uppercase scheme", `<a href='{{client.attr('v')}}'>`, "JavaScript:x", `<a href=''>`, ErrUnsafeURL},
		{"href start: data", `<a href="{{client.attr('v')}}">`, "data:text/html,x", `<a href="">`, ErrUnsafeURL},
		{"href start: https passes", `<a href="{{client.attr('v')}}">`, "https://ex.example/a?b=1&c=2", `<a href="https://ex.example/a?b=1&amp;c=2">`, ErrUnsafeURL},
		{"href start: mailto passes", `<a href="{{client.attr('v')}}">`, "mailto:ann@example.com", `<a href="mailto:ann@example.com">`, ErrUnsafeURL},
		{"href start: relative passes", `<a href="{{client.attr('v')}}">`, "/offers/a:b", `<a href="/offers/a:b">`, ErrUnsafeURL},
		{"src unquoted start", `<img src={{client.attr('v')}}>`, hostile, `<img src=>`, ErrUnsafeURL},
		{"scheme position: no colon allowed", `<a href="java{{client.attr('v')}}">`, "script:alert(1)", `<a href="java">`, ErrUnsafeURL},
		{"scheme position: plain text passes", `<a href="p{{client.attr('v')}}">`, "age", `<a href="page">`, ErrUnsafeURL},
		{"after the scheme: escaped only", `<a href="https://x.example/{{client.attr('v')}}">`, hostile, `<a href="https://x.example/javascript:alert(1)">`, ErrURLNotEncoded},
		{"code in a link", `<a href="https://x.example/?p={{client.promocode('G')}}">`, "A&B", `<a href="https://x.example/?p=A&amp;B">`, ErrURLNotEncoded},
		{"code beginning a link", `<a href="{{client.promocode('G')}}">`, hostile, `<a href="">`, ErrURLNotEncoded},
		{"url filter beginning a link", `<a href="{{client.attr('v') | url}}">`, hostile, `<a href="javascript%3Aalert%281%29">`, nil},
		{"non-URL attribute keeps javascript as text", `<p title="{{client.attr('v')}}">`, hostile, `<p title="javascript:alert(1)">`, nil},
		{"attribute name case", `<A HREF="{{client.attr('v')}}">`, hostile, `<A HREF="">`, ErrUnsafeURL},
		{"after another attribute", `<a class=x title="a>b" href="{{client.attr('v')}}">`, hostile, `<a class=x title="a>b" href="">`, ErrUnsafeURL},
		{"comment", `<!-- <a href="{{client.attr('v')}}"> -->`, hostile, `<!-- <a href="javascript:alert(1)"> -->`, nil},
		{"script", `<script>var a = "{{client.attr('v')}}";</script>`, `";x`, `<script>var a = "&#34;;x";</script>`, ErrUnsafeContext},
		{"after script", `<script>x</SCRIPT ><a href="{{client.attr('v')}}">`, hostile, `<script>x</SCRIPT ><a href="">`, ErrUnsafeURL},
		{"style attribute", `<p style="color:{{client.attr('v')}}">`, "red", `<p style="color:red">`, ErrUnsafeContext},
		{"event attribute", `<p onclick="f('{{client.attr('v')}}')">`, "x", `<p onclick="f('x')">`, ErrUnsafeContext},
		{"inside a tag", `<p {{client.attr('v')}}>`, "onclick=alert(1)", `<p onclick&#61;alert(1)>`, ErrUnsafeContext},
		{"right after <", `a <{{client.attr('v')}}`, "img src=x onerror=alert(1)>", `a <&#105;mg src=x onerror=alert(1)&gt;`, ErrUnsafeContext},
		{"right after </", `a </{{client.attr('v')}}`, "b>", `a </&#98;&gt;`, ErrUnsafeContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := mustParse(t, Source{HTML: tt.html})
			v := &Values{NewCodes: []string{tt.value}, Customer: Customer{Attributes: map[string]string{"v": tt.value}}}
			if got := string(tpl.AppendHTML(nil, v)); got != tt.want {
				t.Errorf("rendered\n got %q\nwant %q", got, tt.want)
			}
			w := tpl.Warnings()
			switch {
			case tt.warn == nil && len(w) != 0:
				t.Errorf("warnings %v, want none", w)
			case tt.warn != nil && (len(w) != 1 || w[0].Err != tt.warn || w[0].Fix == "" || w[0].Part != PartHTML):
				t.Errorf("warnings %v, want one %v", w, tt.warn)
			}
		})
	}
}

// TestLinkWarningFix checks that the fix of a code in a link is the macro
// with | url, in the author's delimiters.
func TestLinkWarningFix(t *testing.T) {
	tpl := mustParse(t, Source{HTML: "<p>{{clinet.email}}</p>\n\n" +
		`<a href="https://x.example/?p=<<client.promocode('G', fallback='none').pin>>">`})
	w := tpl.Warnings()
	if len(w) != 2 || w[1].Err != ErrURLNotEncoded || w[1].Line != 3 || w[1].Column != 31 ||
		w[1].Fix != "write <<client.promocode('G', fallback='none').pin | url>>" {
		t.Fatalf("warnings %v", w)
	}
	if w[0].Err != ErrLooksLikeMacro {
		t.Errorf("first warning %v", w[0])
	}
}

func TestURLAllowed(t *testing.T) {
	for _, tt := range []struct {
		v             string
		start, scheme bool
	}{
		{"https://a.example", true, false}, {"HTTP://a", true, false}, {"mailto:a@b", true, false},
		{"javascript:x", false, false}, {"vbscript:x", false, false}, {"data:x", false, false},
		{"\x00\x1f javascript:x", false, false}, {"jav\nascript:x", false, false}, {"java\tscript:x", false, false},
		{"page", true, true}, {"", true, true}, {"/a:b", true, true}, {"?q=a:b", true, true}, {"#a:b", true, true},
		{"//evil.example", true, true}, {"a b:c", false, false},
	} {
		if got := urlAllowed(tt.v, urlStart); got != tt.start {
			t.Errorf("urlAllowed(%q, start) = %v", tt.v, got)
		}
		if got := urlAllowed(tt.v, urlScheme); got != tt.scheme {
			t.Errorf("urlAllowed(%q, scheme) = %v", tt.v, got)
		}
	}
}

// TestImageFilterPlacement checks that | qr stands only where an image can.
func TestImageFilterPlacement(t *testing.T) {
	for _, tt := range []struct {
		html string
		ok   bool
	}{
		{"<p>{{client.promocode('G') | qr}}</p>", true},
		{`<img src="{{client.promocode('G') | barcode('code128')}}" alt="code">`, true},
		{`<img src={{client.promocode('G') | qr}}>`, true},
		{`<img src="x{{client.promocode('G') | qr}}">`, false},
		{`<p title="{{client.promocode('G') | qr}}">`, false},
		{`<script>{{client.promocode('G') | qr}}</script>`, false},
		{`<{{client.promocode('G') | qr}}`, false},
	} {
		_, err := Parse(Source{HTML: tt.html})
		if ok := err == nil; ok != tt.ok || !ok && (!errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "renders an image")) {
			t.Errorf("Parse(%q) = %v, want ok %v", tt.html, err, tt.ok)
		}
	}
}
