package reports

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/lib/pq"
)

// Metrics is one group's report over a period (GET /v1/groups/{id}/metrics).
type Metrics struct {
	GroupID   int64  `json:"group_id"`
	GroupName string `json:"group_name"`
	Period    Period `json:"period"`
	// AsOf is the instant the figures are complete to (the last folds of issues and
	// of redemption changes).
	AsOf time.Time `json:"as_of"`
	// Issues are the live issues of the period (released ones do not count).
	Issues IssueFigures `json:"issues"`
	// Redemptions are the period's redemption figures (SPEC §12's cards).
	Redemptions *Redemptions `json:"redemptions"`
	// Balance is the group's balance now, with the forecast of when it runs dry.
	Balance Balance `json:"balance"`
	// Mailings are the mailings that issued codes of the group, or whose codes were
	// redeemed, in the period, most codes first.
	Mailings []MailingFigures `json:"mailings"`
	// Daily is one entry per day of the period, oldest first.
	Daily []Day `json:"daily"`
}

// IssueFigures counts issues.
type IssueFigures struct {
	// Initial codes left the pool; Repeat re-inserted a code already held
	// (last_promocode).
	Initial int64 `json:"initial"`
	Repeat  int64 `json:"repeat"`
	// ByMailing are the initial issues of mailings, Direct those outside mailings
	// (direct issues, the render API).
	ByMailing int64 `json:"by_mailing"`
	Direct    int64 `json:"direct"`
}

// Balance is a group's counters now and the forecast of when it runs dry.
type Balance struct {
	Total   int64 `json:"total"`
	Active  int64 `json:"active"`
	Issued  int64 `json:"issued"`
	Expired int64 `json:"expired"`
	// RatePerDay is the initial issues per day over the last ForecastDays days.
	RatePerDay float64 `json:"rate_per_day"`
	// DryAt is when the active codes run out at RatePerDay; nil when nothing is issued.
	DryAt *time.Time `json:"dry_at"`
}

