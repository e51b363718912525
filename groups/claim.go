package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
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
}

// Issued is how many codes this call took from the pool.
func (r *ClaimResult) Issued() int { return len(r.Codes) - len(r.Existing) }

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
	if err := s.checkLive(ctx, req.GroupID); err != nil {
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
	if testHookBeforeIssue != nil {
		testHookBeforeIssue()
	}
	missing, err := s.issue(ctx, req, rv, covered, res)
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

// Hooks for tests to force the interleavings they name (nil outside tests).
var (
	testHookBeforeIssue func() // Claim: codes reserved, issues not yet recorded
	testHookConflict    func() // issueOnce: a concurrent identical claim served some customers first
)

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

// checkLive returns ErrGroupNotFound unless the group exists and is not archived. No
// lock: a Delete racing a claim shrinks the ranges under their row locks, and the
// claim then finds nothing left to take.
func (s *Store) checkLive(ctx context.Context, groupID int64) error {
	var live bool
	st, err := s.stmt(ctx, selectLive)
	if err == nil {
		err = st.QueryRowContext(ctx, groupID).Scan(&live)
	}
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !live) {
		return fmt.Errorf("group %d: %w", groupID, ErrGroupNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading group %d: %w", groupID, err)
	}
	return nil
}

const selectLive = `SELECT archived_at IS NULL FROM groups WHERE id = $1`

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

// reservation is codes taken out of the pool by reserve and not yet issued. One claim
// has at most one reservation row, whatever the number of ranges it spans.
type reservation struct {
	id       int64    // reservations.id; 0 when nothing was reserved
	ids      []int64  // the reserved code ids in claim order
	codes    []string // their codes, in the same order
	ranges   []int64  // spans of cursor-reserved ids, one per range
	lo, hi   []int64
	freeIDs  []int64 // ids taken from returned_codes
	freeRngs []int64
}

// reserveFast is the common case of reserve in one statement (one round trip, its own
// implicit transaction): no returned codes waiting in the group, so take up to $3 codes
// from the first claimable range (as advanceCursor does) with their code strings, and
// record the reservation. It returns no row when the group has returned codes to
// consume first or no claimable range; reserve then takes the general path.
//
// The transaction commits with synchronous_commit off (set_config(…, true) is local to
// this statement's transaction), so the range's row lock is released without waiting
// for the WAL flush: concurrent claims no longer queue behind each other's fsync. This
// is safe because the reservation is worth nothing until its issue commits, and the
// issue transaction commits synchronously: its commit flushes the WAL up to its own
// commit record, which lies after this transaction's, so an issue that was acknowledged
// can never outlive its reservation. A crash can only lose reservations whose issue had
// not committed; the cursor, the taken count and the reservation row are lost together
// (one transaction), so those codes are simply unissued again — nothing to repair.
const reserveFast = `
WITH r AS (
    SELECT id, next_id, last_id FROM code_ranges
    WHERE group_id = $1 AND next_id <= last_id AND (expires_at IS NULL OR expires_at > $2)
      AND NOT EXISTS (SELECT 1 FROM returned_codes rc
                      WHERE rc.group_id = $1 AND (rc.expires_at IS NULL OR rc.expires_at > $2))
    ORDER BY expires_at NULLS LAST, id
    LIMIT 1
    FOR UPDATE),
c AS (
    SELECT c.id, c.code FROM r, LATERAL (
        SELECT id, code FROM codes WHERE id >= r.next_id AND id <= r.last_id ORDER BY id LIMIT $3) c),
n AS (SELECT count(*) AS n, max(id) AS hi FROM c),
upd AS (
    UPDATE code_ranges cr
    SET next_id = CASE WHEN n.n < $3 THEN r.last_id + 1 ELSE n.hi + 1 END,
        taken = cr.taken + n.n
    FROM r, n WHERE cr.id = r.id
    RETURNING cr.id),
rsv AS (
    INSERT INTO reservations (group_id, scope, range_ids, span_lo, span_hi, free_ids, created_at)
    SELECT $1, $4, ARRAY[r.id], ARRAY[r.next_id], ARRAY[n.hi], '{}', $2 FROM r, n WHERE n.n > 0
    RETURNING id)
SELECT r.id, r.next_id AS lo, coalesce(n.hi, r.next_id - 1) AS hi,
       coalesce((SELECT array_agg(id ORDER BY id) FROM c), '{}') AS ids,
       coalesce((SELECT array_agg(code ORDER BY id) FROM c), '{}') AS codes,
       coalesce((SELECT id FROM rsv), 0) AS rsv,
       set_config('synchronous_commit', 'off', true) AS sync
FROM r, n`

// takeReturned consumes codes returned to the pool, soonest expiry first. SKIP LOCKED:
// concurrent claims take disjoint rows and never wait on each other.
const takeReturned = `
WITH d AS (
    DELETE FROM returned_codes WHERE code_id IN (
        SELECT code_id FROM returned_codes
        WHERE group_id = $1 AND (expires_at IS NULL OR expires_at > $2)
        ORDER BY expires_at NULLS LAST, code_id
        LIMIT $3
        FOR UPDATE SKIP LOCKED)
    RETURNING code_id, range_id, expires_at)
SELECT d.code_id, d.range_id, c.code FROM d JOIN codes c ON c.id = d.code_id
ORDER BY d.expires_at NULLS LAST, d.code_id`

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
    SELECT c.id, c.code FROM r, LATERAL (
        SELECT id, code FROM codes WHERE id >= r.next_id AND id <= r.last_id ORDER BY id LIMIT $3) c),
