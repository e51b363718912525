package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"promopool/macros"
	"promopool/mailings"
)

func (h *Handler) mailingRoutes() {
	h.handle("GET /admin/mailings", h.mailingList)
	h.handle("GET /admin/mailings/new", h.newMailing)
	h.handleForm("POST /admin/mailings", mailingLimit, h.createMailing)
	h.handle("GET /admin/mailings/{id}", h.mailingPage)
	h.handle("GET /admin/mailings/{id}/progress", h.mailingProgress)
	h.handle("POST /admin/mailings/{id}/{action}", h.mailingAction)
}

func (h *Handler) mailingList(w http.ResponseWriter, r *http.Request) error {
	list, err := h.deps.Mailings.List(r.Context(), 200)
	if err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "mailings", page{Title: "Mailings", Nav: "mailings", Data: list})
	return nil
}

// mailingForm is the create form as typed.
type mailingForm struct {
	Name, Sender, Subject, HTML, Text, CustomerIDs string
	All                                            bool
}

type mailingFormData struct {
	Form     mailingForm
	Problems []partView
	Preview  *mailings.Rendered
}

// partView is one template part listed line by line, with each problem under its line.
type partView struct {
	Part  macros.Part
	Lines []lineView
}

type lineView struct {
	N        int
	Text     string
	Problems []macros.Problem
}

// problemViews lists the parts that have problems, each line numbered, so a marketer
// sees every problem at the line it is on.
func problemViews(f mailingForm, ve *macros.ValidationError) []partView {
	src := map[macros.Part]string{macros.PartSubject: f.Subject, macros.PartHTML: f.HTML, macros.PartText: f.Text}
	var out []partView
	for _, part := range []macros.Part{macros.PartSubject, macros.PartHTML, macros.PartText} {
		var probs []macros.Problem
		for _, p := range ve.Problems {
			if p.Part == part {
				probs = append(probs, p)
			}
		}
		if len(probs) == 0 {
			continue
		}
		pv := partView{Part: part}
		for i, line := range strings.Split(src[part], "\n") {
			lv := lineView{N: i + 1, Text: strings.TrimSuffix(line, "\r")}
			for _, p := range probs {
				if p.Line == i+1 {
					lv.Problems = append(lv.Problems, p)
				}
			}
			pv.Lines = append(pv.Lines, lv)
		}
		out = append(out, pv)
	}
	return out
}

func (h *Handler) newMailing(w http.ResponseWriter, r *http.Request) error {
	f := mailingForm{Subject: "Your code", Text: "Hello {{client.first_name}},\n\nyour code: {{client.promocode('GROUP')}}\n"}
	h.render(w, r, http.StatusOK, "mailing_new", page{Title: "New mailing", Nav: "mailings", Data: mailingFormData{Form: f}})
	return nil
}

func readMailingForm(r *http.Request) mailingForm {
	return mailingForm{Name: r.PostFormValue("name"), Sender: strings.TrimSpace(r.PostFormValue("sender")),
		Subject: r.PostFormValue("subject"), HTML: strings.ReplaceAll(r.PostFormValue("html"), "\r\n", "\n"),
		Text: strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n"), CustomerIDs: r.PostFormValue("customer_ids"),
		All: r.PostFormValue("all") != ""}
}

// createMailing stores a draft, or with action=preview draws the form again with a
// preview for the sample customer: placeholders only, no code is taken.
func (h *Handler) createMailing(w http.ResponseWriter, r *http.Request) error {
	f := readMailingForm(r)
	d := mailingFormData{Form: f}
	var err error
	if r.PostFormValue("action") == "preview" {
		d.Preview, err = h.deps.Mailings.PreviewTemplate(r.Context(), macros.Source{Subject: f.Subject, HTML: f.HTML, Text: f.Text}, "")
	} else {
		in := mailings.Input{Name: f.Name, Sender: f.Sender, Subject: f.Subject, HTML: f.HTML, Text: f.Text,
			Audience: mailings.Audience{All: f.All}}
		if !f.All {
			in.Audience.CustomerIDs = strings.FieldsFunc(f.CustomerIDs, func(r rune) bool {
				return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' || r == ';'
			})
		}
		var m *mailings.Mailing
		if m, err = h.deps.Mailings.Create(r.Context(), actor(r), in); err == nil {
			redirect(w, r, fmt.Sprintf("/admin/mailings/%d", m.ID), "Draft saved. Check the preview, then start it.")
			return nil
		}
	}
	status, msg := http.StatusOK, ""
	if err != nil {
		status, msg = describe(err)
		if status >= 500 {
			return err
		}
		var ve *macros.ValidationError
		if errors.As(err, &ve) {
			d.Problems = problemViews(f, ve)
			msg = fmt.Sprintf("The template has %d problem(s), shown below at their lines.", len(ve.Problems))
		}
	}
	h.render(w, r, status, "mailing_new", page{Title: "New mailing", Nav: "mailings", Error: msg, Data: d})
	return nil
}

type mailingData struct {
	Mailing *mailings.Mailing
	Preview *mailings.Rendered
	Live    bool
}

func (h *Handler) mailingPage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	m, err := h.deps.Mailings.Get(r.Context(), id)
	if err != nil {
		return err
	}
	d := mailingData{Mailing: m, Live: m.Status == mailings.StatusRunning || m.Status == mailings.StatusPaused}
	if m.Status == mailings.StatusDraft {
		// Placeholders for the sample customer: nothing is claimed or recorded.
		if d.Preview, err = h.deps.Mailings.Preview(r.Context(), id, ""); err != nil {
			h.deps.Log.Warn("admin mailing preview", "mailing_id", id, "err", err)
		}
	}
	h.render(w, r, http.StatusOK, "mailing", page{Title: m.Name, Nav: "mailings", Data: d})
	return nil
}

// mailingProgress is what the page's script polls for live counts.
func (h *Handler) mailingProgress(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	m, err := h.deps.Mailings.Get(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(map[string]any{"status": m.Status, "pause_reason": m.PauseReason, "progress": m.Progress})
}

func (h *Handler) mailingAction(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var done string
	switch r.PathValue("action") {
	case "start":
		_, err = h.deps.Mailings.Start(ctx, id, r.PostFormValue("while_codes_last") != "")
		done = "Started."
	case "pause":
		_, err = h.deps.Mailings.Pause(ctx, id, actor(r))
		done = "Paused."
	case "resume":
		_, err = h.deps.Mailings.Resume(ctx, id)
		done = "Resumed."
	case "cancel":
		_, err = h.deps.Mailings.Cancel(ctx, id, actor(r))
		done = "Cancelled: recipients not reached yet will get nothing; their codes go back to the pool."
	default:
		return notFound("There is no page at " + r.URL.Path + ".")
	}
	if err != nil {
		status, msg := describe(err)
		if status >= 500 || status == http.StatusNotFound {
			return err
		}
		done = msg
	}
	redirect(w, r, fmt.Sprintf("/admin/mailings/%d", id), done)
	return nil
}
