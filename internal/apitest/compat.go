package apitest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Breaking lists the changes from old to cur that break a /v1 client, as
// docs/api-versioning.md defines them: a removed route or operation, a changed
// operationId; a removed success status or media type; in an answer, a removed
// property, a property no longer always sent, a removed enum value or a new type;
// in a request, a newly required property, parameter or body, a removed property or
// media type (bodies are decoded strictly), a removed enum value or a narrowed type.
// Additions are not listed: new routes, optional fields, answers, enum values.
func Breaking(old, cur *openapi3.T) []string {
	var out []string
	for _, path := range sortedKeys(old.Paths.Map()) {
		oldItem, curItem := old.Paths.Value(path), cur.Paths.Value(path)
		for _, method := range sortedMethods(oldItem) {
			where := method + " " + path
			if curItem == nil || curItem.GetOperation(method) == nil {
				out = append(out, where+": route removed")
				continue
			}
			c := &comparison{where: where}
			c.operation(oldItem, curItem, oldItem.GetOperation(method), curItem.GetOperation(method))
			out = append(out, c.out...)
		}
	}
	return out
}

type comparison struct {
	where string
	out   []string
	seen  map[[2]*openapi3.Schema]bool // pairs compared, for recursive schemas
}

func (c *comparison) add(format string, args ...any) {
	c.out = append(c.out, c.where+": "+fmt.Sprintf(format, args...))
}

func (c *comparison) operation(oldItem, curItem *openapi3.PathItem, old, cur *openapi3.Operation) {
	if old.OperationID != cur.OperationID {
		c.add("operationId %q became %q (generated clients rename the call)", old.OperationID, cur.OperationID)
	}
	c.parameters(params(oldItem, old), params(curItem, cur))
	c.requestBody(old.RequestBody, cur.RequestBody)
	for _, code := range sortedKeys(old.Responses.Map()) {
		o, n := old.Responses.Value(code), cur.Responses.Value(code)
		if n == nil || n.Value == nil {
			if strings.HasPrefix(code, "2") {
				c.add("answer %s removed", code)
			}
			continue
		}
		if o.Value == nil {
			continue
		}
		for _, mt := range sortedKeys(o.Value.Content) {
			nm := n.Value.Content.Get(mt)
			if nm == nil {
				if strings.HasPrefix(code, "2") {
					c.add("answer %s %s removed", code, mt)
				}
				continue
			}
			c.top(o.Value.Content[mt].Schema, nm.Schema, false, "answer "+code+" "+mt+" $")
		}
	}
}

// params returns an operation's parameters, the path item's included, by "in name".
func params(item *openapi3.PathItem, op *openapi3.Operation) map[string]*openapi3.Parameter {
	out := map[string]*openapi3.Parameter{}
	for _, list := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, p := range list {
			if p.Value != nil {
				out[p.Value.In+" "+strings.ToLower(p.Value.Name)] = p.Value
			}
		}
	}
	return out
}

func (c *comparison) parameters(old, cur map[string]*openapi3.Parameter) {
	for _, key := range sortedKeys(cur) {
		n := cur[key]
		o := old[key]
		if n.Required && (o == nil || !o.Required) {
			c.add("parameter %s became required", key)
		}
		if o != nil && o.Schema != nil && n.Schema != nil {
			c.top(o.Schema, n.Schema, true, "parameter "+key)
		}
	}
	for _, key := range sortedKeys(old) {
		if cur[key] == nil && old[key].In != openapi3.ParameterInQuery {
			c.add("parameter %s removed", key)
		}
	}
}

func (c *comparison) requestBody(old, cur *openapi3.RequestBodyRef) {
	if cur == nil || cur.Value == nil {
		return
	}
	if cur.Value.Required && (old == nil || old.Value == nil || !old.Value.Required) {
		c.add("request body became required")
	}
	if old == nil || old.Value == nil {
		return
	}
	for _, mt := range sortedKeys(old.Value.Content) {
		n := cur.Value.Content.Get(mt)
		if n == nil {
			c.add("request %s no longer accepted", mt)
			continue
		}
		c.top(old.Value.Content[mt].Schema, n.Schema, true, "request "+mt+" $")
	}
}

// top compares the schemas of one request, parameter or answer.
func (c *comparison) top(old, cur *openapi3.SchemaRef, request bool, at string) {
	c.seen = map[[2]*openapi3.Schema]bool{}
	c.schema(old, cur, request, at)
}

// schema compares one level of old and cur (with their allOf, oneOf and anyOf parts)
// and recurses into the properties, items and additional properties they share.
func (c *comparison) schema(old, cur *openapi3.SchemaRef, request bool, at string) {
	if old == nil || cur == nil || old.Value == nil || cur.Value == nil {
		return
	}
	pair := [2]*openapi3.Schema{old.Value, cur.Value}
	if c.seen[pair] {
		return
	}
	c.seen[pair] = true
	o, n := describe(old), describe(cur)
	for _, v := range o.enum {
		if len(n.enum) > 0 && !slices.Contains(n.enum, v) {
			c.add("%s: enum value %s removed", at, v)
		}
	}
	if len(o.types) > 0 && len(n.types) > 0 {
		if request {
			for _, t := range o.types {
				if !slices.Contains(n.types, t) {
					c.add("%s: type %s no longer accepted", at, t)
				}
			}
		} else {
			for _, t := range n.types {
				if !slices.Contains(o.types, t) {
					c.add("%s: may now be %s", at, t)
				}
			}
		}
	}
	for _, name := range sortedKeys(o.props) {
		np := n.props[name]
		switch {
		case np == nil && !n.open:
			c.add("%s.%s removed", at, name)
		case np != nil:
			c.schema(o.props[name], np, request, at+"."+name)
		}
		if !request && o.required[name] && !n.required[name] {
			c.add("%s.%s no longer always sent", at, name)
		}
	}
	if request {
		for _, name := range sortedKeys(n.required) {
			if !o.required[name] {
				c.add("%s.%s became required", at, name)
			}
		}
	}
	if o.items != nil && n.items != nil {
		c.schema(o.items, n.items, request, at+"[]")
	}
	if o.extra != nil && n.extra != nil {
		c.schema(o.extra, n.extra, request, at+".*")
	}
}

// level is what one level of a schema says, its allOf, oneOf and anyOf parts merged.
type level struct {
	types    []string
	enum     []string
	props    map[string]*openapi3.SchemaRef
	required map[string]bool
	items    *openapi3.SchemaRef
	extra    *openapi3.SchemaRef
	open     bool // additionalProperties: true
}

func describe(ref *openapi3.SchemaRef) level {
	l := level{props: map[string]*openapi3.SchemaRef{}, required: map[string]bool{}}
	for _, s := range flatten([]*openapi3.SchemaRef{ref}, nil) {
		if s.Type != nil {
			for _, t := range *s.Type {
				if !slices.Contains(l.types, t) {
					l.types = append(l.types, t)
				}
			}
		}
		for _, e := range s.Enum {
			b, _ := json.Marshal(e)
			l.enum = append(l.enum, string(b))
		}
		for name, p := range s.Properties {
			if l.props[name] == nil {
				l.props[name] = p
			}
		}
		for _, name := range s.Required {
			l.required[name] = true
		}
		l.items = cmp.Or(l.items, s.Items)
		l.extra = cmp.Or(l.extra, s.AdditionalProperties.Schema)
		l.open = l.open || (s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has)
	}
	return l
}
