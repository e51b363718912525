package checkout

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"promopool/metrics"
	"promopool/offers"
)

// The redemptions of one group are combined: a redemption that passed the offer's
// checks joins its group's queue, and one goroutine per busy group records what is
// queued in batches of up to maxRedeemBatch with one call of checkout_redeem_batch (migration
// 0029): one statement, one transaction, one hold of the group's counter row, one
// commit. While a batch runs, the requests that arrive queue for the next one, so a
// group's redemptions go one commit per batch instead of one commit each. Each item is
// still judged on its own, in queue order, against the counters as the items before it
// left them: the caps stay exact, and a refusal of one item is that item's answer only.
// Across processes nothing changes: each process's batch takes the same row lock.
//
// No request is answered before its batch has committed (the statement's result is
// read to its end, commit included). A request whose context ends while it is queued
// is taken out of the queue and never recorded; one whose context ends while its batch
// runs is answered with the context's error at once, and its redemption may still be
// recorded: the same request again is a replay of it.

// maxRedeemBatch bounds a batch: the time the group's lock is held, and the statement's size.
const maxRedeemBatch = 128

// redeemBatchTimeout bounds one batch's statement (its requests' own contexts bound their
// wait; the batch is not tied to any of them).
const redeemBatchTimeout = 30 * time.Second

// notifyTimeout bounds the enqueue of a batch's webhooks (the group's next batch waits
// for it).
const notifyTimeout = 2 * time.Second

// item states, guarded by Service.qmu.
const (
	itemQueued = iota
	itemTaken
	itemDropped
)

// batchItem is one redemption waiting for its group's batch.
type batchItem struct {
	req  *RedeemRequest
	hash []byte
	now  time.Time
	// body is the item as checkout_redeem_batch reads it; nil until its offer is read
	// and passes the checks (by the request, or by the batch for a known code).
	body  []byte
	done  chan batchResult // buffered: the batch never waits for its reader
	state int
	// followers are identical requests for the same order in the same batch: they get
	// this item's answer (as a replay of it).
	followers []*batchItem
}

// batchResult is an item's outcome: "created", "replay" (the redemption of the key or
// the order, its hash to compare), a refusal's reason, or err.
type batchResult struct {
	outcome string
	r       *Redemption
	err     error
	// refused: the offer the batch read refuses the request before the caps (the
	// request records the refusal itself); reroute: the code is not the group's.
	refused offers.Reason
	offer   *offer
	reroute bool
}

// groupQueue is a group's redemptions waiting for a batch; running while a goroutine
// drains it.
type groupQueue struct {
	pending []*batchItem
	running bool
}

// batchJSON is an item as checkout_redeem_batch reads it.
type batchJSON struct {
	CodeID      int64           `json:"code_id"`
	Code        string          `json:"code"`
	Kind        string          `json:"kind"`
	CodeCap     *int64          `json:"code_cap"`
	Customer    string          `json:"customer"`
	Order       string          `json:"ord"`
	Key         *string         `json:"key"`
	Hash        string          `json:"hash"`
	Currency    string          `json:"currency"`
	OrderAmount int64           `json:"order_amount"`
	Discount    int64           `json:"discount"`
	Snapshot    json.RawMessage `json:"snapshot"`
	IssueID     *int64          `json:"issue_id"`
	MailingID   *int64          `json:"mailing_id"`
	UTM         string          `json:"utm"`
	HoldUntil   *time.Time      `json:"hold_until"`
	Now         time.Time       `json:"now"`
	Payload     json.RawMessage `json:"payload,omitempty"`
}

// newBatchItem prepares the redemption of an offer that passed its checks.
func (s *Service) newBatchItem(req *RedeemRequest, hash []byte, o *offer, d offers.Discount, now time.Time) (*batchItem, error) {
	it := &batchItem{req: req, hash: hash, now: now, done: make(chan batchResult, 1)}
	return it, s.prepare(it, o, d)
}

