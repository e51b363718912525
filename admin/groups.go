package admin

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"promopool/alerts"
	"promopool/groups"
	"promopool/reports"
)

func (h *Handler) groupRoutes() {
	h.handle("GET /admin/groups", h.groupList)
	h.handle("POST /admin/groups", h.createGroup)
	h.handle("GET /admin/groups/{id}", h.groupPage)
	h.handle("POST /admin/groups/{id}", h.updateGroup)
	h.handle("POST /admin/groups/{id}/delete", h.deleteGroup)
	h.handle("POST /admin/groups/{id}/pause", h.setGroupStatus(groups.StatusPaused))
	h.handle("POST /admin/groups/{id}/activate", h.setGroupStatus(groups.StatusActive))
	h.handle("POST /admin/groups/{id}/promotion-codes", h.createPromotionCode)
	h.handle("POST /admin/groups/{id}/promotion-codes/{code}/{action}", h.changePromotionCode)
	h.handleForm("POST /admin/groups/{id}/paste", pasteLimit, h.pasteCodes)
	h.handleStream("POST /admin/groups/{id}/upload", h.uploadFile)
	h.handle("POST /admin/uploads/{id}/undo", h.undoUpload)
	h.handleStream("GET /admin/groups/{id}/issues.csv", h.exportIssues)
	h.handleStream("GET /admin/groups/{id}/unused.csv", h.exportUnused)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, notFound("There is no page at " + r.URL.Path + ".")
	}
	return id, nil
}

func actor(r *http.Request) string { return sessionFrom(r.Context()).Who.Label() }

type groupsData struct {
	Groups []groups.Group
	Tabs   []statusTab
	// Status is the tab shown ("" every live group).
	Status string
	Form   groupForm
}

// groupForm is the create/edit form as typed, kept to show it again with an error.
type groupForm struct {
	Name, Description, Threshold, Percent, Emails, Webhook string
	// Create: the form creates a group (kind and status are asked).
	Create bool
	offerForm
}

func formOf(g *groups.Group) groupForm {
	f := groupForm{Name: g.Name, Description: g.Description, Emails: strings.Join(g.AlertEmails, "\n"), Webhook: g.AlertWebhook,
		offerForm: offerFormOf(g)}
	if g.LowBalanceThreshold != nil {
		f.Threshold = strconv.FormatInt(*g.LowBalanceThreshold, 10)
	}
	if g.LowBalancePercent != nil {
		f.Percent = strconv.FormatFloat(*g.LowBalancePercent, 'f', -1, 64)
	}
	return f
}

func readGroupForm(r *http.Request) groupForm {
	return groupForm{Name: r.PostFormValue("name"), Description: r.PostFormValue("description"),
		Threshold: strings.TrimSpace(r.PostFormValue("threshold")), Percent: strings.TrimSuffix(strings.TrimSpace(r.PostFormValue("percent")), "%"),
		Emails:  r.PostFormValue("alert_emails"),
		Webhook: strings.TrimSpace(r.PostFormValue("alert_webhook")), offerForm: readOfferForm(r)}
}

// input turns the form into the store's Input: every field is set (an edit form sends
// them all), an empty threshold clears it; the offer fields as offerForm.apply says.
func (f groupForm) input(create bool) (groups.Input, error) {
	in := groups.Input{Name: &f.Name, Description: &f.Description, AlertWebhook: &f.Webhook, AlertEmails: []string{}}
	in.LowBalanceThreshold.Set = true
	if f.Threshold != "" {
		v, err := strconv.ParseInt(f.Threshold, 10, 64)
		if err != nil {
			return in, &groups.InvalidError{Field: "low-balance threshold", Reason: fmt.Sprintf("%q is not a whole number", f.Threshold)}
		}
		in.LowBalanceThreshold.Value = &v
	}
	in.LowBalancePercent.Set = true
	if f.Percent != "" {
		v, err := strconv.ParseFloat(f.Percent, 64)
		if err != nil {
			return in, &groups.InvalidError{Field: "low-balance percentage", Reason: fmt.Sprintf("%q is not a number", f.Percent)}
		}
		in.LowBalancePercent.Value = &v
	}
	for _, e := range strings.FieldsFunc(f.Emails, func(r rune) bool { return r == ',' || r == '\n' || r == ';' || r == '\r' }) {
		if e = strings.TrimSpace(e); e != "" {
			in.AlertEmails = append(in.AlertEmails, e)
		}
	}
	return in, f.offerForm.apply(&in, create)
}

