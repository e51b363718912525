package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"promopool/checkout"
	"promopool/groups"
	"promopool/reports"
)

// Reporter answers the dashboard, the Distributions tab and the portfolio;
// *reports.Service satisfies it.
type Reporter interface {
	GroupMetrics(ctx context.Context, groupID int64, p reports.Period) (*reports.Metrics, error)
	Portfolio(ctx context.Context, p reports.Period, sortKey string) (*reports.Portfolio, error)
	ParsePeriod(from, to string) (reports.Period, error)
}

// RedemptionLister pages the redemption history; *checkout.Service satisfies it.
type RedemptionLister interface {
	List(ctx context.Context, f checkout.Filter) ([]*checkout.Redemption, error)
}

// tabPageSize is the rows of one page of a group's tab.
const tabPageSize = 50

func (h *Handler) tabRoutes() {
	h.handle("GET /admin/groups/{id}/codes", h.codesTab)
	h.handle("GET /admin/groups/{id}/publications", h.publicationsTab)
	h.handle("GET /admin/groups/{id}/activity", h.activityTab)
	if h.deps.Redemptions != nil {
		h.handle("GET /admin/groups/{id}/redemptions", h.redemptionsTab)
	}
	if h.deps.Reports != nil {
		h.handle("GET /admin/groups/{id}/distributions", h.distributionsTab)
		h.handle("GET /admin/portfolio", h.portfolio)
	}
}

// tabData is what every tab of the group page gets.
type tabData struct {
	Group *groups.Group
	Tab   string
	// Tabs says which optional tabs exist.
	Redemptions, Reports bool
	// Next is the cursor of the next page ("" on the last).
	Next   string
	Search string
	Rows   any
	// Period is a report's period (Distributions).
	Period reports.Period
	Error  string
}

func (h *Handler) tab(w http.ResponseWriter, r *http.Request, name string, fill func(ctx context.Context, g *groups.Group, d *tabData) error) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	g, err := h.deps.Groups.Get(r.Context(), id)
	if err != nil {
		return err
	}
	d := tabData{Group: g, Tab: name, Redemptions: h.deps.Redemptions != nil, Reports: h.deps.Reports != nil}
	if err := fill(r.Context(), g, &d); err != nil {
		status, msg := describe(err)
		if status >= 500 || status == http.StatusNotFound {
			return err
		}
		h.render(w, r, status, "group_tab", page{Title: g.Name, Nav: "groups", Error: msg, Data: d})
		return nil
	}
	h.render(w, r, http.StatusOK, "group_tab", page{Title: g.Name + " · " + name, Nav: "groups", Data: d})
	return nil
}

func cursor(r *http.Request, name string) int64 {
	v, _ := strconv.ParseInt(r.URL.Query().Get(name), 10, 64)
	return max(v, 0)
}

// codesTab: a unique group's codes with status and holder (search by code); a shared
// group's promotion codes.
func (h *Handler) codesTab(w http.ResponseWriter, r *http.Request) error {
	return h.tab(w, r, "codes", func(ctx context.Context, g *groups.Group, d *tabData) error {
		if g.Kind == groups.KindShared {
			p, err := h.deps.Groups.PromotionCodes(ctx, g.ID, r.URL.Query().Get("after"), tabPageSize)
			if err != nil {
				return err
			}
			d.Rows, d.Next = p.PromotionCodes, p.NextCursor
			return nil
		}
		d.Search = strings.TrimSpace(r.URL.Query().Get("q"))
		rows, err := h.deps.Groups.CodePage(ctx, g.ID, d.Search, cursor(r, "after"), tabPageSize)
		if err != nil {
			return err
		}
		d.Rows = rows
		if len(rows) == tabPageSize {
			d.Next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
		}
		return nil
	})
}

