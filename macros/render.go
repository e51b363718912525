package macros

import (
	"fmt"
	"math"
)

// Customer holds the customer fields a template may insert.
type Customer struct {
	ID         string            // {{client.id}}
	Email      string            // {{client.email}}
	FirstName  string            // {{client.first_name}}
	LastName   string            // {{client.last_name}}
	Attributes map[string]string // {{client.attr('NAME')}}; names match exactly, a missing one renders empty
}

// Values is everything one message inserts, resolved before rendering: the
// renderer looks nothing up. Build one per recipient (or reuse one and
// overwrite its fields).
type Values struct {
	Customer Customer

	// NewCodes[i] is the code drawn for this message from the group
	// Template.NewCodeGroups()[i]. Every promocode macro of that group, and
	// every last_promocode macro of it, inserts it.
	NewCodes []string

	// LastCodes[i] is the code most recently issued to the customer from
	// the group Template.RepeatGroups()[i], or "" if none was ever issued
	// (last_promocode then renders its fallback, or empty).
	LastCodes []string

	// Columns[i] holds the extra columns of the code row of NewCodes[i]
	// (the upload's extra CSV columns), by column name, for the macros
	// promocode('G').NAME; Template.Columns(i) lists the names the
	// template needs. A name absent from the map is an error at
	// [Template.Render] (ErrMissingColumn: the code cannot be used without
	// it); a name present with an empty value renders empty.
	Columns []map[string]string

	// LastColumns[i] holds the extra columns of the code row of LastCodes[i],
	// by column name, for the macros last_promocode('G').NAME
	// (Template.LastColumns(i) lists them). Like last_promocode itself, a
	// column absent (or a customer never issued a code) renders empty.
	LastColumns []map[string]string

	// UseFallback[i] says that the group Template.NewCodeGroups()[i] had
	// no code for this recipient and none was recorded: every macro of the
	// group renders its fallback text instead of a code or column.
	// Allowed only where Template.HasFallback(i); NewCodes[i] is then
	// ignored.
	UseFallback []bool
}

// Message is one rendered message.
type Message struct {
	Subject string
	HTML    string
	Text    string
}

// Render renders the whole message for v: it checks v as
// [Template.CheckValues] does, then renders subject, HTML and text as
// AppendSubject, AppendHTML and AppendText do, into buf (reused from its
// start; it may be nil) and returns the message and the grown buffer, to
// pass to the next call.
//
// If the message would have more than Limits.MaxMessageBytes bytes,
// Render stops there and returns an error wrapping [ErrMessageTooLarge];
// the memory it used is bounded by about twice the limit, whatever the
// values. Other errors wrap [ErrMissingCode] or [ErrMissingColumn].
func (t *Template) Render(buf []byte, v *Values) (Message, []byte, error) {
	if err := t.CheckValues(v); err != nil {
		return Message{}, buf, err
	}
	limit := t.maxBytes
	if limit < 0 {
		limit = math.MaxInt
	}
	buf = buf[:0]
	var ends [3]int
	for i, p := range [...]struct {
		part Part
		p    *part
		put  putFunc
	}{{PartSubject, &t.subject, appendSubjectValue}, {PartHTML, &t.html, appendHTMLValue}, {PartText, &t.text, appendRaw}} {
		var ok bool
		if buf, ok = p.p.append(buf, v, p.put, p.part, limit); !ok {
			return Message{}, buf[:0], fmt.Errorf("macros: rendering the %s part: the message is larger than the limit of %d bytes: %w", p.part, limit, ErrMessageTooLarge)
		}
		ends[i] = len(buf)
	}
	return Message{Subject: string(buf[:ends[0]]), HTML: string(buf[ends[0]:ends[1]]), Text: string(buf[ends[1]:])}, buf, nil
}

// AppendSubject appends the rendered subject to dst and returns the
// extended buffer. Values are inserted as they are, except that every CR
// and every LF in them is replaced by a space, so a value cannot add a
// header line. A missing value (index out of range, nil v) renders empty.
// It does not apply Limits.MaxMessageBytes: send with [Template.Render].
func (t *Template) AppendSubject(dst []byte, v *Values) []byte {
	dst, _ = t.subject.append(dst, v, appendSubjectValue, PartSubject, math.MaxInt)
	return dst
}

