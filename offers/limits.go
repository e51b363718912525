package offers

import "time"

// Limits bound how often and when a group's codes may be redeemed. Every field is
// optional; nil means no limit.
type Limits struct {
	// MaxRedemptions caps the group's redemptions (pending holds and succeeded ones;
	// a refund does not give its slot back).
	MaxRedemptions *int64 `json:"max_redemptions,omitempty"`
	// MaxPerCustomer caps one customer's redemptions from the group (a refund frees
	// the customer's slot).
	MaxPerCustomer *int64 `json:"max_per_customer,omitempty"`
	// StartsAt and EndsAt bound when codes may be redeemed, on top of each code's own
	// expiry: valid from StartsAt (inclusive) until EndsAt (exclusive).
	StartsAt *time.Time `json:"starts_at,omitempty"`
	EndsAt   *time.Time `json:"ends_at,omitempty"`
	// Budget caps the total discount given (minor units of the terms' currency): a
	// redemption that would take the total past it is refused; a refund gives its
	// discount back.
	Budget *int64 `json:"budget,omitempty"`
}

// Usage is what a group has used of its limits: the floor below which a cap or the
// budget cannot be lowered.
type Usage struct {
	// Redemptions counts pending and succeeded redemptions, refunded ones included.
	Redemptions int64
	// MaxPerCustomer is the largest count of live redemptions of one customer.
	MaxPerCustomer int64
	// Discounted is the discount given and held, minus refunds (minor units).
	Discounted int64
}

// maxCount bounds a redemption cap.
const maxCount = 1_000_000_000_000

// Check validates the limits against the terms they go with (a budget needs a currency)
// and against what is already used (a cap never goes below it). The error is an
// *InvalidError naming the field ("limits.max_redemptions" …).
func (l Limits) Check(t *Terms, used Usage) error {
	if err := checkCap("limits.max_redemptions", l.MaxRedemptions, used.Redemptions, "redemptions were already made or are held"); err != nil {
		return err
	}
	if err := checkCap("limits.max_per_customer", l.MaxPerCustomer, used.MaxPerCustomer, "is what one customer already redeemed"); err != nil {
		return err
	}
	if l.StartsAt != nil && l.EndsAt != nil && !l.EndsAt.After(*l.StartsAt) {
		return invalid("limits.ends_at", "must be after starts_at (%s)", l.StartsAt.UTC().Format(time.RFC3339))
	}
	if l.Budget != nil {
		if t == nil || t.Currency == "" {
			return invalid("limits.budget", "needs terms with a currency (the budget is in its minor units)")
		}
		if *l.Budget < 1 || *l.Budget > MaxAmount {
			return invalid("limits.budget", "must be between 1 and %d minor units, got %d", int64(MaxAmount), *l.Budget)
		}
		if *l.Budget < used.Discounted {
			return invalid("limits.budget", "cannot be below the %s already discounted", FormatMoney(used.Discounted, t.Currency))
		}
	}
	return nil
}

func checkCap(field string, v *int64, used int64, usedText string) error {
	if v == nil {
		return nil
	}
	if *v < 1 || *v > maxCount {
		return invalid(field, "must be between 1 and %d, got %d", int64(maxCount), *v)
	}
	if *v < used {
		return invalid(field, "cannot be below %d: %d %s", used, used, usedText)
	}
	return nil
}

// Window is where now stands against the limits' window.
type Window int

// The window states.
const (
	WindowOpen Window = iota
	// WindowNotYet: before StartsAt.
	WindowNotYet
	// WindowEnded: at or after EndsAt.
	WindowEnded
)

// At reports where now stands against the window.
func (l Limits) At(now time.Time) Window {
	switch {
	case l.StartsAt != nil && now.Before(*l.StartsAt):
		return WindowNotYet
	case l.EndsAt != nil && !now.Before(*l.EndsAt):
		return WindowEnded
	}
	return WindowOpen
}
