package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
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
}

// Issued is how many codes this call took from the pool.
func (r *ClaimResult) Issued() int { return len(r.Codes) - len(r.Existing) }

// Claim gives each customer one code from the group and records the initial issues:
// soonest-expiring codes first, then upload order; an expired code is never issued.
// It runs a fixed number of statements whatever the batch size (one more per code range
// the batch spans):
//
//  1. read the customers' existing issues under (scope, group): they get the same code;
//  2. reserve (own short transaction): take codes returned to the pool (DELETE … SKIP
//     LOCKED), then advance the cursor of the first claimable range(s) under a row lock,
//     reading the ids from the codes' primary key, and record a reservation row;
//  3. issue (second transaction): delete the reservation (gone means a recoverer took
//     it: ErrReservationLost) and insert all issue rows in one INSERT … SELECT from
//     arrays, ON CONFLICT on the (scope, customer, group) unique index.
//
// Two unique indexes make a double issue impossible rather than unlikely: a code has
// at most one live initial issue, and so has (scope, customer, group). A concurrent
// identical claim that loses the race on (scope, customer, group) gets the winner's
// code, and the code it had reserved goes back to the pool.
//
// Errors: ErrGroupNotFound (no live group), *InvalidError, ErrReservationLost.
func (s *Store) Claim(ctx context.Context, req ClaimRequest) (*ClaimResult, error) {
	customers, err := checkBatch(req.Scope, req.CustomerIDs)
	if err != nil {
		return nil, err
	}
	if err := s.checkLive(ctx, req.GroupID); err != nil {
		return nil, err
	}
	res := &ClaimResult{Codes: make(map[string]string, len(customers))}
	if err := s.existingCodes(ctx, s.db, req.GroupID, req.Scope, customers, res); err != nil {
		return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
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
	if len(rest) == 0 {
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
	if err := s.issue(ctx, req, rv, covered, res); err != nil {
		return nil, fmt.Errorf("claiming codes for group %d: %w", req.GroupID, err)
	}
	return res, nil
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
		if err := CheckCustomerID(id); err != nil {
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

// CheckCustomerID says why a customer id is not acceptable: 1–200 characters of valid
// UTF-8 without control characters.
func CheckCustomerID(id string) error {
	switch {
	case id == "":
		return errors.New("customer id is empty")
	case !utf8.ValidString(id):
		return errors.New("customer id is not valid UTF-8")
	case utf8.RuneCountInString(id) > 200:
		return errors.New("customer id is longer than 200 characters")
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return errors.New("customer id contains a control character")
	}
	return nil
}

// checkLive returns ErrGroupNotFound unless the group exists and is not archived. No
// lock: a Delete racing a claim shrinks the ranges under their row locks, and the
// claim then finds nothing left to take.
func (s *Store) checkLive(ctx context.Context, groupID int64) error {
	var live bool
	err := s.db.GetContext(ctx, &live, `SELECT archived_at IS NULL FROM groups WHERE id = $1`, groupID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !live) {
		return fmt.Errorf("group %d: %w", groupID, ErrGroupNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading group %d: %w", groupID, err)
	}
	return nil
}

// selectExisting reads the live initial issues of a batch under (scope, group): an index
// probe of issues_scope_initial per customer. Joined from unnest rather than written as
// customer_id = ANY($1), which the planner may turn into a scan testing every row
// against the whole array.
const selectExisting = `
SELECT i.customer_id, c.code
FROM unnest($1::text[]) AS u(customer_id)
JOIN issues i ON i.customer_id = u.customer_id AND i.group_id = $2 AND i.scope = $3
     AND i.kind = 'initial' AND i.released_at IS NULL
JOIN codes c ON c.id = i.code_id`

func (s *Store) existingCodes(ctx context.Context, q sqlx.QueryerContext, groupID int64, scope string, customers []string, res *ClaimResult) error {
	rows, err := q.QueryContext(ctx, selectExisting, pq.Array(customers), groupID, scope)
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

// reservation is codes taken out of the pool by reserve and not yet issued.
type reservation struct {
	id       int64   // reservations.id; 0 when nothing was reserved
	ids      []int64 // the reserved code ids in claim order
	ranges   []int64 // spans of cursor-reserved ids, one per range
	lo, hi   []int64
	freeIDs  []int64 // ids taken from returned_codes
	freeRngs []int64
}

// takeReturned consumes codes returned to the pool, soonest expiry first. SKIP LOCKED:
// concurrent claims take disjoint rows and never wait on each other.
const takeReturned = `
DELETE FROM returned_codes WHERE code_id IN (
    SELECT code_id FROM returned_codes
    WHERE group_id = $1 AND (expires_at IS NULL OR expires_at > $2)
    ORDER BY expires_at NULLS LAST, code_id
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
RETURNING code_id, range_id`

// countReturnedTaken counts codes taken from the free list back into their ranges.
const countReturnedTaken = `
UPDATE code_ranges cr SET taken = cr.taken + x.n
FROM (SELECT r AS id, count(*) AS n FROM unnest($1::bigint[]) r GROUP BY r) x
WHERE cr.id = x.id`

// advanceCursor takes up to $3 codes from the group's first claimable range (soonest
// expiry, then upload order; index code_ranges_claim), locked FOR UPDATE so concurrent
// claims serialise on this one short statement only. The ids come from an index scan of
// the codes' primary key; the codes rows are never written. A range that cannot fill
// the request is used up, so its cursor moves past its last id (skipping trailing gaps
// left by duplicate lines). A waiting claim re-reads the locked row (EvalPlanQual) and
// skips it if it was used up meanwhile.
const advanceCursor = `
WITH r AS (
    SELECT id, next_id, last_id FROM code_ranges
    WHERE group_id = $1 AND next_id <= last_id AND (expires_at IS NULL OR expires_at > $2)
    ORDER BY expires_at NULLS LAST, id
    LIMIT 1
    FOR UPDATE),
ids AS (
    SELECT c.id FROM r, LATERAL (
        SELECT id FROM codes WHERE id >= r.next_id AND id <= r.last_id ORDER BY id LIMIT $3) c),
n AS (SELECT count(*) AS n, max(id) AS hi FROM ids),
upd AS (
    UPDATE code_ranges cr
    SET next_id = CASE WHEN n.n < $3 THEN r.last_id + 1 ELSE n.hi + 1 END,
        taken = cr.taken + n.n
    FROM r, n WHERE cr.id = r.id
    RETURNING cr.id)
SELECT r.id, r.next_id AS lo, coalesce(n.hi, r.next_id - 1) AS hi,
       coalesce((SELECT array_agg(id ORDER BY id) FROM ids), '{}') AS ids
FROM r, n`

const insertReservation = `
INSERT INTO reservations (group_id, scope, range_ids, span_lo, span_hi, free_ids, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`

// reserve takes up to n codes out of the pool in its own short transaction and records
// them as a reservation. It retries a transaction that lost a deadlock (two claims
// taking returned codes of several ranges in different orders).
func (s *Store) reserve(ctx context.Context, groupID int64, scope string, n int) (*reservation, error) {
	for attempt := 0; ; attempt++ {
		rv, err := s.reserveOnce(ctx, groupID, scope, n)
		if err != nil && attempt < 3 && isRetryable(err) {
			continue
		}
		return rv, err
	}
}

func (s *Store) reserveOnce(ctx context.Context, groupID int64, scope string, n int) (*reservation, error) {
	now := s.now()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rv := &reservation{ids: make([]int64, 0, n)}

	rows, err := tx.QueryContext(ctx, takeReturned, groupID, now, n)
	if err != nil {
		return nil, fmt.Errorf("taking returned codes: %w", err)
	}
	for rows.Next() {
		var id, rng int64
		if err := rows.Scan(&id, &rng); err != nil {
			rows.Close()
			return nil, err
		}
		rv.freeIDs = append(rv.freeIDs, id)
		rv.freeRngs = append(rv.freeRngs, rng)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("taking returned codes: %w", err)
	}
	if len(rv.freeIDs) > 0 {
		if _, err := tx.ExecContext(ctx, countReturnedTaken, pq.Array(rv.freeRngs)); err != nil {
			return nil, fmt.Errorf("counting returned codes taken: %w", err)
		}
		rv.ids = append(rv.ids, rv.freeIDs...)
	}

	for len(rv.ids) < n {
		var rng, lo, hi int64
		var ids pq.Int64Array
		err := tx.QueryRowContext(ctx, advanceCursor, groupID, now, n-len(rv.ids)).Scan(&rng, &lo, &hi, &ids)
		if errors.Is(err, sql.ErrNoRows) {
			break // no claimable range left: the pool is exhausted
		}
		if err != nil {
			return nil, fmt.Errorf("advancing the cursor: %w", err)
		}
		if len(ids) == 0 {
			continue // a range holding only trailing gaps, now closed
		}
		rv.ids = append(rv.ids, ids...)
		rv.ranges, rv.lo, rv.hi = append(rv.ranges, rng), append(rv.lo, lo), append(rv.hi, hi)
	}
	if len(rv.ids) == 0 {
		return rv, nil // nothing reserved: nothing to record
	}
	err = tx.GetContext(ctx, &rv.id, insertReservation, groupID, scope, pq.Array(nonNil(rv.ranges)), pq.Array(nonNil(rv.lo)), pq.Array(nonNil(rv.hi)),
		pq.Array(nonNil(rv.freeIDs)), now)
	if err != nil {
		return nil, fmt.Errorf("recording the reservation: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing the reservation: %w", err)
	}
	return rv, nil
}

func nonNil(a []int64) []int64 {
	if a == nil {
		return []int64{}
	}
	return a
}

// insertIssues pairs customers with reserved codes (arrays, one statement) and returns
// the issues written with their code strings. A plain INSERT: the batch's existing
// issues were read first, so a conflict on issues_scope_initial only comes from a
// concurrent identical claim, and is handled by rerunning the transaction with
// insertIssuesOnConflict (speculative insertion costs ~5x per row; measured). A conflict
// on issues_code_initial is an error either way (a code issued twice) and rolls back.
const insertIssues = `
WITH ins AS (
    INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
    SELECT u.customer_id, $3, u.code_id, $4, $5, 'initial'
    FROM unnest($1::text[], $2::bigint[]) AS u(customer_id, code_id)
    %s
    RETURNING customer_id, code_id)
SELECT ins.customer_id, ins.code_id, c.code FROM ins JOIN codes c ON c.id = ins.code_id`

var (
	insertIssuesPlain      = fmt.Sprintf(insertIssues, "")
	insertIssuesOnConflict = fmt.Sprintf(insertIssues, "ON CONFLICT (customer_id, group_id, scope) WHERE kind = 'initial' AND released_at IS NULL DO NOTHING")
)

// issue records the reserved codes as initial issues in the second transaction.
func (s *Store) issue(ctx context.Context, req ClaimRequest, rv *reservation, covered []string, res *ClaimResult) error {
	err := s.issueOnce(ctx, req, rv, covered, res, insertIssuesPlain)
	if isUniqueViolation(err, "issues_scope_initial") {
		// A concurrent claim with the same scope served some of these customers first.
		err = s.issueOnce(ctx, req, rv, covered, res, insertIssuesOnConflict)
	}
	return err
}

func (s *Store) issueOnce(ctx context.Context, req ClaimRequest, rv *reservation, covered []string, res *ClaimResult, insert string) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// First: claim the reservation. If a recoverer holds or took it, this waits for it
	// and then finds nothing: its codes went back to the pool, so issue none of them.
	r, err := tx.ExecContext(ctx, `DELETE FROM reservations WHERE id = $1`, rv.id)
	if err != nil {
		return fmt.Errorf("taking reservation %d: %w", rv.id, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("reservation %d: %w", rv.id, ErrReservationLost)
	}
	rows, err := tx.QueryContext(ctx, insert, pq.Array(covered), pq.Array(rv.ids), req.GroupID, req.Scope, req.MailingID)
	if err != nil {
		return fmt.Errorf("recording issues: %w", err)
	}
	used := make(map[int64]struct{}, len(covered))
	for rows.Next() {
		var cust, code string
		var id int64
		if err := rows.Scan(&cust, &id, &code); err != nil {
			rows.Close()
			return err
		}
		res.Codes[cust] = code
		used[id] = struct{}{}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recording issues: %w", err)
	}
	if len(used) < len(covered) {
		// A concurrent claim with the same scope served some of these customers first:
		// they get its codes, and the codes reserved for them go back to the pool.
		var unused []int64
		var lost []string
		for i, id := range rv.ids {
			if _, ok := used[id]; !ok {
				unused = append(unused, id)
				lost = append(lost, covered[i])
			}
		}
		if err := returnCodes(ctx, tx, req.GroupID, unused); err != nil {
			return err
		}
		if err := s.existingCodes(ctx, tx, req.GroupID, req.Scope, lost, res); err != nil {
			return err
		}
		res.Existing = append(res.Existing, lost...)
	}
	return tx.Commit()
}

// lockRangesOf locks, in claim order (the order advanceCursor locks them in), the ranges
// of a group that hold any of the given code ids.
const lockRangesOf = `
SELECT cr.id FROM code_ranges cr
WHERE cr.group_id = $1
  AND EXISTS (SELECT 1 FROM unnest($2::bigint[]) c WHERE c BETWEEN cr.first_id AND cr.last_id)
ORDER BY cr.expires_at NULLS LAST, cr.id
FOR UPDATE`

// insertReturned puts codes on the free list and takes them off their ranges' taken
// count, so issued (sum of taken) and active (sum of total - taken) stay exact. A code
// whose range is gone (its group was removed) is not returned.
const insertReturned = `
WITH r AS (
    SELECT c AS code_id, cr.id AS range_id, cr.expires_at
    FROM unnest($2::bigint[]) c
    JOIN code_ranges cr ON cr.group_id = $1 AND c BETWEEN cr.first_id AND cr.last_id),
ins AS (
    INSERT INTO returned_codes (code_id, group_id, range_id, expires_at)
    SELECT code_id, $1, range_id, expires_at FROM r
    ON CONFLICT (code_id) DO NOTHING
    RETURNING range_id)
UPDATE code_ranges cr SET taken = cr.taken - x.n
FROM (SELECT range_id, count(*) AS n FROM ins GROUP BY range_id) x
WHERE cr.id = x.range_id`

// returnCodes puts codes of a group back into its pool.
func returnCodes(ctx context.Context, tx *sqlx.Tx, groupID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, lockRangesOf, groupID, pq.Array(ids)); err != nil {
		return fmt.Errorf("returning codes to group %d: %w", groupID, err)
	}
	if _, err := tx.ExecContext(ctx, insertReturned, groupID, pq.Array(ids)); err != nil {
		return fmt.Errorf("returning codes to group %d: %w", groupID, err)
	}
	return nil
}

// removeReturned takes a range's returned codes out of the pool (an upload undone or a
// group deleted). The codes rows stay: issue history refers to them.
func removeReturned(ctx context.Context, tx *sqlx.Tx, rangeID int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM returned_codes WHERE range_id = $1`, rangeID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RecoverReservations returns to their pools the codes of reservations older than
// olderThan: claims that crashed (or stalled) between reserving and issuing. A claim
// still running takes its reservation first (row lock) and the recoverer skips it; a
// claim whose reservation was recovered fails with ErrReservationLost and issues
// nothing. Returns how many codes went back. Safe to run from several processes.
func (s *Store) RecoverReservations(ctx context.Context, olderThan time.Duration) (int64, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	type rsv struct {
		GroupID int64         `db:"group_id"`
		Lo      pq.Int64Array `db:"span_lo"`
		Hi      pq.Int64Array `db:"span_hi"`
		Free    pq.Int64Array `db:"free_ids"`
	}
	var list []rsv
	err = tx.SelectContext(ctx, &list, `
		DELETE FROM reservations WHERE id IN (
		    SELECT id FROM reservations WHERE created_at < $1 ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
		RETURNING group_id, span_lo, span_hi, free_ids`, s.now().Add(-olderThan))
	if err != nil {
		return 0, fmt.Errorf("recovering reservations: %w", err)
	}
	var total int64
	for _, r := range list {
		var ids []int64
		err := tx.SelectContext(ctx, &ids, `
			SELECT c.id FROM unnest($1::bigint[], $2::bigint[]) AS s(lo, hi)
			JOIN codes c ON c.id BETWEEN s.lo AND s.hi`, r.Lo, r.Hi)
		if err != nil {
			return 0, fmt.Errorf("recovering reservations: %w", err)
		}
		ids = append(ids, r.Free...)
		if err := returnCodes(ctx, tx, r.GroupID, ids); err != nil {
			return 0, err
		}
		total += int64(len(ids))
	}
	return total, tx.Commit()
}

// Release undoes the live initial issues of customers under (scope, group): a definitive
// send rejection. The issue rows stay, marked released (and leave the unique index on
// the code), and the codes go back to the pool. Returns how many codes were returned.
func (s *Store) Release(ctx context.Context, groupID int64, scope string, customerIDs []string) (int64, error) {
	customers, err := checkBatch(scope, customerIDs)
	if err != nil {
		return 0, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var ids []int64
	err = tx.SelectContext(ctx, &ids, `
		UPDATE issues i SET released_at = now()
		FROM unnest($1::text[]) AS u(customer_id)
		WHERE i.customer_id = u.customer_id AND i.group_id = $2 AND i.scope = $3 AND i.kind = 'initial' AND i.released_at IS NULL
		RETURNING i.code_id`, pq.Array(customers), groupID, scope)
	if err != nil {
		return 0, fmt.Errorf("releasing issues of group %d: %w", groupID, err)
	}
	if err := returnCodes(ctx, tx, groupID, ids); err != nil {
		return 0, err
	}
	return int64(len(ids)), tx.Commit()
}

// isRetryable reports a deadlock or serialization failure: the transaction can rerun.
func isRetryable(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
