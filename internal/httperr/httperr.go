// Package httperr is promopool's one error vocabulary: it classifies the domain
// packages' sentinel and typed errors into an HTTP status, a stable code, a message a
// user can act on and, for some, structured details (wtf's single codes map). The JSON
// API (package api) answers with the classification as it is; the admin pages (package
// admin) take its status and code and choose friendlier words per code. A domain error
// never classifies as 500: that status is kept for errors nobody named, whose text is
// logged, not shown.
package httperr

import (
	"errors"
	"net/http"
	"strconv"

	"promopool/alerts"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/idp"
	"promopool/macros"
	"promopool/mailings"
	"promopool/offers"
	"promopool/reports"
	"promopool/segments"
	"promopool/users"
)

// CodeInternal is the code of an error the classification does not know.
const CodeInternal = "internal"

// Problem is what the HTTP layer answers for an error.
type Problem struct {
	// Status is the HTTP status.
	Status int
	// Code is the stable, machine-readable code (README "HTTP API").
	Code string
	// Message says what went wrong in words a client can act on; for an internal error
	// it is generic (the error itself is logged, never shown).
	Message string
	// Details holds the structured fields some errors carry (a template's problems, the
	// codes a mailing lacks, the path of a bad filter node); nil for the rest.
	Details map[string]any
}

// Internal reports whether p classifies an error nobody named (status 500).
func (p Problem) Internal() bool { return p.Code == CodeInternal }

// Error is an error of the request itself, found by the HTTP layer (a bad path id, a
// missing header, an unknown page): it carries its own status, code and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// New returns an *Error with that status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// BadRequest returns a 400 *Error with that code and message.
func BadRequest(code, message string) *Error { return New(http.StatusBadRequest, code, message) }

// sentinel is a sentinel error and what it classifies as.
type sentinel struct {
	err    error
	status int
	code   string
}

