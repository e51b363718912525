package reports

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/lib/pq"
)

// Redemptions are a group's redemption figures over a period (the dashboard's cards).
// Amounts are minor units of Currency.
type Redemptions struct {
	// Currency is the ISO 4217 currency of the amounts: the group's terms', else the
	// redemptions'.
	Currency string `json:"currency"`
	// Uses are succeeded redemptions (a refunded one is not a use; a hold is not yet).
	Uses int64 `json:"uses"`
	// UniqueCustomers are the customers with a use in the period.
	UniqueCustomers int64 `json:"unique_customers"`
	// Discount is the discount given and kept (net of refunds).
	Discount int64 `json:"discount"`
	// Revenue is the order amounts of the uses; AverageOrder is Revenue / Uses, rounded.
	Revenue      int64 `json:"revenue"`
	AverageOrder int64 `json:"average_order"`
	// Refunds are redemptions of the period refunded since; Refunded the discount they
	// (and partial refunds) gave back.
	Refunds  int64 `json:"refunds"`
	Refunded int64 `json:"refunded"`
	// Failed are refused attempts (a reason per attempt in the redemption history).
	Failed int64 `json:"failed"`
	// UsesPerCustomer is Uses / UniqueCustomers, DiscountShare Discount / Revenue
	// (both rounded to 4 decimals; 0 when the divisor is).
	UsesPerCustomer float64 `json:"uses_per_customer"`
	DiscountShare   float64 `json:"discount_share"`
	// Budget is the group's discount budget; nil for a group without one.
	Budget *BudgetFigures `json:"budget"`
	// Codes are a shared group's promotion codes redeemed in the period, most uses first.
	Codes []CodeFigures `json:"codes"`
}

// BudgetFigures is a budget within a period.
type BudgetFigures struct {
	Budget int64 `json:"budget"`
	// Used is the discount given (net of refunds) by redemptions of the period.
	Used int64 `json:"used"`
	// Left is the budget less every redemption's net discount up to the period's end
	// (so the last day of a period that ends today is what checkout has left, holds aside).
	Left int64 `json:"left"`
}

// CodeFigures is one promotion code's part (the influencer case).
type CodeFigures struct {
	CodeID   int64  `json:"code_id"`
	Code     string `json:"code"`
	Uses     int64  `json:"uses"`
	Revenue  int64  `json:"revenue"`
	Discount int64  `json:"discount"`
	// BySource breaks the uses down by the orders' utm_source ("" for none), most first.
	BySource []SourceFigures `json:"by_source"`
}

// SourceFigures is one utm_source's uses of a code.
type SourceFigures struct {
	UTMSource string `json:"utm_source"`
	Uses      int64  `json:"uses"`
	Revenue   int64  `json:"revenue"`
}

