package checkout

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"promopool/offers"
)

// RedeemRequest records the redemption of a code for an order.
type RedeemRequest struct {
	// Code is the code as the buyer typed it (compared case-insensitively).
	Code string `json:"code"`
	// CustomerID is the platform's customer id (required, unless Email names a
	// customer).
	CustomerID string `json:"customer_id"`
	// Email names the customer when CustomerID is empty: the customer with this email,
	// compared case-insensitively (a redemption needs a known customer).
	Email string `json:"email,omitempty"`
	// OrderID is the shop's order id (required): the redemption's key. The same order
	// again gets the first answer; the same order with another request is a conflict.
	OrderID string `json:"order_id"`
	// FirstTime is the shop's word on whether this is the buyer's first order.
	FirstTime *bool `json:"first_time,omitempty"`
	// The order: currency, lines and optionally its whole amount.
	offers.Order
	// Hold makes a pending redemption that counts against every cap until it is
	// confirmed, cancelled or expires (Config.HoldTTL).
	Hold bool `json:"hold,omitempty"`
	// UTMSource is where the buyer came from (kept for the reports).
	UTMSource string `json:"utm_source,omitempty"`
	// IdempotencyKey is the request's Idempotency-Key header, if any.
	IdempotencyKey string `json:"-"`
}

func (req *RedeemRequest) normalize(ctx context.Context, s *Service) error {
	if err := normalizeAsk(&req.Code, &req.CustomerID, &req.Order, false); err != nil {
		return err
	}
	hadEmail := req.CustomerID == "" && strings.TrimSpace(req.Email) != ""
	if err := s.customerOf(ctx, &req.CustomerID, &req.Email); err != nil {
		return err
	}
	switch {
	case req.CustomerID == "" && hadEmail:
		return invalid("email", "no customer has this email: send customer_id, or import the customer first")
	case req.CustomerID == "":
		return invalid("customer_id", "is required to redeem (1–200 characters), or an email of a known customer")
	}
	req.OrderID = strings.TrimSpace(req.OrderID)
	if req.OrderID == "" || len(req.OrderID) > 200 {
		return invalid("order_id", "is required (1–200 characters)")
	}
	req.UTMSource = strings.TrimSpace(req.UTMSource)
	if len(req.UTMSource) > 200 {
		return invalid("utm_source", "is at most 200 characters")
	}
	req.IdempotencyKey = strings.TrimSpace(req.IdempotencyKey)
	if len(req.IdempotencyKey) > 200 {
		return invalid("Idempotency-Key", "is at most 200 characters")
	}
	return nil
}

// hash is the request's fingerprint: what was asked, with the code case-folded (the
// same code typed in another case is the same request).
func (req *RedeemRequest) hash() []byte {
	canon, _ := json.Marshal(struct {
		Code, Customer, Order string
		FirstTime             *bool
		Currency              string
		Items                 []offers.Item
		Amount                *int64
		Hold                  bool
		UTM                   string
	}{offers.CodeKey(req.Code), req.CustomerID, req.OrderID, req.FirstTime, req.Order.Currency,
		req.Order.Items, req.Order.Amount, req.Hold, req.UTMSource})
	sum := sha256.Sum256(canon)
	return sum[:]
}

// replayQuery finds the redemption an earlier request under the same Idempotency-Key
// made, else the order's live redemption (two partial unique indexes).
const replayQuery = `
SELECT ` + redemptionCols + ` FROM redemptions WHERE idempotency_key = $1
UNION ALL
SELECT ` + redemptionCols + ` FROM redemptions WHERE order_id = $2 AND status IN ('pending', 'succeeded', 'refunded')
LIMIT 1`

// Redeem records the redemption of the code for the order: it re-validates, takes a
// slot of every cap (exactly: see checkout_redeem) and stores the discount's snapshot.
// With Hold it makes a pending redemption (Confirm or Cancel it; it expires after
// Config.HoldTTL). replayed is true when an earlier identical request made it.
//
// Errors: *InvalidError (bad request, nothing recorded); *RefusedError (the code does
// not apply: the attempt is recorded as failed, with its reason); ErrOrderConflict or
// ErrKeyConflict (another request made the order's redemption or used the key); a
// database failure.
func (s *Service) Redeem(ctx context.Context, req RedeemRequest) (r *Redemption, replayed bool, err error) {
	if err := req.normalize(ctx, s); err != nil {
		return nil, false, err
	}
	defer func() { observeRedeem(err) }()
	hash := req.hash()
	// A concurrent identical request may win a unique index between our replay check
	// and our insert: then the replay check finds its row on the next turn.
	for attempt := 0; ; attempt++ {
		r, replayed, err = s.redeemOnce(ctx, &req, hash)
		if !isUniqueViolation(err) || attempt == 3 {
			return r, replayed, err
		}
	}
}

// redeemOnce records the redemption in its group's next batch (combine.go). A code
// whose group the process knows goes to the group's queue at once, and the batch reads
// the offers of all its items in one statement; otherwise the request reads its offer
// first (and the process learns the code's group). The offer's checks refuse before the
// batch's caps: such a request looks for a replay first (an order redeemed before the
// group was paused, say, answers its redemption, not a refusal), then records the
// refusal.
func (s *Service) redeemOnce(ctx context.Context, req *RedeemRequest, hash []byte) (*Redemption, bool, error) {
	now := s.now()
	if group, ok := s.knownGroup(req.Code); ok {
		res, err := s.submit(ctx, group, &batchItem{req: req, hash: hash, now: now, done: make(chan batchResult, 1)})
		switch {
		case err != nil:
			return nil, false, err
		case res.refused != "":
			return s.refuseChecked(ctx, req, hash, res.offer, res.refused, now)
		case !res.reroute:
			return res.answer(req, hash)
		}
		// The code is not in that group (any more): read its offer here.
	}
	o, err := s.loadOffer(ctx, req.Code, req.CustomerID)
	if err != nil {
		return nil, false, err
	}
	if o.found() {
		s.learnGroup(req.Code, o.groupID)
	}
	reason, d := o.check(ask{customer: req.CustomerID, firstTime: req.FirstTime, order: &req.Order}, now)
	if reason != "" {
		return s.refuseChecked(ctx, req, hash, o, reason, now)
	}
	return s.take(ctx, req, hash, o, d, now)
}

