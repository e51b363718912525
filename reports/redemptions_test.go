package reports_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/groups"
	"promopool/offers"
	"promopool/reports"
)

// TestRedemptionFigures: redemptions made through checkout (a mailing's unique codes,
// a shared group's partner codes with utm_source), a refund and a refusal, read back as
// the group's cards, its mailing's conversion, its codes by source, its budget and the
// portfolio.
func TestRedemptionFigures(t *testing.T) {
	f := newFixture(t, 0, 0, reports.Config{})
	ctx := context.Background()
	co, err := checkout.New(checkout.Config{}, checkout.Deps{DB: f.db.DB, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var unique, shared int64
	if err := f.db.Get(&unique, `INSERT INTO groups (name, terms, budget) VALUES ('Spring',
		'{"type":"percent","percent_off":10,"currency":"EUR"}', 10000) RETURNING id`); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Get(&shared, `INSERT INTO groups (name, kind, terms) VALUES ('Partners', 'shared',
		'{"type":"fixed","amount_off":500,"currency":"EUR"}') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	f.load(unique, "SPRING-1", "SPRING-2", "SPRING-3")
	for i, code := range []string{"MARIA15", "ALEX15"} {
		f.db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, $2)`, int64(1)<<50+int64(i), code)
		f.db.MustExec(`INSERT INTO promotion_codes (code_id, group_id) VALUES ($1, $2)`, int64(1)<<50+int64(i), shared)
	}
	mailing := int64(5)
	claim, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: unique, Scope: "mailing:5", MailingID: &mailing, CustomerIDs: []string{"ann", "bob", "cid"}})
	if err != nil {
		t.Fatal(err)
	}
	eur := func(amount int64) offers.Order {
		return offers.Order{Currency: "EUR", Items: []offers.Item{{ProductID: "p", Quantity: 1, UnitAmount: amount}}}
	}
	redeem := func(code, customer, order, utm string, amount int64) *checkout.Redemption {
		t.Helper()
		r, _, err := co.Redeem(ctx, checkout.RedeemRequest{Code: code, CustomerID: customer, OrderID: order, Order: eur(amount), UTMSource: utm})
		if err != nil {
			t.Fatalf("redeem %s for %s: %v", code, customer, err)
		}
		return r
	}
	redeem(claim.Codes["ann"], "ann", "o1", "", 20000)
	bob := redeem(claim.Codes["bob"], "bob", "o2", "", 10000)
	// A refusal: ann's code again, for another order.
	var refused *checkout.RefusedError
	if _, _, err := co.Redeem(ctx, checkout.RedeemRequest{Code: claim.Codes["ann"], CustomerID: "ann", OrderID: "o3", Order: eur(5000)}); !errors.As(err, &refused) {
		t.Fatalf("a second use of a unique code: %v, want a refusal", err)
	}
	// bob's order is refunded whole.
	if _, err := co.Refund(ctx, bob.ID, checkout.RefundRequest{RefundID: "r1"}); err != nil {
		t.Fatal(err)
	}
	redeem("maria15", "xen", "o4", "instagram", 5000)
	redeem("MARIA15", "yan", "o5", "instagram", 3000)
	redeem("Maria15", "zoe", "o6", "", 4000)
	redeem("ALEX15", "xen", "o7", "youtube", 6000)

	today := time.Now().UTC().Truncate(24 * time.Hour)
	p := reports.Period{From: today.AddDate(0, 0, -6), To: today}
	m, err := f.svc.GroupMetrics(ctx, unique, p)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Redemptions
	want := reports.Redemptions{Currency: "EUR", Uses: 1, UniqueCustomers: 1, Discount: 2000, Revenue: 20000, AverageOrder: 20000,
		Refunds: 1, Refunded: 1000, Failed: 1, UsesPerCustomer: 1, DiscountShare: 0.1}
	if r == nil || r.Currency != want.Currency || r.Uses != want.Uses || r.UniqueCustomers != want.UniqueCustomers || r.Discount != want.Discount ||
		r.Revenue != want.Revenue || r.AverageOrder != want.AverageOrder || r.Refunds != want.Refunds || r.Refunded != want.Refunded ||
		r.Failed != want.Failed || r.UsesPerCustomer != want.UsesPerCustomer || r.DiscountShare != want.DiscountShare {
		t.Fatalf("unique group's redemptions:\n got %+v\nwant %+v", r, want)
	}
	if r.Budget == nil || *r.Budget != (reports.BudgetFigures{Budget: 10000, Used: 2000, Left: 8000}) {
		t.Errorf("budget: %+v", r.Budget)
	}
	if last := m.Daily[len(m.Daily)-1]; last.Uses != 1 || last.Discount != 2000 || last.Revenue != 20000 || last.BudgetLeft == nil || *last.BudgetLeft != 8000 {
		t.Errorf("today: %+v", last)
	}
	if len(m.Mailings) != 1 {
		t.Fatalf("mailings: %+v", m.Mailings)
	}
	mf := m.Mailings[0]
	if mf.MailingID != 5 || mf.Issued != 3 || mf.Redeemed != 1 || mf.Revenue != 20000 || mf.Conversion != 0.3333 ||
		mf.MedianHoursToRedeem == nil || *mf.MedianHoursToRedeem < 0 || *mf.MedianHoursToRedeem > 1 {
		t.Errorf("mailing: %+v", mf)
	}

	s, err := f.svc.GroupMetrics(ctx, shared, p)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Redemptions; r.Uses != 4 || r.UniqueCustomers != 3 || r.Revenue != 18000 || r.Discount != 2000 || r.AverageOrder != 4500 ||
		r.UsesPerCustomer != 1.3333 || r.DiscountShare != 0.1111 || r.Budget != nil {
		t.Errorf("shared group's redemptions: %+v", r)
	}
	codes := s.Redemptions.Codes
	if len(codes) != 2 || codes[0].Code != "MARIA15" || codes[0].Uses != 3 || codes[0].Revenue != 12000 ||
		codes[1].Code != "ALEX15" || codes[1].Uses != 1 || codes[1].Revenue != 6000 {
		t.Fatalf("codes: %+v", codes)
	}
	if src := codes[0].BySource; len(src) != 2 || src[0] != (reports.SourceFigures{UTMSource: "instagram", Uses: 2, Revenue: 8000}) ||
		src[1] != (reports.SourceFigures{UTMSource: "", Uses: 1, Revenue: 4000}) {
		t.Errorf("MARIA15 by source: %+v", src)
	}
	if src := codes[1].BySource; len(src) != 1 || src[0].UTMSource != "youtube" {
		t.Errorf("ALEX15 by source: %+v", src)
	}

	// A period before the redemptions: nothing, and the budget whole.
	early, err := f.svc.GroupMetrics(ctx, unique, reports.Period{From: today.AddDate(0, 0, -30), To: today.AddDate(0, 0, -1)})
	if err != nil {
		t.Fatal(err)
	}
	if e := early.Redemptions; e.Uses != 0 || e.UniqueCustomers != 0 || e.Budget == nil || *e.Budget != (reports.BudgetFigures{Budget: 10000, Used: 0, Left: 10000}) {
		t.Errorf("earlier period: %+v budget %+v", e, e.Budget)
	}

	pf, err := f.svc.Portfolio(ctx, p, "-uses")
	if err != nil {
		t.Fatal(err)
	}
	if len(pf.Groups) != 2 || pf.Groups[0].GroupID != shared || pf.Groups[0].Uses != 4 || pf.Groups[0].Customers != 3 ||
		pf.Groups[1].Uses != 1 || pf.Groups[1].Discount != 2000 || pf.Groups[1].Currency != "EUR" {
		t.Errorf("portfolio: %+v", pf.Groups)
	}
}

// load uploads codes into a group.
func (f *fixture) load(group int64, codes ...string) {
	f.t.Helper()
	body := ""
	for _, c := range codes {
		body += c + "\n"
	}
	if _, err := f.store.Load(context.Background(), groups.UploadRequest{GroupID: group, Format: groups.FormatPlain, Source: groups.SourceCLI, Actor: "test"},
		strings.NewReader(body)); err != nil {
		f.t.Fatal(err)
	}
}
