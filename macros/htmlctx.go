package macros

import (
	"strings"
)

// htmlCtx is where a macro stands in an HTML part, as far as the template's
// own text tells: inserted values never change it, because they are
// escaped for the place they stand in.
type htmlCtx struct {
	kind    ctxKind
	quoted  bool   // ctxAttr: the value is in quotes
	attr    string // ctxAttr: the attribute's name, lowercase
	url     urlPos // ctxAttr: where in a URL attribute (href, src, …)
	afterLT bool   // ctxText: the text before the macro ends with "<" or "</"
	raw     string // ctxRaw: "script" or "style"
}

type ctxKind uint8

const (
	ctxText ctxKind = iota // element text (or a comment)
	ctxAttr                // an attribute value
	ctxTag                 // inside a tag, but not in an attribute value
	ctxRaw                 // inside <script> or <style>
)

// urlPos is where a macro stands in a URL attribute's value.
type urlPos uint8

const (
	urlNone   urlPos = iota // not in a URL attribute
	urlStart                // the value's first content
	urlScheme               // after other content, but before any ':', '/', '?' or '#'
	urlRest                 // the scheme is settled by the template's text
)

// urlAttrs are the attributes whose value is a URL.
var urlAttrs = []string{"href", "src", "action", "formaction", "background", "cite", "poster", "data", "codebase",
	"longdesc", "usemap", "dynsrc", "lowsrc", "xlink:href", "srcset", "manifest", "ping", "icon", "profile", "classid", "archive"}

type hstate uint8

const (
	hText hstate = iota
	hTagName
	hTag
	hAttrName
	hAfterAttrName
	hBeforeValue
	hValueDQ
	hValueSQ
	hValueUQ
	hEndTag // in an end tag, a declaration or a processing instruction, until ">"
	hComment
	hRawText
)

// htmlScan follows an HTML part's text, a small part of the HTML
// tokenizer: enough to know whether a macro stands in text, in which
// attribute's value, inside a tag, or in a script or style element.
type htmlScan struct {
	st      hstate
	tag     []byte // the element name being read, lowercase
	attr    []byte // the attribute name being read, lowercase
	raw     string // the element whose end tag ends hRawText
	inValue bool   // the attribute value has content (text or a macro) so far
	settled bool   // the attribute value has a ':', '/', '?' or '#' so far
	lt      bool   // the text so far ends with "<" or "</"
}

// feed advances over the template's text lit.
func (h *htmlScan) feed(lit string) {
	if lit != "" {
		h.lt = false
	}
	for i := 0; i < len(lit); i++ {
		switch h.st {
		case hText:
			i = h.text(lit, i)
		case hComment:
			if j := strings.Index(lit[i:], "-->"); j >= 0 {
				h.st, i = hText, i+j+2
			} else {
				return
			}
		case hRawText:
			j := indexFold(lit[i:], "</"+h.raw)
			if j < 0 {
				return
			}
			h.st, i = hEndTag, i+j+1
		case hValueDQ, hValueSQ:
			i = h.quotedValue(lit, i)
		case hEndTag:
			j := strings.IndexByte(lit[i:], '>')
			if j < 0 {
				return
			}
			h.st, i = hText, i+j
		default:
			h.tagByte(lit[i])
		}
	}
}

// text reads from lit[i] in text and returns the offset of the last byte
// it consumed.
func (h *htmlScan) text(lit string, i int) int {
	j := strings.IndexByte(lit[i:], '<')
	if j < 0 {
		return len(lit)
	}
	i += j
	rest := lit[i+1:]
	switch {
	case rest == "" || rest == "/":
		h.lt = true
		return len(lit)
	case isLetter(rest[0]):
		h.st, h.tag = hTagName, append(h.tag[:0], lower(rest[0]))
		return i + 1
	case strings.HasPrefix(rest, "!--"):
		h.st = hComment
		return i + 3
	case rest[0] == '!' || rest[0] == '?' || rest[0] == '/':
		h.st = hEndTag
		return i + 1
	}
	return i
}

