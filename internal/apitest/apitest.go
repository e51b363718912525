// Package apitest holds the API to its OpenAPI document in tests: Handler wraps the
// server so that every request a test sends and every answer it gets is validated
// against api/openapi.json (kin-openapi's openapi3filter), and a route, a status, a
// content type or a response field the document does not list fails the test that
// produced it. It is test support: no product code imports it.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// maxCapture bounds what is kept of a request or response body for validation; a
// longer body (a large upload, a long stream) passes through with only its status,
// headers and content type checked.
const maxCapture = 1 << 20

// DocPath returns the path of api/openapi.json, found by walking up from the working
// directory to the module root (go.mod), so any package's tests can use it.
func DocPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding api/openapi.json: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "api", "openapi.json"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding api/openapi.json: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Load reads the OpenAPI document at path and validates it (kin-openapi's loader and
// Validate, examples included). Errors name what failed to load or validate.
func Load(ctx context.Context, path string) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if err := doc.Validate(ctx, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("validating %s: %w", path, err)
	}
	return doc, nil
}

// shared is the document and its router, loaded once per test binary (validating the
// document takes about a second and a half).
var shared struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func sharedRouter() (routers.Router, error) {
	shared.once.Do(func() {
		path, err := DocPath()
		if err != nil {
			shared.err = err
			return
		}
		doc, err := Load(context.Background(), path)
		if err != nil {
			shared.err = err
			return
		}
		shared.doc = doc
		// The test server listens on any port: match routes by path alone.
		doc.Servers = nil
		if shared.router, err = gorillamux.NewRouter(doc); err != nil {
			shared.err = fmt.Errorf("routing %s: %w", path, err)
		}
		// Streamed line-delimited JSON is documented as a string, like CSV.
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
	})
	return shared.router, shared.err
}

// Schema reports each way body (JSON) fails the document's components schema name: a
// mismatch, or a field the schema does not name. For answers written outside a route
// (a helper's output checked on its own); exchanges go through Handler.
func Schema(t testing.TB, name string, body []byte) {
	t.Helper()
	if _, err := sharedRouter(); err != nil {
		t.Fatal(err)
	}
	ref := shared.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		t.Fatalf("api/openapi.json has no schema %q", name)
	}
	value, err := decodeJSON(body)
	if err != nil {
		t.Errorf("not JSON (%v): %q", err, body)
		return
	}
	if err := ref.Value.VisitJSON(value); err != nil {
		t.Errorf("does not match schema %s: %v: %s", name, err, body)
	}
	for _, field := range Undocumented([]*openapi3.SchemaRef{ref}, value, "$") {
		t.Errorf("field %s is not in schema %s: %s", field, name, body)
	}
}

// Handler wraps h so that each exchange is checked against api/openapi.json; every
// violation is reported with t.Errorf (safe from the server's goroutines). The checks:
//   - the route and method are documented, or the answer is the JSON 404 `not_found`
//     or 405 `method_not_allowed` of an unknown route;
//   - a request the document rejects (parameters, headers, JSON body) is not answered
//     with a success;
//   - the status is listed for the operation, the content type is one it lists, and a
//     JSON body matches the schema and carries no field the schema does not name.
//
// An exchange whose client went away is not checked: nobody reads that answer.
func Handler(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	router, err := sharedRouter()
	if err != nil {
		t.Fatal(err)
	}
	return &validator{t: t, h: h, router: router}
}

type validator struct {
	t      testing.TB
	h      http.Handler
	router routers.Router
}

func (v *validator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, params, routeErr := v.router.FindRoute(r)
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		input, reqErr = v.checkRequest(r, route, params)
	}
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			// A handler that aborts a stream has nothing more to check.
			panic(p)
		}
		if r.Context().Err() != nil {
			// The client went away: nobody reads this answer.
			return
		}
		where := r.Method + " " + r.URL.RequestURI()
		if routeErr != nil {
			v.checkUnknownRoute(where, routeErr, rec)
			return
		}
		if reqErr != nil && rec.status < 400 {
			v.t.Errorf("%s: the document rejects this request (%v), the server answered %d", where, reqErr, rec.status)
		}
		for _, problem := range checkResponse(r.Context(), input, rec) {
			v.t.Errorf("%s answered %d: %s", where, rec.status, problem)
		}
	}()
	v.h.ServeHTTP(rec, r)
}

