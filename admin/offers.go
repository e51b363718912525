package admin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"promopool/groups"
	"promopool/offers"
)

// offerForm is the offer part of the group form (SPEC §10) as typed: kind and status
// on create, the discount terms, the caps, the window and the budget. Amounts are typed
// in the currency's units ("15.50"); times as the browser's datetime-local, in UTC.
type offerForm struct {
	Kind, Status, Binding                              string
	Type, PercentOff, AmountOff, Currency, MaxDiscount string
	MinOrder, Products, Exclude, Duration, Months      string
	MaxRedemptions, MaxPerCustomer, StartsAt, EndsAt   string
	Budget                                             string
	// TermsSent and LimitsSent: the form carried those fields (a locked group's form
	// does not send its terms; disabled fields are not submitted).
	TermsSent, LimitsSent bool
	// Locked: the group's terms can no longer change (a code was issued or redeemed).
	Locked bool
}

// datetimeLocal is the layout of <input type="datetime-local">.
const datetimeLocal = "2006-01-02T15:04"

// offerFormOf fills the form from a stored group.
func offerFormOf(g *groups.Group) offerForm {
	f := offerForm{Kind: g.Kind, Status: g.StoredStatus, Binding: g.CodeBinding, Locked: g.Locked(), Duration: string(offers.DurationOnce)}
	cur := ""
	if t := g.Terms; t != nil {
		cur = t.Currency
		f.Type, f.Currency, f.Duration = string(t.Type), t.Currency, string(t.Duration)
		if t.Type == offers.TypePercent {
			f.PercentOff = t.PercentOff.String()
		} else {
			f.AmountOff = majorUnits(t.AmountOff, cur)
		}
		f.MaxDiscount = majorPtr(t.MaxDiscount, cur)
		f.MinOrder = majorPtr(t.MinOrder, cur)
		f.Products = strings.Join(t.AppliesTo.Products, ", ")
		f.Exclude = strings.Join(t.AppliesTo.Exclude, ", ")
		if t.DurationMonths > 0 {
			f.Months = strconv.Itoa(t.DurationMonths)
		}
	}
	l := g.Limits
	f.MaxRedemptions = intPtr(l.MaxRedemptions)
	f.MaxPerCustomer = intPtr(l.MaxPerCustomer)
	f.Budget = majorPtr(l.Budget, cur)
	if l.StartsAt != nil {
		f.StartsAt = l.StartsAt.UTC().Format(datetimeLocal)
	}
	if l.EndsAt != nil {
		f.EndsAt = l.EndsAt.UTC().Format(datetimeLocal)
	}
	return f
}

func intPtr(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func majorPtr(p *int64, cur string) string {
	if p == nil {
		return ""
	}
	return majorUnits(*p, cur)
}

// majorUnits writes minor units in the currency's units without grouping: 1550 EUR is
// "15.50", 1500 is "15", 1000 JPY is "1000".
func majorUnits(v int64, cur string) string {
	digits := 2
	if cur != "" {
		digits = offers.MinorDigits(cur)
	}
	if digits == 0 {
		return strconv.FormatInt(v, 10)
	}
	div := int64(1)
	for range digits {
		div *= 10
	}
	neg := ""
	if v < 0 {
		neg, v = "-", -v
	}
	s := neg + strconv.FormatInt(v/div, 10)
	if frac := v % div; frac != 0 {
		s += fmt.Sprintf(".%0*d", digits, frac)
	}
	return s
}

// minorUnits reads an amount typed in the currency's units ("15", "15.5", "15.50") as
// minor units; field names it in the error, as the API would.
func minorUnits(field, s, cur string) (*int64, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, ",", ""))
	if s == "" {
		return nil, nil
	}
	digits := 2
	if cur != "" {
		if c, err := offers.NormalizeCurrency(cur); err == nil {
			digits = offers.MinorDigits(c)
		}
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	bad := &groups.InvalidError{Field: field, Reason: fmt.Sprintf("%q is not an amount like 15 or 15.50", s)}
	if whole == "" || (hasFrac && (frac == "" || len(frac) > digits)) {
		if hasFrac && len(frac) > digits {
			bad.Reason = fmt.Sprintf("%q has more than the %d decimal places of the currency", s, digits)
		}
		return nil, bad
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > offers.MaxAmount {
		return nil, bad
	}
	v := w
	for range digits {
		v *= 10
	}
	if hasFrac {
		frac += strings.Repeat("0", digits-len(frac))
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return nil, bad
		}
		v += f
	}
	if neg {
		v = -v
	}
	return &v, nil
}

