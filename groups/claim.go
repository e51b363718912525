package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/customers"
	"promopool/metrics"
)

// MaxClaimBatch is the most customers one Claim or Repeat call takes.
const MaxClaimBatch = 10_000

// ClaimRequest asks for one code per customer from a group, under an idempotency scope.
type ClaimRequest struct {
	GroupID int64
	// Scope keys idempotency: "mailing:<id>" for a mailing, "direct:<key>" for a direct
	// issue, or a platform mailer's own key. A customer that already holds a code from
	// the group under the same scope gets that code again.
	Scope string
	// MailingID is recorded on the issue rows when the claim is for a mailing.
	MailingID *int64
	// CustomerIDs are the platform's customer ids; a customer listed twice gets one code.
	CustomerIDs []string
	// FirstClaim says the caller knows that none of these customers can already hold a
	// code from the group under Scope (a mailing batch's first delivery: a customer is
	// in one batch of a mailing): the claim then skips reading their existing issues,
	// a fifth of its time. If it is wrong, still nothing is issued twice: the unique
	// index refuses the second issue and the claim falls back to handing out the codes
	// the customers hold.
	FirstClaim bool
}

// ClaimResult is what a Claim did. Exhaustion is a partial result, not an error: every
// customer is either in Codes or in Uncovered, and only the customers in Codes have an
// issue recorded.
type ClaimResult struct {
	// Codes maps each covered customer to its code.
	Codes map[string]string
	// Existing lists the customers of Codes that already held their code under this
	// scope (a retry); the others were issued a code by this call.
	Existing []string
	// Uncovered lists, in request order, the customers the group could not cover
	// because it ran out of active codes. Nothing is recorded for them.
	Uncovered []string
	// Repeated lists the customers of Codes who already held a live code of a
	// one_per_customer group from another scope: they got that code again, recorded as a
	// repeat issue under this scope.
	Repeated []string
}

// Issued is how many codes this call took from the pool.
func (r *ClaimResult) Issued() int { return len(r.Codes) - len(r.Existing) - len(r.Repeated) }

// Claim gives each customer one code from the group and records the initial issues:
// soonest-expiring codes first, then upload order; an expired code is never issued.
// In the common case it runs four statements, each one round trip (prepared once per
// connection), whatever the batch size:
//
//  0. check that the group is live;
//  1. read the customers' existing issues under (scope, group): they get the same code
//     (skipped when the request says it is the first claim of its customers);
//  2. reserve (one statement, its own transaction, committed with synchronous_commit
//     off — see reserveFast for why that is safe): advance the cursor of the first
//     claimable range under a row lock, reading the ids and codes from the codes'
//     primary key, and record a reservation row. When codes returned to the pool are
//     waiting or the range runs out, a short transaction takes returned codes first
//     (DELETE … SKIP LOCKED) and further ranges, one statement more per range;
//  3. issue (one statement, committed synchronously): delete the reservation (gone
//     means a recoverer took it: ErrReservationLost) and insert all issue rows in one
//     plain INSERT … SELECT from arrays. Only when a concurrent claim with the same
//     scope got there first does it rerun as a transaction with ON CONFLICT.
//
// Two unique indexes make a double issue impossible rather than unlikely: a code has
// at most one live initial issue, and so has (scope, customer, group). A concurrent
// identical claim that loses the race on (scope, customer, group) gets the winner's
// code, and the code it had reserved goes back to the pool.
//
// Errors: ErrGroupNotFound (no live group), *InvalidError, ErrReservationLost.
func (s *Store) Claim(ctx context.Context, req ClaimRequest) (*ClaimResult, error) {
	return s.claim(ctx, req, 0)
}

