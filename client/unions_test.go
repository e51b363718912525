package client_test

import (
	"encoding/json"
	"testing"

	"promopool/client"
)

// The oneOf request bodies reach the wire as what they hold, not `{}` (the generator's
// request-body type loses the union's JSON methods, oapi-codegen#2498; unions.go
// forwards them), and read back into the same union.
func TestUnionRequestBodiesMarshal(t *testing.T) {
	list, err := client.CodeList("A1", "A2")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, body client.UploadCodesJSONRequestBody, want string) {
		t.Helper()
		got, err := json.Marshal(body)
		if err != nil || string(got) != want {
			t.Errorf("%s: marshalled %s (%v), want %s", name, got, err, want)
		}
		// As a field and through a pointer too (how the generated client sends it).
		got, _ = json.Marshal(&body)
		if string(got) != want {
			t.Errorf("%s through a pointer: %s, want %s", name, got, want)
		}
		var back client.UploadCodesJSONRequestBody
		if err := json.Unmarshal([]byte(want), &back); err != nil {
			t.Fatalf("%s: unmarshal: %v", name, err)
		}
		if again, _ := json.Marshal(back); string(again) != want {
			t.Errorf("%s: round trip gave %s, want %s", name, again, want)
		}
	}
	check("list of codes", list, `["A1","A2"]`)

	var item0, item1 client.UploadCodesJSONBody_1_Codes_Item
	if err := item0.FromUploadCodesJSONBody1Codes0("B1"); err != nil {
		t.Fatal(err)
	}
	if err := item1.FromUploadCodesJSONBody1Codes1(client.UploadCodesJSONBody1Codes1{Code: "B2", ExpiresAt: new("2031-01-01")}); err != nil {
		t.Fatal(err)
	}
	var obj client.UploadCodesJSONBody
	if err := obj.FromUploadCodesJSONBody1(client.UploadCodesJSONBody1{ExpiresAt: new("2030-06-30"),
		Codes: &[]client.UploadCodesJSONBody_1_Codes_Item{item0, item1}}); err != nil {
		t.Fatal(err)
	}
	check("object with expiries", client.UploadCodesJSONRequestBody(obj),
		`{"codes":["B1",{"code":"B2","expires_at":"2031-01-01"}],"expires_at":"2030-06-30"}`)

	// A union inside a named schema (segment groups by id or by name) keeps its methods.
	var byID, byName client.SegmentGroupRef
	byID.FromSegmentGroupRef0(7)
	byName.FromSegmentGroupRef1("Spring")
	b, err := json.Marshal([]client.SegmentGroupRef{byID, byName})
	if err != nil || string(b) != `[7,"Spring"]` {
		t.Errorf("segment groups: %s (%v)", b, err)
	}
}
