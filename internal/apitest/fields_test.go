package apitest

import (
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestUndocumented(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData([]byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{},
	 "components":{"schemas":{
	  "Base":{"type":"object","properties":{"id":{"type":"integer"}}},
	  "Report":{"allOf":[{"$ref":"#/components/schemas/Base"},{"type":"object","properties":{
	    "lines":{"type":"array","items":{"type":"object","properties":{"line":{"type":"integer"}}}},
	    "counts":{"type":"object","additionalProperties":{"type":"object","properties":{"n":{"type":"integer"}}}},
	    "open":{"type":"object","additionalProperties":true,"properties":{"a":{"type":"string"}}},
	    "free":{"type":["object","null"]}}}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	value := map[string]any{
		"id":     1.0,
		"extra":  true,
		"lines":  []any{map[string]any{"line": 1.0}, map[string]any{"line": 2.0, "col": 3.0}},
		"counts": map[string]any{"Spring": map[string]any{"n": 1.0, "m": 2.0}},
		"open":   map[string]any{"a": "x", "b": "y"},
		"free":   map[string]any{"anything": []any{1.0}},
	}
	got := Undocumented([]*openapi3.SchemaRef{doc.Components.Schemas["Report"]}, value, "$")
	want := []string{"$.counts.Spring.m", "$.extra", "$.lines[1].col"}
	if !slices.Equal(got, want) {
		t.Fatalf("undocumented %v, want %v", got, want)
	}
}
