package admin

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"promopool/groups"
)

// offerForm is a create form with terms and limits; over overrides fields.
func offerValues(csrf string, over map[string]string) url.Values {
	v := url.Values{"csrf": {csrf}, "name": {"Spring"}, "kind": {"unique"}, "status": {"active"},
		"type": {"percent"}, "percent_off": {"20"}, "currency": {"eur"}, "max_discount": {"100"}, "min_order": {"50"},
		"products": {""}, "exclude": {"gift-card"}, "duration": {"once"}, "duration_in_months": {""},
		"max_redemptions": {"1000"}, "max_per_customer": {"1"}, "starts_at": {"2026-03-01T00:00"}, "ends_at": {"2026-06-01T00:00"},
		"budget": {"5000"}}
	for k, x := range over {
		v.Set(k, x)
	}
	return v
}

var errorRE = regexp.MustCompile(`(?s)<p class="error" role="alert">(.*?)</p>`)

// TestOfferForms: the terms form on create stores every setting and the Details panel
// summarises them; bad input shows the API's field error with the form as typed and
// stores nothing; the terms lock once a code is issued (fields shown locked, a crafted
// change refused with the locked fields named), while the limits stay editable.
func TestOfferForms(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	csrf := f.signIn(t, c, testPassword)
	ctx := context.Background()

	for _, bad := range []struct {
		over        map[string]string
		field, kept string
	}{
		{map[string]string{"percent_off": "150"}, "terms.percent_off", `value="150"`},
		{map[string]string{"type": "fixed", "percent_off": "", "amount_off": "15", "currency": "", "max_discount": "", "min_order": "", "budget": ""}, "terms.currency", `value="15"`},
		{map[string]string{"currency": "ABC"}, "terms.currency", `value="ABC"`},
		{map[string]string{"ends_at": "2026-02-01T00:00"}, "limits.ends_at", `value="2026-02-01T00:00"`},
		{map[string]string{"type": "fixed", "percent_off": "", "amount_off": "-5"}, "terms.amount_off", `value="-5"`},
		{map[string]string{"type": "fixed", "percent_off": "", "amount_off": "15"}, "terms.max_discount", `value="100"`},
		{map[string]string{"max_redemptions": "many"}, "limits.max_redemptions", `value="many"`},
	} {
		resp, body := f.post(t, c, "/admin/groups", offerValues(csrf, bad.over))
		m := errorRE.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusBadRequest || m == nil || !strings.Contains(m[1], bad.field) {
			t.Fatalf("%v: %d, error %q; want 400 naming %s", bad.over, resp.StatusCode, m, bad.field)
		}
		if !strings.Contains(body, bad.kept) || !strings.Contains(body, `value="Spring"`) || !strings.Contains(body, `value="gift-card"`) {
			t.Fatalf("%v: the form lost what was typed:\n%s", bad.over, body)
		}
	}
	if _, err := f.store.GetByName(ctx, "Spring"); err == nil {
		t.Fatal("a refused form stored a group")
	}

	resp, _ := f.post(t, c, "/admin/groups", offerValues(csrf, nil))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	g, err := f.store.GetByName(ctx, "Spring")
	if err != nil {
		t.Fatal(err)
	}
	if g.TermsSummary != "20% off all but 1 excluded product, at most 100 EUR, orders from 50 EUR" || *g.Limits.Budget != 500000 ||
		*g.Limits.MaxRedemptions != 1000 || *g.Limits.MaxPerCustomer != 1 || g.Limits.EndsAt.Format("2006-01-02") != "2026-06-01" {
		t.Fatalf("stored %q, limits %+v", g.TermsSummary, g.Limits)
	}
	_, body := f.get(t, c, "/admin/groups/"+itoa(g.ID))
	for _, want := range []string{`id="details-terms">20% off all but 1 excluded product, at most 100 EUR, orders from 50 EUR`,
		`id="details-applies">every product, except gift-card`, `id="details-min-order">50 EUR`, `id="details-max-total">at most 1` + "\u202f" + `000`,
		`id="details-max-customer">at most 1<`, `id="details-window">from 2026-03-01 00:00:00 UTC until 2026-06-01 00:00:00 UTC`,
		`id="details-budget">5,000 EUR`, `name="percent_off" id="terms-percent" inputmode="decimal" value="20" placeholder="20" >`} {
		if !strings.Contains(body, want) {
			t.Fatalf("group page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `id="terms-locked"`) {
		t.Fatal("terms shown locked before any issue")
	}

	// Issue a code: the terms lock.
	if _, err := f.db.Exec(`INSERT INTO customers (id) VALUES ('c1')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceWeb, Actor: "t"},
		strings.NewReader("S-1\nS-2\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.IssueDirect(ctx, g.ID, "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	_, body = f.get(t, c, "/admin/groups/"+itoa(g.ID))
	if !strings.Contains(body, `id="terms-locked"`) || !strings.Contains(body, `name="percent_off" id="terms-percent" inputmode="decimal" value="20" placeholder="20" disabled`) {
		t.Fatalf("terms not shown locked after an issue:\n%s", body)
	}
	if strings.Contains(body, `name="max_redemptions" id="limit-total" inputmode="numeric" value="1000" placeholder="no cap" disabled`) {
		t.Fatal("limits shown locked")
	}
	// The locked form sends no terms: the limits change.
	edit := offerValues(csrf, map[string]string{"max_redemptions": "2000"})
	for _, k := range []string{"kind", "status", "type", "percent_off", "currency", "max_discount", "min_order", "products", "exclude", "duration", "duration_in_months"} {
		edit.Del(k)
	}
	if resp, body := f.post(t, c, "/admin/groups/"+itoa(g.ID), edit); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit of the limits: %d\n%s", resp.StatusCode, body)
	}
	// A crafted change of the terms is refused, naming the locked field.
	resp, body = f.post(t, c, "/admin/groups/"+itoa(g.ID), offerValues(csrf, map[string]string{"percent_off": "25"}))
	if m := errorRE.FindStringSubmatch(body); resp.StatusCode != http.StatusConflict || m == nil || !strings.Contains(m[1], "percent_off cannot change") {
		t.Fatalf("terms edit after an issue: %d %q", resp.StatusCode, m)
	}
	if g, _ = f.store.Get(ctx, g.ID); g.Terms.PercentOff.String() != "20" || *g.Limits.MaxRedemptions != 2000 {
		t.Fatalf("after the edits: %s, cap %d; want 20%%, 2000", g.Terms.PercentOff, *g.Limits.MaxRedemptions)
	}
}

// TestStatusTabsAndControls: the list's tabs count every status and filter the list;
// Pause and Activate change the status (logged) and come back to the page they were on.
func TestStatusTabsAndControls(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	csrf := f.signIn(t, c, testPassword)
	ctx := context.Background()
	mk := func(name, status string) *groups.Group {
		g, err := f.store.Create(ctx, "t", groups.Input{Name: ptr(name), Status: ptr(status)})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, _, _ := mk("Alpha", "active"), mk("Beta", "draft"), mk("Gamma", "paused")
	old := mk("Old", "active")
	if _, err := f.db.Exec(`UPDATE groups SET archived_at = now() WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	tabRE := regexp.MustCompile(`data-status="(\w+)" (?:aria-current="page")?>\w+ <span class="count">(\d+)</span>`)
	counts := func(body string) map[string]string {
		out := map[string]string{}
		for _, m := range tabRE.FindAllStringSubmatch(body, -1) {
			out[m[1]] = m[2]
		}
		return out
	}
	rowsRE := regexp.MustCompile(`<tr data-group="([^"]+)">`)
	rows := func(body string) string {
		var out []string
		for _, m := range rowsRE.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return strings.Join(out, ",")
	}
	_, body := f.get(t, c, "/admin/groups")
	if got := counts(body); got["all"] != "3" || got["active"] != "1" || got["draft"] != "1" || got["paused"] != "1" || got["expired"] != "0" || got["archived"] != "1" {
		t.Fatalf("tab counts %v", got)
	}
	if r := rows(body); r != "Alpha,Beta,Gamma" {
		t.Fatalf("All tab rows %q", r)
	}
	for status, want := range map[string]string{"draft": "Beta", "paused": "Gamma", "archived": "Old", "expired": ""} {
		if _, body := f.get(t, c, "/admin/groups?status="+status); rows(body) != want {
			t.Fatalf("%s tab rows %q, want %q", status, rows(body), want)
		}
	}
	if !strings.Contains(body, `action="/admin/groups/`+itoa(a.ID)+`/pause"`) {
		t.Fatal("no Pause control on the active group")
	}
	resp, _ := f.post(t, c, "/admin/groups/"+itoa(a.ID)+"/pause", url.Values{"csrf": {csrf}, "next": {"/admin/groups?status=paused"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/groups?status=paused" {
		t.Fatalf("pause: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = f.get(t, c, "/admin/groups?status=paused")
	if rows(body) != "Alpha,Gamma" || !strings.Contains(body, `is paused.`) || !strings.Contains(body, `action="/admin/groups/`+itoa(a.ID)+`/activate"`) {
		t.Fatalf("after pause: rows %q\n%s", rows(body), body)
	}
	if resp, _ := f.post(t, c, "/admin/groups/"+itoa(a.ID)+"/activate", url.Values{"csrf": {csrf}, "next": {"https://evil.example/"}}); resp.Header.Get("Location") != "/admin/groups/"+itoa(a.ID) {
		t.Fatalf("activate went to %q", resp.Header.Get("Location"))
	}
	_, body = f.get(t, c, "/admin/groups/"+itoa(a.ID))
	if !strings.Contains(body, `id="group-status-badge">active<`) || !strings.Contains(body, "<strong>activate</strong>") || !strings.Contains(body, "<strong>pause</strong>") {
		t.Fatalf("group page after pause and activate:\n%s", body)
	}
	if resp, _ := f.post(t, c, "/admin/groups/"+itoa(old.ID)+"/activate", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("activating an archived group: %d", resp.StatusCode)
	}
}

// TestPromotionCodesTable: a shared group's page lists its promotion codes; one is
// created with restrictions, one generated, a double submit makes one code, bad input
// is shown with the form kept, and a code is archived and unarchived.
func TestPromotionCodesTable(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	csrf := f.signIn(t, c, testPassword)
	ctx := context.Background()
	resp, body := f.post(t, c, "/admin/groups", url.Values{"csrf": {csrf}, "name": {"Newsletter"}, "kind": {"shared"}, "status": {"active"},
		"type": {"fixed"}, "amount_off": {"10"}, "currency": {"EUR"}, "duration": {"once"}, "max_redemptions": {""}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create shared: %d\n%s", resp.StatusCode, body)
	}
	g, err := f.store.GetByName(ctx, "Newsletter")
	if err != nil || g.Kind != groups.KindShared {
		t.Fatalf("shared group %+v %v", g, err)
	}
	path := "/admin/groups/" + itoa(g.ID)
	_, body = f.get(t, c, path)
	if !strings.Contains(body, `id="promotion-codes"`) || strings.Contains(body, `id="paste-upload"`) {
		t.Fatal("a shared group's page shows uploads instead of promotion codes")
	}
	key := regexp.MustCompile(`name="key" value="([0-9a-f]+)"`).FindStringSubmatch(body)[1]
	form := url.Values{"csrf": {csrf}, "key": {key}, "code": {"NEWS10"}, "max_redemptions": {"500"}, "min_order": {"30"}, "first_time_only": {"1"}}
	for range 2 {
		if resp, body := f.post(t, c, path+"/promotion-codes", form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("create NEWS10: %d\n%s", resp.StatusCode, body)
		}
	}
	resp, body = f.post(t, c, path+"/promotion-codes", url.Values{"csrf": {csrf}, "key": {"other"}, "code": {"BAD CODE"}, "max_redemptions": {"0"}})
	if m := errorRE.FindStringSubmatch(body); resp.StatusCode != http.StatusBadRequest || m == nil || !strings.Contains(body, `value="BAD CODE"`) {
		t.Fatalf("bad promotion code: %d %q", resp.StatusCode, m)
	}
	if resp, _ := f.post(t, c, path+"/promotion-codes", url.Values{"csrf": {csrf}, "key": {"gen"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("generated code: %d", resp.StatusCode)
	}
	page, err := f.store.PromotionCodes(ctx, g.ID, "", 10)
	if err != nil || len(page.PromotionCodes) != 2 || page.PromotionCodes[0].Code != "NEWS10" || len(page.PromotionCodes[1].Code) != groups.GeneratedCodeLength {
		t.Fatalf("codes %+v %v; want NEWS10 once and a generated one", page, err)
	}
	news := page.PromotionCodes[0]
	if *news.MinOrder != 3000 || *news.MaxRedemptions != 500 || !news.FirstTimeOnly {
		t.Fatalf("NEWS10 restrictions %+v", news)
	}
	_, body = f.get(t, c, path)
	row := regexp.MustCompile(`(?s)<tr data-code="NEWS10" >.*?</tr>`).FindString(body)
	if !strings.Contains(row, "first-time customers only") || !strings.Contains(row, "at most 500 uses") || !strings.Contains(row, "orders from 30 EUR") ||
		!strings.Contains(row, "/promotion-codes/"+itoa(news.ID)+"/archive") {
		t.Fatalf("NEWS10 row:\n%s", row)
	}
	if resp, _ := f.post(t, c, path+"/promotion-codes/"+itoa(news.ID)+"/archive", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("archive: %d", resp.StatusCode)
	}
	_, body = f.get(t, c, path)
	if !strings.Contains(body, `<tr data-code="NEWS10" class="undone">`) || !strings.Contains(body, "/promotion-codes/"+itoa(news.ID)+"/unarchive") {
		t.Fatal("NEWS10 not shown archived")
	}
	f.post(t, c, path+"/promotion-codes/"+itoa(news.ID)+"/unarchive", url.Values{"csrf": {csrf}})
	page, _ = f.store.PromotionCodes(ctx, g.ID, "", 10)
	if !page.PromotionCodes[0].Active {
		t.Fatal("NEWS10 still archived after unarchive")
	}
	_, body = f.get(t, c, path)
	for _, a := range []string{"promotion_code_create", "promotion_code_archive", "promotion_code_unarchive"} {
		if !strings.Contains(body, "<strong>"+a+"</strong>") {
			t.Fatalf("activity lacks %s", a)
		}
	}
}

// TestLockedBudgetInItsCurrency: a locked group's form sends no terms, so its budget is
// read in the stored currency's units: 5000 JPY is 5000 minor units, not 500000.
func TestLockedBudgetInItsCurrency(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	csrf := f.signIn(t, c, testPassword)
	ctx := context.Background()
	resp, body := f.post(t, c, "/admin/groups", offerValues(csrf, map[string]string{"name": "Yen", "currency": "JPY", "max_discount": "1000",
		"min_order": "", "budget": "3000", "starts_at": "", "ends_at": ""}))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %q", resp.StatusCode, errorRE.FindStringSubmatch(body))
	}
	g, err := f.store.GetByName(ctx, "Yen")
	if err != nil || *g.Limits.Budget != 3000 || *g.Terms.MaxDiscount != 1000 {
		t.Fatalf("stored %+v %v: want 3000 and 1000 yen in minor units (JPY has none)", g, err)
	}
	if _, err := f.db.Exec(`INSERT INTO customers (id) VALUES ('c1')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceWeb, Actor: "t"},
		strings.NewReader("Y-1\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.IssueDirect(ctx, g.ID, "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	edit := url.Values{"csrf": {csrf}, "name": {"Yen"}, "max_redemptions": {""}, "max_per_customer": {""}, "starts_at": {""}, "ends_at": {""}, "budget": {"5000"}}
	if resp, body := f.post(t, c, "/admin/groups/"+itoa(g.ID), edit); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d %q", resp.StatusCode, errorRE.FindStringSubmatch(body))
	}
	if g, _ = f.store.Get(ctx, g.ID); *g.Limits.Budget != 5000 {
		t.Fatalf("budget after the locked edit: %d minor units, want 5000", *g.Limits.Budget)
	}
}