func (s *Store) claim(ctx context.Context, req ClaimRequest, depth int) (*ClaimResult, error) {
	customers, err := checkBatch(req.Scope, req.CustomerIDs)
	if err != nil {
		return nil, err
	}
	onePer, shared, err := s.checkLive(ctx, req.GroupID)
	if err != nil {
		return nil, err
	}
	res := &ClaimResult{Codes: make(map[string]string, len(customers))}
	if !req.FirstClaim {
		if err := s.existingCodes(ctx, nil, req.GroupID, req.Scope, customers, res); err != nil {
			return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
		}
	}
	res.Existing = make([]string, 0, len(res.Codes))
	rest := make([]string, 0, len(customers)-len(res.Codes))
	for _, c := range customers {
		if _, ok := res.Codes[c]; ok {
			res.Existing = append(res.Existing, c)
		} else {
			rest = append(rest, c)
		}
	}
	if onePer && len(rest) > 0 {
		// A one_per_customer group: customers holding a live code of it from any other
		// scope get that code again, as a repeat.
		if rest, err = s.repeatHeld(ctx, req, rest, res); err != nil {
			return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
		}
	}
	if len(rest) == 0 {
		return res, nil
	}
	if shared {
		// A shared group: every customer gets its first active promotion code.
		if err := s.issueShared(ctx, req, rest, res); err != nil {
			return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
		}
		return res, nil
	}
	rv, err := s.reserve(ctx, req.GroupID, req.Scope, len(rest))
	if err != nil {
		return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
	}
	covered := rest[:len(rv.ids)]
	res.Uncovered = rest[len(rv.ids):]
	if rv.id == 0 {
		return res, nil
	}
	if s.hooks.beforeIssue != nil {
		s.hooks.beforeIssue()
	}
	missing, err := s.issue(ctx, req, rv, covered, res, onePer)
	if err != nil {
		return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
	}
	if n := res.Issued(); n > 0 { // a concurrent identical claim may have served some first
		metrics.CodesIssued.WithLabelValues(strconv.FormatInt(req.GroupID, 10)).Add(float64(n))
	}
	if len(missing) > 0 {
		// A concurrent identical claim served these customers first, and its issues were
		// released before this claim could read them: they hold nothing under the scope
		// now, so they are claimed again (a release is rare; one more round suffices
		// unless it races again, and every round is bounded by the batch).
		if depth >= maxClaimRounds {
			return nil, fmt.Errorf("claiming codes for group %d: %d customers' issues were released under concurrent claims %d times in a row", req.GroupID, len(missing), depth+1)
		}
		more, err := s.claim(ctx, ClaimRequest{GroupID: req.GroupID, Scope: req.Scope, MailingID: req.MailingID, CustomerIDs: missing}, depth+1)
		if err != nil {
			return nil, err
		}
		for c, code := range more.Codes {
			res.Codes[c] = code
		}
		res.Existing = append(res.Existing, more.Existing...)
		res.Repeated = append(res.Repeated, more.Repeated...)
		if len(more.Uncovered) > 0 {
			// Keep Uncovered in request order.
			res.Uncovered = res.Uncovered[:0]
			for _, c := range customers {
				if _, ok := res.Codes[c]; !ok {
					res.Uncovered = append(res.Uncovered, c)
				}
			}
		}
	}
	return res, nil
}

// maxClaimRounds bounds how often a claim goes round for customers whose concurrent
// identical claim's issues were released under it.
const maxClaimRounds = 3

// claimHooks let a test force the interleavings they name; nil outside tests. They
// live on the Store, so a test's hooks touch only the claims of its own store.
type claimHooks struct {
	beforeIssue func() // Claim: codes reserved, issues not yet recorded
	onConflict  func() // issueOnce: a concurrent identical claim served some customers first
}

