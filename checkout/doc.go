// Package checkout is the second half of a promo code's life (SPEC §11): a shop asks
// whether a code applies to an order and what it takes off (Validate), then records the
// redemption after payment (Redeem), optionally as a hold that counts against every cap
// while the buyer is in the payment provider's window (Confirm, Cancel, ExpireHolds),
// and may refund it whole or by items (Refund). Every answer and every webhook payload
// carries the discount's allocation per line item, computed by package offers.
//
// Caps are exact. The redemptions of a group queue in the process and are recorded in
// batches (combine.go): one statement reads the offers of the batch's items, the offer's
// checks run on each, then one call of checkout_redeem_batch
// (migration 0029) per batch of up to 128, one statement and one transaction, which
// holds the group's counter row (the group's lock, migration 0026), reads the caps and
// the replays under it, and judges each item in turn against the counters as the items
// before it left them: the group's total cap, the budget, the code's and the customer's
// caps. CHECK constraints on the counters make an increment past a cap impossible
// rather than unlikely, and unique indexes refuse a second live redemption of an order
// or of a unique code. Refunds, confirms, cancels, the hold sweep and edits of the caps
// take the group's counter row before anything else of the group's, so none of them
// deadlocks with a redemption; across processes each batch takes the same row lock.
//
// Retries are safe: a redemption is keyed by its order id (and its Idempotency-Key when
// one is sent); the same request again gets the first answer, another request under the
// same key is a conflict. A refund is keyed by its refund id.
//
// Validation does the same work whether or not the code exists (the same statement,
// probing every index with an id nothing has), so its timing does not tell an attacker
// which strings are codes; the HTTP layer also rate-limits misses per key and customer.
package checkout
