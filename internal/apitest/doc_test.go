package apitest

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// document returns api/openapi.json as generic JSON, for a test to change.
func document(t *testing.T) map[string]any {
	t.Helper()
	path, err := DocPath()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func marshal(t *testing.T, d map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func load(t *testing.T, d map[string]any) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(marshal(t, d))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// at walks d down the object keys given.
func at(d map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		d = d[k].(map[string]any)
	}
	return d
}

func schemas(d map[string]any) map[string]any { return at(d, "components", "schemas") }
