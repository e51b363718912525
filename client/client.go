// Package client is promopool's typed Go client, generated from api/openapi.json by
// oapi-codegen (client.gen.go, configured by cfg.yaml) with a few hand-written helpers
// (this file, unions.go). Regenerate it after changing the document:
//
//	go generate ./client
//
// The generator is pinned in go.mod as a tool, so this needs no global install.
// TestGeneratedCodeIsCurrent fails while client.gen.go differs from what the document
// generates.
//
// A short integration (README "Go client" has it in full):
//
//	c, err := client.New("https://promopool.example", os.Getenv("PROMOPOOL_KEY"))
//	g, err := client.Check(c.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("Spring")}))
//	_, err = client.Check(c.UploadCodesWithBodyWithResponse(ctx, *g.JSON201.Id, nil, "text/plain", codes))
//	iss, err := client.Check(c.IssueCodeWithResponse(ctx, *g.JSON201.Id,
//		&client.IssueCodeParams{IdempotencyKey: "order-1"}, client.IssueCodeJSONRequestBody{CustomerId: "c1"}))
//	fmt.Println(*iss.JSON200.Code)
//
// Every answer the document lists is decoded into the response's JSONnnn field; Check
// turns any answer outside 2xx into an *APIError carrying the document's error body.
package client

//go:generate go tool oapi-codegen -config cfg.yaml ../api/openapi.json

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// New returns a client of the API at server (e.g. "https://promopool.example", without
// /v1) that sends key as its bearer token (an API key or a platform JWT); an empty key
// sends none. opts add to that, e.g. WithHTTPClient for timeouts or transport.
func New(server, key string, opts ...ClientOption) (*ClientWithResponses, error) {
	if key != "" {
		opts = append([]ClientOption{WithBearer(key)}, opts...)
	}
	return NewClientWithResponses(server, opts...)
}

// WithBearer sends token in the Authorization header of every request.
func WithBearer(token string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	})
}

// Response is what every generated XxxResponse satisfies.
type Response interface {
	StatusCode() int
	GetBody() []byte
}

// APIError is an answer outside 2xx. Code and Message are the document's error body
// (`{"error":{"code":…,"message":…}}`); Body holds the whole of it, with the fields some
// codes add (path and reason of invalid_filter, problems of invalid_template, missing of
// insufficient_codes…). An answer that is not that JSON (a proxy's page) leaves Code
// empty and keeps the raw text in Message.
type APIError struct {
	Status  int
	Code    string
	Message string
	Body    Error
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("promopool: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("promopool: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Check passes a call's result through when it succeeded with a 2xx answer; a transport
// error is returned as is, any other answer as *APIError. It takes the call's two results
// directly: r, err := client.Check(c.GetGroupWithResponse(ctx, id)).
func Check[R Response](r R, err error) (R, error) {
	if err != nil {
		return r, err
	}
	if s := r.StatusCode(); s < 200 || s > 299 {
		return r, ErrorOf(s, r.GetBody())
	}
	return r, nil
}

// ErrorOf decodes an error answer's body into an *APIError.
func ErrorOf(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	if json.Unmarshal(body, &e.Body) == nil && e.Body.Error.Code != "" {
		e.Code, e.Message = e.Body.Error.Code, e.Body.Error.Message
		return e
	}
	const max = 512
	msg := strings.TrimSpace(string(body))
	if len(msg) > max {
		msg = msg[:max] + "…"
	}
	e.Message = msg
	return e
}