// prepare writes the item's body from its offer and discount.
func (s *Service) prepare(it *batchItem, o *offer, d offers.Discount) error {
	req := it.req
	snap, err := json.Marshal(snapshot{GroupName: o.groupName, Terms: o.terms, TermsSummary: o.terms.Summary(), PerItem: d.PerItem, Free: d.Free})
	if err != nil {
		return err
	}
	j := batchJSON{CodeID: o.codeID, Code: o.code, Kind: o.kind, Customer: req.CustomerID, Order: req.OrderID,
		Hash: hex.EncodeToString(it.hash), Currency: d.Currency, OrderAmount: d.OrderAmount, Discount: d.Amount,
		Snapshot: snap, IssueID: nullInt(o.issueID), MailingID: nullInt(o.mailingID), UTM: req.UTMSource, Now: it.now}
	if c := o.codeCap(); c.Valid {
		j.CodeCap = &c.Int64
	}
	if req.IdempotencyKey != "" {
		j.Key = &req.IdempotencyKey
	}
	if req.Hold {
		t := it.now.Add(s.cfg.HoldTTL)
		j.HoldUntil = &t
	}
	if s.cfg.Webhooks {
		if j.Payload, err = json.Marshal(webhookPayload(req, o, d)); err != nil {
			return err
		}
	}
	it.body, err = json.Marshal(j)
	return err
}

// maxKnownCodes bounds the codes whose group the process remembers (a routing hint:
// the batch reads each offer again, and a code found in another group goes back to its
// request).
const maxKnownCodes = 100_000

// knownGroup is the group the code was last found in.
func (s *Service) knownGroup(code string) (int64, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	g, ok := s.codeGroups[offers.CodeKey(code)]
	return g, ok
}

func (s *Service) learnGroup(code string, group int64) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.codeGroups) >= maxKnownCodes {
		clear(s.codeGroups)
	}
	s.codeGroups[offers.CodeKey(code)] = group
}

func (s *Service) forgetGroup(code string) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	delete(s.codeGroups, offers.CodeKey(code))
}

// bulkOfferQuery is offerQuery for many (code, customer) pairs in one statement: one row
// per pair, numbered from 1. The arrays are read through sub-selects, so the planner
// cannot count them and the prepared statement keeps its generic plan instead of
// planning ten joins for every batch.
var bulkOfferQuery = `SELECT k.n, o.* FROM unnest((SELECT $1::text[]), (SELECT $2::text[])) WITH ORDINALITY k(code, customer, n)
 CROSS JOIN LATERAL (` + strings.NewReplacer("$1", "k.code", "$2", "k.customer").Replace(offerQuery) + `) o`