func (h *Handler) groupList(w http.ResponseWriter, r *http.Request) error {
	f := groupForm{Create: true}
	f.Kind, f.Status, f.Duration = groups.KindUnique, groups.StatusActive, "once"
	return h.showGroupList(w, r, http.StatusOK, f, "")
}

func (h *Handler) showGroupList(w http.ResponseWriter, r *http.Request, status int, f groupForm, msg string) error {
	filter := r.URL.Query().Get("status")
	if groups.CheckStatusFilter(filter) != nil || filter == groups.StatusAll {
		filter = ""
	}
	list, counts, err := h.deps.Groups.ListByStatus(r.Context(), filter)
	if err != nil {
		return err
	}
	f.Create = true
	h.render(w, r, status, "groups", page{Title: "Promo codes", Nav: "groups", Error: msg,
		Data: groupsData{Groups: list, Tabs: statusTabs(counts, filter), Status: filter, Form: f}})
	return nil
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) error {
	f := readGroupForm(r)
	in, err := f.input(true)
	if err == nil {
		var g *groups.Group
		if g, err = h.deps.Groups.Create(r.Context(), actor(r), in); err == nil {
			redirect(w, r, fmt.Sprintf("/admin/groups/%d", g.ID), fmt.Sprintf("Group %q created. Upload its codes below.", g.Name))
			return nil
		}
	}
	status, msg := describe(err)
	if status >= 500 {
		return err
	}
	return h.showGroupList(w, r, status, f, msg)
}

type groupData struct {
	Group    *groups.Group
	Form     groupForm
	Uploads  []groups.Upload
	Activity []groups.Activity
	Alerts   []alerts.Alert
	// AlertsOn is false when no AlertLister is configured (the section is left out).
	AlertsOn bool
	Report   *groups.UploadReport
	Pasted   string
	MaxBytes int64
	// PromotionCodes are a shared group's codes (first page); Promotion the new-code
	// form as typed, PromotionKey its idempotency key (a double submit makes one code).
	PromotionCodes []groups.PromotionCode
	PromotionMore  bool
	Promotion      promotionForm
	PromotionKey   string
	// Redemptions and ReportsOn: those tabs exist. Metrics is the dashboard's report
	// over the default period (nil without Reports).
	Redemptions, ReportsOn bool
	Metrics                *reports.Metrics
	// Charts are the dashboard's charts of Metrics.
	Charts []chartView
}

func (h *Handler) groupPage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	return h.showGroup(w, r, id, http.StatusOK, nil, "", nil, "")
}

// showGroup draws the group page; form (if not nil) replaces the stored values in the
// edit form, rep is an upload report to show, msg an error.
func (h *Handler) showGroup(w http.ResponseWriter, r *http.Request, id int64, status int, form *groupForm, msg string, rep *groups.UploadReport, pasted string) error {
	return h.showGroupWith(w, r, id, status, msg, func(d *groupData) {
		if form != nil {
			f := *form
			stored := d.Form
			f.Kind, f.Status, f.Locked = stored.Kind, stored.Status, stored.Locked
			if !f.TermsSent {
				f.Type, f.PercentOff, f.AmountOff, f.Currency, f.MaxDiscount = stored.Type, stored.PercentOff, stored.AmountOff, stored.Currency, stored.MaxDiscount
				f.MinOrder, f.Products, f.Exclude, f.Duration, f.Months = stored.MinOrder, stored.Products, stored.Exclude, stored.Duration, stored.Months
			}
			d.Form = f
		}
		d.Report, d.Pasted = rep, pasted
	})
}

