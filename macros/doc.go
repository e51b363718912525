// Package macros is the template engine that renders a mailing's message
// (subject, HTML part, text part) for one customer, inserting promo codes
// and customer fields.
//
// A template is compiled once with [Compile] (or [Parse], which skips the
// group check) and rendered many times with [Template.Render] (all three
// parts, checked and bounded by [Limits]) or [Template.AppendSubject],
// [Template.AppendHTML] and [Template.AppendText]. The compiled template
// says which groups it draws new codes from ([Template.NewCodeGroups]) and
// which it re-issues from ([Template.RepeatGroups]), which columns of each
// code row it inserts ([Template.Columns]) and which groups have fallbacks
// ([Template.HasFallback]), so a mailing claims the codes of a whole batch
// of recipients at once and then renders each message from resolved
// [Values]; rendering never queries anything.
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
// << >> (the design card's form) is an equivalent delimiter for every macro:
// <<client.promocode('Spring 30%')>> is the same macro. A macro closes with
// its own form's closer: {{client.id>> is an error. {{ }} is the form the
// documentation uses.
//
// Options after the name:
//
//	{{client.promocode('G', fallback='Visit the shop')}}  text shown when G has run out (see Fallbacks)
//	{{client.promocode('G').pin}}                         the column "pin" of the same code's row (see Columns)
//	{{client.promocode('G') | url}}                       the code percent-encoded, for links (see Links)
//	{{client.promocode('G') | qr}}                        a QR code image of the code (see Images)
//	{{client.promocode('G') | barcode('code128')}}        a barcode image: code128, code39, ean13, ean8 or qr
//
// A filter (| url, | qr, | barcode) goes last, and a macro takes at most
// one; it applies to any macro's value (| url to customer fields too). In
// the order they may appear: {{client.promocode('G', fallback='-').pin | url}}.
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
// A quoted name cannot span lines or contain its macro's closer ("}}" or
// ">>"). A group name has 1 to 200 characters; custom attribute names match Customer.Attributes keys
// exactly (case matters); an attribute the customer lacks renders empty.
//
// Group names are compared case-insensitively, after [GroupKey]
// (strings.ToLower): promocode('spring') and promocode('Spring') draw from
// the same group, and the spelling of its first appearance is the one
// reported.
//
// Everything else passes through byte for byte, including a {{ … }} or
// << … >> that does not start with client. (the platform's own macros,
// {{unsubscribe}}, {{ client }}): only the macros above are replaced.
// Scanning for the next macro resumes one character after such an opener,
// so in {{{client.id}}} the inner macro is replaced and the outer braces
// stay.
//
// # Fallbacks
//
// promocode('G', fallback='TEXT') renders TEXT instead of a code when the
// mailer sets Values.UseFallback[i] for G (G = NewCodeGroups()[i]): the
// group had no code for this recipient and none is recorded.
// [Template.HasFallback] and [Template.FallbackGroups] say which groups can
// do that. If one macro that inserts G's new code (promocode('G'), its
// columns, or last_promocode('G') in a message that draws from G) has a
// fallback, every one must (the texts may differ): otherwise one of them
// would have nothing to show, and validation reports it. On
// last_promocode('G') of a group the message does not draw from, the
// fallback renders when the customer has no last code. The fallback is
// text like a value: HTML-escaped in the HTML part, percent-encoded with
// | url; with | qr or | barcode it is shown as text, not drawn. It is
// quoted like a group name, up to 1,000 characters, on one line.
//
// # Columns
//
// promocode('G').NAME inserts the column NAME (any identifier but code;
// names match exactly) of the code row drawn from G for this message: the
// same row as promocode('G'). [Template.Columns](i) lists the columns the
// template needs from G, so that the claim fetches them, and
// Values.Columns[i] carries them. A column absent from the row is an error
// at [Template.Render] (ErrMissingColumn), so that nobody gets a code
// without, say, the PIN it needs in store; a column present but empty
// renders empty.
//
// last_promocode('G').NAME inserts the column NAME of the code
// last_promocode('G') inserts: [Template.LastColumns](i) and
// Values.LastColumns[i], as for new codes, except that a missing code or
// column renders empty, as last_promocode itself does. In a message that
// draws a new code from G it is that code's column, needed as above.
//
// With a [ColumnChecker] (the groups package is one), [Compile] refuses a
// column that its group does not declare, when the group declares its
// columns (ErrUnknownColumn); a group that declares none accepts any name.
//
// # Links
//
// | url percent-encodes every byte but letters, digits and - _ . ~ (RFC
// 3986 unreserved characters), so a code is one query value or path
// segment whatever it holds: write href="https://shop.example/?promo={{client.promocode('G') | url}}".
// A space becomes %20.
//
// In the HTML part the engine follows the markup around each macro. A macro
// that begins the value of a URL attribute (href, src, action, background,
// …), or comes before the template's text gives the value a ':', '/', '?'
// or '#', is checked when rendered: a value that is not relative and not
// an http, https or mailto URL renders empty, so no customer field can make
// a javascript: or data: link (with | url the value cannot carry a scheme,
// so it is not checked). Validation warns about such macros
// (ErrUnsafeURL), and about any code or value in a link without | url
// (ErrURLNotEncoded).
//
// # Images
//
// | qr and | barcode('FORMAT') draw the value with
// github.com/boombuler/barcode as a black-and-white PNG (QR: 6 pixels a
// module, barcodes: 2 pixels a bar module and 80 pixels high, each with its
// quiet zone). In HTML element text they render
// <img src="data:image/png;base64,…" alt="CODE" width="…" height="…">; as
// the whole value of an attribute such as <img src="…"> they render the
// data: URI alone, so the template can style its own <img>; anywhere else in
// the HTML they are an error. In the text part and the subject they insert
// the plain code. A value the format cannot draw (ean13 takes 12 or 13
// digits with a right check digit, ean8 7 or 8, code128 and code39 ASCII;
// more than 512 bytes; wider than 2,000 pixels) is inserted as text.
// The image travels inside the message as a data: URI rather than as a
// link to an image served by promopool: nothing to serve, store or expire,
// it works when the mail is opened weeks later, and no URL exists that
// would show a customer's code to whoever holds it. Some webmail clients
// (Gmail among them) do not display data: images; the alt text then shows
// the code itself. Drawing takes about a millisecond a message.
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
// element text and quoted attribute values. In an unquoted attribute value
// (title={{client.first_name}}) or inside a tag, whitespace, NUL, = and `
// become character references too, so a value cannot end the value or add
// an attribute; right after "<" the value's first letter becomes a
// character reference, so it cannot start a tag. Escaping is not URL
// encoding (see Links), and values do not belong inside <script> or
// <style> or in on… and style attributes: validation warns there
// (ErrUnsafeContext). In the text part
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
// missing quote, parenthesis or closer, an empty group name, a bad escape,
// a bad fallback, column or filter), unknown client.* names, a group
// whose macros have fallbacks only in part, an image filter where no image
// can stand, too many macros or too large a template (see Limits), and, for
// Compile, groups that do not exist according to the caller's
// [GroupChecker]. Each [Problem] names the part, the 1-based line and
// column of the macro's opener (columns count characters, not bytes), the
// macro as written, what is wrong and how to fix it. A "{{client." that is
// never closed with "}}" is an error.
//
// Warnings are listed the same way in [Template.Warnings] (and
// ValidationError.Warnings): a template with warnings compiles and renders.
// So that no macro reaches a customer as literal text, near misses are
// sorted thus:
//
//   - errors, when the text is certainly meant as a promopool macro and
//     cannot render: an opener followed by client. that does not parse
//     (<<client.unknown>>, {{ client.promocod('G') }}), a macro closed by
//     the other form's closer, and client.NAME (a name of the engine)
//     opened with a single { or < ({client.id}, <client.email>) or, in the
//     HTML part, HTML-escaped (&lt;&lt;client.id&gt;&gt;);
//   - warnings (ErrLooksLikeMacro), when it may be meant literally or be
//     the platform's own macro: client.NAME elsewhere outside a macro
//     (in prose, [client.email]), an opener followed by a misspelt client
//     ({{clinet.email}}, <<clients.id>>), by client without its dot
//     ({{client promocode('G')}}, {{client_email}}), or by an engine name
//     without client. ({{promocode('G')}}, <<first_name>>).
//
// Warnings also cover links and unsafe HTML contexts (see Links and
// Escaping). At most 100 warnings are listed.
//
// # Limits
//
// [Limits] bound what a template may cost; [Parse] and [Compile] use the
// defaults, [ParseLimits] and [CompileLimits] others. MaxMacros (default
// 1,000) counts every client macro of the template, well-formed or not; one
// more is a problem of kind [ErrTemplateTooLarge]. MaxMessageBytes (default
// 1 MiB) bounds a rendered message, subject, HTML and text together:
// [Template.Render] stops with [ErrMessageTooLarge] as soon as a message
// would pass it, having used little more memory than that, and a template
// whose own text is larger is refused. The Append methods do not apply the
// limit; a mailer renders with Render and records a recipient whose
// message is too large as failed, with the error's text as reason.
//
// # Preview
//
// [Template.PreviewValues] gives values that render a preview without
// touching any pool: promocode('G') renders PREVIEW-G, its column .pin
// PREVIEW-G.pin, last_promocode('G') renders PREVIEW-LAST-G, and a sample
// customer (or a real one) fills the customer fields.
package macros
