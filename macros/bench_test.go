package macros

import (
	"bytes"
	"context"
	htmltemplate "html/template"
	"strings"
	"testing"
	texttemplate "text/template"
)

// benchHTML builds a ~5 KB HTML mail with two promocode macros, one
// last_promocode and three customer fields; mk writes each macro in the
// syntax of the engine being measured.
func benchHTML(mk func(what string) string) string {
	para := `<p style="margin:0 0 12px 0;font-family:Arial,sans-serif;font-size:14px;line-height:20px;color:#333333">` +
		`Our spring collection has arrived: fresh colours, light fabrics and the comfort you love. ` +
		`Browse the new arrivals online or visit your nearest store this week.</p>` + "\n"
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Spring sale</title></head>\n<body>\n")
	b.WriteString("<h1>Hello, " + mk("first_name") + "!</h1>\n")
	for range 5 {
		b.WriteString(para)
	}
	b.WriteString(`<p class="code">Your code: <b>` + mk("code1") + "</b></p>\n")
	for range 5 {
		b.WriteString(para)
	}
	b.WriteString(`<p class="code">A gift for a friend: <b>` + mk("code2") + "</b></p>\n")
	b.WriteString(`<p>Your previous code ` + mk("last") + " is still valid.</p>\n")
	for range 7 {
		b.WriteString(para)
	}
	b.WriteString(`<p style="font-size:11px">This mail was sent to ` + mk("email") + " (customer " + mk("id") +
		").</p>\n</body></html>\n")
	return b.String()
}

var benchMacros = map[string]string{
	"first_name": "{{client.first_name}}",
	"code1":      "{{ client.promocode('Spring 30%') }}",
	"code2":      "{{client.promocode('Friends')}}",
	"last":       "{{client.last_promocode('Winter')}}",
	"email":      "{{client.email}}",
	"id":         "{{client.id}}",
}

var benchStdMacros = map[string]string{
	"first_name": "{{.FirstName}}",
	"code1":      "{{.Code1}}",
	"code2":      "{{.Code2}}",
	"last":       "{{.Last}}",
	"email":      "{{.Email}}",
	"id":         "{{.ID}}",
}

// benchData is what the standard-library templates render.
type benchData struct {
	FirstName, Code1, Code2, Last, Email, ID string
}

var benchStd = benchData{FirstName: "Alex", Code1: "SPR-7KQ2-9XTA", Code2: "FRN-22QX-K0PL",
	Last: "WIN-0003-ZZ1B", Email: "alex@example.com", ID: "1048576"}

func benchValues() *Values {
	return &Values{
		Customer:  Customer{ID: benchStd.ID, Email: benchStd.Email, FirstName: benchStd.FirstName},
		NewCodes:  []string{benchStd.Code1, benchStd.Code2},
		LastCodes: []string{benchStd.Last},
	}
}

func reportRenders(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renders/s")
}

func BenchmarkCompile(b *testing.B) {
	src := Source{Subject: "Spring sale for {{client.first_name}}", HTML: benchHTML(func(w string) string { return benchMacros[w] })}
	groups := GroupList{"spring 30%", "friends", "winter"}
	ctx := context.Background()
	b.SetBytes(int64(len(src.HTML)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(ctx, src, groups); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderHTML(b *testing.B) {
	src := benchHTML(func(w string) string { return benchMacros[w] })
	t, err := Parse(Source{HTML: src})
	if err != nil {
		b.Fatal(err)
	}
	v := benchValues()
	buf := t.AppendHTML(nil, v)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = t.AppendHTML(buf[:0], v)
	}
	reportRenders(b)
}

// BenchmarkRenderHTMLNewBuffer renders into a fresh buffer each time: the
// buffer, sized to fit, is the only allocation.
func BenchmarkRenderHTMLNewBuffer(b *testing.B) {
	t, err := Parse(Source{HTML: benchHTML(func(w string) string { return benchMacros[w] })})
	if err != nil {
		b.Fatal(err)
	}
	v := benchValues()
	size := len(t.AppendHTML(nil, v))
	b.ReportAllocs()
	for b.Loop() {
		_ = t.AppendHTML(make([]byte, 0, size), v)
	}
	reportRenders(b)
}

func BenchmarkTextTemplate(b *testing.B) {
	t := texttemplate.Must(texttemplate.New("mail").Parse(benchHTML(func(w string) string { return benchStdMacros[w] })))
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := t.Execute(&buf, &benchStd); err != nil {
			b.Fatal(err)
		}
	}
	reportRenders(b)
}

func BenchmarkHTMLTemplate(b *testing.B) {
	t := htmltemplate.Must(htmltemplate.New("mail").Parse(benchHTML(func(w string) string { return benchStdMacros[w] })))
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := t.Execute(&buf, &benchStd); err != nil {
			b.Fatal(err)
		}
	}
	reportRenders(b)
}