// tagByte reads c inside a start tag.
func (h *htmlScan) tagByte(c byte) {
	space := c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
	switch h.st {
	case hTagName:
		switch {
		case space || c == '/':
			h.st = hTag
		case c == '>':
			h.endStartTag()
		default:
			h.tag = append(h.tag, lower(c))
		}
	case hTag, hAttrName, hAfterAttrName:
		switch {
		case c == '>':
			h.endStartTag()
		case c == '/':
			h.st = hTag
		case space:
			if h.st == hAttrName {
				h.st = hAfterAttrName
			}
		case c == '=' && h.st != hTag:
			h.st = hBeforeValue
		case h.st == hAttrName:
			h.attr = append(h.attr, lower(c))
		default:
			h.st, h.attr = hAttrName, append(h.attr[:0], lower(c))
		}
	case hBeforeValue:
		switch {
		case space:
		case c == '"' || c == '\'':
			h.st, h.inValue, h.settled = hValueDQ, false, false
			if c == '\'' {
				h.st = hValueSQ
			}
		case c == '>':
			h.endStartTag()
		default:
			h.st, h.inValue, h.settled = hValueUQ, false, false
			h.valueByte(c)
		}
	case hValueDQ, hValueSQ, hValueUQ:
		switch {
		case h.st == hValueDQ && c == '"', h.st == hValueSQ && c == '\'', h.st == hValueUQ && space:
			h.st = hTag
		case h.st == hValueUQ && c == '>':
			h.endStartTag()
		default:
			h.valueByte(c)
		}
	}
}

// quotedValue reads a quoted attribute value from lit[i] up to its closing
// quote (or the end of lit) and returns the offset of the last byte read.
func (h *htmlScan) quotedValue(lit string, i int) int {
	q := byte('"')
	if h.st == hValueSQ {
		q = '\''
	}
	j := strings.IndexByte(lit[i:], q)
	end := i + j
	if j < 0 {
		end = len(lit)
	}
	if v := lit[i:end]; v != "" {
		h.inValue = h.inValue || strings.TrimLeft(v, " \t\n\r\f") != ""
		h.settled = h.settled || strings.ContainsAny(v, ":/?#")
	}
	if j < 0 {
		return len(lit)
	}
	h.st = hTag
	return end
}

func (h *htmlScan) valueByte(c byte) {
	if c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
		h.inValue = true
	}
	if c == ':' || c == '/' || c == '?' || c == '#' {
		h.settled = true
	}
}

func (h *htmlScan) endStartTag() {
	h.st = hText
	if name := string(h.tag); name == "script" || name == "style" {
		h.st, h.raw = hRawText, name
	}
}

// context says where a macro at the current position stands.
func (h *htmlScan) context() htmlCtx {
	switch h.st {
	case hText, hComment:
		return htmlCtx{kind: ctxText, afterLT: h.lt && h.st == hText}
	case hRawText:
		return htmlCtx{kind: ctxRaw, raw: h.raw}
	case hBeforeValue, hValueDQ, hValueSQ, hValueUQ:
		c := htmlCtx{kind: ctxAttr, quoted: h.st == hValueDQ || h.st == hValueSQ, attr: string(h.attr)}
		if contains(urlAttrs, c.attr) {
			switch {
			case h.st == hBeforeValue || !h.inValue:
				c.url = urlStart
			case !h.settled:
				c.url = urlScheme
			default:
				c.url = urlRest
			}
		}
		return c
	}
	return htmlCtx{kind: ctxTag}
}

// skipMacro advances over a macro's output.
func (h *htmlScan) skipMacro() {
	switch h.st {
	case hBeforeValue:
		h.st, h.inValue, h.settled = hValueUQ, true, false
	case hValueDQ, hValueSQ, hValueUQ:
		h.inValue = true
	case hTag, hAfterAttrName:
		h.st, h.attr = hAttrName, h.attr[:0]
	}
	h.lt = false
}

// checkHTML sets the context of each macro of an HTML part s and returns
// the problems and warnings that context gives.
func checkHTML(s string, ms []macro) (probs, warns []Problem) {
	var h htmlScan
	last := 0
	for i := range ms {
		m := &ms[i]
		h.feed(s[last:m.start])
		m.ctx = h.context()
		h.skipMacro()
		last = m.end
		if p, isErr := m.contextProblem(s); p != nil {
			if isErr {
				probs = append(probs, *p)
			} else {
				warns = append(warns, *p)
			}
		}
	}
	return probs, warns
}