// checkBatch validates a batch and returns its customers without repeats, in order.
func checkBatch(scope string, ids []string) ([]string, error) {
	if scope == "" || utf8.RuneCountInString(scope) > 300 {
		return nil, invalid("scope", "must be 1–300 characters")
	}
	if len(ids) == 0 {
		return nil, invalid("customer_ids", "no customers")
	}
	if len(ids) > MaxClaimBatch {
		return nil, invalid("customer_ids", "%d customers in one batch, at most %d", len(ids), MaxClaimBatch)
	}
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		if err := customers.CheckCustomerID(id); err != nil {
			return nil, invalid(fmt.Sprintf("customer_ids[%d]", i), "%s", err)
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out, nil
}

// checkLive returns ErrGroupNotFound unless the group exists and is not archived, and
// ErrGroupDraft or ErrGroupPaused unless it is active (SPEC §10: a draft or paused group
// issues nothing; its mailings wait). No lock: a Delete racing a claim shrinks the
// ranges under their row locks, and the claim then finds nothing left to take; a Pause
// racing a claim stops the claims that start after it.
// It also says whether the group gives one code per customer (one_per_customer) and
// whether it is shared (its promotion codes go to every customer).
func (s *Store) checkLive(ctx context.Context, groupID int64) (onePer, shared bool, err error) {
	var live bool
	var status, kind string
	st, err := s.stmt(ctx, selectLive)
	if err == nil {
		err = st.QueryRowContext(ctx, groupID).Scan(&live, &onePer, &status, &kind)
	}
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !live) {
		return false, false, fmt.Errorf("group %d: %w", groupID, ErrGroupNotFound)
	}
	if err != nil {
		return false, false, fmt.Errorf("reading group %d: %w", groupID, err)
	}
	switch status {
	case StatusDraft:
		return false, false, fmt.Errorf("group %d: %w", groupID, ErrGroupDraft)
	case StatusPaused:
		return false, false, fmt.Errorf("group %d: %w", groupID, ErrGroupPaused)
	}
	return onePer, kind == KindShared, nil
}

const selectLive = `SELECT archived_at IS NULL, one_per_customer, status, kind FROM groups WHERE id = $1`

// repeatHeldCodes finds the customers of a one_per_customer group who hold a live code
// of it (group_customer_codes, one row per customer by its primary key), records a
// repeat issue of that code under the claim's scope (once per scope), and returns them
// with their codes.
const repeatHeldCodes = `
WITH h AS (
    SELECT g.customer_id, g.code_id FROM unnest($1::text[]) AS u(customer_id)
    JOIN group_customer_codes g ON g.group_id = $2 AND g.customer_id = u.customer_id),
ins AS (
    INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
    SELECT customer_id, $2, code_id, $3, $4, 'repeat' FROM h
    ON CONFLICT (customer_id, group_id, scope) WHERE kind = 'repeat' DO NOTHING)
SELECT h.customer_id, c.code FROM h JOIN codes c ON c.id = h.code_id`

// repeatHeld gives the customers of rest who hold a live code of the (one_per_customer)
// group that code again, recorded as a repeat, adds them to res and returns the others.
func (s *Store) repeatHeld(ctx context.Context, req ClaimRequest, rest []string, res *ClaimResult) ([]string, error) {
	held, err := s.codesByCustomer(ctx, repeatHeldCodes, len(rest), pq.Array(rest), req.GroupID, req.Scope, req.MailingID)
	if err != nil {
		return nil, fmt.Errorf("repeating the codes customers hold: %w", err)
	}
	if len(held) == 0 {
		return rest, nil
	}
	out := rest[:0:0]
	for _, c := range rest {
		if code, ok := held[c]; ok {
			res.Codes[c] = code
			res.Repeated = append(res.Repeated, c)
		} else {
			out = append(out, c)
		}
	}
	return out, nil
}

// selectExisting reads the live initial issues of a batch under (scope, group): an index
// probe of issues_scope_initial per customer. Written as a LATERAL subquery over
// unnest, kept from being flattened into a join by its LIMIT 1 (the index is unique on
// these three columns, so it changes nothing): the probe is parameterised by the
// customer, so the plan is a nested loop over the batch whatever the statistics say. (A plain join let the planner pick a scan of
// the index on its (group_id, scope) suffix or of issues_code_initial, ~10 ms per batch
// at 100,000 rows and unbounded with the history; customer_id = ANY($1) may turn into a
// scan testing every row against the whole array.)
const selectExisting = `
SELECT u.customer_id, c.code
FROM unnest($1::text[]) AS u(customer_id)
CROSS JOIN LATERAL (
    SELECT i.code_id FROM issues i
    WHERE i.customer_id = u.customer_id AND i.group_id = $2 AND i.scope = $3
      AND i.kind = 'initial' AND i.released_at IS NULL
    LIMIT 1) i
JOIN codes c ON c.id = i.code_id`