// sentinels is the table of the domain packages' sentinel errors, matched with
// errors.Is in order. The typed errors are matched in classifyTyped.
var sentinels = []sentinel{
	{auth.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{auth.ErrKeyNotFound, http.StatusNotFound, "key_not_found"},
	{auth.ErrKeyNameTaken, http.StatusConflict, "key_name_taken"},
	// A *auth.ScopeError (matched first, naming the scope) wraps it.
	{auth.ErrInsufficientScope, http.StatusForbidden, "insufficient_scope"},
	{groups.ErrGroupNotFound, http.StatusNotFound, "group_not_found"},
	{groups.ErrUploadNotFound, http.StatusNotFound, "upload_not_found"},
	{groups.ErrNameTaken, http.StatusConflict, "name_taken"},
	{groups.ErrUploadUndone, http.StatusConflict, "upload_already_undone"},
	{groups.ErrPoolExhausted, http.StatusConflict, "pool_exhausted"},
	{groups.ErrIdempotencyConflict, http.StatusConflict, "idempotency_key_conflict"},
	{groups.ErrReservationLost, http.StatusServiceUnavailable, "retry"},
	// Offers (SPEC §10): a draft or paused group issues nothing; archived stays archived.
	{groups.ErrGroupPaused, http.StatusConflict, "group_paused"},
	{groups.ErrGroupDraft, http.StatusConflict, "group_draft"},
	{groups.ErrGroupArchived, http.StatusConflict, "group_archived"},
	// Shared promotion codes (SPEC §10).
	{groups.ErrNotShared, http.StatusConflict, "group_not_shared"},
	{groups.ErrShared, http.StatusConflict, "group_shared"},
	{groups.ErrPromotionCodeNotFound, http.StatusNotFound, "promotion_code_not_found"},
	{groups.ErrCodeTaken, http.StatusConflict, "code_taken"},
	{groups.ErrCodeNotFound, http.StatusNotFound, "code_not_found"},
	{customers.ErrNotFound, http.StatusNotFound, "customer_not_found"},
	{mailings.ErrNotFound, http.StatusNotFound, "mailing_not_found"},
	{mailings.ErrState, http.StatusConflict, "invalid_state"},
	{mailings.ErrEmptyAudience, http.StatusConflict, "empty_audience"},
	{mailings.ErrUnknownCustomer, http.StatusNotFound, "customer_not_found"},
	{segments.ErrBadCursor, http.StatusBadRequest, "invalid_cursor"},
	// A *macros.ValidationError (matched first, with its problems) wraps these; alone
	// they still name a template problem.
	{macros.ErrSyntax, http.StatusBadRequest, "invalid_template"},
	{macros.ErrUnknownName, http.StatusBadRequest, "invalid_template"},
	{macros.ErrUnknownGroup, http.StatusBadRequest, "invalid_template"},
	{macros.ErrUnknownColumn, http.StatusBadRequest, "invalid_template"},
	{macros.ErrTemplateTooLarge, http.StatusBadRequest, "invalid_template"},
	{macros.ErrLooksLikeMacro, http.StatusBadRequest, "invalid_template"},
	{macros.ErrURLNotEncoded, http.StatusBadRequest, "invalid_template"},
	{macros.ErrUnsafeURL, http.StatusBadRequest, "invalid_template"},
	{macros.ErrUnsafeContext, http.StatusBadRequest, "invalid_template"},
	{macros.ErrGroupNotActive, http.StatusBadRequest, "invalid_template"},
	// Render-time failures of one customer's message: the template is valid, this
	// customer's data makes the message impossible to send as written.
	{macros.ErrMissingColumn, http.StatusUnprocessableEntity, "missing_code_column"},
	{macros.ErrMessageTooLarge, http.StatusUnprocessableEntity, "message_too_large"},
	{alerts.ErrAlertNotFound, http.StatusNotFound, "alert_not_found"},
	// Checkout (SPEC §11). A refused redemption is a *checkout.RefusedError (typed).
	{checkout.ErrNotFound, http.StatusNotFound, "redemption_not_found"},
	{checkout.ErrOrderConflict, http.StatusConflict, "order_conflict"},
	{checkout.ErrKeyConflict, http.StatusConflict, "idempotency_key_conflict"},
	{checkout.ErrRefundConflict, http.StatusConflict, "refund_conflict"},
	{checkout.ErrHoldExpired, http.StatusConflict, "hold_expired"},
	{checkout.ErrState, http.StatusConflict, "invalid_state"},
	// Offers (SPEC §10): an *offers.LockedError names the fields; it matches this.
	{offers.ErrTermsLocked, http.StatusConflict, "terms_locked"},
	// Users and sign-in. A platform JWT refused on the API wraps the users error in
	// idp.ErrPersonRefused, matched first: the API answers 401 for any person it
	// cannot accept, the sign-in page the users error's own status.
	{idp.ErrFlow, http.StatusBadRequest, "signin_failed"},
	{idp.ErrBadToken, http.StatusUnauthorized, "unauthorized"},
	{idp.ErrPersonRefused, http.StatusUnauthorized, "unauthorized"},
	{idp.ErrUnavailable, http.StatusServiceUnavailable, "idp_unavailable"},
	{users.ErrNotFound, http.StatusNotFound, "user_not_found"},
	{users.ErrEmailTaken, http.StatusConflict, "email_taken"},
	{users.ErrBadPassword, http.StatusUnauthorized, "unauthorized"},
	{users.ErrDisabled, http.StatusForbidden, "user_disabled"},
	{users.ErrUnknownUser, http.StatusForbidden, "unknown_user"},
	{users.ErrEmailUnverified, http.StatusForbidden, "email_unverified"},
	{users.ErrLinkedElsewhere, http.StatusForbidden, "linked_elsewhere"},
}

// Classify returns what the HTTP layer answers for err: the domain's errors with their
// status, code, message and details; anything else as 500 "internal" with a generic
// message (check Problem.Internal and log err).
func Classify(err error) Problem {
	if p, ok := classifyTyped(err); ok {
		return p
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return Problem{Status: s.status, Code: s.code, Message: err.Error()}
		}
	}
	return Problem{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}

// classifyTyped matches the typed errors, which carry their own words and details.
func classifyTyped(err error) (Problem, bool) {
	var (
		ve  *macros.ValidationError
		fe  *segments.InvalidError
		ic  *mailings.InsufficientCodesError
		mbe *http.MaxBytesError
		re  *Error
		inv *groups.InvalidError
		gue *groups.UploadError
		cue *customers.UploadError
		se  *auth.ScopeError
		ue  *users.InvalidError
		ce  *checkout.RefusedError
		oe  *offers.InvalidError
		ole *offers.LockedError
		rie *reports.InvalidError
	)
	switch {
	case errors.As(err, &se):
		return Problem{http.StatusForbidden, "insufficient_scope", se.Error(), map[string]any{"scope": string(se.Need)}}, true
	case errors.As(err, &ve):
		return Problem{http.StatusBadRequest, "invalid_template", ve.Error(),
			map[string]any{"problems": TemplateProblems(ve.Problems), "warnings": TemplateProblems(ve.Warnings)}}, true
	case errors.As(err, &fe):
		return Problem{http.StatusBadRequest, "invalid_filter", fe.Error(), map[string]any{"path": fe.Path, "reason": fe.Reason}}, true
	case errors.As(err, &ic):
		return Problem{http.StatusConflict, "insufficient_codes", ic.Error(), map[string]any{"audience": ic.Audience, "missing": ic.Missing}}, true
	case errors.As(err, &mbe):
		return Problem{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "the body is larger than the limit of " + humanBytes(mbe.Limit)}, true
	case errors.As(err, &re):
		return Problem{Status: re.Status, Code: re.Code, Message: re.Message}, true
	case errors.As(err, &ole):
		return Problem{http.StatusConflict, "terms_locked", ole.Error(), map[string]any{"fields": ole.Fields}}, true
	case errors.As(err, &inv):
		return Problem{http.StatusBadRequest, "invalid_field", inv.Error(), map[string]any{"field": inv.Field}}, true
	case errors.As(err, &ce):
		return Problem{http.StatusUnprocessableEntity, "redemption_refused", ce.Reason.Message(),
			map[string]any{"reason": string(ce.Reason), "redemption_id": ce.Redemption.ID}}, true
	case errors.As(err, &oe):
		return Problem{http.StatusBadRequest, "invalid_field", oe.Error(), map[string]any{"field": oe.Field}}, true
	case errors.As(err, &ue):
		return Problem{Status: http.StatusBadRequest, Code: "invalid_field", Message: ue.Error()}, true
	case errors.As(err, &rie):
		return Problem{Status: http.StatusBadRequest, Code: "invalid_field", Message: rie.Error()}, true
	case errors.As(err, &gue):
		return Problem{Status: http.StatusBadRequest, Code: "invalid_upload", Message: gue.Error() + "; nothing was stored"}, true
	case errors.As(err, &cue):
		return Problem{Status: http.StatusBadRequest, Code: "invalid_upload", Message: cue.Error() + "; nothing was stored"}, true
	}
	return Problem{}, false
}

// humanBytes writes a byte count in whole GiB or MiB when it is one.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// TemplateProblems is how the API answers a template's problems or warnings: each with
// its stable code (macros.Problem.Code: "syntax", "url_not_encoded", …), part, 1-based
// line and column, the macro, what is wrong and the fix; never nil.
func TemplateProblems(ps []macros.Problem) []map[string]any {
	out := make([]map[string]any, len(ps))
	for i, p := range ps {
		out[i] = map[string]any{"code": p.Code(), "part": p.Part, "line": p.Line, "column": p.Column, "macro": p.Macro, "message": p.Message, "fix": p.Fix}
	}
	return out
}
