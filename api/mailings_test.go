package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"promopool/api"
	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/segments"
)

// The mailing, template and render routes over HTTP. newClient's server checks every
// answer against the OpenAPI document, so this test holds those schemas and statuses
// to what the server sends. No queue is wired: a started mailing sends nothing.
func TestMailingsOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		d.Mailings = mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB, Groups: groups.NewStore(db.DB, groups.Config{}),
			Segments: segments.New(db.DB, segments.Config{}), Log: log})
	})
	if status, body := c.json("POST", "/v1/groups", `{"name":"Spring"}`); status != 201 {
		t.Fatalf("group: %d %v", status, body)
	}
	if status, body := c.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader("S1\nS2\n")); status != 201 {
		t.Fatalf("codes: %d %v", status, body)
	}
	customers := `{"id":"c1","email":"c1@example.com","first_name":"Ann","attributes":{"city":"Lyon"}}` + "\n" +
		`{"id":"c2","email":"c2@example.com"}` + "\n" + `{"id":"c3","email":"c3@example.com"}` + "\n"
	if status, body := c.do("PUT", "/v1/customers", "application/x-ndjson", strings.NewReader(customers)); status != 200 || body["upserted"] != 3.0 {
		t.Fatalf("customers: %d %v", status, body)
	}

	t.Run("templates", func(t *testing.T) {
		status, body := c.json("POST", "/v1/templates/validate", `{"subject":"Hi","text":"{{client.promocode('Spring')}} {{client.attr('city')}}"}`)
		if status != 200 || body["valid"] != true || fmt.Sprint(body["new_code_groups"]) != "[Spring]" || fmt.Sprint(body["attributes"]) != "[city]" {
			t.Errorf("validate: %d %v", status, body)
		}
		status, body = c.json("POST", "/v1/templates/validate", `{"subject":"Hi","text":"no macro"}`)
		if status != 200 || body["valid"] != true {
			t.Errorf("validate without macros: %d %v", status, body)
		}
		status, body = c.json("POST", "/v1/templates/validate", `{"subject":"Hi","html":"<p>{{client.promocode('Sprng')}}</p>"}`)
		problems, _ := body["error"].(map[string]any)["problems"].([]any)
		if status != 400 || errCode(body) != "invalid_template" || len(problems) != 1 || problems[0].(map[string]any)["part"] != "html" {
			t.Errorf("unknown group: %d %v", status, body)
		}
		status, body = c.json("POST", "/v1/templates/preview", `{"subject":"Hi {{client.first_name}}","text":"{{client.promocode('Spring')}}","customer_id":"c1"}`)
		if status != 200 || body["subject"] != "Hi Ann" || body["customer_id"] != "c1" || body["codes"].(map[string]any)["Spring"] == nil {
			t.Errorf("preview: %d %v", status, body)
		}
		if status, body := c.json("POST", "/v1/templates/preview", `{"subject":"Hi","text":"x","customer_id":"nobody"}`); status != 404 || errCode(body) != "customer_not_found" {
			t.Errorf("preview of an unknown customer: %d %v", status, body)
		}
	})

	mailing := `{"name":"Spring sale","sender":"Shop <news@shop.example>","subject":"{{client.first_name}}, your code",
		"text":"Code: {{client.promocode('Spring')}}","audience":{"customer_ids":["c1","c2","c3"]}}`
	status, m := c.json("POST", "/v1/mailings", mailing)
	if status != 201 || m["status"] != "draft" || m["group_ids"].(map[string]any)["spring"] != 1.0 {
		t.Fatalf("create: %d %v", status, m)
	}
	path := fmt.Sprintf("/v1/mailings/%d", int64(m["id"].(float64)))

	t.Run("create refused", func(t *testing.T) {
		for _, tc := range []struct{ body, code string }{
			{`{"name":"x","sender":"Shop <a@b.example>","text":"x","audience":{"all":true}}`, "invalid_field"},
			{`{"name":"x","sender":"Shop <a@b.example>","subject":"s","text":"{{client.nope}}","audience":{"all":true}}`, "invalid_template"},
			{`{"name":"x","sender":"Shop <a@b.example>","subject":"s","text":"x","audience":{"segment":{"quantity":{"op":"between","min":1}}}}`, "invalid_filter"},
		} {
			status, body := c.json("POST", "/v1/mailings", tc.body)
			if status != 400 || errCode(body) != tc.code {
				t.Errorf("%s: %d %v, want 400 %s", tc.body, status, body, tc.code)
			}
			if e := body["error"].(map[string]any); tc.code == "invalid_filter" && !strings.HasPrefix(fmt.Sprint(e["path"]), "$.audience.segment") {
				t.Errorf("invalid_filter path: %v", e)
			}
		}
	})

	t.Run("read and preview", func(t *testing.T) {
		if status, body := c.do("GET", path, "", nil); status != 200 || body["name"] != "Spring sale" {
			t.Errorf("get: %d %v", status, body)
		}
		if status, body := c.do("GET", "/v1/mailings?limit=5", "", nil); status != 200 || len(body["mailings"].([]any)) != 1 {
			t.Errorf("list: %d %v", status, body)
		}
		if status, body := c.do("GET", "/v1/mailings/999", "", nil); status != 404 || errCode(body) != "mailing_not_found" {
			t.Errorf("get unknown: %d %v", status, body)
		}
		if status, body := c.json("POST", path+"/preview", ``); status != 200 || !strings.HasPrefix(fmt.Sprint(body["text"]), "Code: ") {
			t.Errorf("preview of the sample: %d %v", status, body)
		}
		if status, body := c.json("POST", path+"/preview", `{"customer_id":"c2"}`); status != 200 || body["email"] != "c2@example.com" {
			t.Errorf("preview of c2: %d %v", status, body)
		}
	})

	t.Run("control", func(t *testing.T) {
		status, body := c.json("POST", path+"/start", ``)
		e, _ := body["error"].(map[string]any)
		if status != 409 || errCode(body) != "insufficient_codes" || e["audience"] != 3.0 || fmt.Sprint(e["missing"]) != "map[Spring:1]" {
			t.Errorf("start with 2 codes for 3: %d %v", status, body)
		}
		if status, body := c.json("POST", path+"/pause", ``); status != 409 || errCode(body) != "invalid_state" {
			t.Errorf("pause a draft: %d %v", status, body)
		}
		// With no queue wired, a start writes the outbox and enqueues nothing.
		for _, step := range []struct{ action, body, status string }{
			{"start", `{"send_while_codes_last":true}`, "running"},
			{"pause", ``, "paused"},
			{"resume", ``, "running"},
			{"cancel", ``, "cancelled"},
		} {
			status, body := c.json("POST", path+"/"+step.action, step.body)
			if status != 200 || body["status"] != step.status {
				t.Errorf("%s: %d %v, want %s", step.action, status, body, step.status)
			}
		}
		if status, body := c.json("POST", path+"/resume", ``); status != 409 || errCode(body) != "invalid_state" {
			t.Errorf("resume a cancelled mailing: %d %v", status, body)
		}
		if status, body := c.do("GET", path, "", nil); status != 200 || body["progress"].(map[string]any)["recipients"] != 3.0 {
			t.Errorf("progress after start: %d %v", status, body)
		}
	})

	t.Run("render", func(t *testing.T) {
		req := `{"scope":"crm-77","template":{"Subject":"Hi","Text":"{{client.promocode('Spring')}}"},"customer_ids":["c1","ghost"]}`
		status, body := c.json("POST", "/v1/render", req)
		msgs, _ := body["messages"].([]any)
		if status != 200 || len(msgs) != 1 || body["skipped"].(map[string]any)["ghost"] != "unknown customer" {
			t.Fatalf("render: %d %v", status, body)
		}
		code := msgs[0].(map[string]any)["text"]
		if status, again := c.json("POST", "/v1/render", req); status != 200 || again["messages"].([]any)[0].(map[string]any)["text"] != code {
			t.Errorf("render again under the same scope: %d %v, want code %v", status, again, code)
		}
		if status, body := c.json("POST", "/v1/render", `{"customer_ids":["c1"]}`); status != 400 || errCode(body) != "invalid_field" {
			t.Errorf("render without a scope: %d %v", status, body)
		}
	})
}
