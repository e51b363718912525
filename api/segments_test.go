package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"promopool/api"
	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/segments"
)

func TestSegmentsOverHTTP(t *testing.T) {
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		d.Segments = segments.New(db.DB, segments.Config{})
	})
	db, srv := c.db, c.srv
	store := groups.NewStore(db.DB, groups.Config{})

	ctx := context.Background()
	name := "Spring"
	spring, err := store.Create(ctx, "t", groups.Input{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	var codes strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&codes, "SPRING%02d\n", i)
	}
	if status, body := c.do("POST", fmt.Sprintf("/v1/groups/%d/codes", spring.ID), "text/plain", strings.NewReader(codes.String())); status >= 300 {
		t.Fatalf("upload: %d %v", status, body)
	}
	var custs []string
	for i := 0; i < 25; i++ {
		custs = append(custs, fmt.Sprintf("cust-%02d", i))
	}
	if _, err := db.Exec(`INSERT INTO customers (id) SELECT unnest($1::text[])`, "{"+strings.Join(custs, ",")+"}"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(ctx, groups.ClaimRequest{GroupID: spring.ID, Scope: "mailing:1", CustomerIDs: custs[:20]}); err != nil {
		t.Fatal(err)
	}
	issued := `{"filter":{"issued_from":{"groups":["Spring"],"window":{"last_days":1}}}`

	status, body := c.json("POST", "/v1/segments/count", issued+`}`)
	if status != 200 || body["count"] != 20.0 || body["as_of"] == nil {
		t.Fatalf("count: %d %v", status, body)
	}
	if status, body := c.json("POST", "/v1/segments/count", `{"filter":{"not":`+issued[10:]+`}}`); status != 200 || body["count"] != 5.0 {
		t.Fatalf("not: %d %v", status, body)
	}
	// Two of the twenty redeemed (one more was refunded): the reminder's audience is the
	// other eighteen.
	for i, status := range []string{"succeeded", "succeeded", "refunded"} {
		if _, err := db.Exec(`INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, request_hash, status,
			currency, order_amount, discount_amount, refunded_amount, snapshot)
			VALUES ($1, $2, 'X', 'unique', $3, $4::text, sha256(convert_to($4::text, 'UTF8')), $5::text, 'EUR', 1000, 100, CASE WHEN $5::text = 'refunded' THEN 100 ELSE 0 END, '{}')`,
			spring.ID, i+1, custs[i], fmt.Sprintf("o%d", i), status); err != nil {
			t.Fatal(err)
		}
	}
	reminder := `{"filter":{"and":[{"issued_from":{"groups":["Spring"],"window":{"last_days":14}}},{"not":{"redeemed":{"groups":["Spring"],"window":{"last_days":14}}}}]}}`
	if status, body := c.json("POST", "/v1/segments/count", reminder); status != 200 || body["count"] != 18.0 || body["as_of"] == nil {
		t.Fatalf("reminder: %d %v", status, body)
	}
	if status, body := c.json("POST", "/v1/segments/count", `{"filter":{"redeemed":{"op":"gte","value":1}}}`); status != 200 || body["count"] != 2.0 {
		t.Fatalf("redeemed: %d %v", status, body)
	}

	// Pages of 8: 20 ids, each once, in a stable order.
	var paged []string
	cursor := ""
	for pages := 0; ; pages++ {
		status, body := c.json("POST", "/v1/segments/query", issued+fmt.Sprintf(`,"limit":8,"cursor":%q}`, cursor))
		if status != 200 || body["count"] != 20.0 || pages > 3 {
			t.Fatalf("page: %d %v", status, body)
		}
		for _, id := range body["customer_ids"].([]any) {
			paged = append(paged, id.(string))
		}
		cursor, _ = body["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if strings.Join(paged, ",") != strings.Join(custs[:20], ",") {
		t.Fatalf("paged %v", paged)
	}

	stream := func(accept string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/segments/query", strings.NewReader(issued+`}`))
		req.Header.Set("Authorization", "Bearer "+staticKey)
		req.Header.Set("Accept", accept)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := stream("application/x-ndjson")
	if resp.StatusCode != 200 || resp.Header.Get("Promopool-Count") != "20" || resp.Header.Get("Promopool-As-Of") == "" {
		t.Fatalf("ndjson: %d %v", resp.StatusCode, resp.Header)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l struct {
			ID string `json:"customer_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l.ID)
	}
	if strings.Join(lines, ",") != strings.Join(custs[:20], ",") {
		t.Fatalf("ndjson ids %v", lines)
	}
	resp, b = stream("text/csv")
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || resp.StatusCode != 200 || len(rows) != 21 || rows[0][0] != "customer_id" || rows[20][0] != custs[19] {
		t.Fatalf("csv: %d %v %v", resp.StatusCode, err, rows)
	}

	// Bad filters: 400 invalid_filter with the path of the bad node.
	for _, tc := range []struct{ body, path string }{
		{`{"filter":{"and":[{"issued_from":{"groups":["Spring"]}},{"quantity":{"op":"between","min":1}}]}}`, "$.and[1].quantity"},
		{`{"filter":{"issued_from":{"groups":["Winter"]}}}`, "$.issued_from.groups[0]"},
		{`{"filter":{"quantity":{"op":"~","value":1}}}`, "$.quantity.op"},
		{`{"filter":{"issued_from":{"groups":[]}}}`, "$.issued_from.groups"},
		{`{}`, "$"},
		{`{"filter":{"redeemed":{"op":"between","min":3,"max":1}}}`, "$.redeemed.max"},
		{`{"filter":{"redeemed":{"groups":["Winter"]}}}`, "$.redeemed.groups[0]"},
	} {
		status, body := c.json("POST", "/v1/segments/count", tc.body)
		e, _ := body["error"].(map[string]any)
		if status != 400 || errCode(body) != "invalid_filter" || e["path"] != tc.path || e["reason"] == "" {
			t.Errorf("%s: %d %v", tc.body, status, body)
		}
	}
	if status, body := c.json("POST", "/v1/segments/query", issued+`,"cursor":"x1"}`); status != 400 || errCode(body) != "invalid_cursor" {
		t.Fatalf("bad cursor: %d %v", status, body)
	}
	if status, body := c.json("POST", "/v1/segments/count", `{"filter":{},"extra":1}`); status != 400 || errCode(body) != "invalid_json" {
		t.Fatalf("unknown field: %d %v", status, body)
	}
}
