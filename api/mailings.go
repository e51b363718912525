package api

import (
	"errors"
	"net/http"
	"strconv"

	"promopool/internal/httperr"
	"promopool/macros"
	"promopool/mailings"
)

func (s *Server) pauseMailing(w http.ResponseWriter, r *http.Request) error {
	return s.mailingAction(w, r, func(id int64) (*mailings.Mailing, error) { return s.mailings.Pause(r.Context(), id, actor(r)) })
}

func (s *Server) resumeMailing(w http.ResponseWriter, r *http.Request) error {
	return s.mailingAction(w, r, func(id int64) (*mailings.Mailing, error) { return s.mailings.Resume(r.Context(), id) })
}

func (s *Server) cancelMailing(w http.ResponseWriter, r *http.Request) error {
	return s.mailingAction(w, r, func(id int64) (*mailings.Mailing, error) { return s.mailings.Cancel(r.Context(), id, actor(r)) })
}

func (s *Server) createMailing(w http.ResponseWriter, r *http.Request) error {
	var in mailings.Input
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	m, err := s.mailings.Create(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) listMailings(w http.ResponseWriter, r *http.Request) error {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := s.mailings.List(r.Context(), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"mailings": list})
	return nil
}

func (s *Server) getMailing(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	m, err := s.mailings.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// optionalJSON decodes a body that may be empty.
func (s *Server) optionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	err := s.decodeJSON(w, r, v)
	var re *httperr.Error
	if errors.As(err, &re) && re.Message == "the body is empty: want a JSON object" {
		return nil
	}
	return err
}

func (s *Server) startMailing(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		SendWhileCodesLast bool `json:"send_while_codes_last"`
	}
	if err := s.optionalJSON(w, r, &in); err != nil {
		return err
	}
	m, err := s.mailings.Start(r.Context(), id, in.SendWhileCodesLast)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) mailingAction(w http.ResponseWriter, r *http.Request, do func(id int64) (*mailings.Mailing, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	m, err := do(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) previewMailing(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		CustomerID string `json:"customer_id"`
	}
	if err := s.optionalJSON(w, r, &in); err != nil {
		return err
	}
	out, err := s.mailings.Preview(r.Context(), id, in.CustomerID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type templateInput struct {
	Subject    string `json:"subject"`
	HTML       string `json:"html"`
	Text       string `json:"text"`
	CustomerID string `json:"customer_id"`
}

func (s *Server) validateTemplate(w http.ResponseWriter, r *http.Request) error {
	var in templateInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	t, err := macros.Compile(r.Context(), macros.Source{Subject: in.Subject, HTML: in.HTML, Text: in.Text}, s.groups)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true, "new_code_groups": t.NewCodeGroups(),
		"repeat_groups": t.RepeatGroups(), "attributes": t.Attributes(), "warnings": httperr.TemplateProblems(t.Warnings())})
	return nil
}

func (s *Server) previewTemplate(w http.ResponseWriter, r *http.Request) error {
	var in templateInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	out, err := s.mailings.PreviewTemplate(r.Context(), macros.Source{Subject: in.Subject, HTML: in.HTML, Text: in.Text}, in.CustomerID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) render(w http.ResponseWriter, r *http.Request) error {
	var in mailings.RenderRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	out, err := s.mailings.Render(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