// refuseChecked answers a request the offer's checks refuse: its earlier redemption when
// it is a replay, else the refusal, recorded.
func (s *Service) refuseChecked(ctx context.Context, req *RedeemRequest, hash []byte, o *offer, reason offers.Reason, now time.Time) (*Redemption, bool, error) {
	if r, err := s.replay(ctx, req, hash); r != nil || err != nil {
		return r, r != nil, err
	}
	return s.refuse(ctx, req, hash, o, reason, now)
}

// replay returns the redemption an identical earlier request made, nil when there is
// none, or a conflict error when another request made it.
func (s *Service) replay(ctx context.Context, req *RedeemRequest, hash []byte) (*Redemption, error) {
	st, err := s.stmt(ctx, replayQuery)
	if err != nil {
		return nil, err
	}
	key := sql.NullString{String: req.IdempotencyKey, Valid: req.IdempotencyKey != ""}
	r, err := scanRedemption(st.QueryRowContext(ctx, key, req.OrderID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking for an earlier redemption of order %q: %w", req.OrderID, err)
	}
	return checkReplay(r, req, hash)
}

// checkReplay answers a request that finds an earlier redemption of its key or order.
func checkReplay(r *Redemption, req *RedeemRequest, hash []byte) (*Redemption, error) {
	if string(r.hash) == string(hash) {
		if r.Status == StatusFailed {
			// A refusal recorded under this Idempotency-Key: the same refusal again.
			return nil, &RefusedError{Reason: r.Reason, Redemption: r}
		}
		return r, nil
	}
	if req.IdempotencyKey != "" && r.key.String == req.IdempotencyKey {
		return nil, fmt.Errorf("Idempotency-Key %q (redemption %d): %w", req.IdempotencyKey, r.ID, ErrKeyConflict)
	}
	return nil, fmt.Errorf("order %q (redemption %d): %w", req.OrderID, r.ID, ErrOrderConflict)
}

// refuseQuery records a refused attempt and, when $17, its redemption.failed webhook
// (one statement: the row and its webhook commit together).
const refuseQuery = `
WITH r AS (
INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, idempotency_key, request_hash,
                         status, reason, issue_id, mailing_id, currency, order_amount, discount_amount,
                         utm_source, snapshot, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'failed', $9, $10, $11, $12, $13, 0, $14, $15, $16, $16)
RETURNING *),
w AS (
INSERT INTO redemption_webhooks (redemption_id, event, payload, next_attempt_at, created_at)
SELECT r.id, 'redemption.failed', checkout_failed_payload($18, r.id, r.reason), $16, $16 FROM r WHERE $17)
SELECT ` + redemptionCols + ` FROM r`

// refuse records a refused attempt and returns it in a *RefusedError.
func (s *Service) refuse(ctx context.Context, req *RedeemRequest, hash []byte, o *offer, reason offers.Reason, now time.Time) (*Redemption, bool, error) {
	d := zeroDiscount(req.Order)
	snap, _ := json.Marshal(snapshot{GroupName: o.groupName, Terms: o.terms, TermsSummary: o.terms.Summary(), PerItem: d.PerItem})
	var group, code sql.NullInt64
	var kind sql.NullString
	stored := ""
	if o.found() {
		group, code = sql.NullInt64{Int64: o.groupID, Valid: true}, sql.NullInt64{Int64: o.codeID, Valid: true}
		kind, stored = sql.NullString{String: o.kind, Valid: true}, o.code
	}
	key := sql.NullString{String: req.IdempotencyKey, Valid: req.IdempotencyKey != ""}
	st, err := s.stmt(ctx, refuseQuery)
	if err != nil {
		return nil, false, err
	}
	// A code not found has no group and no failed webhook (a guess at a code is not an
	// event of any offer).
	failed := s.cfg.FailedWebhooks && o.found()
	var body []byte
	if failed {
		body, _ = json.Marshal(webhookPayload(req, o, d))
	}
	r, err := scanRedemption(st.QueryRowContext(ctx, group, code, stored, kind, req.CustomerID, req.OrderID, key, hash,
		string(reason), o.issueID, o.mailingID, req.Order.Currency, d.OrderAmount, req.UTMSource, snap, now, failed, body))
	if err != nil {
		return nil, false, fmt.Errorf("recording a refused redemption of order %q: %w", req.OrderID, err)
	}
	if failed {
		s.notify(ctx, r.ID)
	}
	return nil, false, &RefusedError{Reason: reason, Redemption: r}
}

// take records the redemption in its group's next batch (combine.go), which takes the
// slots of every cap under their row locks or refuses with the cap that is full.
func (s *Service) take(ctx context.Context, req *RedeemRequest, hash []byte, o *offer, d offers.Discount, now time.Time) (*Redemption, bool, error) {
	it, err := s.newBatchItem(req, hash, o, d, now)
	if err != nil {
		return nil, false, err
	}
	res, err := s.submit(ctx, o.groupID, it)
	if err != nil {
		return nil, false, err
	}
	return res.answer(req, hash)
}

func isUniqueViolation(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505"
}