func (h *Handler) redemptionsTab(w http.ResponseWriter, r *http.Request) error {
	return h.tab(w, r, "redemptions", func(ctx context.Context, g *groups.Group, d *tabData) error {
		d.Search = strings.TrimSpace(r.URL.Query().Get("q"))
		rows, err := h.deps.Redemptions.List(ctx, checkout.Filter{GroupID: g.ID, Code: d.Search, Before: cursor(r, "before"), Limit: tabPageSize})
		if err != nil {
			return err
		}
		d.Rows = rows
		if len(rows) == tabPageSize {
			d.Next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
		}
		return nil
	})
}

func (h *Handler) publicationsTab(w http.ResponseWriter, r *http.Request) error {
	return h.tab(w, r, "publications", func(ctx context.Context, g *groups.Group, d *tabData) error {
		rows, err := h.deps.Groups.Publications(ctx, g.ID, cursor(r, "before"), tabPageSize)
		if err != nil {
			return err
		}
		d.Rows = rows
		if len(rows) == tabPageSize {
			d.Next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
		}
		return nil
	})
}

func (h *Handler) distributionsTab(w http.ResponseWriter, r *http.Request) error {
	return h.tab(w, r, "distributions", func(ctx context.Context, g *groups.Group, d *tabData) error {
		p, err := h.deps.Reports.ParsePeriod(r.URL.Query().Get("from"), r.URL.Query().Get("to"))
		if err != nil {
			return err
		}
		m, err := h.deps.Reports.GroupMetrics(ctx, g.ID, p)
		if err != nil {
			return err
		}
		d.Rows, d.Period = m.Mailings, m.Period
		return nil
	})
}

func (h *Handler) activityTab(w http.ResponseWriter, r *http.Request) error {
	return h.tab(w, r, "activity", func(ctx context.Context, g *groups.Group, d *tabData) error {
		rows, err := h.deps.Groups.ActivityPage(ctx, g.ID, cursor(r, "before"), tabPageSize)
		if err != nil {
			return err
		}
		d.Rows = rows
		if len(rows) == tabPageSize {
			d.Next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
		}
		return nil
	})
}

// portfolioData is the portfolio home: every live group's figures over a period.
type portfolioData struct {
	*reports.Portfolio
	From, To string
	// Sorts are the column headers' sort keys.
	Columns []portfolioColumn
}

type portfolioColumn struct {
	Key, Label string
	Numeric    bool
	// Next is the sort the header's link asks for: descending first, then ascending.
	Next  string
	Arrow string
}

func (h *Handler) portfolio(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := h.deps.Reports.ParsePeriod(q.Get("from"), q.Get("to"))
	var pf *reports.Portfolio
	if err == nil {
		pf, err = h.deps.Reports.Portfolio(r.Context(), p, q.Get("sort"))
	}
	if err != nil {
		status, msg := describe(err)
		if status >= 500 {
			return err
		}
		h.render(w, r, status, "portfolio", page{Title: "Portfolio", Nav: "home", Error: msg,
			Data: portfolioData{Portfolio: &reports.Portfolio{}, From: q.Get("from"), To: q.Get("to")}})
		return nil
	}
	d := portfolioData{Portfolio: pf, From: pf.Period.From.Format("2006-01-02"), To: pf.Period.To.Format("2006-01-02")}
	for _, c := range []struct {
		key, label string
	}{{"name", "Group"}, {"issued", "Issued"}, {"repeat", "Repeats"}, {"mailings", "Mailings"}, {"uses", "Uses"},
		{"customers", "Customers"}, {"discount", "Discounted"}, {"revenue", "Revenue"}, {"active", "Balance"}, {"total", "Total"}} {
		col := portfolioColumn{Key: c.key, Label: c.label, Numeric: c.key != "name", Next: "-" + c.key}
		if c.key == "name" {
			col.Next = "name"
		}
		switch pf.Sort {
		case c.key:
			col.Arrow, col.Next = "▲", "-"+c.key
		case "-" + c.key:
			col.Arrow, col.Next = "▼", c.key
		}
		d.Columns = append(d.Columns, col)
	}
	h.render(w, r, http.StatusOK, "portfolio", page{Title: "Portfolio", Nav: "home", Data: d})
	return nil
}
