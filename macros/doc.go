// Package macros is the template engine that renders a mailing's message
// (subject, HTML part, text part) for one customer, inserting promo codes
// and customer fields.
//
// A template is compiled once with [Compile] (or [Parse], which skips the
// group check) and rendered many times with [Template.AppendSubject],
// [Template.AppendHTML] and [Template.AppendText]. The compiled template
// says which groups it draws new codes from ([Template.NewCodeGroups]) and
// which it re-issues from ([Template.RepeatGroups]), so a mailing claims the
// codes of a whole batch of recipients at once and then renders each
// message from resolved [Values]; rendering never queries anything.
//
// # Syntax
//
// A macro is written between double braces and starts with client.:
//
//	{{client.promocode('Spring 30%')}}       a new code from group "Spring 30%"
//	{{client.last_promocode('Spring 30%')}}  the code last issued to the customer from that group
//	{{client.id}}                            the customer's id
//	{{client.email}}                         the customer's email address
//	{{client.first_name}}                    the customer's first name
//	{{client.last_name}}                     the customer's last name
//	{{client.attr('loyalty level')}}         the custom attribute "loyalty level"
//
// Spaces, tabs and line breaks may stand between the parts of a macro:
// {{ client.promocode( 'Spring' ) }} is the same macro. Names are
// lowercase. Group and attribute names are written in single quotes;
// inside them \' stands for a quote and \\ for a backslash, and no other
// escape exists:
//
//	{{client.promocode('Mother\'s day')}}    group Mother's day
//	{{client.promocode('A\\B')}}             group A\B
//
// A quoted name cannot span lines or contain "}}". A group name has 1 to
// 200 characters; custom attribute names match Customer.Attributes keys
// exactly (case matters); an attribute the customer lacks renders empty.
//
// Group names are compared case-insensitively, after [GroupKey]
// (strings.ToLower): promocode('spring') and promocode('Spring') draw from
// the same group, and the spelling of its first appearance is the one
// reported.
//
// Everything else passes through byte for byte, including a {{ … }} that
// does not start with client. (the platform's own macros, {{unsubscribe}},
// {{ client }}): only the macros above are replaced. Scanning for the next
// macro resumes one character after such a "{{", so in {{{client.id}}}
// the inner macro is replaced and the outer braces stay.
//
// # Codes in one message
//
// Within one message (subject, HTML and text together), every
// promocode('G') inserts the same code. If the message draws a new code
// from G anywhere, every last_promocode('G') in it inserts that new code
// too, whether it comes before or after the promocode; such a group is not
// in RepeatGroups, so no repeat issue is recorded for it. Otherwise
// last_promocode('G') inserts Values.LastCodes for G, and renders empty if
// the customer was never issued a code from G. Like any group, G must exist
// when the template is compiled; if it is deleted afterwards the caller
// finds no last code and the macro renders empty.
//
// # Escaping
//
// In the HTML part every inserted value (codes and customer fields) is
// escaped: & < > " ' become &amp; &lt; &gt; &#34; &#39;. That is right for
// element text and quoted attribute values; it is not URL encoding, and
// values must not be placed inside <script> or <style>. In the text part
// values are inserted as they are. In the subject values are inserted as
// they are except that each CR and each LF becomes a space, so no value can
// add a header line; a subject template containing a line break is
// rejected. Values are never parsed: a first name of "{{client.email}}"
// renders as that text.
//
// # Validation
//
// [Parse] and [Compile] report every problem of a template at once in a
// [*ValidationError]: malformed macros (double or typographic quotes, a
// missing quote, parenthesis or "}}", an empty group name, a bad escape),
// unknown client.* names, and, for Compile, groups that do not exist
// according to the caller's [GroupChecker]. Each [Problem] names the part,
// the 1-based line and column of the macro's "{{" (columns count
// characters, not bytes), the macro as written, what is wrong and how to
// fix it. A "{{client." that is never closed with "}}" is an error.
//
// # Preview
//
// [Template.PreviewValues] gives values that render a preview without
// touching any pool: promocode('G') renders PREVIEW-G, last_promocode('G')
// renders PREVIEW-LAST-G, and a sample customer (or a real one) fills the
// customer fields.
package macros
