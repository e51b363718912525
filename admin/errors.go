package admin

import (
	"errors"
	"fmt"
	"net/http"

	"promopool/customers"
	"promopool/groups"
	"promopool/internal/httperr"
)

// notFound is a page whose object does not exist.
func notFound(msg string) error { return httperr.New(http.StatusNotFound, "not_found", msg) }

// internalMessage is what a marketer reads for an error nobody named.
const internalMessage = "Something went wrong on our side; it has been logged. Try again in a moment."

// wording holds the admin pages' own words per stable code, where they differ from the
// API's message; the status always comes from the shared classification.
var wording = map[string]func(err error, p httperr.Problem) string{
	"invalid_filter":     func(_ error, p httperr.Problem) string { return "The filter is not valid: " + filterPlace(p) },
	"invalid_cursor":     fixed("That page link is not valid any more; count again."),
	"invalid_upload":     func(err error, p httperr.Problem) string { return "Nothing was stored: " + uploadReason(err, p) },
	"insufficient_codes": func(_ error, p httperr.Problem) string { return "Not started: " + p.Message },
	"body_too_large": func(err error, p httperr.Problem) string {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			return p.Message
		}
		return fmt.Sprintf("The file is larger than the %d bytes allowed; nothing was stored.", mbe.Limit)
	},
	"group_not_found":          fixed("That group does not exist (it may have been deleted or archived)."),
	"name_taken":               fixed("Another group already has that name."),
	"upload_not_found":         fixed("That upload does not exist."),
	"upload_already_undone":    fixed("That upload was already undone."),
	"pool_exhausted":           fixed("The group has no active codes left: upload more codes first."),
	"idempotency_key_conflict": fixed("That request was already made for another customer or group."),
	"retry":                    fixed("The codes set aside for this were taken back before they were issued; nothing was issued. Try again."),
	"mailing_not_found":        fixed("That mailing does not exist."),
	"invalid_state":            fixed("The mailing's status does not allow that any more; the page shows where it stands now."),
	"empty_audience":           fixed("The audience is empty: no customer would receive this mailing."),
	"customer_not_found":       fixed("No customer has that id."),
	"unauthorized":             fixed("That key is unknown or revoked."),
	"key_not_found":            fixed("No live API key has that name."),
	"key_name_taken":           fixed("A live API key already has that name."),
	"insufficient_scope":       fixed("Your sign-in may not do that."),
}

func fixed(msg string) func(error, httperr.Problem) string {
	return func(error, httperr.Problem) string { return msg }
}

// filterPlace is "path: reason" of a bad filter node.
func filterPlace(p httperr.Problem) string {
	return fmt.Sprint(p.Details["path"]) + ": " + fmt.Sprint(p.Details["reason"])
}

// uploadReason is the reason an upload was refused, without the API's "nothing was
// stored" (the admin wording says it first).
func uploadReason(err error, p httperr.Problem) string {
	var gue *groups.UploadError
	var cue *customers.UploadError
	switch {
	case errors.As(err, &gue):
		return gue.Error()
	case errors.As(err, &cue):
		return cue.Error()
	}
	return p.Message
}

// describe maps an error to the shared classification's status and a message a
// marketer can act on; anything unknown is a 500 with a generic message (the error
// itself is logged by the caller, not shown).
func describe(err error) (int, string) {
	p := httperr.Classify(err)
	if p.Internal() {
		return p.Status, internalMessage
	}
	if word, ok := wording[p.Code]; ok {
		return p.Status, word(err, p)
	}
	return p.Status, p.Message
}
