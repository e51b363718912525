package client

import "encoding/json"

// oapi-codegen v2.8.2 declares an inline oneOf request body's ...JSONRequestBody as a
// defined type of the ...JSONBody that holds the union (not an alias), and a defined type
// does not inherit methods: encoding/json then sees only the unexported union field and
// sends `{}`. Upstream: oapi-codegen/oapi-codegen#2498, fixed by #2501 after v2.8.2. Until
// a release has the fix, these forward to the body's own methods.
// TestUnionRequestBodiesMarshal fails if they are lost; once a generator release forwards
// them itself, the build fails on these duplicates: delete them then.

// MarshalJSON sends the union the body holds.
func (t UploadCodesJSONRequestBody) MarshalJSON() ([]byte, error) {
	return UploadCodesJSONBody(t).MarshalJSON()
}

// UnmarshalJSON keeps the union.
func (t *UploadCodesJSONRequestBody) UnmarshalJSON(b []byte) error {
	return (*UploadCodesJSONBody)(t).UnmarshalJSON(b)
}

// CodeList is the JSON upload body listing codes with no expiry of their own:
// `["A1","A2"]`.
func CodeList(codes ...string) (UploadCodesJSONRequestBody, error) {
	var b UploadCodesJSONBody
	err := b.FromUploadCodesJSONBody0(codes)
	return UploadCodesJSONRequestBody(b), err
}

// compile-time check that the forwarding methods satisfy encoding/json.
var (
	_ json.Marshaler   = UploadCodesJSONRequestBody{}
	_ json.Unmarshaler = (*UploadCodesJSONRequestBody)(nil)
)
