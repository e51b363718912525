package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"promopool/groups"
	"promopool/internal/httperr"
)

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("invalid_id", fmt.Sprintf("%s %q is not a positive whole number", name, r.PathValue(name)))
	}
	return id, nil
}

// decodeJSON reads a JSON body into v, rejecting unknown fields; the route's body cap
// (register) bounds what is read.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &ute):
			return badRequest("invalid_json", fmt.Sprintf("field %q: want %s, got JSON %s", ute.Field, ute.Type, ute.Value))
		case errors.Is(err, io.EOF):
			return badRequest("invalid_json", "the body is empty: want a JSON object")
		}
		return badRequest("invalid_json", "the body is not valid JSON for this request: "+err.Error())
	}
	if dec.More() {
		return badRequest("invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	var in groups.Input
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	g, err := s.groups.Create(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/v1/groups/%d", g.ID))
	writeJSON(w, http.StatusCreated, g)
	return nil
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	list, counts, err := s.groups.ListByStatus(r.Context(), r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	if list == nil {
		list = []groups.Group{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": list, "counts": counts})
	return nil
}

func (s *Server) pauseGroup(w http.ResponseWriter, r *http.Request) error {
	return s.setGroupStatus(w, r, s.groups.Pause)
}

func (s *Server) activateGroup(w http.ResponseWriter, r *http.Request) error {
	return s.setGroupStatus(w, r, s.groups.Activate)
}

func (s *Server) setGroupStatus(w http.ResponseWriter, r *http.Request, set func(ctx context.Context, actor string, id int64) (*groups.Group, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	g, err := set(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	s.resumeGroupWait(r, g)
	writeJSON(w, http.StatusOK, g)
	return nil
}

// resumeGroupWait resumes, once g is active, the mailings that paused because it was
// paused (mailings.Service.ResumeGroupWait; exactly once whichever web processes see
// the activation). A failure is only logged: the reconciler's sweep resumes them.
func (s *Server) resumeGroupWait(r *http.Request, g *groups.Group) {
	if s.mailings == nil || g.StoredStatus != groups.StatusActive {
		return
	}
	why := fmt.Sprintf("group %q was activated by %s", g.Name, actor(r))
	if _, err := s.mailings.ResumeGroupWait(context.WithoutCancel(r.Context()), g.ID, why); err != nil {
		s.log.Warn("resuming mailings after a group's activation failed; the reconciler will", "group_id", g.ID, "err", err)
	}
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	g, err := s.groups.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in groups.Input
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	g, err := s.groups.Update(r.Context(), actor(r), id, in)
	if err != nil {
		return err
	}
	if in.Status != nil {
		s.resumeGroupWait(r, g)
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	res, err := s.groups.Delete(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// uploadFormat picks the upload format from the Content-Type.
func uploadFormat(r *http.Request) (groups.Format, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return "", httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"set Content-Type to text/plain (one code per line), text/csv (a code column) or application/json")
	}
	switch mt {
	case "text/plain":
		return groups.FormatPlain, nil
	case "text/csv":
		return groups.FormatCSV, nil
	case "application/json":
		return groups.FormatJSON, nil
	}
	return "", httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
		fmt.Sprintf("Content-Type %q is not accepted: use text/plain, text/csv or application/json", mt))
}

func (s *Server) uploadCodes(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	format, err := uploadFormat(r)
	if err != nil {
		return err
	}
	if r.ContentLength > s.cfg.MaxUploadBytes {
		return &http.MaxBytesError{Limit: s.cfg.MaxUploadBytes}
	}
	req := groups.UploadRequest{GroupID: id, Format: format, Source: groups.SourceAPI, Actor: actor(r),
		Filename: r.URL.Query().Get("filename")}
	if src := r.URL.Query().Get("source"); src == groups.SourceWeb {
		req.Source = src
	}
	if e := r.URL.Query().Get("expires_at"); e != "" {
		t, err := groups.ParseTime(e)
		if err != nil {
			return badRequest("invalid_field", "expires_at: "+err.Error())
		}
		req.ExpiresAt = &t
	}
	rep, err := s.groups.Load(r.Context(), req, r.Body)
	if err != nil {
		return err
	}
	s.log.Info("codes uploaded", "group_id", id, "upload_id", rep.ID, "accepted", rep.Accepted,
		"duplicates", rep.Duplicates, "invalid", rep.Invalid)
	if rep.Accepted > 0 && s.mailings != nil {
		// Mailings paused because this group ran out resume now that it may cover them.
		if _, err := s.mailings.ResumeExhausted(context.WithoutCancel(r.Context()), id, fmt.Sprintf("upload %d added %d codes", rep.ID, rep.Accepted)); err != nil {
			s.log.Warn("resuming mailings after an upload failed; the reconciler will", "group_id", id, "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, rep)
	return nil
}

func (s *Server) listUploads(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	list, err := s.groups.Uploads(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploads": list})
	return nil
}

func (s *Server) undoUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	u, err := s.groups.Undo(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) activity(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	before, limit := page(r)
	list, err := s.groups.ActivityPage(r.Context(), id, before, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"activity": list})
	return nil
}

// page reads the ?before=ID&limit=N of a newest-first listing; absent or malformed
// values are 0, which the stores read as "from the newest" and "the default size".
func page(r *http.Request) (before int64, limit int) {
	q := r.URL.Query()
	before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	limit, _ = strconv.Atoi(q.Get("limit"))
	return before, limit
}
