// Package checkout is the second half of a promo code's life (SPEC §11): a shop asks
// whether a code applies to an order and what it takes off (Validate), then records the
// redemption after payment (Redeem), optionally as a hold that counts against every cap
// while the buyer is in the payment provider's window (Confirm, Cancel, ExpireHolds),
// and may refund it whole or by items (Refund). Every answer and every webhook payload
// carries the discount's allocation per line item, computed by package offers.
//
// Caps are exact. A redemption takes its slots in one statement (the PL/pgSQL function
// checkout_redeem of migration 0017): the group's, the code's and the customer's counter
// rows are each a conditional upsert that locks the row and increments only below the
// cap, in a fixed order, and CHECK constraints on the counters make an increment past a
// cap impossible rather than unlikely. A unique index refuses a second live redemption
// of an order or of a unique code. The group's counter row is the group's lock
// (migration 0026): a redemption reads its caps and checks for a replay once it holds it,
// and refunds, confirms, cancels, the hold sweep and edits of the caps take it before
// anything else of the group's, so none of them deadlocks with a redemption.
//
// Retries are safe: a redemption is keyed by its order id (and its Idempotency-Key when
// one is sent); the same request again gets the first answer, another request under the
// same key is a conflict. A refund is keyed by its refund id.
//
// Validation does the same work whether or not the code exists (the same statement,
// probing every index with an id nothing has), so its timing does not tell an attacker
// which strings are codes; the HTTP layer also rate-limits misses per key and customer.
package checkout
