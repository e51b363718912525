package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"promopool/customers"
)

// DirectIssue is the answer to a direct issue.
type DirectIssue struct {
	CustomerID string `json:"customer_id"`
	GroupID    int64  `json:"group_id"`
	Code       string `json:"code"`
	// Replayed is true when the key had already issued this code (a retry).
	Replayed bool `json:"replayed"`
	// Repeat is true when the group gives one code per customer and the customer already
	// held this one (from a mailing, a render or another key): recorded as a repeat.
	Repeat bool `json:"repeat"`
}

// IssueDirect issues one code of a group to a customer under a caller's idempotency
// key (outside mailings: SMS, a checkout page). The same key returns the same code; a
// key first used for another customer or group is refused. The key is bound to its
// (customer, group) by the direct_issue_keys primary key before the claim, so two
// concurrent requests with one key cannot both bind it.
// Errors: ErrGroupNotFound, ErrIdempotencyConflict, ErrPoolExhausted, *InvalidError.
func (s *Store) IssueDirect(ctx context.Context, groupID int64, customerID, key string) (*DirectIssue, error) {
	if key == "" || len(key) > 200 {
		return nil, invalid("idempotency_key", "must be 1–200 bytes")
	}
	if err := customers.CheckCustomerID(customerID); err != nil {
		return nil, invalid("customer_id", "%s", err)
	}
	if _, _, err := s.checkLive(ctx, groupID); err != nil {
		return nil, err
	}
	var bound struct {
		CustomerID string `db:"customer_id"`
		GroupID    int64  `db:"group_id"`
	}
	err := s.db.GetContext(ctx, &bound, `
		WITH ins AS (
		    INSERT INTO direct_issue_keys (key, customer_id, group_id) VALUES ($1, $2, $3)
		    ON CONFLICT (key) DO NOTHING RETURNING customer_id, group_id)
		SELECT customer_id, group_id FROM ins
		UNION ALL
		SELECT customer_id, group_id FROM direct_issue_keys WHERE key = $1`, key, customerID, groupID)
	if errors.Is(err, sql.ErrNoRows) {
		// A concurrent request bound the key after this statement's snapshot was taken.
		err = s.db.GetContext(ctx, &bound, `SELECT customer_id, group_id FROM direct_issue_keys WHERE key = $1`, key)
	}
	if err != nil {
		return nil, fmt.Errorf("binding idempotency key: %w", err)
	}
	if bound.CustomerID != customerID || bound.GroupID != groupID {
		return nil, fmt.Errorf("idempotency key bound to customer %q, group %d: %w", bound.CustomerID, bound.GroupID, ErrIdempotencyConflict)
	}
	res, err := s.Claim(ctx, ClaimRequest{GroupID: groupID, Scope: "direct:" + key, CustomerIDs: []string{customerID}})
	if err != nil {
		return nil, err
	}
	code, ok := res.Codes[customerID]
	if !ok {
		return nil, fmt.Errorf("issuing a code of group %d: %w", groupID, ErrPoolExhausted)
	}
	return &DirectIssue{CustomerID: customerID, GroupID: groupID, Code: code, Replayed: len(res.Existing) > 0, Repeat: len(res.Repeated) > 0}, nil
}