n AS (SELECT count(*) AS n, max(id) AS hi FROM ids),
upd AS (
    UPDATE code_ranges cr
    SET next_id = CASE WHEN n.n < $3 THEN r.last_id + 1 ELSE n.hi + 1 END,
        taken = cr.taken + n.n
    FROM r, n WHERE cr.id = r.id
    RETURNING cr.id)
SELECT r.id, r.next_id AS lo, coalesce(n.hi, r.next_id - 1) AS hi,
       coalesce((SELECT array_agg(id ORDER BY id) FROM ids), '{}') AS ids,
       coalesce((SELECT array_agg(code ORDER BY id) FROM ids), '{}') AS codes
FROM r, n`

const insertReservation = `
INSERT INTO reservations (group_id, scope, range_ids, span_lo, span_hi, free_ids, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`

// extendReservation adds spans and free codes to a claim's reservation (the claim's
// first range ran out in reserveFast). No row: a recoverer took the reservation.
const extendReservation = `
UPDATE reservations SET range_ids = range_ids || $2::bigint[], span_lo = span_lo || $3::bigint[],
    span_hi = span_hi || $4::bigint[], free_ids = free_ids || $5::bigint[]
WHERE id = $1`

// reserve takes up to n codes out of the pool and records them as a reservation.
// Usually one statement (reserveFast); the general path (reserveOnce, its own short
// transaction) takes returned codes first and spans several ranges. It retries a
// transaction that lost a deadlock (two claims taking returned codes of several ranges
// in different orders).
func (s *Store) reserve(ctx context.Context, groupID int64, scope string, n int) (*reservation, error) {
	rv := &reservation{}
	now := s.now()
	st, err := s.stmt(ctx, reserveFast)
	if err != nil {
		return nil, err
	}
	var rng, lo, hi int64
	var ids pq.Int64Array
	var codes pq.StringArray
	var sync string
	err = st.QueryRowContext(ctx, groupID, now, n, scope).Scan(&rng, &lo, &hi, &ids, &codes, &rv.id, &sync)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Returned codes to take first, or no claimable range: the general path.
	case err != nil:
		return nil, fmt.Errorf("advancing the cursor: %w", err)
	case len(ids) != len(codes):
		return nil, fmt.Errorf("advancing the cursor: %d ids, %d codes", len(ids), len(codes))
	case len(ids) > 0:
		rv.ids, rv.codes = ids, codes
		rv.ranges, rv.lo, rv.hi = []int64{rng}, []int64{lo}, []int64{hi}
	}
	// A range that held only trailing gaps was closed and reserved nothing: go on.
	if len(rv.ids) == n {
		return rv, nil
	}
	for attempt := 0; ; attempt++ {
		more, err := s.reserveOnce(ctx, groupID, scope, n-len(rv.ids), rv.id)
		if err != nil && attempt < 3 && isRetryable(err) {
			continue
		}
		if err != nil {
			if rv.id != 0 {
				// The first part stays reserved; RecoverReservations returns it.
				return nil, fmt.Errorf("%w (reservation %d left to recovery)", err, rv.id)
			}
			return nil, err
		}
		if rv.id == 0 {
			rv.id = more.id
		}
		rv.ids, rv.codes = append(rv.ids, more.ids...), append(rv.codes, more.codes...)
		rv.ranges, rv.lo, rv.hi = append(rv.ranges, more.ranges...), append(rv.lo, more.lo...), append(rv.hi, more.hi...)
		rv.freeIDs, rv.freeRngs = append(rv.freeIDs, more.freeIDs...), append(rv.freeRngs, more.freeRngs...)
		return rv, nil
	}
}

// reserveOnce is the general path of reserve, in one transaction: returned codes first,
// then as many ranges as it takes. It records a new reservation, or extends reservation
// rsvID when the claim already holds one. synchronous_commit is off as in reserveFast.
func (s *Store) reserveOnce(ctx context.Context, groupID int64, scope string, n int, rsvID int64) (*reservation, error) {
	now := s.now()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rv := &reservation{id: rsvID, ids: make([]int64, 0, n), codes: make([]string, 0, n)}
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return nil, err
	}

	rows, err := tx.QueryContext(ctx, takeReturned, groupID, now, n)
	if err != nil {
		return nil, fmt.Errorf("taking returned codes: %w", err)
	}
	for rows.Next() {
		var id, rng int64
		var code string
		if err := rows.Scan(&id, &rng, &code); err != nil {
			rows.Close()
			return nil, err
		}
		rv.freeIDs = append(rv.freeIDs, id)
		rv.freeRngs = append(rv.freeRngs, rng)
		rv.codes = append(rv.codes, code)
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
		var codes pq.StringArray
		err := tx.QueryRowContext(ctx, advanceCursor, groupID, now, n-len(rv.ids)).Scan(&rng, &lo, &hi, &ids, &codes)
		if errors.Is(err, sql.ErrNoRows) {
			break // no claimable range left: the pool is exhausted
		}
		if err != nil {
			return nil, fmt.Errorf("advancing the cursor: %w", err)
		}
		if len(ids) != len(codes) {
			return nil, fmt.Errorf("advancing the cursor: %d ids, %d codes", len(ids), len(codes))
		}
		if len(ids) == 0 {
			continue // a range holding only trailing gaps, now closed
		}
		rv.ids, rv.codes = append(rv.ids, ids...), append(rv.codes, codes...)
		rv.ranges, rv.lo, rv.hi = append(rv.ranges, rng), append(rv.lo, lo), append(rv.hi, hi)
	}
	if len(rv.ids) == 0 {
		return rv, nil // nothing reserved: nothing to record
	}
	if rsvID == 0 {
		err = tx.GetContext(ctx, &rv.id, insertReservation, groupID, scope, pq.Array(nonNil(rv.ranges)), pq.Array(nonNil(rv.lo)), pq.Array(nonNil(rv.hi)),
			pq.Array(nonNil(rv.freeIDs)), now)
		if err != nil {
			return nil, fmt.Errorf("recording the reservation: %w", err)
		}
	} else {
		r, err := tx.ExecContext(ctx, extendReservation, rsvID, pq.Array(nonNil(rv.ranges)), pq.Array(nonNil(rv.lo)), pq.Array(nonNil(rv.hi)),
			pq.Array(nonNil(rv.freeIDs)))
		if err != nil {
			return nil, fmt.Errorf("recording the reservation: %w", err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return nil, fmt.Errorf("reservation %d: %w", rsvID, ErrReservationLost)
		}
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
const issueFast = `
WITH del AS (DELETE FROM reservations WHERE id = $5 RETURNING id)
INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
SELECT u.customer_id, $3, u.code_id, $4, $6, 'initial'
FROM del, unnest($1::text[], $2::bigint[]) AS u(customer_id, code_id)`

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
func (s *Store) issue(ctx context.Context, req ClaimRequest, rv *reservation, covered []string, res *ClaimResult) ([]string, error) {
	st, err := s.stmt(ctx, issueFast)
	if err != nil {
		return nil, err
	}
	r, err := st.ExecContext(ctx, pq.Array(covered), pq.Array(rv.ids), req.GroupID, req.Scope, rv.id, req.MailingID)
	if isUniqueViolation(err, "issues_scope_initial") {
		// A concurrent claim with the same scope served some of these customers first.
		return s.issueOnce(ctx, req, rv, covered, res)
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
func (s *Store) issueOnce(ctx context.Context, req ClaimRequest, rv *reservation, covered []string, res *ClaimResult) ([]string, error) {
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
		if testHookConflict != nil {
			testHookConflict()
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

// stmtSet caches a Store's prepared statements: a prepared statement is parsed once
// per connection and runs in one round trip (lib/pq otherwise parses and describes every
// parameterised query in a round trip of its own before running it), and its plan is
// reused. database/sql re-prepares on each connection as needed.
type stmtSet struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// stmt returns the prepared statement for query on the store's database handle.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if st, ok := s.stmts.m[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("preparing a statement: %w", err)
	}
	s.stmts.m[query] = st
	return st, nil
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
