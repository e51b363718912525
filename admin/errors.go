package admin

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"

	"promopool/groups"
	"promopool/macros"
	"promopool/mailings"
	"promopool/segments"
)

// notFound is a page whose object does not exist.
type notFound string

func (e notFound) Error() string { return string(e) }

// describe maps an error to a status and a message a marketer can act on; anything
// unknown is a 500 with a generic message (the error itself is logged, not shown).
func describe(err error) (int, string) {
	var (
		inv *groups.InvalidError
		ue  *groups.UploadError
		ic  *mailings.InsufficientCodesError
		ve  *macros.ValidationError
		mbe *http.MaxBytesError
		nf  notFound
		se  *segments.InvalidError
	)
	switch {
	case errors.As(err, &nf):
		return http.StatusNotFound, string(nf)
	case errors.As(err, &inv):
		return http.StatusBadRequest, fmt.Sprintf("%s: %s", inv.Field, inv.Reason)
	case errors.As(err, &se):
		return http.StatusBadRequest, "The filter is not valid: " + se.Path + ": " + se.Reason
	case errors.Is(err, segments.ErrBadCursor):
		return http.StatusBadRequest, "That page link is not valid any more; count again."
	case errors.As(err, &ue):
		return http.StatusBadRequest, "Nothing was stored: " + ue.Error()
	case errors.As(err, &ic):
		return http.StatusConflict, "Not started: " + ic.Error()
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Error()
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("The file is larger than the %d bytes allowed; nothing was stored.", mbe.Limit)
	case errors.Is(err, groups.ErrGroupNotFound):
		return http.StatusNotFound, "That group does not exist (it may have been deleted or archived)."
	case errors.Is(err, groups.ErrNameTaken):
		return http.StatusConflict, "Another group already has that name."
	case errors.Is(err, groups.ErrUploadNotFound):
		return http.StatusNotFound, "That upload does not exist."
	case errors.Is(err, groups.ErrUploadUndone):
		return http.StatusConflict, "That upload was already undone."
	case errors.Is(err, mailings.ErrNotFound):
		return http.StatusNotFound, "That mailing does not exist."
	case errors.Is(err, mailings.ErrState):
		return http.StatusConflict, "The mailing's status does not allow that any more; the page shows where it stands now."
	case errors.Is(err, mailings.ErrEmptyAudience):
		return http.StatusBadRequest, "The audience is empty: no customer would receive this mailing."
	case errors.Is(err, mailings.ErrUnknownCustomer):
		return http.StatusBadRequest, "No customer has that id."
	case errors.Is(err, sql.ErrNoRows):
		return http.StatusNotFound, "Not found."
	}
	return http.StatusInternalServerError, "Something went wrong on our side; it has been logged. Try again in a moment."
}
