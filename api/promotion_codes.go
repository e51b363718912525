package api

import (
	"fmt"
	"net/http"
	"strconv"

	"promopool/auth"
	"promopool/groups"
)

// promotionCodeRoutes are a shared group's promotion codes (SPEC §10).
func (s *Server) promotionCodeRoutes() []route {
	return []route{
		{pattern: "POST /v1/groups/{id}/promotion-codes", scope: auth.ScopeWrite, body: jsonBody, h: s.createPromotionCode},
		{pattern: "GET /v1/groups/{id}/promotion-codes", scope: auth.ScopeRead, h: s.listPromotionCodes},
		{pattern: "PATCH /v1/groups/{id}/promotion-codes/{code_id}", scope: auth.ScopeWrite, body: jsonBody, h: s.updatePromotionCode},
		{pattern: "POST /v1/groups/{id}/promotion-codes/{code_id}/archive", scope: auth.ScopeWrite, h: s.archivePromotionCode},
		{pattern: "POST /v1/groups/{id}/promotion-codes/{code_id}/unarchive", scope: auth.ScopeWrite, h: s.unarchivePromotionCode},
	}
}

// createPromotionCode answers 201 with a new code, or 200 with the code an earlier
// identical request made (same Idempotency-Key, or the same code string without one).
func (s *Server) createPromotionCode(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in groups.PromotionCodeInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	p, created, err := s.groups.CreatePromotionCode(r.Context(), actor(r), id, r.Header.Get("Idempotency-Key"), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", fmt.Sprintf("/v1/groups/%d/promotion-codes/%d", id, p.ID))
	}
	writeJSON(w, status, p)
	return nil
}

func (s *Server) listPromotionCodes(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
			return badRequest("invalid_field", fmt.Sprintf("limit %q: want a whole number from 1 to 500", v))
		}
	}
	page, err := s.groups.PromotionCodes(r.Context(), id, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) updatePromotionCode(w http.ResponseWriter, r *http.Request) error {
	gid, pid, err := promotionCodePath(r)
	if err != nil {
		return err
	}
	var in groups.PromotionCodeInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	p, err := s.groups.UpdatePromotionCode(r.Context(), actor(r), gid, pid, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) archivePromotionCode(w http.ResponseWriter, r *http.Request) error {
	gid, pid, err := promotionCodePath(r)
	if err != nil {
		return err
	}
	p, err := s.groups.ArchivePromotionCode(r.Context(), actor(r), gid, pid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) unarchivePromotionCode(w http.ResponseWriter, r *http.Request) error {
	gid, pid, err := promotionCodePath(r)
	if err != nil {
		return err
	}
	p, err := s.groups.UnarchivePromotionCode(r.Context(), actor(r), gid, pid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func promotionCodePath(r *http.Request) (int64, int64, error) {
	gid, err := pathID(r, "id")
	if err != nil {
		return 0, 0, err
	}
	pid, err := pathID(r, "code_id")
	return gid, pid, err
}
