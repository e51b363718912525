package admin

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"promopool/checkout"
	"promopool/groups"
	"promopool/offers"
)

// tabFixture: a group with 20% terms, three codes, one issued directly to c1 and
// redeemed by c1 (order o-1), then refused to c2 (not the holder); a second group
// with nothing. It returns the group and the issued code.
func tabFixture(t *testing.T, f *fixture) (*groups.Group, string) {
	t.Helper()
	ctx := context.Background()
	g, err := f.store.Create(ctx, "t", groups.Input{Name: ptr("Spring"), Terms: groups.NullTerms{Set: true,
		Value: &offers.Terms{Type: offers.TypePercent, PercentOff: 2000, Currency: "EUR"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Create(ctx, "t", groups.Input{Name: ptr("Autumn")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`INSERT INTO customers (id) VALUES ('c1'), ('c2')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceWeb, Actor: "t"},
		strings.NewReader("S-1\nS-2\nS-3\n")); err != nil {
		t.Fatal(err)
	}
	is, err := f.store.IssueDirect(ctx, g.ID, "c1", "k1")
	if err != nil {
		t.Fatal(err)
	}
	amount := int64(10000)
	if r, _, err := f.co.Redeem(ctx, checkout.RedeemRequest{Code: is.Code, CustomerID: "c1", OrderID: "o-1",
		Order: offers.Order{Currency: "EUR", Amount: &amount}}); err != nil || r.Status != checkout.StatusSucceeded {
		t.Fatalf("redeem: %+v %v", r, err)
	}
	// Refused (not the holder's): recorded as a failed attempt with its reason.
	if _, _, err := f.co.Redeem(ctx, checkout.RedeemRequest{Code: is.Code, CustomerID: "c2", OrderID: "o-2",
		Order: offers.Order{Currency: "EUR", Amount: &amount}}); err == nil {
		t.Fatal("c2 redeemed c1's code")
	}
	return g, is.Code
}

var rowRE = regexp.MustCompile(`(?s)<tr data-[a-z]+="([^"]*)"[^>]*>(.*?)</tr>`)

// rows maps each data-* row key of the table with id to its text (tags stripped).
func tableRows(t *testing.T, body, id string) map[string][]string {
	t.Helper()
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no table %s in:\n%s", id, body)
	}
	table := body[i : i+strings.Index(body[i:], "</table>")]
	out := map[string][]string{}
	tags := regexp.MustCompile(`<[^>]+>|\s+`)
	for _, m := range rowRE.FindAllStringSubmatch(table, -1) {
		out[m[1]] = append(out[m[1]], strings.Join(strings.Fields(tags.ReplaceAllString(m[2], " ")), " "))
	}
	return out
}

// TestGroupTabs: the Codes tab (status and holder, search), the Redemption history
// (succeeded and failed with the reason, customer, order, code), Publications (the
// direct issue), Distributions, Activity, the customer profile's redemptions beside
// its codes, and the portfolio sorted by a column.
func TestGroupTabs(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	f.signIn(t, c, testPassword)
	g, code := tabFixture(t, f)
	path := "/admin/groups/" + itoa(g.ID)

	resp, body := f.get(t, c, path+"/codes")
	codes := tableRows(t, body, "codes-table")
	if resp.StatusCode != 200 || len(codes) != 3 || !strings.Contains(codes[code][0], "issued c1") {
		t.Fatalf("codes tab %d: %q", resp.StatusCode, codes)
	}
	for _, other := range []string{"S-1", "S-2", "S-3"} {
		if other != code && !strings.HasPrefix(codes[other][0], other+" active —") {
			t.Fatalf("code %s row %q, want active without holder", other, codes[other])
		}
	}
	_, body = f.get(t, c, path+"/codes?q="+strings.ToLower(code))
	if found := tableRows(t, body, "codes-table"); len(found) != 1 || found[code] == nil {
		t.Fatalf("search %s: %q", code, found)
	}

	_, body = f.get(t, c, path+"/redemptions")
	red := tableRows(t, body, "redemptions-table")
	if len(red["succeeded"]) != 1 || !strings.Contains(red["succeeded"][0], code+" c1 o-1 100 EUR 20 EUR") {
		t.Fatalf("succeeded redemption %q", red["succeeded"])
	}
	if len(red["failed"]) != 1 || !strings.Contains(red["failed"][0], "c2 o-2") || !strings.Contains(red["failed"][0], code) ||
		!regexp.MustCompile(`failed \w+`).MatchString(red["failed"][0]) {
		t.Fatalf("failed redemption %q, want its reason, customer, order and code", red["failed"])
	}

	_, body = f.get(t, c, path+"/publications")
	if pub := tableRows(t, body, "publications-table"); len(pub["direct"]) != 1 || !strings.Contains(pub["direct"][0], "c1 "+code+" initial") {
		t.Fatalf("publications %q", pub)
	}
	if resp, body := f.get(t, c, path+"/distributions"); resp.StatusCode != 200 || !strings.Contains(body, "No mailing issued codes") {
		t.Fatalf("distributions %d", resp.StatusCode)
	}
	if resp, body := f.get(t, c, path+"/distributions?from=2026-13-01"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is not a date") {
		t.Fatalf("distributions with a bad date %d", resp.StatusCode)
	}
	if _, body := f.get(t, c, path+"/activity"); !strings.Contains(body, "<strong>create</strong>") || !strings.Contains(body, "<strong>upload</strong>") {
		t.Fatalf("activity tab:\n%s", body)
	}
	// A change shows field by field: before → after, and who made it.
	for _, d := range []string{"for the newsletter", "for the spring newsletter"} {
		if _, err := f.store.Update(context.Background(), "ann@example.com", g.ID, groups.Input{Description: ptr(d)}); err != nil {
			t.Fatal(err)
		}
	}
	_, body = f.get(t, c, path+"/activity")
	for _, want := range []string{`<strong>update</strong> by <span class="who">ann@example.com</span>`,
		`<tr><th>description</th><td class="before">for the newsletter</td><td class="arrow">→</td><td class="after">for the spring newsletter</td></tr>`} {
		if !strings.Contains(body, want) {
			t.Fatalf("activity tab lacks %s:\n%s", want, body)
		}
	}
	_, body = f.get(t, c, path)
	for _, want := range []string{`id="group-tabs"`, `href="` + path + `/redemptions"`, `id="card-uses"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("dashboard lacks %s", want)
		}
	}
	// Charts: activity and balance, no budget chart without a budget; the table
	// fallback's last row is today: 1 issued, 1 redeemed.
	if !strings.Contains(body, `<svg id="chart-activity"`) || !strings.Contains(body, `<svg id="chart-balance"`) || strings.Contains(body, `id="chart-budget"`) {
		t.Fatal("dashboard charts: want activity and balance, no budget chart")
	}
	i := strings.Index(body, `id="chart-activity-table"`)
	rows := regexp.MustCompile(`<tr><td>([0-9-]+)</td><td>(\d+)</td><td>(\d+)</td></tr>`).FindAllStringSubmatch(body[i:], -1)
	if len(rows) != 30 || rows[29][2] != "1" || rows[29][3] != "1" {
		t.Fatalf("activity table: %d rows, last %v; want 30 days ending with 1 issued, 1 redeemed", len(rows), rows[len(rows)-1])
	}
	if uses := regexp.MustCompile(`(?s)id="card-uses"><div class="label">Uses</div><div class="value">(\d+)<`).FindStringSubmatch(body); uses == nil || uses[1] != "1" {
		t.Fatalf("uses card %q", uses)
	}

	_, body = f.get(t, c, "/admin/customers/c1")
	if cr := tableRows(t, body, "customer-redemptions"); len(cr["succeeded"]) != 1 || !strings.Contains(cr["succeeded"][0], code+" Spring o-1") {
		t.Fatalf("profile redemptions %q", cr)
	}
	_, body = f.get(t, c, "/admin/customers/c2")
	if cr := tableRows(t, body, "customer-redemptions"); len(cr["failed"]) != 1 {
		t.Fatalf("c2's refused attempt not on the profile: %q", cr)
	}

	resp, _ = f.get(t, c, "/admin/")
	if resp.Header.Get("Location") != "/admin/portfolio" {
		t.Fatalf("home goes to %q", resp.Header.Get("Location"))
	}
	order := func(body string) string {
		var out []string
		for _, m := range regexp.MustCompile(`<tr data-group="([^"]+)">`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return strings.Join(out, ",")
	}
	_, body = f.get(t, c, "/admin/portfolio")
	if o := order(body); o != "Autumn,Spring" {
		t.Fatalf("portfolio by name %q", o)
	}
	_, body = f.get(t, c, "/admin/portfolio?sort=-uses")
	if o := order(body); o != "Spring,Autumn" || !strings.Contains(body, `sort=uses" data-sort="uses">Uses</a> ▼`) {
		t.Fatalf("portfolio by uses, descending %q", o)
	}
	if p := tableRows(t, body, "portfolio"); !strings.HasPrefix(p["Spring"][0], "Spring 1 0 0 1 1 20 EUR 100 EUR 2 3") {
		t.Fatalf("Spring's portfolio row %q", p["Spring"])
	}
	if resp, body := f.get(t, c, "/admin/portfolio?sort=nope"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is not a sort key") {
		t.Fatalf("bad sort %d", resp.StatusCode)
	}
}
