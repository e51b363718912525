package macros

import "fmt"

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
	// (last_promocode then renders empty).
	LastCodes []string
}

// AppendSubject appends the rendered subject to dst and returns the
// extended buffer. Values are inserted as they are, except that every CR
// and every LF in them is replaced by a space, so a value cannot add a
// header line. A missing value (index out of range, nil v) renders empty.
func (t *Template) AppendSubject(dst []byte, v *Values) []byte {
	return t.subject.append(dst, v, appendSubjectValue)
}

// AppendHTML appends the rendered HTML body to dst and returns the
// extended buffer. Every inserted value is HTML-escaped: & < > " ' become
// &amp; &lt; &gt; &#34; &#39;. A missing value renders empty.
func (t *Template) AppendHTML(dst []byte, v *Values) []byte {
	return t.html.append(dst, v, appendHTMLValue)
}

// AppendText appends the rendered plain-text body to dst and returns the
// extended buffer. Values are inserted as they are. A missing value
// renders empty.
func (t *Template) AppendText(dst []byte, v *Values) []byte {
	return t.text.append(dst, v, appendRaw)
}

// CheckValues reports whether v holds a non-empty new code for every group
// the template draws from, so that nobody gets a message with an empty
// code. It returns an error wrapping [ErrMissingCode] naming the first
// group without one.
func (t *Template) CheckValues(v *Values) error {
	for i, g := range t.newGroups {
		if v == nil || i >= len(v.NewCodes) || v.NewCodes[i] == "" {
			return fmt.Errorf("macros: no new code for group %q: %w", g, ErrMissingCode)
		}
	}
	return nil
}

// Placeholders used by [Template.PreviewValues].
const (
	PreviewCodePrefix     = "PREVIEW-"      // promocode('G') previews as PREVIEW-G
	PreviewLastCodePrefix = "PREVIEW-LAST-" // last_promocode('G') previews as PREVIEW-LAST-G
	PreviewAttrPrefix     = "PREVIEW-ATTR-" // attr('N') of the sample customer previews as PREVIEW-ATTR-N
)

// PreviewValues returns values that render a preview without touching any
// pool: promocode('G') renders PREVIEW-G, last_promocode('G') renders
// PREVIEW-LAST-G (or PREVIEW-G when the message also draws a new code from
// G), with G spelled as at its first appearance. If c is nil the customer
// is a sample: id 1234567, email customer@example.com, first name Alex,
// last name Sample, and attr('N') renders PREVIEW-ATTR-N; otherwise the
// fields of *c are used as they are.
func (t *Template) PreviewValues(c *Customer) *Values {
	v := &Values{
		NewCodes:  make([]string, len(t.newGroups)),
		LastCodes: make([]string, len(t.repeatGroups)),
	}
	for i, g := range t.newGroups {
		v.NewCodes[i] = PreviewCodePrefix + g
	}
	for i, g := range t.repeatGroups {
		v.LastCodes[i] = PreviewLastCodePrefix + g
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

// append renders the part into dst, inserting values with put. It is a
// single pass: inserted values are never scanned for macros.
func (p *part) append(dst []byte, v *Values, put func([]byte, string) []byte) []byte {
	var none Values
	if v == nil {
		v = &none
	}
	for i := range p.ops {
		o := &p.ops[i]
		dst = append(dst, o.lit...)
		dst = put(dst, o.value(v))
	}
	return append(dst, p.tail...)
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
		return v.Customer.Attributes[o.attr]
	}
	return ""
}

func appendRaw(dst []byte, s string) []byte { return append(dst, s...) }

// appendSubjectValue appends s with each CR and LF replaced by a space.
func appendSubjectValue(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			dst = append(dst, s[last:i]...)
			dst = append(dst, ' ')
			last = i + 1
		}
	}
	return append(dst, s[last:]...)
}

// appendHTMLValue appends s with & < > " ' escaped as HTML entities.
func appendHTMLValue(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}
