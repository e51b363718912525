package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
)

func (h *Handler) customerRoutes() {
	h.handle("GET /admin/customers", h.findCustomer)
	h.handle("GET /admin/customers/{id}", h.customerPage)
}

// findCustomer answers the search box: with ?id= it opens that profile.
func (h *Handler) findCustomer(w http.ResponseWriter, r *http.Request) error {
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		http.Redirect(w, r, "/admin/customers/"+url.PathEscape(id), http.StatusSeeOther)
		return nil
	}
	h.render(w, r, http.StatusOK, "customer", page{Title: "Customers", Nav: "customers"})
	return nil
}

type customerData struct {
	Customer *customers.Customer
	Issues   []groups.Issue
	// Next is the ?before= of the next page, 0 when this is the last.
	Next int64
	// Redemptions are the customer's newest redemptions (RedemptionsOn: the history
	// is configured); NextRedemption the ?rbefore= of the next page.
	Redemptions    []*checkout.Redemption
	RedemptionsOn  bool
	NextRedemption int64
}

const customerPageSize = 100

func (h *Handler) customerPage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	c, err := h.deps.Customers.Get(r.Context(), id)
	if errors.Is(err, customers.ErrNotFound) {
		return notFound("No customer has the id " + strconv.Quote(id) + ".")
	}
	if err != nil {
		return err
	}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	issues, err := h.deps.Groups.CustomerIssues(r.Context(), id, before, customerPageSize)
	if err != nil {
		return err
	}
	d := customerData{Customer: c, Issues: issues}
	if len(issues) == customerPageSize {
		d.Next = issues[len(issues)-1].ID
	}
	if d.RedemptionsOn = h.deps.Redemptions != nil; d.RedemptionsOn {
		rbefore, _ := strconv.ParseInt(r.URL.Query().Get("rbefore"), 10, 64)
		if d.Redemptions, err = h.deps.Redemptions.List(r.Context(), checkout.Filter{CustomerID: id, Before: rbefore, Limit: customerPageSize}); err != nil {
			return err
		}
		if len(d.Redemptions) == customerPageSize {
			d.NextRedemption = d.Redemptions[len(d.Redemptions)-1].ID
		}
	}
	h.render(w, r, http.StatusOK, "customer", page{Title: "Customer " + c.ID, Nav: "customers", Data: d})
	return nil
}