// contextProblem returns what is wrong with where m stands, if anything,
// and whether it is an error rather than a warning.
func (m *macro) contextProblem(s string) (*Problem, bool) {
	c := m.ctx
	text := s[m.start:m.end]
	withURL := func() string { return m.canonical(m.fallback, filterURL) }
	switch {
	case m.filter == filterQR || m.filter == filterBarcode:
		if c.kind == ctxText && !c.afterLT || c.kind == ctxAttr && c.url == urlStart {
			return nil, false
		}
		return m.problem(s, "| "+filterName(m)+" renders an image, which cannot stand here",
			"put the macro in the text, or make it the whole value of an <img src=\"…\">", ErrSyntax), true
	case c.kind == ctxRaw:
		return m.problem(s, "values are HTML-escaped, not escaped for <"+c.raw+">; a value there can break the "+c.raw,
			"move the macro out of the <"+c.raw+"> element", ErrUnsafeContext), false
	case c.kind == ctxTag:
		return m.problem(s, "the macro stands inside a tag but not in an attribute value, so a value could add attributes",
			"put it in a quoted attribute value, e.g. title=\""+text+"\"", ErrUnsafeContext), false
	case c.afterLT:
		return m.problem(s, "a value right after < could start a tag; the engine escapes its first character",
			"write &lt; for a literal <, or put a space between", ErrUnsafeContext), false
	case c.kind == ctxAttr && (strings.HasPrefix(c.attr, "on") || c.attr == "style"):
		return m.problem(s, "values are HTML-escaped, not escaped for the JavaScript or CSS of the "+c.attr+" attribute",
			"keep macros out of on… and style attributes", ErrUnsafeContext), false
	case c.url == urlNone || m.filter == filterURL:
		return nil, false
	case m.fn.isCode():
		return m.problem(s, "a code inside a link must be written with | url, so that a code with & ? # + % or spaces keeps the link intact",
			"write "+withURL(), ErrURLNotEncoded), false
	case c.url != urlRest:
		return m.problem(s, "the value begins the link ("+c.attr+"), so one that is not an http, https or mailto URL (javascript:…) renders empty",
			"write the start of the link in the template, e.g. "+c.attr+"=\"https://shop.example/?v="+withURL()+"\"", ErrUnsafeURL), false
	}
	return m.problem(s, "a value inside a link should be written with | url, so that & ? # + % or spaces in it keep the link intact",
		"write "+withURL(), ErrURLNotEncoded), false
}

// problem reports m with a message.
func (m *macro) problem(s, msg, fix string, kind error) *Problem {
	line, col := m.loc.at(m.start)
	return &Problem{Part: m.part, Line: line, Column: col, Macro: shorten(s[m.start:m.end]),
		Message: msg, Fix: fix, Err: kind, offset: m.start}
}

func filterName(m *macro) string {
	if m.filter == filterQR {
		return "qr"
	}
	return "barcode"
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// indexFold is strings.Index ignoring ASCII case, for an ASCII sep.
func indexFold(s, sep string) int {
	for i := 0; i+len(sep) <= len(s); i++ {
		j := strings.IndexByte(s[i:], sep[0])
		if j < 0 {
			return -1
		}
		i += j
		if hasPrefixFold(s[i:], sep) {
			return i
		}
	}
	return -1
}

// rendering says how a macro with filter f renders in context c: how its
// value is escaped, whether it is checked as the start of a link, and
// whether an image filter renders a data: URI alone.
func (c htmlCtx) rendering(f filter) (esc escMode, url urlPos, dataURI bool) {
	switch {
	case c.kind == ctxTag || c.kind == ctxAttr && !c.quoted:
		esc = escNoSpace
	case c.afterLT:
		esc = escAfterLT
	}
	switch f {
	case filterNone:
		if c.url == urlStart || c.url == urlScheme {
			url = c.url
		}
	case filterQR, filterBarcode:
		dataURI = c.kind == ctxAttr
	}
	return esc, url, dataURI
}
