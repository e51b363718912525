// Package httperrtest lists every domain error with what the HTTP front ends must answer
// for it, for the tests of internal/httperr, api and admin. A test of internal/httperr
// reads the domain packages' source and fails when one declares an error this list
// does not name, so a new sentinel cannot reach a handler unclassified.
package httperrtest

import (
	"fmt"
	"net/http"

	"promopool/alerts"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/idp"
	"promopool/internal/httperr"
	"promopool/macros"
	"promopool/mailings"
	"promopool/offers"
	"promopool/reports"
	"promopool/segments"
	"promopool/users"
)

// Case is one error and what both front ends answer for it.
type Case struct {
	// Name is the error as declared, "package.Name": groups.ErrGroupNotFound,
	// groups.InvalidError (a typed error).
	Name string
	// Err is the error wrapped as a domain method returns it.
	Err    error
	Status int
	Code   string
}

// wrap wraps err the way the domain packages do, so the classification is checked
// through errors.Is/As rather than on the bare value.
func wrap(err error) error { return fmt.Errorf("doing something for the test: %w", err) }

// Cases returns every domain error of the packages the front ends import (and the
// HTTP layer's own errors), each with its status and stable code. None is a 500.
func Cases() []Case {
	return []Case{
		{"auth.ErrUnauthorized", wrap(auth.ErrUnauthorized), http.StatusUnauthorized, "unauthorized"},
		{"auth.ErrKeyNotFound", wrap(auth.ErrKeyNotFound), http.StatusNotFound, "key_not_found"},
		{"auth.ErrKeyNameTaken", wrap(auth.ErrKeyNameTaken), http.StatusConflict, "key_name_taken"},
		{"auth.ErrInsufficientScope", wrap(auth.ErrInsufficientScope), http.StatusForbidden, "insufficient_scope"},
		{"auth.ScopeError", wrap(&auth.ScopeError{Need: auth.ScopeExport, Key: "mailer"}), http.StatusForbidden, "insufficient_scope"},

		{"groups.ErrGroupNotFound", wrap(groups.ErrGroupNotFound), http.StatusNotFound, "group_not_found"},
		{"groups.ErrUploadNotFound", wrap(groups.ErrUploadNotFound), http.StatusNotFound, "upload_not_found"},
		{"groups.ErrNameTaken", wrap(groups.ErrNameTaken), http.StatusConflict, "name_taken"},
		{"groups.ErrUploadUndone", wrap(groups.ErrUploadUndone), http.StatusConflict, "upload_already_undone"},
		{"groups.ErrPoolExhausted", wrap(groups.ErrPoolExhausted), http.StatusConflict, "pool_exhausted"},
		{"groups.ErrIdempotencyConflict", wrap(groups.ErrIdempotencyConflict), http.StatusConflict, "idempotency_key_conflict"},
		{"groups.ErrReservationLost", wrap(groups.ErrReservationLost), http.StatusServiceUnavailable, "retry"},
		{"groups.InvalidError", wrap(&groups.InvalidError{Field: "name", Reason: "must not be empty"}), http.StatusBadRequest, "invalid_field"},
		{"groups.UploadError", wrap(&groups.UploadError{Line: 1, Reason: "no code column"}), http.StatusBadRequest, "invalid_upload"},
		{"groups.ErrGroupPaused", wrap(groups.ErrGroupPaused), http.StatusConflict, "group_paused"},
		{"groups.ErrGroupDraft", wrap(groups.ErrGroupDraft), http.StatusConflict, "group_draft"},
		{"groups.ErrGroupArchived", wrap(groups.ErrGroupArchived), http.StatusConflict, "group_archived"},
		{"groups.ErrNotShared", wrap(groups.ErrNotShared), http.StatusConflict, "group_not_shared"},
		{"groups.ErrShared", wrap(groups.ErrShared), http.StatusConflict, "group_shared"},
		{"groups.ErrPromotionCodeNotFound", wrap(groups.ErrPromotionCodeNotFound), http.StatusNotFound, "promotion_code_not_found"},
		{"groups.ErrCodeTaken", wrap(groups.ErrCodeTaken), http.StatusConflict, "code_taken"},
		{"groups.ErrCodeNotFound", wrap(groups.ErrCodeNotFound), http.StatusNotFound, "code_not_found"},

		{"alerts.ErrAlertNotFound", wrap(alerts.ErrAlertNotFound), http.StatusNotFound, "alert_not_found"},

		{"users.ErrNotFound", wrap(users.ErrNotFound), http.StatusNotFound, "user_not_found"},
		{"users.ErrEmailTaken", wrap(users.ErrEmailTaken), http.StatusConflict, "email_taken"},
		{"users.ErrBadPassword", wrap(users.ErrBadPassword), http.StatusUnauthorized, "unauthorized"},
		{"users.ErrDisabled", wrap(users.ErrDisabled), http.StatusForbidden, "user_disabled"},
		{"users.ErrUnknownUser", wrap(users.ErrUnknownUser), http.StatusForbidden, "unknown_user"},
		{"users.ErrEmailUnverified", wrap(users.ErrEmailUnverified), http.StatusForbidden, "email_unverified"},
		{"users.ErrLinkedElsewhere", wrap(users.ErrLinkedElsewhere), http.StatusForbidden, "linked_elsewhere"},
		{"users.InvalidError", wrap(&users.InvalidError{Field: "email", Reason: "want one plain address"}), http.StatusBadRequest, "invalid_field"},
		{"reports.InvalidError", wrap(&reports.InvalidError{Field: "from", Reason: "not a date"}), http.StatusBadRequest, "invalid_field"},
		{"idp.ErrFlow", wrap(idp.ErrFlow), http.StatusBadRequest, "signin_failed"},
		{"idp.ErrBadToken", wrap(idp.ErrBadToken), http.StatusUnauthorized, "unauthorized"},
		{"idp.ErrPersonRefused", wrap(idp.ErrPersonRefused), http.StatusUnauthorized, "unauthorized"},
		{"idp.ErrUnavailable", wrap(idp.ErrUnavailable), http.StatusServiceUnavailable, "idp_unavailable"},

		{"customers.ErrNotFound", wrap(customers.ErrNotFound), http.StatusNotFound, "customer_not_found"},
		{"customers.UploadError", wrap(&customers.UploadError{Line: 1, Reason: "no id column"}), http.StatusBadRequest, "invalid_upload"},

		{"mailings.ErrNotFound", wrap(mailings.ErrNotFound), http.StatusNotFound, "mailing_not_found"},
		{"mailings.ErrState", wrap(mailings.ErrState), http.StatusConflict, "invalid_state"},
		// The render API (POST /v1/render) meets it as a batch does: a paused group.
		{"mailings.GroupWaitError", wrap(&mailings.GroupWaitError{Group: "Spring", GroupID: 1, Err: groups.ErrGroupPaused}), http.StatusConflict, "group_paused"},
		{"mailings.ErrEmptyAudience", wrap(mailings.ErrEmptyAudience), http.StatusConflict, "empty_audience"},
		{"mailings.ErrUnknownCustomer", wrap(mailings.ErrUnknownCustomer), http.StatusNotFound, "customer_not_found"},
		{"mailings.InsufficientCodesError", wrap(&mailings.InsufficientCodesError{Audience: 10, Missing: map[string]int64{"Spring": 4}}),
			http.StatusConflict, "insufficient_codes"},

		{"segments.ErrBadCursor", wrap(segments.ErrBadCursor), http.StatusBadRequest, "invalid_cursor"},
		{"segments.InvalidError", wrap(&segments.InvalidError{Path: "$.and[0].op", Reason: `unknown operator "~"`}), http.StatusBadRequest, "invalid_filter"},

		{"macros.ValidationError", wrap(&macros.ValidationError{Problems: []macros.Problem{{Part: macros.PartHTML, Line: 1, Column: 7,
			Macro: "{{client.phone}}", Message: "unknown field client.phone", Fix: "use client.email", Err: macros.ErrUnknownName}}}),
			http.StatusBadRequest, "invalid_template"},
		{"macros.ErrSyntax", wrap(macros.ErrSyntax), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrUnknownName", wrap(macros.ErrUnknownName), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrUnknownGroup", wrap(macros.ErrUnknownGroup), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrUnknownColumn", wrap(macros.ErrUnknownColumn), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrTemplateTooLarge", wrap(macros.ErrTemplateTooLarge), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrLooksLikeMacro", wrap(macros.ErrLooksLikeMacro), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrURLNotEncoded", wrap(macros.ErrURLNotEncoded), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrUnsafeURL", wrap(macros.ErrUnsafeURL), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrUnsafeContext", wrap(macros.ErrUnsafeContext), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrGroupNotActive", wrap(macros.ErrGroupNotActive), http.StatusBadRequest, "invalid_template"},
		{"macros.ErrMissingColumn", wrap(macros.ErrMissingColumn), http.StatusUnprocessableEntity, "missing_code_column"},
		{"macros.ErrMessageTooLarge", wrap(macros.ErrMessageTooLarge), http.StatusUnprocessableEntity, "message_too_large"},
		{"checkout.ErrNotFound", wrap(checkout.ErrNotFound), http.StatusNotFound, "redemption_not_found"},
		{"checkout.ErrOrderConflict", wrap(checkout.ErrOrderConflict), http.StatusConflict, "order_conflict"},
		{"checkout.ErrKeyConflict", wrap(checkout.ErrKeyConflict), http.StatusConflict, "idempotency_key_conflict"},
		{"checkout.ErrRefundConflict", wrap(checkout.ErrRefundConflict), http.StatusConflict, "refund_conflict"},
		{"checkout.ErrState", wrap(checkout.ErrState), http.StatusConflict, "invalid_state"},
		{"checkout.ErrHoldExpired", wrap(checkout.ErrHoldExpired), http.StatusConflict, "hold_expired"},
		{"checkout.RefusedError", wrap(&checkout.RefusedError{Reason: offers.ReasonExhausted, Redemption: &checkout.Redemption{ID: 1}}), http.StatusUnprocessableEntity, "redemption_refused"},
		{"offers.InvalidError", wrap(&offers.InvalidError{Field: "currency", Reason: "is not a currency"}), http.StatusBadRequest, "invalid_field"},
		{"offers.LockedError", wrap(&offers.LockedError{Fields: []string{"type"}}), http.StatusConflict, "terms_locked"},
		{"offers.ErrTermsLocked", wrap(offers.ErrTermsLocked), http.StatusConflict, "terms_locked"},

		// The HTTP layer's own errors.
		{"http.MaxBytesError", wrap(&http.MaxBytesError{Limit: 1 << 20}), http.StatusRequestEntityTooLarge, "body_too_large"},
		{"httperr.Error", wrap(httperr.New(http.StatusNotFound, "not_found", "There is no page at /admin/x.")), http.StatusNotFound, "not_found"},
	}
}

// Unreachable is a domain error that never reaches an HTTP handler.
type Unreachable struct {
	Name   string // as in Case
	Err    error
	Reason string // why no handler sees it
}

// NotHTTP returns the domain errors that never reach an HTTP handler. Should one
// arrive, it is an error nobody named: 500 "internal", logged.
func NotHTTP() []Unreachable {
	return []Unreachable{
		{"macros.ErrNilChecker", macros.ErrNilChecker, "a programming error: Compile was given a nil GroupChecker"},
		{"macros.ErrMissingCode", macros.ErrMissingCode, "a broken invariant of composing messages: a claimed code is missing from the values"},
		{"mailings.ErrTransient", mailings.ErrTransient, "ProcessBatch returns it to the worker, which retries the batch"},
	}
}
