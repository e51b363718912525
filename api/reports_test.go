package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"promopool/api"
	"promopool/auth"
	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/mailings"
	"promopool/reports"
)

// TestMetricsOverHTTP: a group's report and the portfolio through the API (validated
// against the document by apitest), their period and sort errors, and their scope.
func TestMetricsOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		svc, err := reports.New(reports.Config{}, reports.Deps{DB: db.DB, Groups: d.Groups,
			Mailings: mailings.New(mailings.Config{}, mailings.Deps{DB: db.DB, Groups: d.Groups})})
		if err != nil {
			t.Fatal(err)
		}
		d.Reports = svc
	})
	ctx := context.Background()
	store := groups.NewStore(c.db.DB, groups.Config{})
	ids := map[string]int64{}
	for _, name := range []string{"Spring", "Autumn"} {
		status, g := c.json("POST", "/v1/groups", fmt.Sprintf(`{"name":%q}`, name))
		if status != 201 {
			t.Fatalf("create: %d %v", status, g)
		}
		ids[name] = int64(g["id"].(float64))
		if status, _ := c.do("POST", fmt.Sprintf("/v1/groups/%d/codes", ids[name]), "text/plain",
			strings.NewReader(strings.Repeat(name+"-x\n", 1)+name+"-1\n"+name+"-2\n"+name+"-3\n"+name+"-4\n"+name+"-5\n")); status != 201 && status != 200 {
			t.Fatalf("upload: %d", status)
		}
	}
	mailing := int64(7)
	if _, err := store.Claim(ctx, groups.ClaimRequest{GroupID: ids["Spring"], Scope: "mailing:7", MailingID: &mailing,
		CustomerIDs: []string{"a", "b", "c"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(ctx, groups.ClaimRequest{GroupID: ids["Spring"], Scope: "direct:k", CustomerIDs: []string{"d"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(ctx, groups.ClaimRequest{GroupID: ids["Autumn"], Scope: "direct:k", CustomerIDs: []string{"d"}}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format("2006-01-02")

	status, m := c.do("GET", fmt.Sprintf("/v1/groups/%d/metrics", ids["Spring"]), "", nil)
	if status != 200 {
		t.Fatalf("metrics: %d %v", status, m)
	}
	issues := m["issues"].(map[string]any)
	if issues["initial"] != 4.0 || issues["by_mailing"] != 3.0 || issues["direct"] != 1.0 {
		t.Errorf("issues: %v", issues)
	}
	period := m["period"].(map[string]any)
	if period["to"] != today || period["days"] != 30.0 {
		t.Errorf("default period: %v", period)
	}
	daily := m["daily"].([]any)
	last := daily[len(daily)-1].(map[string]any)
	if len(daily) != 30 || last["date"] != today || last["issued"] != 4.0 || last["active"] != 2.0 {
		t.Errorf("daily: %d days, last %v", len(daily), last)
	}
	ms := m["mailings"].([]any)
	if len(ms) != 1 || ms[0].(map[string]any)["mailing_id"] != 7.0 || ms[0].(map[string]any)["issued"] != 3.0 {
		t.Errorf("mailings: %v", ms)
	}
	if b := m["balance"].(map[string]any); b["active"] != 2.0 || b["dry_at"] == nil {
		t.Errorf("balance: %v", b)
	}

	status, pf := c.do("GET", "/v1/metrics?sort=-issued&from="+today, "", nil)
	rows, _ := pf["groups"].([]any)
	if status != 200 || len(rows) != 2 || rows[0].(map[string]any)["group_name"] != "Spring" || rows[1].(map[string]any)["issued"] != 1.0 {
		t.Fatalf("portfolio: %d %v", status, pf)
	}
	if status, pf := c.do("GET", "/v1/metrics?sort=name", "", nil); status != 200 || pf["groups"].([]any)[0].(map[string]any)["group_name"] != "Autumn" {
		t.Fatalf("portfolio by name: %d %v", status, pf)
	}

	for path, field := range map[string]string{
		fmt.Sprintf("/v1/groups/%d/metrics?from=yesterday", ids["Spring"]):                "from",
		fmt.Sprintf("/v1/groups/%d/metrics?from=2026-12-02&to=2026-12-01", ids["Spring"]): "to",
		"/v1/metrics?sort=discount": "sort",
	} {
		status, body := c.do("GET", path, "", nil)
		if e, _ := body["error"].(map[string]any); status != http.StatusBadRequest || errCode(body) != "invalid_field" ||
			!strings.HasPrefix(e["message"].(string), field+":") {
			t.Errorf("%s: %d %v, want invalid_field naming %s", path, status, body, field)
		}
	}
	if status, body := c.do("GET", "/v1/groups/999999/metrics", "", nil); status != 404 || errCode(body) != "group_not_found" {
		t.Errorf("unknown group: %d %v", status, body)
	}
	keys, _ := auth.NewKeys(c.db.DB, "")
	issueOnly, err := keys.Create(ctx, "sender", []auth.Scope{auth.ScopeIssue})
	if err != nil {
		t.Fatal(err)
	}
	c.key = issueOnly
	if status, body := c.do("GET", "/v1/metrics", "", nil); status != 403 || errCode(body) != "insufficient_scope" {
		t.Errorf("issue-only key: %d %v", status, body)
	}
	c.key = ""
	if status, _ := c.do("GET", fmt.Sprintf("/v1/groups/%d/metrics", ids["Spring"]), "", nil); status != 401 {
		t.Errorf("no key: %d", status)
	}
}
