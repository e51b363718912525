package macros_test

import (
	"context"
	"errors"
	"fmt"

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