// redemptionFigures fills m.Redemptions and the daily redemption series from the
// group's day rows of report_redemption_group_days (a row per day and currency), the
// mailings' redemptions and the codes' figures from their spans over blocks of days
// (report_redemption_spans) and the day rows of the edge days, and the unique
// customers from uniqueCustomersSQL.
func (s *Service) redemptionFigures(ctx context.Context, m *Metrics, byMailing map[int64]*MailingFigures) error {
	var days []struct {
		Day      time.Time `db:"day"`
		Currency string    `db:"currency"`
		Uses     int64     `db:"uses"`
		Revenue  int64     `db:"revenue"`
		Discount int64     `db:"discount"`
		Refunds  int64     `db:"refunds"`
		Refunded int64     `db:"refunded"`
		Failed   int64     `db:"failed"`
	}
	err := s.db.SelectContext(ctx, &days, `
		SELECT day, currency, uses, revenue, discount, refunds, refunded, failed
		FROM report_redemption_group_days WHERE group_id = $1 AND day >= $2 AND day <= $3
		ORDER BY day, currency`, m.GroupID, m.Period.From, m.Period.To)
	if err != nil {
		return fmt.Errorf("reading the redemptions of group %d: %w", m.GroupID, err)
	}
	r := &Redemptions{Codes: []CodeFigures{}}
	for _, x := range days {
		if r.Currency == "" {
			r.Currency = x.Currency
		}
		r.Uses += x.Uses
		r.Revenue += x.Revenue
		r.Discount += x.Discount
		r.Refunds += x.Refunds
		r.Refunded += x.Refunded
		r.Failed += x.Failed
		d := &m.Daily[int(x.Day.Sub(m.Period.From).Hours()/24)]
		d.Uses += x.Uses
		d.Discount += x.Discount
		d.Revenue += x.Revenue
	}
	var parts []struct {
		ByCode    bool   `db:"by_code"`
		MailingID int64  `db:"mailing_id"`
		CodeID    int64  `db:"code_id"`
		UTMSource string `db:"utm_source"`
		Uses      int64  `db:"uses"`
		Revenue   int64  `db:"revenue"`
		Discount  int64  `db:"discount"`
	}
	levels, blocks, edges := spans(m.Period.From, m.Period.To)
	err = s.db.SelectContext(ctx, &parts, `
		SELECT GROUPING(mailing_id) = 1 AS by_code, coalesce(mailing_id, 0) AS mailing_id, coalesce(code_id, 0) AS code_id,
		       coalesce(utm_source, '') AS utm_source, sum(uses) AS uses, sum(revenue) AS revenue, sum(discount) AS discount
		FROM (
		    SELECT s.mailing_id, s.code_id, s.utm_source, s.uses, s.revenue, s.discount
		    FROM unnest($2::smallint[], $3::integer[]) b(level, block)
		    JOIN report_redemption_spans s ON s.group_id = $1 AND s.level = b.level AND s.block = b.block
		    UNION ALL
		    SELECT mailing_id, code_id, utm_source, uses, revenue, discount FROM report_redemption_days
		    WHERE group_id = $1 AND day = ANY ($4::date[]) AND (mailing_id <> 0 OR code_id <> 0)
		) x
		GROUP BY GROUPING SETS ((mailing_id), (code_id, utm_source))`, m.GroupID, pq.Array(levels), pq.Array(blocks), pq.Array(edges))
	if err != nil {
		return fmt.Errorf("reading the mailings and codes of group %d: %w", m.GroupID, err)
	}
	codes := map[int64]*CodeFigures{}
	sources := map[int64]map[string]*SourceFigures{}
	for _, x := range parts {
		switch {
		case !x.ByCode && x.MailingID != 0:
			mf := byMailing[x.MailingID]
			if mf == nil {
				mf = &MailingFigures{MailingID: x.MailingID}
				byMailing[x.MailingID] = mf
			}
			mf.Redeemed += x.Uses
			mf.Revenue += x.Revenue
		case x.ByCode && x.CodeID != 0:
			c := codes[x.CodeID]
			if c == nil {
				c = &CodeFigures{CodeID: x.CodeID}
				codes[x.CodeID] = c
				sources[x.CodeID] = map[string]*SourceFigures{}
			}
			c.Uses += x.Uses
			c.Revenue += x.Revenue
			c.Discount += x.Discount
			sources[x.CodeID][x.UTMSource] = &SourceFigures{UTMSource: x.UTMSource, Uses: x.Uses, Revenue: x.Revenue}
		}
	}
	if err := s.db.GetContext(ctx, &r.UniqueCustomers, `SELECT `+uniqueCustomersSQL("$1::bigint", "$2::date", "$3::date"),
		m.GroupID, m.Period.From, m.Period.To); err != nil {
		return fmt.Errorf("counting the customers of group %d: %w", m.GroupID, err)
	}
	r.AverageOrder = divRound(r.Revenue, r.Uses)
	r.UsesPerCustomer = ratio(r.Uses, r.UniqueCustomers)
	r.DiscountShare = ratio(r.Discount, r.Revenue)
	if err := s.codeFigures(ctx, r, codes, sources); err != nil {
		return err
	}
	if err := s.budgetFigures(ctx, m, r); err != nil {
		return err
	}
	m.Redemptions = r
	return nil
}

