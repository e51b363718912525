package apitest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Lint checks the OpenAPI document in raw for what Redocly's recommended rules and
// this project ask of it, so that the rules hold where the Redocly CLI cannot run (no
// npm registry): every operation has a unique lowerCamelCase operationId, a summary, a
// success and a 4xx answer (a probe with no key, parameter or body is excused), an
// authenticated one lists 401 Unauthorized and 403 Forbidden, every answer has
// content and every 4xx (and an authenticated operation's 5xx) uses the Error schema, every example matches its
// schema without fields the schema does not name, every component is used and the
// info has a license. It returns the problems found; err is a document it cannot load.
// Structural validity is Load's job.
func Lint(raw []byte) (problems []string, err error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("loading the document: %w", err)
	}
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if doc.Info == nil || doc.Info.License == nil {
		add("info has no license")
	}
	ids := map[string]string{}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for _, method := range sortedMethods(item) {
			op := item.GetOperation(method)
			where := method + " " + path
			switch prev, dup := ids[op.OperationID]; {
			case op.OperationID == "":
				add("%s: no operationId", where)
			case dup:
				add("%s: operationId %q is also %s's", where, op.OperationID, prev)
			case !operationID.MatchString(op.OperationID):
				add("%s: operationId %q is not lowerCamelCase", where, op.OperationID)
			}
			ids[op.OperationID] = where
			if op.Summary == "" {
				add("%s: no summary", where)
			}
			problems = append(problems, lintResponses(doc, item, op, where)...)
			problems = append(problems, lintExamples(op, where)...)
		}
	}
	for _, name := range sortedKeys(doc.Components.Schemas) {
		if s := doc.Components.Schemas[name].Value; s.Example != nil {
			problems = append(problems, checkExample(openapi3.NewSchemaRef("", s), s.Example, "schema "+name+" example")...)
		}
	}
	unused, err := unusedComponents(raw)
	if err != nil {
		return nil, err
	}
	return append(problems, unused...), nil
}

var operationID = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

func lintResponses(doc *openapi3.T, item *openapi3.PathItem, op *openapi3.Operation, where string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, where+": "+fmt.Sprintf(format, args...)) }
	security := doc.Security
	if op.Security != nil {
		security = *op.Security
	}
	authenticated := len(security) > 0
	probe := !authenticated && len(item.Parameters) == 0 && len(op.Parameters) == 0 && op.RequestBody == nil
	var ok2xx, has4xx bool
	for code, ref := range op.Responses.Map() {
		ok2xx = ok2xx || strings.HasPrefix(code, "2")
		has4xx = has4xx || strings.HasPrefix(code, "4")
		if ref.Value == nil || len(ref.Value.Content) == 0 {
			add("%s has no content", code)
			continue
		}
		// Errors use the Error schema; /readyz's 503 is a report, not an error.
		if code[0] == '4' || (code[0] == '5' && authenticated) {
			media := ref.Value.Content.Get("application/json")
			if media == nil || media.Schema == nil || media.Schema.Ref != "#/components/schemas/Error" {
				add("%s does not answer application/json with the Error schema", code)
			}
		}
	}
	if !ok2xx {
		add("no 2xx answer")
	}
	if !has4xx && !probe {
		add("no 4xx answer")
	}
	if authenticated {
		for code, name := range map[string]string{"401": "Unauthorized", "403": "Forbidden"} {
			if r := op.Responses.Value(code); r == nil || r.Ref != "#/components/responses/"+name {
				add("authenticated, but %s is not #/components/responses/%s", code, name)
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// lintExamples checks the examples of the operation's request body, parameters and
// answers against their schemas.
func lintExamples(op *openapi3.Operation, where string) []string {
	var problems []string
	media := func(content openapi3.Content, what string) {
		for _, mt := range sortedKeys(content) {
			m := content[mt]
			if m.Example != nil {
				problems = append(problems, checkExample(m.Schema, m.Example, where+" "+what+" "+mt+" example")...)
			}
			for _, name := range sortedKeys(m.Examples) {
				if ex := m.Examples[name].Value; ex != nil && ex.Value != nil {
					problems = append(problems, checkExample(m.Schema, ex.Value, where+" "+what+" "+mt+" example "+name)...)
				}
			}
		}
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		media(op.RequestBody.Value.Content, "request")
	}
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.Example != nil {
			problems = append(problems, checkExample(p.Value.Schema, p.Value.Example, where+" parameter "+p.Value.Name+" example")...)
		}
	}
	for _, code := range sortedKeys(op.Responses.Map()) {
		if r := op.Responses.Value(code); r.Value != nil {
			media(r.Value.Content, code)
		}
	}
	return problems
}

// checkExample validates value against schema as JSON Schema 2020-12, and, as Redocly
// does, rejects fields the schema does not name.
func checkExample(schema *openapi3.SchemaRef, value any, what string) []string {
	if schema == nil || schema.Value == nil {
		return []string{what + ": no schema to check it against"}
	}
	// Round-trip through JSON so that numbers are float64, as a decoded body's are.
	b, err := json.Marshal(value)
	if err != nil {
		return []string{what + ": " + err.Error()}
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return []string{what + ": " + err.Error()}
	}
	var problems []string
	if err := schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		problems = append(problems, what+" does not match its schema: "+err.Error())
	}
	for _, f := range Undocumented([]*openapi3.SchemaRef{schema}, v, "$") {
		problems = append(problems, what+": field "+f+" is not in its schema")
	}
	return problems
}

// unusedComponents lists the components no $ref names.
func unusedComponents(raw []byte) ([]string, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("reading the document as JSON: %w", err)
	}
	refs := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				refs[r] = true
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	var out []string
	components, _ := doc["components"].(map[string]any)
	for _, kind := range sortedKeys(components) {
		if kind == "securitySchemes" {
			continue // used by name in security requirements, not by $ref
		}
		group, _ := components[kind].(map[string]any)
		for _, name := range sortedKeys(group) {
			if ref := "#/components/" + kind + "/" + name; !refs[ref] {
				out = append(out, "component "+ref+" is never used")
			}
		}
	}
	return out, nil
}

func sortedMethods(item *openapi3.PathItem) []string {
	ops := item.Operations()
	methods := make([]string, 0, len(ops))
	for m := range ops {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	return methods
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
