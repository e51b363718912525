package offers

// Reason is why a code does not apply to an order: a stable code for the shop's program
// and a message safe to show the buyer (it never says whether another customer holds
// the code, nor anything about the pool).
type Reason string

// The reasons a checkout refuses a code.
const (
	ReasonNotFound           Reason = "not_found"
	ReasonPaused             Reason = "paused"
	ReasonDraft              Reason = "draft"
	ReasonExpired            Reason = "expired"
	ReasonNotYetActive       Reason = "not_yet_active"
	ReasonVoided             Reason = "voided"
	ReasonExhausted          Reason = "exhausted"
	ReasonCustomerLimit      Reason = "customer_limit"
	ReasonBudgetExhausted    Reason = "budget_exhausted"
	ReasonNotYourCode        Reason = "not_your_code"
	ReasonFirstTimeOnly      Reason = "first_time_only"
	ReasonCustomerRestricted Reason = "customer_restricted"
	ReasonMinOrder           Reason = "min_order"
	ReasonNoEligibleItems    Reason = "no_eligible_items"
	ReasonCurrencyMismatch   Reason = "currency_mismatch"
	ReasonAlreadyRedeemed    Reason = "already_redeemed"
)

// Reasons lists every reason, in the order the documentation gives them.
var Reasons = []Reason{
	ReasonNotFound, ReasonPaused, ReasonDraft, ReasonExpired, ReasonNotYetActive,
	ReasonVoided, ReasonExhausted, ReasonCustomerLimit, ReasonBudgetExhausted,
	ReasonNotYourCode, ReasonFirstTimeOnly, ReasonCustomerRestricted, ReasonMinOrder,
	ReasonNoEligibleItems, ReasonCurrencyMismatch, ReasonAlreadyRedeemed,
}

var reasonMessages = map[Reason]string{
	ReasonNotFound:           "This code is not valid.",
	ReasonPaused:             "This code is paused.",
	ReasonDraft:              "This code is not active yet.",
	ReasonExpired:            "This code has expired.",
	ReasonNotYetActive:       "This code is not active yet.",
	ReasonVoided:             "This code is no longer valid.",
	ReasonExhausted:          "This code has reached its usage limit.",
	ReasonCustomerLimit:      "You have already used this code.",
	ReasonBudgetExhausted:    "This offer has ended.",
	ReasonNotYourCode:        "This code is not valid for your account.",
	ReasonFirstTimeOnly:      "This code is for first orders only.",
	ReasonCustomerRestricted: "This code is not valid for your account.",
	ReasonMinOrder:           "Your order does not reach the minimum amount for this code.",
	ReasonNoEligibleItems:    "This code does not apply to the items in your cart.",
	ReasonCurrencyMismatch:   "This code cannot be used in this currency.",
	ReasonAlreadyRedeemed:    "This code has already been used.",
}

// Message is the buyer-safe sentence for the reason.
func (r Reason) Message() string {
	if m, ok := reasonMessages[r]; ok {
		return m
	}
	return "This code cannot be used."
}
