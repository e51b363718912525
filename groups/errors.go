package groups

import (
	"errors"
	"fmt"
)

// Sentinel errors of the groups package, matched with errors.Is.
var (
	// ErrGroupNotFound: no live group has that id or name.
	ErrGroupNotFound = errors.New("group not found")
	// ErrNameTaken: another live group already has that name (case-insensitively).
	ErrNameTaken = errors.New("a group with that name already exists")
	// ErrUploadNotFound: no upload has that id.
	ErrUploadNotFound = errors.New("upload not found")
	// ErrUploadUndone: the upload was already undone.
	ErrUploadUndone = errors.New("upload already undone")
)

// InvalidError reports a bad field of a request: which field and why.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// UploadError is an upload that could not be read at all (a CSV without a code column,
// JSON that does not parse, a CSV line longer than the reader's limit): nothing of it was
// stored. Line is 1-based, 0 when the problem has no line.
type UploadError struct {
	Line   int64
	Reason string
}

func (e *UploadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return e.Reason
}

// Errors of claiming and issuing codes.
var (
	// ErrPoolExhausted: the group has no active code left for a customer. Claim itself
	// never returns it (it reports the uncovered customers); IssueDirect does.
	ErrPoolExhausted = errors.New("the group has no active codes left")
	// ErrIdempotencyConflict: an idempotency key was already used for another customer
	// or group.
	ErrIdempotencyConflict = errors.New("idempotency key already used for another customer or group")
	// ErrReservationLost: the codes a claim reserved were taken back by
	// RecoverReservations before the claim recorded them (the claim stalled for longer
	// than the recovery age). Nothing was issued; retrying the claim is safe.
	ErrReservationLost = errors.New("claim reservation recovered before it was issued; retry")
)
