package offers

import (
	"errors"
	"fmt"
	"strings"
)

// InvalidError is a field of the terms or limits that cannot be accepted: which field
// and why. Nothing was stored.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// reasonError is a reason without its field yet (NormalizeCurrency's answer).
type reasonError string

func (e reasonError) Error() string { return string(e) }

func errReason(s string) error { return reasonError(s) }

// LockedError is an edit of terms that may no longer change because a code of the group
// was issued or redeemed (Stripe's rule: what a code is worth is fixed once a customer
// may hold it). Fields names every locked field the edit would change.
type LockedError struct {
	Fields []string
}

func (e *LockedError) Error() string {
	return "the terms are locked because codes of this group were issued or redeemed; " +
		strings.Join(e.Fields, ", ") + " cannot change (create a new group for new terms)"
}

// ErrTermsLocked matches every *LockedError with errors.Is.
var ErrTermsLocked = errors.New("terms locked")

// Is makes errors.Is(err, ErrTermsLocked) true for a *LockedError.
func (e *LockedError) Is(target error) bool { return target == ErrTermsLocked }