// BenchmarkCompileAdversarial compiles ~1 MiB templates built to make a
// careless scanner quadratic (openers that are not macros, unclosed
// macros, client.NAME( in prose, many tags), with no limits; MB/s should
// stay of the order of BenchmarkCompile's.
func BenchmarkCompileAdversarial(b *testing.B) {
	for _, c := range []struct{ name, unit string }{
		{"foreign-openers", "<<a {{b "},
		{"unclosed-macros", "<<client.x " + strings.Repeat("x", 200)},
		{"stray-calls", "client.promocode("},
		{"stray-fields", "client.email "},
		{"tags", `<a href=x title='{{client.id}}'><p class="c">`},
		{"angles", "<"},
	} {
		s := strings.Repeat(c.unit, (1<<20)/len(c.unit))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				_, _ = ParseLimits(Source{HTML: s}, Limits{MaxMacros: -1, MaxMessageBytes: -1})
			}
		})
	}
}

// BenchmarkRenderHTMLFeatures renders the benchmark mail with its two codes
// written with a fallback, | url inside a link and a column: the careful
// path that plain macros do not take.
func BenchmarkRenderHTMLFeatures(b *testing.B) {
	macros := map[string]string{
		"first_name": "{{client.first_name}}",
		"code1":      `<a href="https://shop.example/?promo={{ client.promocode('Spring 30%', fallback='none') | url }}">{{client.promocode('Spring 30%', fallback='See the shop')}}</a>`,
		"code2":      "{{client.promocode('Friends')}} (PIN {{client.promocode('Friends').pin}})",
		"last":       "{{client.last_promocode('Winter', fallback='none yet')}}",
		"email":      "{{client.email}}",
		"id":         "{{client.id}}",
	}
	t, err := Parse(Source{HTML: benchHTML(func(w string) string { return macros[w] })})
	if err != nil {
		b.Fatal(err)
	}
	v := benchValues()
	v.Columns = []map[string]string{nil, {"pin": "4711"}}
	buf := t.AppendHTML(nil, v)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = t.AppendHTML(buf[:0], v)
	}
	reportRenders(b)
}

// BenchmarkRenderQR renders a message with a QR code of its promo code: a
// PNG drawn and encoded per message.
func BenchmarkRenderQR(b *testing.B) {
	for _, f := range []string{"qr", "barcode('code128')"} {
		b.Run(strings.Trim(strings.TrimPrefix(f, "barcode"), "()'"), func(b *testing.B) {
			t, err := Parse(Source{HTML: "<p>Show this at the till:</p>{{client.promocode('Spring 30%') | " + f + "}}"})
			if err != nil {
				b.Fatal(err)
			}
			v := benchValues()
			buf := t.AppendHTML(nil, v)
			b.ReportAllocs()
			for b.Loop() {
				buf = t.AppendHTML(buf[:0], v)
			}
			reportRenders(b)
		})
	}
}
