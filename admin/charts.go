package admin

import (
	"fmt"
	"html/template"
	"time"

	"promopool/admin/chart"
	"promopool/offers"
	"promopool/reports"
)

// chartView is one dashboard chart: the SVG and its table fallback.
type chartView struct {
	ID, Title, Caption string
	SVG                template.HTML
	// Legend names the series in drawing order; Forecast: a forecast line is drawn.
	Legend   []string
	Forecast bool
	// Columns head the table; Rows are its lines (date, then a cell per series).
	Columns []string
	Rows    [][]string
}

// dashboardCharts draws the group's report (issue 19 item 3): issues and redemptions
// per day; the balance over time with the forecast to when it runs dry (drawn when the
// period ends today); the budget left per day (for a group with a budget).
func dashboardCharts(m *reports.Metrics, now time.Time) []chartView {
	dates := make([]string, len(m.Daily))
	issued := make([]*float64, len(m.Daily))
	uses := make([]*float64, len(m.Daily))
	active := make([]*float64, len(m.Daily))
	left := make([]*float64, len(m.Daily))
	hasBudget := false
	f := func(v int64) *float64 { x := float64(v); return &x }
	for i, d := range m.Daily {
		dates[i] = d.Date
		issued[i], uses[i] = f(d.Issued), f(d.Uses)
		if d.Active != nil {
			active[i] = f(*d.Active)
		}
		if d.BudgetLeft != nil {
			left[i], hasBudget = f(*d.BudgetLeft), true
		}
	}
	cell := func(v *float64, format func(float64) string) string {
		if v == nil {
			return "—"
		}
		return format(*v)
	}
	whole := func(v float64) string { return num(int64(v)) }
	table := func(format func(float64) string, series ...[]*float64) [][]string {
		rows := make([][]string, len(dates))
		for i, d := range dates {
			rows[i] = []string{d}
			for _, s := range series {
				rows[i] = append(rows[i], cell(s[i], format))
			}
		}
		return rows
	}
	var out []chartView

	act := chart.Line{ID: "chart-activity", Title: "Codes issued and redeemed per day", Dates: dates,
		Series: []chart.Series{{Key: "issued", Label: "issued", Values: issued}, {Key: "uses", Label: "redeemed", Values: uses}}}
	out = append(out, chartView{ID: act.ID, Title: act.Title, Legend: []string{"issued", "redeemed"},
		Caption: "new codes handed out, and successful uses (refunds taken out)", SVG: act.SVG(),
		Columns: []string{"Date", "Issued", "Redeemed"}, Rows: table(whole, issued, uses)})

	today := now.UTC().Format("2006-01-02")
	endsToday := len(dates) > 0 && dates[len(dates)-1] == today
	if endsToday {
		// Today's point is the balance now (the day's record may not be taken yet).
		active[len(active)-1] = f(m.Balance.Active)
	}
	bal := chart.Line{ID: "chart-balance", Title: "Balance (active codes)", Dates: dates,
		Series: []chart.Series{{Key: "active", Label: "active codes", Values: active}}}
	caption := "active codes recorded each day, today's as of now"
	if b := m.Balance; b.DryAt != nil && endsToday {
		// From today's point (the balance now) to the dry date, in days.
		days := b.DryAt.Sub(now).Hours() / 24
		label := "runs dry " + b.DryAt.UTC().Format("2006-01-02")
		bal.Forecast = &chart.Forecast{Days: days, Label: label}
		caption += "; dashed: the forecast at " + fmt.Sprintf("%.1f", b.RatePerDay) + " a day, " + label
		if days > chart.MaxForecastDays {
			caption += " (cut at " + num(chart.MaxForecastDays) + " days)"
		}
	}
	out = append(out, chartView{ID: bal.ID, Title: bal.Title, Caption: caption, SVG: bal.SVG(), Legend: []string{"active codes"}, Forecast: bal.Forecast != nil,
		Columns: []string{"Date", "Active"}, Rows: table(whole, active)})

	if hasBudget {
		cur := m.Redemptions.Currency
		money := func(v float64) string { return offers.FormatMoney(int64(v), cur) }
		bud := chart.Line{ID: "chart-budget", Title: "Budget left", Dates: dates, Format: money,
			Series: []chart.Series{{Key: "budget_left", Label: "budget left", Values: left}}}
		out = append(out, chartView{ID: bud.ID, Title: bud.Title, Caption: "the discount budget left at the end of each day (refunds give theirs back)", SVG: bud.SVG(),
			Legend:  []string{"budget left"},
			Columns: []string{"Date", "Budget left"}, Rows: table(money, left)})
	}
	return out
}