// AppendHTML appends the rendered HTML body to dst and returns the
// extended buffer. Every inserted value is HTML-escaped: & < > " ' become
// &amp; &lt; &gt; &#34; &#39; (and more in unquoted attribute values; see
// the package doc for links). A missing value renders empty. It does not
// apply Limits.MaxMessageBytes: send with [Template.Render].
func (t *Template) AppendHTML(dst []byte, v *Values) []byte {
	dst, _ = t.html.append(dst, v, appendHTMLValue, PartHTML, math.MaxInt)
	return dst
}

// AppendText appends the rendered plain-text body to dst and returns the
// extended buffer. Values are inserted as they are. A missing value
// renders empty. It does not apply Limits.MaxMessageBytes: send with
// [Template.Render].
func (t *Template) AppendText(dst []byte, v *Values) []byte {
	dst, _ = t.text.append(dst, v, appendRaw, PartText, math.MaxInt)
	return dst
}

// CheckValues reports whether v holds what every message must have: for
// each group the template draws from, a non-empty new code and every
// column the template inserts from its row (ErrMissingColumn), unless
// v.UseFallback asks for the group's fallback, which the template must
// have. It returns an error wrapping [ErrMissingCode] or
// [ErrMissingColumn] naming the first group lacking something.
func (t *Template) CheckValues(v *Values) error {
	for i, g := range t.newGroups {
		if v != nil && i < len(v.UseFallback) && v.UseFallback[i] {
			if !t.fallback[i] {
				return fmt.Errorf("macros: no code for group %q, and the template has no fallback for it: %w", g, ErrMissingCode)
			}
			continue
		}
		if v == nil || i >= len(v.NewCodes) || v.NewCodes[i] == "" {
			return fmt.Errorf("macros: no new code for group %q: %w", g, ErrMissingCode)
		}
		for _, c := range t.columns[i] {
			if i >= len(v.Columns) {
				return fmt.Errorf("macros: the code of group %q has no column %q: %w", g, c, ErrMissingColumn)
			}
			if _, ok := v.Columns[i][c]; !ok {
				return fmt.Errorf("macros: the code of group %q has no column %q: %w", g, c, ErrMissingColumn)
			}
		}
	}
	return nil
}

// Placeholders used by [Template.PreviewValues].
const (
	PreviewCodePrefix     = "PREVIEW-"      // promocode('G') previews as PREVIEW-G, promocode('G').pin as PREVIEW-G.pin
	PreviewLastCodePrefix = "PREVIEW-LAST-" // last_promocode('G') previews as PREVIEW-LAST-G
	PreviewAttrPrefix     = "PREVIEW-ATTR-" // attr('N') of the sample customer previews as PREVIEW-ATTR-N
)

// PreviewValues returns values that render a preview without touching any
// pool: promocode('G') renders PREVIEW-G, its column .pin PREVIEW-G.pin,
// last_promocode('G') renders PREVIEW-LAST-G (or PREVIEW-G when the
// message also draws a new code from G), with G spelled as at its first
// appearance. If c is nil the customer is a sample: id 1234567, email
// customer@example.com, first name Alex, last name Sample, and attr('N')
// renders PREVIEW-ATTR-N; otherwise the fields of *c are used as they
// are. To preview the fallbacks, set UseFallback[i] for the groups
// where [Template.HasFallback].
func (t *Template) PreviewValues(c *Customer) *Values {
	v := &Values{
		NewCodes:    make([]string, len(t.newGroups)),
		LastCodes:   make([]string, len(t.repeatGroups)),
		Columns:     make([]map[string]string, len(t.newGroups)),
		UseFallback: make([]bool, len(t.newGroups)),
	}
	for i, g := range t.newGroups {
		v.NewCodes[i] = PreviewCodePrefix + g
		v.Columns[i] = make(map[string]string, len(t.columns[i]))
		for _, col := range t.columns[i] {
			v.Columns[i][col] = PreviewCodePrefix + g + "." + col
		}
	}
	v.LastColumns = make([]map[string]string, len(t.repeatGroups))
	for i, g := range t.repeatGroups {
		v.LastCodes[i] = PreviewLastCodePrefix + g
		v.LastColumns[i] = make(map[string]string, len(t.lastColumns[i]))
		for _, col := range t.lastColumns[i] {
			v.LastColumns[i][col] = PreviewLastCodePrefix + g + "." + col
		}
	}
	if c != nil {
		v.Customer = *c
		return v
	}
	v.Customer = Customer{ID: "1234567", Email: "customer@example.com", FirstName: "Alex", LastName: "Sample",
		Attributes: make(map[string]string, len(t.attrs))}
	for _, a := range t.attrs {
		v.Customer.Attributes[a] = PreviewAttrPrefix + a
	}
	return v
}

