package macros_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"promopool/macros"
)

// A mailing compiles its template once, claims codes for its recipients,
// then renders each message from resolved values.
func Example() {
	src := macros.Source{
		Subject: "{{client.first_name}}, your spring code",
		HTML:    "<p>Hello {{ client.first_name }}!</p>\n<p>Your code: <b>{{ client.promocode('Spring 30%') }}</b></p>",
		Text:    "Hello {{client.first_name}}! Your code: {{client.promocode('spring 30%')}}",
	}
	groups := macros.GroupList{"Spring 30%"} // in production: the groups store
	t, err := macros.Compile(context.Background(), src, groups)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("draws from %q\n", t.NewCodeGroups())

	// One value per group in NewCodeGroups, claimed before rendering.
	v := &macros.Values{
		Customer: macros.Customer{ID: "42", FirstName: "Ann"},
		NewCodes: []string{"SPR-7KQ2"},
	}
	var buf []byte
	buf = t.AppendSubject(buf[:0], v)
	fmt.Printf("%s\n", buf)
	buf = t.AppendHTML(buf[:0], v)
	fmt.Printf("%s\n", buf)
	buf = t.AppendText(buf[:0], v)
	fmt.Printf("%s\n", buf)
	// Output:
	// draws from ["Spring 30%"]
	// Ann, your spring code
	// <p>Hello Ann!</p>
	// <p>Your code: <b>SPR-7KQ2</b></p>
	// Hello Ann! Your code: SPR-7KQ2
}

// Every problem of a template is reported at once, with its part, line,
// column and a fix.
func ExampleValidationError() {
	src := macros.Source{
		Subject: `Hi {{client.first_name}`,
		HTML: "<p>{{client.promocode(\"Spring\")}}</p>\n" +
			"<p>{{client.phone}} {{client.promocode('Sprng')}}</p>",
	}
	_, err := macros.Compile(context.Background(), src, macros.GroupList{"Spring"})
	var ve *macros.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Printf("%s %d:%d %s\n  %s\n  fix: %s\n", p.Part, p.Line, p.Column, p.Macro, p.Message, p.Fix)
		}
	}
	fmt.Println(errors.Is(err, macros.ErrUnknownGroup))
	// Output:
	// subject 1:4 {{client.first_name}
	//   the macro is not closed with }}
	//   fix: write {{client.first_name}}
	// html 1:4 {{client.promocode("Spring")}}
	//   the group name is in double quotes
	//   fix: use single quotes: {{client.promocode('Spring')}}
	// html 2:4 {{client.phone}}
	//   unknown field client.phone
	//   fix: use client.id, client.email, client.first_name, client.last_name or client.attr('NAME')
	// html 2:21 {{client.promocode('Sprng')}}
	//   group "Sprng" does not exist
	//   fix: check the spelling against the group list, or create the group first
	// true
}