// showGroupWith draws the group page after edit changes what it shows (a form as typed).
func (h *Handler) showGroupWith(w http.ResponseWriter, r *http.Request, id int64, status int, msg string, edit func(d *groupData)) error {
	ctx := r.Context()
	g, err := h.deps.Groups.Get(ctx, id)
	if err != nil {
		return err
	}
	d := groupData{Group: g, Form: formOf(g), MaxBytes: h.cfg.MaxUploadBytes, PromotionKey: randomKey()}
	if d.Uploads, err = h.deps.Groups.Uploads(ctx, id); err != nil {
		return err
	}
	if d.Activity, err = h.deps.Groups.ActivityPage(ctx, id, 0, 50); err != nil {
		return err
	}
	if d.AlertsOn = h.deps.Alerts != nil; d.AlertsOn {
		if d.Alerts, err = h.deps.Alerts.List(ctx, id, 0, 20); err != nil {
			return err
		}
	}
	if g.Kind == groups.KindShared {
		p, err := h.deps.Groups.PromotionCodes(ctx, id, "", 500)
		if err != nil {
			return err
		}
		d.PromotionCodes, d.PromotionMore = p.PromotionCodes, p.NextCursor != ""
	}
	d.Redemptions, d.ReportsOn = h.deps.Redemptions != nil, h.deps.Reports != nil
	if d.ReportsOn {
		p, err := h.deps.Reports.ParsePeriod("", "")
		if err != nil {
			return err
		}
		if d.Metrics, err = h.deps.Reports.GroupMetrics(ctx, id, p); err != nil {
			return err
		}
		d.Charts = dashboardCharts(d.Metrics, h.now())
	}
	if edit != nil {
		edit(&d)
	}
	h.render(w, r, status, "group", page{Title: g.Name, Nav: "groups", Error: msg, Data: d})
	return nil
}

func (h *Handler) updateGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	g, err := h.deps.Groups.Get(r.Context(), id)
	if err != nil {
		return err
	}
	f := readGroupForm(r)
	f.Locked = g.Locked()
	if !f.TermsSent {
		// A locked form sends no terms: the budget is read in the stored currency.
		f.Currency = currencyOf(g)
	}
	in, err := f.input(false)
	if err == nil {
		if _, err = h.deps.Groups.Update(r.Context(), actor(r), id, in); err == nil {
			redirect(w, r, fmt.Sprintf("/admin/groups/%d", id), "Saved.")
			return nil
		}
	}
	status, msg := describe(err)
	if status >= 500 || status == http.StatusNotFound {
		return err
	}
	return h.showGroup(w, r, id, status, &f, msg, nil, "")
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	g, err := h.deps.Groups.Get(r.Context(), id)
	if err != nil {
		return err
	}
	res, err := h.deps.Groups.Delete(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Group %q deleted with its %d unissued codes.", g.Name, res.RemovedCodes)
	if res.Archived {
		msg = fmt.Sprintf("Group %q archived: its issued codes and their history stay on customers' profiles; its %d unissued codes were deleted.",
			g.Name, res.RemovedCodes)
	}
	redirect(w, r, "/admin/groups", msg)
	return nil
}

// pasteCodes loads the codes typed or pasted into the form, one per line.
func (h *Handler) pasteCodes(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	codes := r.PostFormValue("codes")
	req := groups.UploadRequest{GroupID: id, Format: groups.FormatPlain, Source: groups.SourceWeb, Actor: actor(r), Filename: "(pasted)"}
	rep, err := h.deps.Groups.Load(r.Context(), req, strings.NewReader(codes))
	if err != nil {
		status, msg := describe(err)
		if status >= 500 || status == http.StatusNotFound {
			return err
		}
		return h.showGroup(w, r, id, status, nil, msg, nil, codes)
	}
	h.deps.Log.Info("codes uploaded", "group_id", id, "upload_id", rep.ID, "accepted", rep.Accepted, "source", "web")
	h.resumeAfterUpload(r, id, rep)
	return h.showGroup(w, r, id, http.StatusOK, nil, "", rep, "")
}