// putFunc appends a value escaped for a part.
type putFunc func([]byte, string) []byte

// append renders the part into dst, inserting values with put, and reports
// false as soon as dst would pass limit bytes. It is a single pass:
// inserted values are never scanned for macros.
func (p *part) append(dst []byte, v *Values, put putFunc, kind Part, limit int) ([]byte, bool) {
	var none Values
	if v == nil {
		v = &none
	}
	for i := range p.ops {
		o := &p.ops[i]
		dst = append(dst, o.lit...)
		if o.slow {
			var ok bool
			if dst, ok = o.appendSlow(dst, v, put, kind, limit); !ok {
				return dst, false
			}
		} else {
			val := o.value(v)
			if len(dst)+len(val) > limit {
				return dst, false
			}
			dst = put(dst, val)
		}
		if len(dst) > limit {
			return dst, false
		}
	}
	dst = append(dst, p.tail...)
	return dst, len(dst) <= limit
}

// appendSlow appends the value of an op that has a filter, a fallback or
// an HTML context needing more than escaping. It appends nothing and
// reports false if the value alone would pass limit.
func (o *op) appendSlow(dst []byte, v *Values, put putFunc, kind Part, limit int) ([]byte, bool) {
	val, fallback := o.resolve(v)
	if len(dst)+len(val) > limit {
		return dst, false
	}
	switch {
	case o.filter == filterURL:
		return appendURLEscaped(dst, val), true
	case (o.filter == filterQR || o.filter == filterBarcode) && kind == PartHTML && !fallback:
		return appendImage(dst, val, o.format, o.dataURI), true
	case o.url != urlNone && !urlAllowed(val, o.url):
		return dst, true
	case o.esc == escNoSpace:
		return appendHTMLNoSpace(dst, val), true
	case o.esc == escAfterLT:
		return appendHTMLAfterLT(dst, val), true
	}
	return put(dst, val), true
}

// resolve returns what the op inserts, and whether that is its fallback.
func (o *op) resolve(v *Values) (string, bool) {
	if o.hasFallback {
		switch o.fn {
		case fnPromocode, fnColumn:
			if o.idx < len(v.UseFallback) && v.UseFallback[o.idx] {
				return o.fallback, true
			}
		case fnLastPromocode, fnLastColumn:
			if val := o.value(v); val == "" {
				return o.fallback, true
			}
		}
	}
	return o.value(v), false
}

// value returns what the macro of o inserts.
func (o *op) value(v *Values) string {
	switch o.fn {
	case fnPromocode:
		if o.idx < len(v.NewCodes) {
			return v.NewCodes[o.idx]
		}
	case fnLastPromocode:
		if o.idx < len(v.LastCodes) {
			return v.LastCodes[o.idx]
		}
	case fnID:
		return v.Customer.ID
	case fnEmail:
		return v.Customer.Email
	case fnFirstName:
		return v.Customer.FirstName
	case fnLastName:
		return v.Customer.LastName
	case fnAttr:
		return v.Customer.Attributes[o.name]
	case fnColumn:
		if o.idx < len(v.Columns) {
			return v.Columns[o.idx][o.name]
		}
	case fnLastColumn:
		if o.idx < len(v.LastColumns) {
			return v.LastColumns[o.idx][o.name]
		}
	}
	return ""
}