func (s *Store) existingCodes(ctx context.Context, tx *sqlx.Tx, groupID int64, scope string, customers []string, res *ClaimResult) error {
	st, err := s.stmt(ctx, selectExisting)
	if err != nil {
		return fmt.Errorf("reading existing issues: %w", err)
	}
	if tx != nil {
		st = tx.StmtContext(ctx, st)
	}
	rows, err := st.QueryContext(ctx, pq.Array(customers), groupID, scope)
	if err != nil {
		return fmt.Errorf("reading existing issues: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cust, code string
		if err := rows.Scan(&cust, &code); err != nil {
			return err
		}
		res.Codes[cust] = code
	}
	return rows.Err()
}

// issueFast records the reserved codes as initial issues in one statement (its own
// implicit transaction, committed synchronously): it deletes the reservation and
// inserts one row per customer only if the reservation was still there (a recoverer
// that took it leaves nothing to delete, so nothing is inserted: ErrReservationLost).
// A plain INSERT: the batch's existing issues were read first, so a conflict on
// issues_scope_initial only comes from a concurrent identical claim; the statement then
// fails as a whole (the reservation stays) and issue reruns it as issueOnce with
// insertIssuesOnConflict (speculative insertion costs ~5x per row; measured). A conflict
// on issues_code_initial is an error either way (a code issued twice) and rolls back.
// The code strings came with the reservation: no join back to codes.
//
// The same statement locks the group's terms (SPEC §10: once a code was issued, what it
// is worth cannot change): terms_locked_at is set when it is still NULL, so only the
// group's first issue writes the row; later ones read it by its key and find nothing to do.
const issueFast = `
WITH del AS (DELETE FROM reservations WHERE id = $5 RETURNING id),
lock AS (` + lockTerms + ` AND EXISTS (SELECT 1 FROM del))
INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
SELECT u.customer_id, $3, u.code_id, $4, $6, 'initial'
FROM del, unnest($1::text[], $2::bigint[]) AS u(customer_id, code_id)`

// lockTerms sets the terms lock of group $3 when it is not set yet.
const lockTerms = `UPDATE groups SET terms_locked_at = now() WHERE id = $3 AND terms_locked_at IS NULL`

// issueFastOnePer is issueFast for a one_per_customer group: each customer's row in
// group_customer_codes is inserted in the same statement, so a customer given a code
// of the group concurrently under another scope makes it fail as a whole on
// group_customer_codes_pkey (issue then returns the codes and claims them again, to
// find the winner's code).
const issueFastOnePer = `
WITH del AS (DELETE FROM reservations WHERE id = $5 RETURNING id),
lock AS (` + lockTerms + ` AND EXISTS (SELECT 1 FROM del)),
ins AS (
    INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
    SELECT u.customer_id, $3, u.code_id, $4, $6, 'initial'
    FROM del, unnest($1::text[], $2::bigint[]) AS u(customer_id, code_id)
    RETURNING customer_id, code_id)
INSERT INTO group_customer_codes (group_id, customer_id, code_id) SELECT $3, customer_id, code_id FROM ins`

// insertIssuesOnConflict pairs customers with reserved codes and returns the issues
// written: the fallback of issueFast, when a concurrent claim with the same scope
// served some of the customers first.
const insertIssuesOnConflict = `
INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
SELECT u.customer_id, $3, u.code_id, $4, $5, 'initial'
FROM unnest($1::text[], $2::bigint[]) AS u(customer_id, code_id)
ON CONFLICT (customer_id, group_id, scope) WHERE kind = 'initial' AND released_at IS NULL DO NOTHING
RETURNING code_id`

// issue records the reserved codes as initial issues. It returns the customers that a
// concurrent identical claim served first but whose issue was released before this one
// could read it (see issueOnce): they hold nothing, and Claim claims them again.
func (s *Store) issue(ctx context.Context, req ClaimRequest, rv *reservation, covered []string, res *ClaimResult, onePer bool) ([]string, error) {
	q := issueFast
	if onePer {
		q = issueFastOnePer
	}
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	r, err := st.ExecContext(ctx, pq.Array(covered), pq.Array(rv.ids), req.GroupID, req.Scope, rv.id, req.MailingID)
	if isUniqueViolation(err, "issues_scope_initial") {
		// A concurrent claim with the same scope served some of these customers first.
		return s.issueOnce(ctx, req, rv, covered, res, onePer)
	}
	if isUniqueViolation(err, "group_customer_codes_pkey") {
		// A concurrent claim under another scope gave some of these customers a code of
		// this one_per_customer group first: the reserved codes go back, and all of them
		// are claimed again (they then get the code they hold, or a new one).
		return covered, s.giveBack(ctx, req.GroupID, rv)
	}
	if err != nil {
		return nil, fmt.Errorf("recording issues: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("reservation %d: %w", rv.id, ErrReservationLost)
	}
	if n != int64(len(covered)) {
		return nil, fmt.Errorf("recording issues: %d rows for %d customers", n, len(covered))
	}
	for i, c := range covered {
		res.Codes[c] = rv.codes[i]
	}
	return nil, nil
}

// issueOnce records the reserved codes in a transaction with ON CONFLICT DO NOTHING:
// the customers a concurrent identical claim served first get its codes, and the codes
// reserved for them go back to the pool. A customer whose winning issue was released
// between the insert and the read of the winner's codes holds nothing: it is returned
// as missing, neither covered nor existing.
func (s *Store) issueOnce(ctx context.Context, req ClaimRequest, rv *reservation, covered []string, res *ClaimResult, onePer bool) ([]string, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// First: claim the reservation. If a recoverer holds or took it, this waits for it
	// and then finds nothing: its codes went back to the pool, so issue none of them.
	r, err := tx.ExecContext(ctx, `DELETE FROM reservations WHERE id = $1`, rv.id)
	if err != nil {
		return nil, fmt.Errorf("taking reservation %d: %w", rv.id, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return nil, fmt.Errorf("reservation %d: %w", rv.id, ErrReservationLost)
	}
	rows, err := tx.QueryContext(ctx, insertIssuesOnConflict, pq.Array(covered), pq.Array(rv.ids), req.GroupID, req.Scope, req.MailingID)
	if err != nil {
		return nil, fmt.Errorf("recording issues: %w", err)
	}
	used := make(map[int64]struct{}, len(covered))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		used[id] = struct{}{}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recording issues: %w", err)
	}
	if onePer && len(used) > 0 {
		ids := make([]int64, 0, len(used))
		for id := range used {
			ids = append(ids, id)
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO group_customer_codes (group_id, customer_id, code_id)
			SELECT $1, u.customer_id, u.code_id FROM unnest($2::text[], $3::bigint[]) AS u(customer_id, code_id)
			WHERE u.code_id = ANY($4)`, req.GroupID, pq.Array(covered), pq.Array(rv.ids), pq.Array(ids)); err != nil {
			return nil, fmt.Errorf("recording one code per customer: %w", err)
		}
	}
	if len(used) > 0 {
		if _, err := tx.ExecContext(ctx, strings.Replace(lockTerms, "$3", "$1", 1), req.GroupID); err != nil {
			return nil, fmt.Errorf("locking the terms: %w", err)
		}
	}
	var unused []int64
	var lost []string
	got := make(map[string]string, len(covered))
	for i, id := range rv.ids {
		if _, ok := used[id]; ok {
			got[covered[i]] = rv.codes[i]
		} else {
			unused = append(unused, id)
			lost = append(lost, covered[i])
		}
	}
	if len(lost) > 0 {
		if s.hooks.onConflict != nil {
			s.hooks.onConflict()
		}
		if err := returnCodes(ctx, tx, req.GroupID, unused); err != nil {
			return nil, err
		}
		if err := s.existingCodes(ctx, tx, req.GroupID, req.Scope, lost, res); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	for c, code := range got {
		res.Codes[c] = code
	}
	var missing []string
	for _, c := range lost {
		if _, ok := res.Codes[c]; ok {
			res.Existing = append(res.Existing, c)
		} else {
			missing = append(missing, c)
		}
	}
	return missing, nil
}

// giveBack takes a reservation back (nothing was issued from it) and returns its codes
// to the pool, in one transaction. Errors: ErrReservationLost (a recoverer took it).
func (s *Store) giveBack(ctx context.Context, groupID int64, rv *reservation) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `DELETE FROM reservations WHERE id = $1`, rv.id)
	if err != nil {
		return fmt.Errorf("taking reservation %d: %w", rv.id, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("reservation %d: %w", rv.id, ErrReservationLost)
	}
	if err := returnCodes(ctx, tx, groupID, rv.ids); err != nil {
		return err
	}
	return tx.Commit()
}