// uploadFile streams a file sent as the raw request body (the page's script sends it
// with XMLHttpRequest to show upload progress) into the group, and answers with the
// report drawn as an HTML fragment. The body is never held in memory.
func (h *Handler) uploadFile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	format := groups.FormatPlain
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	name := r.URL.Query().Get("filename")
	switch {
	case mt == "text/csv" || strings.HasSuffix(strings.ToLower(name), ".csv"):
		format = groups.FormatCSV
	case mt == "application/json" || strings.HasSuffix(strings.ToLower(name), ".json"):
		format = groups.FormatJSON
	}
	req := groups.UploadRequest{GroupID: id, Format: format, Source: groups.SourceWeb, Actor: actor(r), Filename: name}
	if e := r.URL.Query().Get("expires_at"); e != "" {
		t, err := groups.ParseTime(e)
		if err != nil {
			return h.fragment(w, r, http.StatusBadRequest, "upload_error", "expires_at: "+err.Error())
		}
		req.ExpiresAt = &t
	}
	if r.ContentLength > h.cfg.MaxUploadBytes {
		_, msg := describe(&http.MaxBytesError{Limit: h.cfg.MaxUploadBytes})
		return h.fragment(w, r, http.StatusRequestEntityTooLarge, "upload_error", msg)
	}
	rep, err := h.deps.Groups.Load(r.Context(), req, http.MaxBytesReader(w, r.Body, h.cfg.MaxUploadBytes))
	if err != nil {
		status, msg := describe(err)
		if status >= 500 {
			h.deps.Log.Error("admin upload failed", "group_id", id, "err", err)
		}
		return h.fragment(w, r, status, "upload_error", msg)
	}
	h.deps.Log.Info("codes uploaded", "group_id", id, "upload_id", rep.ID, "accepted", rep.Accepted, "source", "web")
	h.resumeAfterUpload(r, id, rep)
	return h.fragment(w, r, http.StatusCreated, "report", rep)
}

// fragment draws one named template of the group page alone.
func (h *Handler) fragment(w http.ResponseWriter, r *http.Request, status int, name string, data any) error {
	var b strings.Builder
	if err := h.pages["group"].ExecuteTemplate(&b, name, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := fmt.Fprint(w, b.String())
	return err
}

func (h *Handler) undoUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := h.deps.Groups.Undo(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Upload %d undone: %d unissued codes removed", u.ID, deref(u.Removed))
	if kept := u.Accepted - deref(u.Removed); kept > 0 {
		msg += fmt.Sprintf("; %d already issued codes stay with their customers", kept)
	}
	redirect(w, r, fmt.Sprintf("/admin/groups/%d", u.GroupID), msg+".")
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func (h *Handler) exportIssues(w http.ResponseWriter, r *http.Request) error {
	return h.export(w, r, "issues", h.deps.Groups.ExportIssues)
}

func (h *Handler) exportUnused(w http.ResponseWriter, r *http.Request) error {
	return h.export(w, r, "unused", h.deps.Groups.ExportUnused)
}

// export streams a CSV; headers go out with the first row, so an error found before
// any (an unknown group) still gets an error page.
func (h *Handler) export(w http.ResponseWriter, r *http.Request, kind string, run func(context.Context, int64, io.Writer) error) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	cw := &csvWriter{w: w, name: fmt.Sprintf("group-%d-%s.csv", id, kind)}
	if err := run(r.Context(), id, cw); err != nil {
		if cw.wrote {
			h.deps.Log.Error("admin export broken off", "group_id", id, "kind", kind, "err", err)
			return nil
		}
		return err
	}
	if !cw.wrote {
		cw.Write(nil)
	}
	return nil
}

type csvWriter struct {
	w     http.ResponseWriter
	name  string
	wrote bool
}

func (c *csvWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.wrote = true
		c.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		c.w.Header().Set("Cache-Control", "no-store")
		c.w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": c.name}))
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(b)
}

// resumeAfterUpload resumes the mailings paused because the group ran out of codes, if
// the upload lets its groups cover them (mailings.Service.ResumeExhausted).
func (h *Handler) resumeAfterUpload(r *http.Request, id int64, rep *groups.UploadReport) {
	if rep.Accepted == 0 || h.deps.Mailings == nil {
		return
	}
	if _, err := h.deps.Mailings.ResumeExhausted(context.WithoutCancel(r.Context()), id, fmt.Sprintf("upload %d added %d codes", rep.ID, rep.Accepted)); err != nil {
		h.deps.Log.Warn("resuming mailings after an upload failed; the reconciler will", "group_id", id, "err", err)
	}
}
