package checkout

import (
	"errors"
	"time"

	"promopool/metrics"
)

// observeValidate records a validation's latency by outcome (valid, refused, error) and
// a refusal's reason.
func observeValidate(start time.Time, ans **Answer, err *error) {
	outcome := "error"
	switch {
	case *err != nil || *ans == nil:
	case (*ans).Valid:
		outcome = "valid"
	default:
		outcome = "refused"
		metrics.CheckoutRefusals.WithLabelValues("validate", string((*ans).Reason)).Inc()
	}
	metrics.ValidateDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

// observeRedeem counts a redemption refused, by reason (a replay of a refusal counts
// again: the shop was told no again).
func observeRedeem(err error) {
	var re *RefusedError
	if errors.As(err, &re) {
		metrics.CheckoutRefusals.WithLabelValues("redeem", string(re.Reason)).Inc()
	}
}