// MailingFigures is one mailing's part in a group's report.
type MailingFigures struct {
	MailingID int64  `json:"mailing_id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	// Issued is the codes of this group the mailing issued in the period (initial).
	Issued int64 `json:"issued"`
	// Recipients, Sent and Failed are the mailing's messages, all groups and all time.
	Recipients int64 `json:"recipients"`
	Sent       int64 `json:"sent"`
	Failed     int64 `json:"failed"`
	// Redeemed is the uses in the period of codes the mailing issued, Revenue their
	// orders' amounts; Conversion is Redeemed / Issued (4 decimals; 0 without issues).
	Redeemed   int64   `json:"redeemed"`
	Revenue    int64   `json:"revenue"`
	Conversion float64 `json:"conversion"`
	// MedianHoursToRedeem is the median time from a code's issue to its use, over the
	// period's uses; nil without uses.
	MedianHoursToRedeem *float64 `json:"median_hours_to_redeem"`
}

// Day is one day of a group's charts.
type Day struct {
	Date   string `json:"date"`
	Issued int64  `json:"issued"`
	Repeat int64  `json:"repeat"`
	// Active is the balance recorded that day (or carried from the last day that has
	// one); nil before the first record.
	Active *int64 `json:"active"`
	// Uses, Discount and Revenue are the day's redemption figures.
	Uses     int64 `json:"uses"`
	Discount int64 `json:"discount"`
	Revenue  int64 `json:"revenue"`
	// BudgetLeft is the budget left at the end of the day; nil without a budget.
	BudgetLeft *int64 `json:"budget_left"`
}

// GroupMetrics returns the report of a live group over p. It folds a short tail of new
// issues first, so the figures are current. Errors: groups.ErrGroupNotFound.
func (s *Service) GroupMetrics(ctx context.Context, groupID int64, p Period) (*Metrics, error) {
	g, err := s.groups.Get(ctx, groupID)
	if err != nil {
		return nil, err
	}
	if err := s.foldTails(ctx); err != nil {
		return nil, err
	}
	m := &Metrics{GroupID: g.ID, GroupName: g.Name, Period: p, Mailings: []MailingFigures{},
		Balance: Balance{Total: g.Total, Active: g.Active, Issued: g.Issued, Expired: g.Expired}}
	if m.AsOf, err = s.AsOf(ctx); err != nil {
		return nil, err
	}
	m.Daily = make([]Day, m.Period.Days())
	for i := range m.Daily {
		m.Daily[i].Date = m.Period.From.AddDate(0, 0, i).Format(dateLayout)
	}
	byMailing := map[int64]*MailingFigures{}
	if err := s.issueDays(ctx, m, byMailing); err != nil {
		return nil, err
	}
	if err := s.redemptionFigures(ctx, m, byMailing); err != nil {
		return nil, err
	}
	if err := s.medianDelays(ctx, m, byMailing); err != nil {
		return nil, err
	}
	if err := s.mailingFigures(ctx, m, byMailing); err != nil {
		return nil, err
	}
	if err := s.balanceDays(ctx, m); err != nil {
		return nil, err
	}
	if err := s.forecast(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// issueDays fills the issue figures and the daily issue series from the group's day
// rows of report_issue_group_days (one index range, a row per day), and the mailings'
// issues from their spans (report_issue_mailing_spans: about a dozen blocks of days
// cover a 90-day period) and the day rows of the edge days.
func (s *Service) issueDays(ctx context.Context, m *Metrics, byMailing map[int64]*MailingFigures) error {
	var rows []struct {
		Day     time.Time `db:"day"`
		Initial int64     `db:"initial"`
		Repeat  int64     `db:"repeat"`
		Direct  int64     `db:"direct"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT day, initial, repeat, direct FROM report_issue_group_days
		WHERE group_id = $1 AND day >= $2 AND day <= $3`, m.GroupID, m.Period.From, m.Period.To)
	if err != nil {
		return fmt.Errorf("reading the issues of group %d: %w", m.GroupID, err)
	}
	for _, r := range rows {
		d := &m.Daily[int(r.Day.Sub(m.Period.From).Hours()/24)]
		d.Issued += r.Initial
		d.Repeat += r.Repeat
		m.Issues.Initial += r.Initial
		m.Issues.Repeat += r.Repeat
		m.Issues.Direct += r.Direct
		m.Issues.ByMailing += r.Initial - r.Direct
	}
	var mailings []struct {
		MailingID int64 `db:"mailing_id"`
		Issued    int64 `db:"issued"`
	}
	levels, blocks, edges := spans(m.Period.From, m.Period.To)
	err = s.db.SelectContext(ctx, &mailings, `
		SELECT mailing_id, sum(initial) AS issued FROM (
		    SELECT s.mailing_id, s.initial FROM unnest($2::smallint[], $3::integer[]) b(level, block)
		    JOIN report_issue_mailing_spans s ON s.group_id = $1 AND s.level = b.level AND s.block = b.block
		    UNION ALL
		    SELECT mailing_id, initial FROM report_issue_days
		    WHERE group_id = $1 AND mailing_id <> 0 AND day = ANY ($4::date[])
		) x
		GROUP BY 1 HAVING sum(initial) > 0`, m.GroupID, pq.Array(levels), pq.Array(blocks), pq.Array(edges))
	if err != nil {
		return fmt.Errorf("reading the mailings of group %d: %w", m.GroupID, err)
	}
	for _, r := range mailings {
		byMailing[r.MailingID] = &MailingFigures{MailingID: r.MailingID, Issued: r.Issued}
	}
	return nil
}

// mailingFigures lists the mailings of byMailing with their deliveries and
// conversions, most codes first.
func (s *Service) mailingFigures(ctx context.Context, m *Metrics, byMailing map[int64]*MailingFigures) error {
	if len(byMailing) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(byMailing))
	for id := range byMailing {
		ids = append(ids, id)
	}
	if s.mailings != nil {
		got, err := s.mailings.Deliveries(ctx, ids)
		if err != nil {
			return err
		}
		for id, d := range got {
			mf := byMailing[id]
			mf.Name, mf.Status, mf.Recipients, mf.Sent, mf.Failed = d.Name, d.Status, d.Recipients, d.Sent, d.Failed
		}
	}
	for _, id := range ids {
		mf := byMailing[id]
		mf.Conversion = ratio(mf.Redeemed, mf.Issued)
		m.Mailings = append(m.Mailings, *mf)
	}
	sort.Slice(m.Mailings, func(i, j int) bool {
		a, b := m.Mailings[i], m.Mailings[j]
		return a.Issued > b.Issued || a.Issued == b.Issued && a.MailingID > b.MailingID
	})
	return nil
}

// balanceDays fills each day's recorded balance, carrying the last record before it.
func (s *Service) balanceDays(ctx context.Context, m *Metrics) error {
	var rows []struct {
		Day    time.Time `db:"day"`
		Active int64     `db:"active"`
	}
	// The last record before the period (carried into its first days), then the period's.
	err := s.db.SelectContext(ctx, &rows, `
		(SELECT day, active FROM report_balance_days WHERE group_id = $1 AND day < $2 ORDER BY day DESC LIMIT 1)
		UNION ALL
		(SELECT day, active FROM report_balance_days WHERE group_id = $1 AND day >= $2 AND day <= $3 ORDER BY day)`,
		m.GroupID, m.Period.From, m.Period.To)
	if err != nil {
		return fmt.Errorf("reading the balances of group %d: %w", m.GroupID, err)
	}
	today := day(s.cfg.Now())
	var last *int64
	next := 0
	for i := range m.Daily {
		d := m.Period.From.AddDate(0, 0, i)
		for next < len(rows) && !rows[next].Day.After(d) {
			v := rows[next].Active
			last = &v
			next++
		}
		if d.Equal(today) {
			v := m.Balance.Active // today's is the live balance
			last = &v
		}
		if d.After(today) {
			break
		}
		m.Daily[i].Active = last
	}
	return nil
}

// forecast sets the issue rate of the last ForecastDays days (today included) and when
// the active codes run out at it.
func (s *Service) forecast(ctx context.Context, m *Metrics) error {
	now := s.cfg.Now()
	since := day(now).AddDate(0, 0, 1-s.cfg.ForecastDays)
	var issued int64
	if err := s.db.GetContext(ctx, &issued, `
		SELECT coalesce(sum(initial), 0) FROM report_issue_group_days WHERE group_id = $1 AND day >= $2`,
		m.GroupID, since); err != nil {
		return fmt.Errorf("reading the issue rate of group %d: %w", m.GroupID, err)
	}
	// The window ends now: ForecastDays-1 whole days and today's part.
	span := now.Sub(since).Hours() / 24
	if issued == 0 || span <= 0 {
		return nil
	}
	m.Balance.RatePerDay = math.Round(float64(issued)/span*100) / 100
	dry := now.Add(time.Duration(float64(m.Balance.Active) / (float64(issued) / span) * 24 * float64(time.Hour))).UTC().Truncate(time.Second)
	m.Balance.DryAt = &dry
	return nil
}

// PortfolioRow is one group in the portfolio.
type PortfolioRow struct {
	GroupID   int64  `json:"group_id"`
	GroupName string `json:"group_name"`
	// Issued and Repeat are the period's live issues; Mailings how many mailings issued.
	Issued   int64 `json:"issued"`
	Repeat   int64 `json:"repeat"`
	Mailings int64 `json:"mailings"`
	// Active and Total are the balance now.
	Active int64 `json:"active"`
	Total  int64 `json:"total"`
	// Uses, Customers (unique), Discount and Revenue are the period's redemption
	// figures, in Currency ("" when the group has no terms and no redemption).
	Uses      int64  `json:"uses"`
	Customers int64  `json:"customers"`
	Discount  int64  `json:"discount"`
	Revenue   int64  `json:"revenue"`
	Currency  string `json:"currency"`
}

// Portfolio is every live group's figures over one period, side by side.
type Portfolio struct {
	Period Period         `json:"period"`
	AsOf   time.Time      `json:"as_of"`
	Sort   string         `json:"sort"`
	Groups []PortfolioRow `json:"groups"`
}

// PortfolioSorts are the sort keys of the portfolio; a leading "-" sorts descending.
var PortfolioSorts = []string{"name", "issued", "repeat", "mailings", "active", "total", "uses", "customers", "discount", "revenue"}

// Portfolio returns every live group's figures over p, sorted by sortKey (one of
// PortfolioSorts, "-" first for descending; default "name"). Errors: *InvalidError
// (field "sort") for an unknown key.
func (s *Service) Portfolio(ctx context.Context, p Period, sortKey string) (*Portfolio, error) {
	less, err := portfolioOrder(sortKey)
	if err != nil {
		return nil, err
	}
	if err := s.foldTails(ctx); err != nil {
		return nil, err
	}
	list, err := s.groups.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &Portfolio{Period: p, Sort: sortKey, Groups: make([]PortfolioRow, 0, len(list))}
	if out.Sort == "" {
		out.Sort = "name"
	}
	if out.AsOf, err = s.AsOf(ctx); err != nil {
		return nil, err
	}
	ids := make([]int64, len(list))
	for i, g := range list {
		ids[i] = g.ID
	}
	var rows []struct {
		GroupID  int64 `db:"group_id"`
		Issued   int64 `db:"issued"`
		Repeat   int64 `db:"repeat"`
		Mailings int64 `db:"mailings"`
	}
	// The sums come from each group's day rows (report_issue_group_days); the mailings
	// that issued in the period are those with issues in a span (0028) or an edge day
	// of the period (initial issues are never negative, so a positive sum over a
	// block means a day with issues in it).
	levels, blocks, edges := spans(p.From, p.To)
	err = s.db.SelectContext(ctx, &rows, `
		WITH issuing AS (
		    SELECT group_id, count(*) AS n FROM (
		        SELECT DISTINCT group_id, mailing_id FROM (
		            SELECT s.group_id, s.mailing_id FROM unnest($4::smallint[], $5::integer[]) b(level, block)
		            JOIN report_issue_mailing_spans s
		              ON s.group_id = ANY ($1) AND s.level = b.level AND s.block = b.block AND s.initial > 0
		            UNION ALL
		            SELECT group_id, mailing_id FROM report_issue_days
		            WHERE group_id = ANY ($1) AND mailing_id <> 0 AND day = ANY ($6::date[]) AND initial > 0
		        ) x
		    ) y GROUP BY 1
		)
		SELECT g.id AS group_id, coalesce(i.issued, 0) AS issued, coalesce(i.repeat, 0) AS repeat,
		       coalesce(m.n, 0) AS mailings
		FROM unnest($1::bigint[]) g(id)
		LEFT JOIN LATERAL (
		    SELECT sum(initial) AS issued, sum(repeat) AS repeat FROM report_issue_group_days
		    WHERE group_id = g.id AND day >= $2 AND day <= $3
		) i ON true
		LEFT JOIN issuing m ON m.group_id = g.id`, pq.Array(ids), p.From, p.To, pq.Array(levels), pq.Array(blocks), pq.Array(edges))
	if err != nil {
		return nil, fmt.Errorf("reading the portfolio: %w", err)
	}
	byGroup := make(map[int64]int, len(rows))
	for i, r := range rows {
		byGroup[r.GroupID] = i
	}
	for _, g := range list {
		row := PortfolioRow{GroupID: g.ID, GroupName: g.Name, Active: g.Active, Total: g.Total}
		if i, ok := byGroup[g.ID]; ok {
			row.Issued, row.Repeat, row.Mailings = rows[i].Issued, rows[i].Repeat, rows[i].Mailings
		}
		out.Groups = append(out.Groups, row)
	}
	if err := s.portfolioRedemptions(ctx, out, ids, p); err != nil {
		return nil, err
	}
	sort.SliceStable(out.Groups, func(i, j int) bool { return less(&out.Groups[i], &out.Groups[j]) })
	return out, nil
}

// portfolioOrder returns the order of a sort key.
func portfolioOrder(key string) (func(a, b *PortfolioRow) bool, error) {
	desc := len(key) > 0 && key[0] == '-'
	name := key
	if desc {
		name = key[1:]
	}
	var field func(r *PortfolioRow) int64
	switch name {
	case "", "name":
		if desc {
			return func(a, b *PortfolioRow) bool { return lowerName(a) > lowerName(b) }, nil
		}
		return func(a, b *PortfolioRow) bool { return lowerName(a) < lowerName(b) }, nil
	case "issued":
		field = func(r *PortfolioRow) int64 { return r.Issued }
	case "repeat":
		field = func(r *PortfolioRow) int64 { return r.Repeat }
	case "mailings":
		field = func(r *PortfolioRow) int64 { return r.Mailings }
	case "active":
		field = func(r *PortfolioRow) int64 { return r.Active }
	case "total":
		field = func(r *PortfolioRow) int64 { return r.Total }
	case "uses":
		field = func(r *PortfolioRow) int64 { return r.Uses }
	case "customers":
		field = func(r *PortfolioRow) int64 { return r.Customers }
	case "discount":
		field = func(r *PortfolioRow) int64 { return r.Discount }
	case "revenue":
		field = func(r *PortfolioRow) int64 { return r.Revenue }
	default:
		return nil, &InvalidError{"sort", fmt.Sprintf("%q is not a sort key: one of %v, with - first to sort descending", key, PortfolioSorts)}
	}
	if desc {
		return func(a, b *PortfolioRow) bool { return field(a) > field(b) }, nil
	}
	return func(a, b *PortfolioRow) bool { return field(a) < field(b) }, nil
}

// portfolioRedemptions adds each group's redemption figures over p: sums of each
// group's day rows (report_redemption_group_days), and its unique customers
// (uniqueCustomersSQL).
func (s *Service) portfolioRedemptions(ctx context.Context, out *Portfolio, ids []int64, p Period) error {
	var rows []struct {
		GroupID   int64  `db:"group_id"`
		Uses      int64  `db:"uses"`
		Discount  int64  `db:"discount"`
		Revenue   int64  `db:"revenue"`
		Currency  string `db:"currency"`
		Customers int64  `db:"customers"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT g.id AS group_id, coalesce(r.uses, 0) AS uses, coalesce(r.discount, 0) AS discount,
		       coalesce(r.revenue, 0) AS revenue, coalesce(r.currency, '') AS currency, `+uniqueCustomersSQL("g.id", "$2", "$3")+` AS customers
		FROM unnest($1::bigint[]) g(id)
		LEFT JOIN LATERAL (
		    SELECT sum(uses) AS uses, sum(discount) AS discount, sum(revenue) AS revenue, min(currency) AS currency
		    FROM report_redemption_group_days WHERE group_id = g.id AND day >= $2 AND day <= $3
		) r ON true`, pq.Array(ids), p.From, p.To)
	if err != nil {
		return fmt.Errorf("reading the portfolio's redemptions: %w", err)
	}
	budgets, err := s.groups.Budgets(ctx, ids)
	if err != nil {
		return err
	}
	byGroup := make(map[int64]int, len(rows))
	for i, r := range rows {
		byGroup[r.GroupID] = i
	}
	for i := range out.Groups {
		g := &out.Groups[i]
		if j, ok := byGroup[g.GroupID]; ok {
			r := rows[j]
			g.Uses, g.Discount, g.Revenue, g.Currency, g.Customers = r.Uses, r.Discount, r.Revenue, r.Currency, r.Customers
		}
		if c := budgets[g.GroupID].Currency; c != "" {
			g.Currency = c
		}
	}
	return nil
}

// uniqueCustomersSQL is the number of distinct customers with a use of group's codes on
// the days [from, to] (SQL expressions). A customer has a use in the period exactly when
// their last use is on or after from, provided no use of the group is later than to:
// then it is a sum over report_redeemer_last_days (a row per day, migration 0027). When
// a use is later (a period in the past) it is a distinct count over the period's
// report_redeemer_days (a row per customer and day). Both are exact; the first answers
// every period that ends today.
func uniqueCustomersSQL(group, from, to string) string {
	return fmt.Sprintf(`(CASE WHEN EXISTS (SELECT 1 FROM report_redeemer_last_days
	                                       WHERE group_id = %[1]s AND day > %[3]s AND customers > 0)
	     THEN (SELECT count(DISTINCT customer_id) FROM report_redeemer_days
	           WHERE group_id = %[1]s AND day >= %[2]s AND day <= %[3]s)
	     ELSE (SELECT coalesce(sum(customers), 0) FROM report_redeemer_last_days
	           WHERE group_id = %[1]s AND day >= %[2]s) END)`, group, from, to)
}
