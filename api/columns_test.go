package api_test

import (
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
)

// Issue 21 item 8 end to end over HTTP and SMTP: a group carries metadata and declares
// its columns; a CSV upload's pin and barcode columns are stored with each code; a
// template naming an undeclared column is refused at validate; a mailing inserts
// promocode('Store').pin and last_promocode('Store').barcode from the same row as the
// code it carries; the exports list the columns with the codes.
func TestCodeColumnsEndToEnd(t *testing.T) {
	s := newSending(t)
	s.customers(3)
	status, body := s.json("POST", "/v1/groups", `{"name":"Store","metadata":{"campaign":"SPR-26","owner":"ann"},"columns":["pin","barcode"]}`)
	if status != 201 || body["metadata"].(map[string]any)["campaign"] != "SPR-26" || fmt.Sprint(body["columns"]) != "[pin barcode]" {
		t.Fatalf("create: %d %v", status, body)
	}
	status, body = s.json("PATCH", "/v1/groups/1", fmt.Sprintf(`{"metadata":{"campaign":"SPR-26","note":%q}}`, strings.Repeat("x", 501)))
	if e, _ := body["error"].(map[string]any); status != 400 || errCode(body) != "invalid_field" || e["field"] != "metadata.note" {
		t.Fatalf("a value of 501 characters: %d %v", status, body)
	}
	status, body = s.json("PATCH", "/v1/groups/1", `{"metadata":{"campaign":"SPR-27"}}`)
	if md := body["metadata"].(map[string]any); status != 200 || len(md) != 1 || md["campaign"] != "SPR-27" {
		t.Fatalf("patch: %d %v", status, body)
	}
	if status, body := s.json("GET", "/v1/groups/1", ""); status != 200 || body["metadata"].(map[string]any)["campaign"] != "SPR-27" {
		t.Fatalf("get: %d %v", status, body)
	}
	upload := "code,pin,barcode\nST-1,1111,4006381333931\nST-2,2222,4006381333948\nST-3,3333,4006381333955\nST-4,4444,4006381333962\n"
	if status, body := s.do("POST", "/v1/groups/1/codes", "text/csv", strings.NewReader(upload)); status != 201 || body["accepted"] != 4.0 {
		t.Fatalf("upload: %d %v", status, body)
	}
	status, body = s.do("POST", "/v1/groups/1/codes", "text/csv", strings.NewReader("code,pin,serial\nST-9,9,9\n"))
	if status != 400 || !strings.Contains(fmt.Sprint(body), `"serial" is not one of them`) {
		t.Fatalf("an undeclared column: %d %v", status, body)
	}
	status, body = s.json("POST", "/v1/templates/validate", `{"text":"{{client.promocode('Store').serial}}"}`)
	if e, _ := body["error"].(map[string]any); status != 400 || errCode(body) != "invalid_template" ||
		e["problems"].([]any)[0].(map[string]any)["code"] != "unknown_column" {
		t.Fatalf("validate an undeclared column: %d %v", status, body)
	}
	if status, body := s.json("POST", "/v1/templates/validate", `{"text":"{{client.promocode('Store').pin}}"}`); status != 200 {
		t.Fatalf("validate a declared column: %d %v", status, body)
	}

	path := s.mailing(3, `"text":"{{client.promocode('Store')}}|{{client.promocode('store').pin}}|{{client.last_promocode('Store').barcode}}"`)
	if m := s.run(path); m["status"] != "finished" || m["progress"].(map[string]any)["sent"] != 3.0 {
		t.Fatalf("mailing: %v", m)
	}
	rows := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(upload), "\n")[1:] {
		f := strings.Split(line, ",")
		rows[f[0]] = [2]string{f[1], f[2]}
	}
	seen := map[string]bool{}
	for to, p := range s.parts() {
		f := strings.Split(strings.TrimSpace(p[0]), "|")
		if len(f) != 3 || seen[f[0]] || rows[f[0]] != [2]string{f[1], f[2]} {
			t.Fatalf("message to %s: %q (the row of %s is %v)", to, p[0], f[0], rows[f[0]])
		}
		seen[f[0]] = true
	}

	// The exports carry the columns: the code left unused, and the three issued.
	status, text := s.get("/v1/groups/1/unused.csv")
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if status != 200 || err != nil || len(recs) != 2 || strings.Join(recs[0], ",") != "code,expires_at,expired,pin,barcode" ||
		[2]string{recs[1][3], recs[1][4]} != rows[recs[1][0]] || seen[recs[1][0]] {
		t.Fatalf("unused.csv: %d %q", status, text)
	}
	status, text = s.get("/v1/groups/1/issues.csv")
	recs, err = csv.NewReader(strings.NewReader(text)).ReadAll()
	if status != 200 || err != nil || len(recs) != 4 || strings.Join(recs[0][9:], ",") != "pin,barcode" {
		t.Fatalf("issues.csv: %d %q", status, text)
	}
	for _, r := range recs[1:] {
		if [2]string{r[9], r[10]} != rows[r[2]] {
			t.Fatalf("issues.csv row %q", r)
		}
	}
}