// checkRequest validates the request's parameters and, for a JSON body of at most
// maxCapture bytes, its body; the body is put back for the handler either way.
func (v *validator) checkRequest(r *http.Request, route *routers.Route, params map[string]string) (*openapi3filter.RequestValidationInput, error) {
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
		ExcludeRequestBody:    true,
	}
	// Validate a copy with no body (kin-openapi's security check reads the whole body,
	// which would stall a streamed upload) or with the JSON body read so far.
	clone := r.Clone(r.Context())
	clone.Body = http.NoBody
	input := &openapi3filter.RequestValidationInput{Request: clone, PathParams: params, Route: route, Options: opts}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body := r.Body
	if isJSON(mt) && body != nil && body != http.NoBody {
		head, err := io.ReadAll(io.LimitReader(body, maxCapture+1))
		if err != nil {
			v.t.Errorf("%s %s: reading the request body: %v", r.Method, r.URL.Path, err)
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), body), body}
		if len(head) <= maxCapture {
			clone.Body = io.NopCloser(bytes.NewReader(head))
			bodyOpts := *opts
			bodyOpts.ExcludeRequestBody = false
			input.Options = &bodyOpts
		}
	}
	err := openapi3filter.ValidateRequest(r.Context(), input)
	input.Request, input.Options = r, opts
	return input, err
}

// checkUnknownRoute accepts an undocumented route only when the server refuses it.
func (v *validator) checkUnknownRoute(where string, routeErr error, rec *recorder) {
	want, code := http.StatusNotFound, "not_found"
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
		want, code = http.StatusMethodNotAllowed, "method_not_allowed"
	}
	if rec.status != want || !bytes.Contains(rec.body.Bytes(), []byte(`"code":"`+code+`"`)) {
		body := rec.body.String()
		if len(body) > 200 {
			body = body[:200] + "…"
		}
		v.t.Errorf("%s: undocumented route (%v) answered %d %q; document it", where, routeErr, rec.status, body)
	}
}

// checkResponse validates the recorded answer; it returns what is wrong.
func checkResponse(ctx context.Context, input *openapi3filter.RequestValidationInput, rec *recorder) []string {
	var problems []string
	opts := *input.Options
	opts.ExcludeResponseBody = rec.truncated
	resp := &openapi3filter.ResponseValidationInput{RequestValidationInput: input, Status: rec.status,
		Header: rec.Header(), Options: &opts}
	resp.SetBodyBytes(rec.body.Bytes())
	if err := openapi3filter.ValidateResponse(ctx, resp); err != nil {
		problems = append(problems, err.Error())
	}
	mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if rec.truncated || !isJSON(mt) {
		return problems
	}
	ref := input.Route.Operation.Responses.Status(rec.status)
	if ref == nil || ref.Value == nil {
		return problems
	}
	media := ref.Value.Content.Get(rec.Header().Get("Content-Type"))
	if media == nil || media.Schema == nil {
		return problems
	}
	value, err := decodeJSON(rec.body.Bytes())
	if err != nil {
		return append(problems, "the body is not JSON: "+err.Error())
	}
	for _, field := range Undocumented([]*openapi3.SchemaRef{media.Schema}, value, "$") {
		problems = append(problems, "undocumented field "+field)
	}
	return problems
}

func isJSON(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// recorder passes the answer through and keeps its status and up to maxCapture bytes.
type recorder struct {
	http.ResponseWriter
	status    int
	wrote     bool
	body      bytes.Buffer
	truncated bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	if room := maxCapture - r.body.Len(); room < len(b) {
		r.body.Write(b[:max(room, 0)])
		r.truncated = true
	} else {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