// readOffers reads, in one statement, the offers of the batch's items that came without
// one, and runs the offer's checks on each: an item that passes gets its body; one the
// checks refuse, or whose code is not the group's, gets its result in results.
func (s *Service) readOffers(ctx context.Context, group int64, batch []*batchItem, results []batchResult) error {
	var need []int
	var codes, customers []string
	for i, it := range batch {
		if it.body == nil {
			need = append(need, i)
			codes = append(codes, it.req.Code)
			customers = append(customers, it.req.CustomerID)
		}
	}
	if len(need) == 0 {
		return nil
	}
	st, err := s.stmt(ctx, bulkOfferQuery)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, pq.Array(codes), pq.Array(customers))
	if err != nil {
		return fmt.Errorf("reading the offers of a batch of group %d: %w", group, err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var n int
		o, err := scanOffer(rows, &n)
		if err != nil {
			return err
		}
		if n < 1 || n > len(need) {
			return fmt.Errorf("the offers of a batch of group %d answered pair %d of %d", group, n, len(need))
		}
		got++
		i := need[n-1]
		it := batch[i]
		if !o.found() || o.groupID != group {
			s.forgetGroup(it.req.Code)
			results[i] = batchResult{reroute: true}
			continue
		}
		reason, d := o.check(ask{customer: it.req.CustomerID, firstTime: it.req.FirstTime, order: &it.req.Order}, it.now)
		if reason != "" {
			results[i] = batchResult{refused: reason, offer: o}
			continue
		}
		if err := s.prepare(it, o, d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the offers of a batch of group %d: %w", group, err)
	}
	if got != len(need) {
		return fmt.Errorf("the offers of a batch of group %d: %d of %d", group, got, len(need))
	}
	return nil
}

// submit queues the item for its group's next batch and waits for its answer or for
// ctx to end.
func (s *Service) submit(ctx context.Context, group int64, it *batchItem) (batchResult, error) {
	s.qmu.Lock()
	q := s.queues[group]
	if q == nil {
		q = &groupQueue{}
		s.queues[group] = q
	}
	q.pending = append(q.pending, it)
	if !q.running {
		q.running = true
		go s.drain(group, q)
	}
	s.qmu.Unlock()
	select {
	case res := <-it.done:
		return res, nil
	case <-ctx.Done():
	}
	s.qmu.Lock()
	if it.state == itemQueued {
		// Not in a batch yet: out of the queue, never recorded.
		it.state = itemDropped
		q.pending = slices.DeleteFunc(q.pending, func(x *batchItem) bool { return x == it })
		s.qmu.Unlock()
		return batchResult{}, fmt.Errorf("redeeming for order %q: gave up before it was recorded: %w", it.req.OrderID, ctx.Err())
	}
	s.qmu.Unlock()
	// In a running batch: it may be recorded; a replay of the request will say.
	select {
	case res := <-it.done:
		return res, nil
	default:
	}
	return batchResult{}, fmt.Errorf("redeeming for order %q: gave up while it was being recorded (the same request again answers whether it was): %w", it.req.OrderID, ctx.Err())
}

// drain records the group's queue in batches until it is empty.
func (s *Service) drain(group int64, q *groupQueue) {
	for {
		s.qmu.Lock()
		batch := takeBatch(q)
		if len(batch) == 0 {
			q.running = false
			delete(s.queues, group)
			s.qmu.Unlock()
			return
		}
		s.qmu.Unlock()
		s.runBatch(group, batch)
	}
}

// takeBatch takes up to maxRedeemBatch items off the queue, in queue order, at most one per
// order and per Idempotency-Key: an identical request for an order already in the batch
// follows it (shares its answer), another request for it waits for the next batch
// (which sees what the first did). Called with qmu held.
func takeBatch(q *groupQueue) []*batchItem {
	var batch []*batchItem
	byOrder := map[string]*batchItem{}
	byKey := map[string]*batchItem{}
	rest := q.pending[:0]
	for _, it := range q.pending {
		first, dupOrder := byOrder[it.req.OrderID]
		_, dupKey := byKey[it.req.IdempotencyKey]
		dupKey = dupKey && it.req.IdempotencyKey != ""
		switch {
		case dupOrder && string(first.hash) == string(it.hash) && first.req.IdempotencyKey == it.req.IdempotencyKey:
			it.state = itemTaken
			first.followers = append(first.followers, it)
		case dupOrder || dupKey || len(batch) == maxRedeemBatch:
			rest = append(rest, it)
		default:
			it.state = itemTaken
			batch = append(batch, it)
			byOrder[it.req.OrderID] = it
			if it.req.IdempotencyKey != "" {
				byKey[it.req.IdempotencyKey] = it
			}
		}
	}
	clear(q.pending[len(rest):])
	q.pending = rest
	return batch
}

// batchQuery calls checkout_redeem_batch (migration 0029): one row per item.
var batchQuery = `SELECT t.o_idx, t.o_outcome, ` + qualified("(t.o_r).") + `
  FROM checkout_redeem_batch($1, $2, $3, $4) t`

// runBatch reads the offers its items lack, records the batch and answers each of its
// items (and their followers). A unique violation (a live order, a key or a unique code
// taken meanwhile by another group's redemption) runs the batch again: its replay check
// then sees the other row.
func (s *Service) runBatch(group int64, batch []*batchItem) {
	results := make([]batchResult, len(batch))
	func() {
		defer func() {
			if p := recover(); p != nil {
				for i := range results {
					results[i] = batchResult{err: fmt.Errorf("recording a batch of redemptions of group %d: panic: %v", group, p)}
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), redeemBatchTimeout)
		defer cancel()
		if err := s.readOffers(ctx, group, batch, results); err != nil {
			for i := range results {
				results[i] = batchResult{err: err}
			}
			return
		}
		var ready []*batchItem
		var at []int
		for i, it := range batch {
			if it.body != nil && results[i] == (batchResult{}) {
				ready = append(ready, it)
				at = append(at, i)
			}
		}
		if len(ready) == 0 {
			return
		}
		got := make([]batchResult, len(ready))
		var err error
		for attempt := 0; ; attempt++ {
			err = s.execBatch(ctx, group, ready, got)
			if !isUniqueViolation(err) || attempt == 3 {
				break
			}
		}
		for j, i := range at {
			results[i] = got[j]
			if err != nil {
				results[i] = batchResult{err: err}
			}
		}
		if err != nil {
			return
		}
		s.batches.Add(1)
		s.batched.Add(int64(len(ready)))
		metrics.RedeemBatchSize.Observe(float64(len(ready)))
		var ids []int64
		for _, res := range got {
			switch {
			case res.outcome == "created" && res.r.Status == StatusSucceeded && s.cfg.Webhooks,
				res.outcome != "created" && res.outcome != "replay" && s.cfg.FailedWebhooks:
				ids = append(ids, res.r.ID)
			}
		}
		// One enqueue per batch, before the answers (as one per redemption was); a
		// failure or a slow queue is left to the scheduler's sweep.
		if len(ids) > 0 && s.note != nil {
			ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
			defer cancel()
			if err := s.note.WebhooksWritten(ctx, ids); err != nil {
				s.log.Warn("enqueueing redemption webhooks failed; the sweep will send them", "redemptions", ids, "err", err)
			}
		}
	}()
	for i, it := range batch {
		it.done <- results[i]
		for _, f := range it.followers {
			res := results[i]
			if res.outcome == "created" {
				res.outcome = "replay"
			}
			f.done <- res
		}
	}
}

// execBatch runs checkout_redeem_batch and fills results (by item index). The whole
// result is read before it returns: its end is the commit's.
func (s *Service) execBatch(ctx context.Context, group int64, batch []*batchItem, results []batchResult) error {
	n := 1
	for _, it := range batch {
		n += len(it.body) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, '[')
	for i, it := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.body...)
	}
	body = append(body, ']')
	st, err := s.stmt(ctx, batchQuery)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, group, body, s.cfg.Webhooks, s.cfg.FailedWebhooks)
	if err != nil {
		return fmt.Errorf("redeeming a batch of %d for group %d: %w", len(batch), group, err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var idx int
		var outcome string
		r, err := scanRedemption(idxScanner{rows, &idx, &outcome})
		if err != nil {
			return fmt.Errorf("reading a batch of redemptions of group %d: %w", group, err)
		}
		if idx < 0 || idx >= len(results) {
			return fmt.Errorf("a batch of redemptions of group %d answered item %d of %d", group, idx, len(results))
		}
		results[idx] = batchResult{outcome: outcome, r: r}
		got++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("redeeming a batch of %d for group %d: %w", len(batch), group, err)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("redeeming a batch of %d for group %d: %w", len(batch), group, err)
	}
	if got != len(batch) {
		return fmt.Errorf("a batch of %d redemptions of group %d answered %d", len(batch), group, got)
	}
	return nil
}

// idxScanner reads the item's index and outcome before a redemption's columns.
type idxScanner struct {
	row     scanner
	idx     *int
	outcome *string
}

func (o idxScanner) Scan(dest ...any) error {
	return o.row.Scan(append([]any{o.idx, o.outcome}, dest...)...)
}

// answer is what the request that made item gets from its result.
func (res batchResult) answer(req *RedeemRequest, hash []byte) (*Redemption, bool, error) {
	switch {
	case res.err != nil:
		return nil, false, res.err
	case res.outcome == "created":
		return res.r, false, nil
	case res.outcome == "replay":
		r, err := checkReplay(res.r, req, hash)
		return r, r != nil, err
	}
	return nil, false, &RefusedError{Reason: offers.Reason(res.outcome), Redemption: res.r}
}
