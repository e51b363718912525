package checkout

import (
	"errors"
	"fmt"

	"promopool/offers"
)

// Errors of the checkout. Package httperr classifies them.
var (
	// ErrNotFound: no redemption has that id.
	ErrNotFound = errors.New("redemption not found")
	// ErrOrderConflict: the order already has a redemption made by another request
	// (another code, customer, amount or items).
	ErrOrderConflict = errors.New("this order already has a redemption made with another request")
	// ErrKeyConflict: the Idempotency-Key was used for another request.
	ErrKeyConflict = errors.New("this Idempotency-Key was used for another request")
	// ErrRefundConflict: the refund id was used for another refund of the redemption.
	ErrRefundConflict = errors.New("this refund_id was used for another refund")
	// ErrState: the redemption is not in a state that allows the action (confirming a
	// cancelled hold, refunding a hold).
	ErrState = errors.New("the redemption's state does not allow this")
	// ErrHoldExpired: the hold's time ran out before it was confirmed; the slots are free
	// again and the order may be redeemed anew.
	ErrHoldExpired = errors.New("the hold expired before it was confirmed")
)

// RefusedError is a redemption refused for a reason a buyer may be shown (the code is
// paused, exhausted, not theirs…). The attempt is recorded as a failed redemption.
type RefusedError struct {
	// Reason is the stable code; Reason.Message() the buyer-safe sentence.
	Reason offers.Reason
	// Redemption is the failed attempt as recorded.
	Redemption *Redemption
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the code cannot be redeemed: %s (%s)", e.Reason, e.Reason.Message())
}

// InvalidError is a field of a request that cannot be accepted: which and why. Nothing
// was recorded.
type InvalidError = offers.InvalidError

func invalid(field, format string, args ...any) error {
	return &offers.InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
