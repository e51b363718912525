package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"promopool/alerts"
	"promopool/api"
	"promopool/groups"
	"promopool/internal/testdb"
)

func TestAlertsOverHTTP(t *testing.T) {
	var checker *alerts.Service
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		var err error
		if checker, err = alerts.New(alerts.Config{}, alerts.Deps{DB: db.DB, Groups: groups.NewStore(db.DB, groups.Config{}), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
			t.Fatal(err)
		}
		d.Alerts = checker
	})
	store := groups.NewStore(c.db.DB, groups.Config{})

	status, g := c.json("POST", "/v1/groups", `{"name":"Spring"}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, g)
	}
	path := fmt.Sprintf("/v1/groups/%d", int64(g["id"].(float64)))
	if status, body := c.json("PATCH", path, `{"low_balance_percent":0}`); status != 400 || errCode(body) != "invalid_field" {
		t.Fatalf("percent 0: %d %v", status, body)
	}
	if status, body := c.json("PATCH", path, `{"low_balance_threshold":3,"low_balance_percent":25}`); status != 200 ||
		body["low_balance_percent"] != 25.0 || body["low_balance_threshold"] != 3.0 {
		t.Fatalf("patch: %d %v", status, body)
	}
	if status, _ := c.do("POST", path+"/codes", "text/plain", strings.NewReader("A\nB\nC\nD\nE\nF\nG\nH\n")); status != 201 && status != 200 {
		t.Fatalf("upload: %d", status)
	}
	// 25% of 8 is 2, under the absolute 3: the effective threshold is 3.
	if _, body := c.do("GET", path, "", nil); body["balance_state"] != "ok" {
		t.Fatalf("group: %v", body)
	}
	id := int64(g["id"].(float64))
	if _, err := store.Claim(context.Background(), groups.ClaimRequest{GroupID: id, Scope: "t", CustomerIDs: []string{"a", "b", "c", "d", "e"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := checker.Check(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	status, body := c.do("GET", path+"/alerts", "", nil)
	list, _ := body["alerts"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("alerts: %d %v", status, body)
	}
	a := list[0].(map[string]any)
	if a["level"] != "threshold" || a["balance"] != 3.0 || a["threshold"] != 3.0 || a["rate_per_day"] == nil ||
		!strings.Contains(a["message"].(string), `Group "Spring" is low: 3 active codes left (threshold 3).`) {
		t.Fatalf("alert: %v", a)
	}
	raw, _ := json.Marshal(a)
	if strings.Contains(string(raw), `"code"`) {
		t.Fatalf("an alert carries a code: %s", raw)
	}
	if status, body := c.do("GET", "/v1/groups/999999/alerts", "", nil); status != http.StatusNotFound || errCode(body) != "group_not_found" {
		t.Fatalf("unknown group: %d %v", status, body)
	}
	c.key = ""
	if status, _ := c.do("GET", path+"/alerts", "", nil); status != 401 {
		t.Fatalf("no key: %d", status)
	}
}