func optInt(field, s string) (*int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, &groups.InvalidError{Field: field, Reason: fmt.Sprintf("%q is not a whole number", s)}
	}
	return &v, nil
}

// optTime reads a datetime-local value (UTC) or anything groups.ParseTime reads.
func optTime(field, s string) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(datetimeLocal, s); err == nil {
		return &t, nil
	}
	t, err := groups.ParseTime(s)
	if err != nil {
		return nil, &groups.InvalidError{Field: field, Reason: err.Error()}
	}
	return &t, nil
}

func ids(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// readOfferForm reads the offer fields of a posted group form.
func readOfferForm(r *http.Request) offerForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	_, terms := r.PostForm["type"]
	_, limits := r.PostForm["max_redemptions"]
	return offerForm{Kind: v("kind"), Status: v("status"), Binding: v("code_binding"),
		Type: v("type"), PercentOff: strings.TrimSuffix(v("percent_off"), "%"), AmountOff: v("amount_off"), Currency: strings.ToUpper(v("currency")),
		MaxDiscount: v("max_discount"), MinOrder: v("min_order"), Products: v("products"), Exclude: v("exclude"),
		Duration: v("duration"), Months: v("duration_in_months"),
		MaxRedemptions: v("max_redemptions"), MaxPerCustomer: v("max_per_customer"), StartsAt: v("starts_at"), EndsAt: v("ends_at"),
		Budget: v("budget"), TermsSent: terms, LimitsSent: limits}
}

// apply adds the offer fields to in: kind and status on create only; the terms when
// the form sent them ("none" removes them); the limits when the form sent them (every
// limit is set, an empty field removes it).
func (f offerForm) apply(in *groups.Input, create bool) error {
	if create {
		if f.Kind != "" {
			in.Kind = &f.Kind
		}
		if f.Status != "" {
			in.Status = &f.Status
		}
	}
	if f.Binding != "" {
		in.CodeBinding = &f.Binding
	}
	cur := f.Currency
	if f.TermsSent {
		in.Terms.Set = true
		if f.Type != "" && f.Type != "none" {
			t := &offers.Terms{Type: offers.Type(f.Type), Currency: cur, Duration: offers.Duration(f.Duration),
				AppliesTo: offers.Scope{Products: ids(f.Products), Exclude: ids(f.Exclude)}}
			var err error
			if f.PercentOff != "" {
				if t.PercentOff, err = offers.ParsePercent(f.PercentOff); err != nil {
					return &groups.InvalidError{Field: "terms.percent_off", Reason: err.Error()}
				}
			}
			if f.AmountOff != "" {
				a, err := minorUnits("terms.amount_off", f.AmountOff, cur)
				if err != nil {
					return err
				}
				t.AmountOff = *a
			}
			if t.MaxDiscount, err = minorUnits("terms.max_discount", f.MaxDiscount, cur); err != nil {
				return err
			}
			if t.MinOrder, err = minorUnits("terms.min_order", f.MinOrder, cur); err != nil {
				return err
			}
			if f.Months != "" && t.Duration == offers.DurationRepeating {
				m, err := strconv.Atoi(f.Months)
				if err != nil {
					return &groups.InvalidError{Field: "terms.duration_in_months", Reason: fmt.Sprintf("%q is not a whole number", f.Months)}
				}
				t.DurationMonths = m
			}
			in.Terms.Value = t
		}
	}
	if f.LimitsSent {
		l := &groups.LimitsInput{}
		var err error
		l.MaxRedemptions.Set, l.MaxPerCustomer.Set, l.Budget.Set, l.StartsAt.Set, l.EndsAt.Set = true, true, true, true, true
		if l.MaxRedemptions.Value, err = optInt("limits.max_redemptions", f.MaxRedemptions); err != nil {
			return err
		}
		if l.MaxPerCustomer.Value, err = optInt("limits.max_per_customer", f.MaxPerCustomer); err != nil {
			return err
		}
		if l.Budget.Value, err = minorUnits("limits.budget", f.Budget, cur); err != nil {
			return err
		}
		if l.StartsAt.Value, err = optTime("limits.starts_at", f.StartsAt); err != nil {
			return err
		}
		if l.EndsAt.Value, err = optTime("limits.ends_at", f.EndsAt); err != nil {
			return err
		}
		in.Limits = l
	}
	return nil
}

// statusTab is one tab of the group list.
type statusTab struct {
	Key, Label string
	Count      int64
	Current    bool
}

