package api

import (
	"bytes"

	"io"
	"net/http"

	"promopool/auth"
	"promopool/checkout"
	"promopool/groups"
)

// codeRoutes are one code's look-up and void (SPEC §10), any kind of code, the string
// compared case-insensitively.
func (s *Server) codeRoutes() []route {
	return []route{
		{pattern: "GET /v1/codes/{code}", scope: auth.ScopeRead, h: s.getCode},
		{pattern: "POST /v1/codes/{code}/void", scope: auth.ScopeWrite, body: smallBody, h: s.voidCode},
	}
}

// codeAnswer is a code with its redemptions, newest first (at most 100).
type codeAnswer struct {
	*groups.CodeInfo
	Redemptions []*checkout.Redemption `json:"redemptions"`
}

func (s *Server) answerCode(w http.ResponseWriter, r *http.Request, info *groups.CodeInfo) error {
	out := codeAnswer{CodeInfo: info, Redemptions: []*checkout.Redemption{}}
	if s.checkout != nil {
		list, err := s.checkout.List(r.Context(), checkout.Filter{CodeID: info.CodeID, Limit: 100})
		if err != nil {
			return err
		}
		out.Redemptions = list
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getCode(w http.ResponseWriter, r *http.Request) error {
	info, err := s.groups.LookupCode(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	return s.answerCode(w, r, info)
}

// voidCode takes the code out of use. The body is optional: {"reason": "…"}. Voiding a
// voided code answers the same (the first void's time, actor and reason).
func (s *Server) voidCode(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Reason string `json:"reason"`
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if err := s.decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	info, voided, err := s.groups.VoidCode(r.Context(), actor(r), r.PathValue("code"), in.Reason)
	if err != nil {
		return err
	}
	if voided {
		s.log.Info("code voided", "code_id", info.CodeID, "group_id", info.Group.ID)
	}
	return s.answerCode(w, r, info)
}