// codeFigures lists the promotion codes with their spelling and sources, most uses first.
func (s *Service) codeFigures(ctx context.Context, r *Redemptions, codes map[int64]*CodeFigures, sources map[int64]map[string]*SourceFigures) error {
	if len(codes) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(codes))
	for id := range codes {
		ids = append(ids, id)
	}
	var spell []struct {
		ID   int64  `db:"code_id"`
		Code string `db:"code"`
	}
	// One redemption per code gives its stored spelling (redemptions_code, by code).
	if err := s.db.SelectContext(ctx, &spell, `
		SELECT c.id AS code_id, x.code FROM unnest($1::bigint[]) c(id)
		CROSS JOIN LATERAL (SELECT code FROM redemptions WHERE code_id = c.id ORDER BY id LIMIT 1) x`, pq.Array(ids)); err != nil {
		return fmt.Errorf("reading the codes' spelling: %w", err)
	}
	for _, sp := range spell {
		codes[sp.ID].Code = sp.Code
	}
	for id, c := range codes {
		for _, src := range sources[id] {
			c.BySource = append(c.BySource, *src)
		}
		sort.Slice(c.BySource, func(i, j int) bool {
			a, b := c.BySource[i], c.BySource[j]
			return a.Uses > b.Uses || a.Uses == b.Uses && a.UTMSource < b.UTMSource
		})
		r.Codes = append(r.Codes, *c)
	}
	sort.Slice(r.Codes, func(i, j int) bool {
		a, b := r.Codes[i], r.Codes[j]
		return a.Uses > b.Uses || a.Uses == b.Uses && a.Code < b.Code
	})
	return nil
}

// budgetFigures sets the budget used in the period and left at its end, and each day's
// budget left.
func (s *Service) budgetFigures(ctx context.Context, m *Metrics, r *Redemptions) error {
	bs, err := s.groups.Budgets(ctx, []int64{m.GroupID})
	if err != nil {
		return err
	}
	b := bs[m.GroupID]
	if b.Currency != "" {
		r.Currency = b.Currency
	}
	if b.Budget == nil {
		return nil
	}
	var before int64
	if err := s.db.GetContext(ctx, &before, `
		SELECT coalesce(sum(discount), 0) FROM report_redemption_group_days WHERE group_id = $1 AND day < $2`,
		m.GroupID, m.Period.From); err != nil {
		return fmt.Errorf("reading the budget of group %d: %w", m.GroupID, err)
	}
	r.Budget = &BudgetFigures{Budget: *b.Budget, Used: r.Discount, Left: *b.Budget - before - r.Discount}
	left := *b.Budget - before
	for i := range m.Daily {
		left -= m.Daily[i].Discount
		v := left
		m.Daily[i].BudgetLeft = &v
	}
	return nil
}

// medianDelays sets each mailing's median time from issue to redemption over the uses of
// the period, from report_redemption_delays (one index range of the group: each delay
// once with its number of uses), as percentile_cont(0.5) would over the raw delays.
func (s *Service) medianDelays(ctx context.Context, m *Metrics, byMailing map[int64]*MailingFigures) error {
	if m.Redemptions == nil || m.Redemptions.Uses == 0 {
		return nil
	}
	var rows []struct {
		MailingID int64 `db:"mailing_id"`
		Micros    int64 `db:"micros"`
		Uses      int64 `db:"uses"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT mailing_id, micros, sum(uses) AS uses FROM report_redemption_delays
		WHERE group_id = $1 AND day >= $2 AND day <= $3
		GROUP BY 1, 2 ORDER BY 1, 2`, m.GroupID, m.Period.From, m.Period.To)
	if err != nil {
		return fmt.Errorf("reading the redemption delays of group %d: %w", m.GroupID, err)
	}
	for i := 0; i < len(rows); {
		j := i
		var n int64
		for j < len(rows) && rows[j].MailingID == rows[i].MailingID {
			n += rows[j].Uses
			j++
		}
		if mf := byMailing[rows[i].MailingID]; mf != nil {
			// The (n-1)/2-th and n/2-th delays in order (0-based): one when n is odd.
			lo, hi := nth(rows[i:j], (n-1)/2), nth(rows[i:j], n/2)
			h := math.Round(float64(lo+hi)/2/1e6/3600*100) / 100
			mf.MedianHoursToRedeem = &h
		}
		i = j
	}
	return nil
}

// nth is the k-th (0-based) delay of a mailing's sorted delays with their counts.
func nth(rows []struct {
	MailingID int64 `db:"mailing_id"`
	Micros    int64 `db:"micros"`
	Uses      int64 `db:"uses"`
}, k int64) int64 {
	for _, r := range rows {
		if k < r.Uses {
			return r.Micros
		}
		k -= r.Uses
	}
	return rows[len(rows)-1].Micros
}

// divRound is a / b rounded half away from zero (0 when b is 0).
func divRound(a, b int64) int64 {
	if b == 0 {
		return 0
	}
	q, rem := a/b, a%b
	if 2*rem >= b {
		q++
	}
	return q
}

// ratio is a / b to 4 decimals (0 when b is 0).
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(float64(a)/float64(b)*10000) / 10000
}