func statusTabs(c groups.StatusCounts, current string) []statusTab {
	tabs := []statusTab{{"", "All", c.All - c.Archived, false}, {groups.StatusActive, "Active", c.Active, false},
		{groups.StatusDraft, "Draft", c.Draft, false}, {groups.StatusPaused, "Paused", c.Paused, false},
		{groups.StatusExpired, "Expired", c.Expired, false}, {groups.StatusArchived, "Archived", c.Archived, false}}
	for i := range tabs {
		tabs[i].Current = tabs[i].Key == current
	}
	return tabs
}

// setGroupStatus pauses or activates a group, then goes back where the form came from.
func (h *Handler) setGroupStatus(to string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		set := h.deps.Groups.Activate
		if to == groups.StatusPaused {
			set = h.deps.Groups.Pause
		}
		g, err := set(r.Context(), actor(r), id)
		if err != nil {
			return err
		}
		back := r.PostFormValue("next")
		if !strings.HasPrefix(back, "/admin/") {
			back = fmt.Sprintf("/admin/groups/%d", id)
		}
		redirect(w, r, back, fmt.Sprintf("Group %q is %s.", g.Name, g.Status))
		return nil
	}
}

// promotionForm is the new promotion code form as typed.
type promotionForm struct {
	Code, CustomerID, MaxRedemptions, ExpiresAt, MinOrder string
	FirstTimeOnly                                         bool
}

func readPromotionForm(r *http.Request) promotionForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return promotionForm{Code: v("code"), CustomerID: v("customer_id"), MaxRedemptions: v("max_redemptions"),
		ExpiresAt: v("expires_at"), MinOrder: v("min_order"), FirstTimeOnly: r.PostFormValue("first_time_only") != ""}
}

func (f promotionForm) input(cur string) (groups.PromotionCodeInput, error) {
	in := groups.PromotionCodeInput{Code: &f.Code, FirstTimeOnly: &f.FirstTimeOnly}
	var err error
	if f.CustomerID != "" {
		in.CustomerID = groups.NullString{Set: true, Value: &f.CustomerID}
	}
	in.MaxRedemptions.Set = true
	if in.MaxRedemptions.Value, err = optInt("max_redemptions", f.MaxRedemptions); err != nil {
		return in, err
	}
	in.ExpiresAt.Set = true
	if in.ExpiresAt.Value, err = optTime("expires_at", f.ExpiresAt); err != nil {
		return in, err
	}
	in.MinOrder.Set = true
	if in.MinOrder.Value, err = minorUnits("min_order", f.MinOrder, cur); err != nil {
		return in, err
	}
	return in, nil
}

func currencyOf(g *groups.Group) string {
	if g.Terms != nil {
		return g.Terms.Currency
	}
	return ""
}

func (h *Handler) createPromotionCode(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	g, err := h.deps.Groups.Get(r.Context(), id)
	if err != nil {
		return err
	}
	f := readPromotionForm(r)
	in, err := f.input(currencyOf(g))
	if err == nil {
		var p *groups.PromotionCode
		// The form's token makes a double submit answer the first code.
		if p, _, err = h.deps.Groups.CreatePromotionCode(r.Context(), actor(r), id, r.PostFormValue("key"), in); err == nil {
			redirect(w, r, fmt.Sprintf("/admin/groups/%d#promotion-codes", id), fmt.Sprintf("Promotion code %s created.", p.Code))
			return nil
		}
	}
	status, msg := describe(err)
	if status >= 500 || status == http.StatusNotFound {
		return err
	}
	return h.showGroupWith(w, r, id, status, msg, func(d *groupData) { d.Promotion = f })
}

func (h *Handler) changePromotionCode(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	code, err := strconv.ParseInt(r.PathValue("code"), 10, 64)
	if err != nil {
		return notFound("There is no page at " + r.URL.Path + ".")
	}
	var p *groups.PromotionCode
	switch r.PathValue("action") {
	case "archive":
		p, err = h.deps.Groups.ArchivePromotionCode(r.Context(), actor(r), id, code)
	case "unarchive":
		p, err = h.deps.Groups.UnarchivePromotionCode(r.Context(), actor(r), id, code)
	default:
		return notFound("There is no page at " + r.URL.Path + ".")
	}
	if err != nil {
		return err
	}
	state := "archived: checkout refuses it and templates skip it"
	if p.Active {
		state = "back in use"
	}
	redirect(w, r, fmt.Sprintf("/admin/groups/%d#promotion-codes", id), fmt.Sprintf("Promotion code %s is %s.", p.Code, state))
	return nil
}

// randomKey is an idempotency key for a form drawn once per page.
func randomKey() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