// last_promocode re-inserts the code last issued to the customer from a
// group. If the message also draws a new code from that group, it inserts
// the new one, wherever it stands, and the group is not a repeat group.
func Example_lastPromocode() {
	t, err := macros.Parse(macros.Source{Text: "Old: {{client.last_promocode('Winter')}}\n" +
		"Again: {{client.last_promocode('spring')}} = {{client.promocode('Spring')}}\n" +
		"Gifts: [{{client.last_promocode('Gifts')}}]"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("new %q, repeat %q\n", t.NewCodeGroups(), t.RepeatGroups())
	v := &macros.Values{
		NewCodes:  []string{"SPR-2"},     // Spring
		LastCodes: []string{"WIN-1", ""}, // Winter; never issued from Gifts
	}
	fmt.Printf("%s\n", t.AppendText(nil, v))
	// Output:
	// new ["Spring"], repeat ["Winter" "Gifts"]
	// Old: WIN-1
	// Again: SPR-2 = SPR-2
	// Gifts: []
}

// Custom attributes are written client.attr('NAME'); names match exactly.
// Quotes and backslashes in names are escaped with a backslash.
func Example_attributes() {
	t, err := macros.Parse(macros.Source{Text: `Level {{client.attr('loyalty level')}}, {{client.attr('Mother\'s day')}}`})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", t.Attributes())
	v := &macros.Values{Customer: macros.Customer{Attributes: map[string]string{"loyalty level": "gold", "Mother's day": "May 11"}}}
	fmt.Printf("%s\n", t.AppendText(nil, v))
	// Output:
	// ["loyalty level" "Mother's day"]
	// Level gold, May 11
}

// A {{ … }} that does not start with client. is left as it is, for the
// platform's own macros.
func Example_passThrough() {
	t, err := macros.Parse(macros.Source{HTML: `<a href="{{unsubscribe_url}}">Unsubscribe</a> {{ client }} {{client.id}}`})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", t.AppendHTML(nil, &macros.Values{Customer: macros.Customer{ID: "42"}}))
	// Output:
	// <a href="{{unsubscribe_url}}">Unsubscribe</a> {{ client }} 42
}

// HTML parts escape inserted values, text parts insert them raw, and
// subjects replace line breaks in them with spaces.
func Example_escaping() {
	src := "{{client.first_name}}"
	t, err := macros.Parse(macros.Source{Subject: src, HTML: src, Text: src})
	if err != nil {
		fmt.Println(err)
		return
	}
	v := &macros.Values{Customer: macros.Customer{FirstName: "<b>Ann</b> & \"Bo\"\r\nBcc: x"}}
	fmt.Printf("html:    %q\n", t.AppendHTML(nil, v))
	fmt.Printf("text:    %q\n", t.AppendText(nil, v))
	fmt.Printf("subject: %q\n", t.AppendSubject(nil, v))
	// Output:
	// html:    "&lt;b&gt;Ann&lt;/b&gt; &amp; &#34;Bo&#34;\r\nBcc: x"
	// text:    "<b>Ann</b> & \"Bo\"\r\nBcc: x"
	// subject: "<b>Ann</b> & \"Bo\"  Bcc: x"
}

// A preview renders placeholders instead of codes and consumes nothing.
func ExampleTemplate_PreviewValues() {
	t, err := macros.Parse(macros.Source{Text: "Hi {{client.first_name}}: {{client.promocode('Spring')}}, " +
		"before {{client.last_promocode('Winter')}}, level {{client.attr('tier')}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", t.AppendText(nil, t.PreviewValues(nil)))
	fmt.Printf("%s\n", t.AppendText(nil, t.PreviewValues(&macros.Customer{FirstName: "Ann"})))
	// Output:
	// Hi Alex: PREVIEW-Spring, before PREVIEW-LAST-Winter, level PREVIEW-ATTR-tier
	// Hi Ann: PREVIEW-Spring, before PREVIEW-LAST-Winter, level
}

// A mailing reads the groups before rendering to claim one code per
// recipient and group in one round trip.
func ExampleTemplate_NewCodeGroups() {
	t, err := macros.Parse(macros.Source{
		Subject: "{{client.promocode('Gifts')}}",
		HTML:    "{{client.promocode('Spring')}} {{client.promocode('GIFTS')}} {{client.last_promocode('Winter')}}",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	recipients := []string{"c1", "c2"}
	for i, g := range t.NewCodeGroups() {
		fmt.Printf("NewCodes[%d]: claim %d codes from %q\n", i, len(recipients), g)
	}
	for i, g := range t.RepeatGroups() {
		fmt.Printf("LastCodes[%d]: look up each recipient's last code from %q\n", i, g)
	}
	// Output:
	// NewCodes[0]: claim 2 codes from "Gifts"
	// NewCodes[1]: claim 2 codes from "Spring"
	// LastCodes[0]: look up each recipient's last code from "Winter"
}

// << >> is the same macro as {{ }}, as the design card writes it.
func Example_angleBrackets() {
	t, err := macros.Parse(macros.Source{Text: "Hi <<client.first_name>>, your code: <<client.promocode('Spring 30%')>>"})
	if err != nil {
		fmt.Println(err)
		return
	}
	v := &macros.Values{Customer: macros.Customer{FirstName: "Ann"}, NewCodes: []string{"SPR-7KQ2"}}
	fmt.Printf("%s\n", t.AppendText(nil, v))
	// Output:
	// Hi Ann, your code: SPR-7KQ2
}

// Validation warns about text that looks like a macro but would be sent as
// written; a macro that is certainly meant but cannot render is an error.
func ExampleTemplate_Warnings() {
	t, err := macros.Parse(macros.Source{Text: "Hi {{clinet.first_name}}, use client.promocode('G') or {{promocode('G')}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range t.Warnings() {
		fmt.Printf("%d:%d %s\n  fix: %s\n", w.Line, w.Column, w.Macro, w.Fix)
	}
	_, err = macros.Parse(macros.Source{Text: "Hi {client.first_name}, <<client.unknown>>"})
	fmt.Println(err)
	// Output:
	// 1:4 {{clinet.first_name}}
	//   fix: write {{client.first_name}}
	// 1:31 client.promocode('G')
	//   fix: write {{client.promocode('G')}} to insert it; if the text is meant literally, ignore this
	// 1:56 {{promocode('G')}}
	//   fix: write {{client.promocode('G')}}
	// macros: 2 problems in the template
	// text line 1, column 4: {client.first_name}: this looks like a macro but opens with a single {, so it would be sent as written; fix: write {{client.first_name}}
	// text line 1, column 25: <<client.unknown>>: unknown field client.unknown; fix: use client.id, client.email, client.first_name, client.last_name or client.attr('NAME')
}

// A fallback stands in for the code when the group has run out: the mailer
// sets UseFallback for that group and records no code.
func Example_fallback() {
	t, err := macros.Parse(macros.Source{Text: "Your code: {{client.promocode('Spring', fallback='Visit the shop for today’s offer')}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.FallbackGroups(), t.HasFallback(0))
	for _, v := range []*macros.Values{
		{NewCodes: []string{"SPR-7KQ2"}},
		{UseFallback: []bool{true}}, // Spring had no code for this recipient
	} {
		m, _, err := t.Render(nil, v)
		fmt.Println(m.Text, err)
	}
	// Output:
	// [Spring] true
	// Your code: SPR-7KQ2 <nil>
	// Your code: Visit the shop for today’s offer <nil>
}

// promocode('G').NAME inserts another column of the same code's row, such
// as a PIN uploaded with it.
func Example_columns() {
	t, err := macros.Parse(macros.Source{Text: "Card {{client.promocode('Gift cards')}}, PIN {{client.promocode('Gift cards').pin}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("fetch %q of %q\n", t.Columns(0), t.NewCodeGroups()[0])
	v := &macros.Values{NewCodes: []string{"6006-4912"}, Columns: []map[string]string{{"pin": "0815"}}}
	m, _, err := t.Render(nil, v)
	fmt.Println(m.Text, err)
	v.Columns = []map[string]string{{}} // uploaded without a pin column
	_, _, err = t.Render(nil, v)
	fmt.Println(err)
	// Output:
	// fetch ["pin"] of "Gift cards"
	// Card 6006-4912, PIN 0815 <nil>
	// macros: the code of group "Gift cards" has no column "pin": missing code column
}

// | url percent-encodes a value for a link; a customer field that begins a
// link renders only if it is an http, https or mailto (or relative) URL.
func Example_links() {
	t, err := macros.Parse(macros.Source{HTML: `<a href="https://shop.example/?promo={{client.promocode('G') | url}}">Shop</a> ` +
		`<a href="{{client.attr('site')}}">Your page</a>`})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, site := range []string{"https://ann.example/", "javascript:alert(1)"} {
		v := &macros.Values{NewCodes: []string{"A&B 10%"}, Customer: macros.Customer{Attributes: map[string]string{"site": site}}}
		fmt.Printf("%s\n", t.AppendHTML(nil, v))
	}
	fmt.Println(t.Warnings()[0].Message)
	// Output:
	// <a href="https://shop.example/?promo=A%26B%2010%25">Shop</a> <a href="https://ann.example/">Your page</a>
	// <a href="https://shop.example/?promo=A%26B%2010%25">Shop</a> <a href="">Your page</a>
	// the value begins the link (href), so one that is not an http, https or mailto URL (javascript:…) renders empty
}

// | qr and | barcode('FORMAT') draw the code as an inline PNG in the HTML
// part and insert the plain code in the text part.
func Example_images() {
	t, err := macros.Parse(macros.Source{
		HTML: `{{client.promocode('Store') | qr}} <img src="{{client.promocode('Store') | barcode('code128')}}" alt="barcode">`,
		Text: "{{client.promocode('Store') | qr}}",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	m, _, err := t.Render(nil, &macros.Values{NewCodes: []string{"ST-4711"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	html := regexp.MustCompile(`base64,[A-Za-z0-9+/=]+`).ReplaceAllString(m.HTML, "base64,…")
	fmt.Println(html)
	fmt.Println(m.Text)
	// Output:
	// <img src="data:image/png;base64,…" alt="ST-4711" width="174" height="174"> <img src="data:image/png;base64,…" alt="barcode">
	// ST-4711
}

// Limits bound a template: too many macros are refused at validation, and
// Render refuses a message that would grow past MaxMessageBytes.
func ExampleTemplate_Render() {
	src := macros.Source{HTML: strings.Repeat("<p>{{client.attr('bio')}}</p>", 1000)}
	t, err := macros.ParseLimits(src, macros.Limits{MaxMessageBytes: 64 << 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	v := &macros.Values{Customer: macros.Customer{Attributes: map[string]string{"bio": strings.Repeat("x", 1000)}}}
	_, _, err = t.Render(nil, v)
	fmt.Println(errors.Is(err, macros.ErrMessageTooLarge), err)

	_, err = macros.ParseLimits(src, macros.Limits{MaxMacros: 500})
	fmt.Println(errors.Is(err, macros.ErrTemplateTooLarge))
	// Output:
	// true macros: rendering the html part: the message is larger than the limit of 65536 bytes: rendered message too large
	// true
}
