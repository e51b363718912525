package apitest

import (
	"strings"
	"testing"
)

func TestBreaking(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(d map[string]any)
		want   []string // substrings of the breaking changes; none for a compatible change
	}{
		{"unchanged", func(map[string]any) {}, nil},
		{"additions", func(d map[string]any) {
			at(d, "paths")["/v1/new"] = map[string]any{"get": map[string]any{"operationId": "getNew", "responses": map[string]any{"200": map[string]any{"description": "ok"}}}}
			at(schemas(d), "Group", "properties")["colour"] = map[string]any{"type": "string"}
			st := at(schemas(d), "Group", "properties", "balance_state")
			st["enum"] = append(st["enum"].([]any), "frozen")
			at(schemas(d), "GroupInput", "properties")["colour"] = map[string]any{"type": "string"}
			at(schemas(d), "GroupInput", "properties", "name")["type"] = []any{"string", "null"}
			at(d, "paths", "/v1/groups", "get", "responses")["429"] = map[string]any{"description": "slow down"}
		}, nil},
		{"route removed", func(d map[string]any) {
			delete(at(d, "paths", "/v1/groups/{id}/uploads"), "get")
		}, []string{"GET /v1/groups/{id}/uploads: route removed"}},
		{"operationId renamed", func(d map[string]any) {
			at(d, "paths", "/v1/groups", "post")["operationId"] = "newGroup"
		}, []string{`POST /v1/groups: operationId "createGroup" became "newGroup"`}},
		{"response property removed", func(d map[string]any) {
			delete(at(schemas(d), "Group", "properties"), "total")
		}, []string{"GET /v1/groups: answer 200 application/json $.groups[].total removed", "GET /v1/groups/{id}: answer 200 application/json $.total removed"}},
		{"error field removed", func(d map[string]any) {
			delete(at(schemas(d), "Error", "properties", "error", "properties"), "missing")
		}, []string{"POST /v1/mailings/{id}/start: answer 409 application/json $.error.missing removed"}},
		{"enum value removed", func(d map[string]any) {
			at(schemas(d), "Group", "properties", "balance_state")["enum"] = []any{"ok", "empty"}
		}, []string{`$.balance_state: enum value "low" removed`}},
		{"request enum value removed", func(d map[string]any) {
			q := at(schemas(d), "SegmentFilter", "properties", "quantity", "properties", "op")
			q["enum"] = q["enum"].([]any)[1:]
		}, []string{`POST /v1/segments/count: request application/json $.filter.quantity.op: enum value "eq" removed`}},
		{"request property required", func(d map[string]any) {
			at(schemas(d), "GroupInput")["required"] = []any{"description"}
		}, []string{"POST /v1/groups: request application/json $.description became required", "PATCH /v1/groups/{id}: request application/json $.description became required"}},
		{"request type narrowed", func(d map[string]any) {
			at(schemas(d), "GroupInput", "properties", "low_balance_threshold")["type"] = "integer"
		}, []string{"POST /v1/groups: request application/json $.low_balance_threshold: type null no longer accepted"}},
		{"answer type widened", func(d map[string]any) {
			at(schemas(d), "Group", "properties", "name")["type"] = []any{"string", "null"}
		}, []string{"GET /v1/groups/{id}: answer 200 application/json $.name: may now be null"}},
		{"parameter required", func(d map[string]any) {
			op := at(d, "paths", "/v1/mailings", "get")
			op["parameters"].([]any)[0].(map[string]any)["required"] = true
		}, []string{"GET /v1/mailings: parameter query limit became required"}},
		{"success answer removed", func(d map[string]any) {
			delete(at(d, "paths", "/v1/groups/{id}/issue", "post", "responses"), "200")
		}, []string{"POST /v1/groups/{id}/issue: answer 200 removed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := document(t)
			old := load(t, d)
			tc.change(d)
			got := Breaking(old, load(t, d))
			if len(tc.want) == 0 && len(got) > 0 {
				t.Errorf("a compatible change reported as breaking:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("want %q among:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
