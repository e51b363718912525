package apitest

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(d map[string]any)
		want   string // a substring of a problem; "" for none
	}{
		{"the document", func(map[string]any) {}, ""},
		{"no operationId", func(d map[string]any) {
			delete(at(d, "paths", "/v1/groups", "get"), "operationId")
		}, "GET /v1/groups: no operationId"},
		{"duplicate operationId", func(d map[string]any) {
			at(d, "paths", "/v1/groups", "get")["operationId"] = "createGroup"
		}, `operationId "createGroup" is also`},
		{"operationId style", func(d map[string]any) {
			at(d, "paths", "/v1/groups", "get")["operationId"] = "List_Groups"
		}, "is not lowerCamelCase"},
		{"no 4xx", func(d map[string]any) {
			r := at(d, "paths", "/v1/mailings", "get", "responses")
			delete(r, "401")
			delete(r, "403")
		}, "GET /v1/mailings: no 4xx answer"},
		{"no 403", func(d map[string]any) {
			delete(at(d, "paths", "/v1/groups/{id}", "get", "responses"), "403")
		}, "GET /v1/groups/{id}: authenticated, but 403 is not #/components/responses/Forbidden"},
		{"4xx without the Error schema", func(d map[string]any) {
			at(d, "paths", "/v1/uploads/{id}", "delete", "responses")["409"] = map[string]any{
				"description": "x", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}, "DELETE /v1/uploads/{id}: 409 does not answer application/json with the Error schema"},
		{"answer without content", func(d map[string]any) {
			at(d, "paths", "/v1/uploads/{id}", "delete", "responses")["409"] = map[string]any{"description": "x"}
		}, "DELETE /v1/uploads/{id}: 409 has no content"},
		{"example of the wrong type", func(d map[string]any) {
			at(d, "paths", "/v1/groups", "post", "requestBody", "content", "application/json", "example")["name"] = 5.0
		}, "POST /v1/groups request application/json example does not match its schema"},
		{"example with an undocumented field", func(d map[string]any) {
			ex := at(d, "paths", "/v1/segments/count", "post", "responses", "400", "content", "application/json", "example", "error")
			ex["line"] = 3.0
		}, "POST /v1/segments/count 400 application/json example: field $.error.line is not in its schema"},
		{"named example", func(d map[string]any) {
			at(d, "paths", "/v1/segments/count", "post", "requestBody", "content", "application/json", "examples", "never", "value", "filter")["sometimes"] = true
		}, "example never"},
		{"schema example", func(d map[string]any) {
			at(schemas(d), "UploadReport", "example")["accepted"] = "three"
		}, "schema UploadReport example does not match its schema"},
		{"unused component", func(d map[string]any) {
			schemas(d)["Orphan"] = map[string]any{"type": "object"}
		}, "component #/components/schemas/Orphan is never used"},
		{"no license", func(d map[string]any) {
			delete(at(d, "info"), "license")
		}, "info has no license"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := document(t)
			tc.change(d)
			problems, err := Lint(marshal(t, d))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				for _, p := range problems {
					t.Error(p)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("want %q among:\n%s", tc.want, strings.Join(problems, "\n"))
		})
	}
}
