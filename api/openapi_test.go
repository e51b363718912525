package api_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"promopool/alerts"
	"promopool/api"
	"promopool/internal/apitest"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/offers"
	"promopool/reports"
	"promopool/segments"
)

// The document is valid OpenAPI 3.1 (kin-openapi's loader and Validate) and keeps the
// rules Redocly's linter checks in scripts/test.sh, so they hold where npm cannot run.
func TestOpenAPIDocument(t *testing.T) {
	if _, err := apitest.Load(context.Background(), "openapi.json"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := apitest.Lint(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Under /v1 the document only grows: compared with the snapshot of the first release
// (api/openapi.v1.json), no route, response field or enum value is gone and no request
// field became required. See docs/api-versioning.md.
func TestOpenAPICompatibleWithV1(t *testing.T) {
	load := func(path string) *openapi3.T {
		doc, err := openapi3.NewLoader().LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	for _, b := range apitest.Breaking(load("openapi.v1.json"), load("openapi.json")) {
		t.Errorf("breaking change under /v1 (docs/api-versioning.md): %s", b)
	}
}

// Every documented operation is served: asked without a key, an authenticated one
// answers 401 (an unserved route would answer 404 not_found), a probe answers.
func TestEveryDocumentedOperationIsServed(t *testing.T) {
	c := newClient(t, api.Config{Metrics: promhttp.Handler()}, func(d *api.Deps, db *testdb.DB) {
		// Every route set, with services that are never reached: each request stops at
		// the key check.
		d.Mailings = mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB})
		d.Segments = segments.New(db.DB, segments.Config{})
		d.Alerts = noAlerts{}
		var err error
		if d.Reports, err = reports.New(reports.Config{}, reports.Deps{DB: db.DB, Groups: d.Groups}); err != nil {
			t.Fatal(err)
		}
	})
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			req, _ := http.NewRequest(method, c.srv.URL+strings.ReplaceAll(path, "{id}", "1"), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			resp.Body.Close()
			want := http.StatusUnauthorized
			if op.Security != nil && len(*op.Security) == 0 {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s (%s) without a key: %d, want %d", method, path, op.OperationID, resp.StatusCode, want)
			}
			served++
		}
	}
	if served < 30 {
		t.Fatalf("only %d operations in the document", served)
	}
}

// noAlerts serves the alerts route in tests whose requests never reach it.
type noAlerts struct{}

func (noAlerts) List(context.Context, int64, int64, int) ([]alerts.Alert, error) { return nil, nil }

// Acknowledge serves the acknowledgement route in the same tests.
func (noAlerts) Acknowledge(context.Context, int64) (*alerts.Alert, error) {
	return nil, alerts.ErrAlertNotFound
}

// TestOpenAPICheckoutReasons: the document's CheckoutReason enum is the reasons
// checkout answers (offers.Reasons), and POST /v1/validate has an example of every
// reason with its buyer-safe message as offers gives it, so the document cannot fall
// behind a reason added or a message reworded.
func TestOpenAPICheckoutReasons(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	enum := map[string]bool{}
	for _, v := range doc.Components.Schemas["CheckoutReason"].Value.Enum {
		enum[v.(string)] = true
	}
	examples := doc.Paths.Value("/v1/validate").Post.Responses.Status(200).Value.Content.Get("application/json").Examples
	byReason := map[string]map[string]any{}
	for name, ex := range examples {
		v, _ := ex.Value.Value.(map[string]any)
		if r, ok := v["reason"].(string); ok {
			byReason[r] = v
		} else if v["valid"] != true {
			t.Errorf("example %s is neither valid nor has a reason: %v", name, v)
		}
	}
	for _, r := range offers.Reasons {
		if !enum[string(r)] {
			t.Errorf("reason %s is not in CheckoutReason's enum", r)
		}
		delete(enum, string(r))
		ex, ok := byReason[string(r)]
		if !ok {
			t.Errorf("POST /v1/validate has no example of reason %s", r)
			continue
		}
		if ex["valid"] != false || ex["message"] != r.Message() {
			t.Errorf("example of %s: valid %v message %q, want false and %q", r, ex["valid"], ex["message"], r.Message())
		}
	}
	for r := range enum {
		t.Errorf("CheckoutReason lists %s, which checkout never answers", r)
	}
}
