package apitest

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
)

func decodeJSON(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

// Undocumented returns the JSON paths of the fields of value that none of schemas
// names: an object's key is documented when a schema (or one of its allOf, oneOf or
// anyOf parts) lists it in properties or allows additionalProperties, or when no part
// lists any property (a free-form object). The document stays open to new fields, as
// clients must be; this is the stricter reading the tests hold the server to, so a
// field added to the code and not to the document fails.
func Undocumented(schemas []*openapi3.SchemaRef, value any, path string) []string {
	parts := flatten(schemas, nil)
	switch v := value.(type) {
	case map[string]any:
		return undocumentedKeys(parts, v, path)
	case []any:
		var items []*openapi3.SchemaRef
		for _, s := range parts {
			if s.Items != nil {
				items = append(items, s.Items)
			}
		}
		var out []string
		for i, e := range v {
			out = append(out, Undocumented(items, e, path+"["+strconv.Itoa(i)+"]")...)
		}
		return out
	}
	return nil
}

func undocumentedKeys(parts []*openapi3.Schema, v map[string]any, path string) []string {
	declares, open := false, false
	var extra []*openapi3.SchemaRef
	for _, s := range parts {
		ap := s.AdditionalProperties
		declares = declares || len(s.Properties) > 0 || (ap.Has != nil && !*ap.Has)
		open = open || (ap.Has != nil && *ap.Has)
		if ap.Schema != nil {
			extra = append(extra, ap.Schema)
		}
	}
	freeForm := open || !declares
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		var props []*openapi3.SchemaRef
		for _, s := range parts {
			if p := s.Properties[k]; p != nil {
				props = append(props, p)
			}
		}
		switch {
		case len(props) > 0:
			out = append(out, Undocumented(props, v[k], path+"."+k)...)
		case len(extra) > 0:
			out = append(out, Undocumented(extra, v[k], path+"."+k)...)
		case !freeForm:
			out = append(out, path+"."+k)
		}
	}
	return out
}

// flatten returns the schemas with their allOf, oneOf and anyOf parts, recursively.
func flatten(refs []*openapi3.SchemaRef, out []*openapi3.Schema) []*openapi3.Schema {
	for _, r := range refs {
		if r == nil || r.Value == nil || slices.Contains(out, r.Value) {
			continue
		}
		s := r.Value
		out = append(out, s)
		out = flatten(s.AllOf, out)
		out = flatten(s.OneOf, out)
		out = flatten(s.AnyOf, out)
	}
	return out
}
