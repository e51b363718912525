package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

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
    SELECT id, next_id, last_id, voided FROM code_ranges
    WHERE group_id = $1 AND next_id <= last_id AND (expires_at IS NULL OR expires_at > $2)
      AND NOT EXISTS (SELECT 1 FROM returned_codes rc
                      WHERE rc.group_id = $1 AND (rc.expires_at IS NULL OR rc.expires_at > $2))
    ORDER BY expires_at NULLS LAST, id
    LIMIT 1
    FOR UPDATE),
c AS (
    SELECT c.id, c.code FROM r, LATERAL (
        SELECT id, code FROM codes WHERE id >= r.next_id AND id <= r.last_id AND id <> ALL (r.voided) ORDER BY id LIMIT $3) c),
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
// skips it if it was used up meanwhile. Codes voided ahead of the cursor (the range's
// voided ids, written under the same row lock by VoidCode) are skipped: a void that
// committed while this claim waited for the row is in the row it re-reads.
const advanceCursor = `
WITH r AS (
    SELECT id, next_id, last_id, voided FROM code_ranges
    WHERE group_id = $1 AND next_id <= last_id AND (expires_at IS NULL OR expires_at > $2)
    ORDER BY expires_at NULLS LAST, id
    LIMIT 1
    FOR UPDATE),
ids AS (
    SELECT c.id, c.code FROM r, LATERAL (
        SELECT id, code FROM codes WHERE id >= r.next_id AND id <= r.last_id AND id <> ALL (r.voided) ORDER BY id LIMIT $3) c),
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

	if err := takeReturnedCodes(ctx, tx, groupID, now, n, rv); err != nil {
		return nil, err
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
	if err := recordReservation(ctx, tx, groupID, scope, now, rv); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing the reservation: %w", err)
	}
	return rv, nil
}

// takeReturnedCodes moves up to n codes of the group's free list into rv (reserveOnce's
// first step) and counts them back into their ranges.
func takeReturnedCodes(ctx context.Context, tx *sqlx.Tx, groupID int64, now time.Time, n int, rv *reservation) error {
	rows, err := tx.QueryContext(ctx, takeReturned, groupID, now, n)
	if err != nil {
		return fmt.Errorf("taking returned codes: %w", err)
	}
	for rows.Next() {
		var id, rng int64
		var code string
		if err := rows.Scan(&id, &rng, &code); err != nil {
			rows.Close()
			return err
		}
		rv.freeIDs = append(rv.freeIDs, id)
		rv.freeRngs = append(rv.freeRngs, rng)
		rv.codes = append(rv.codes, code)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("taking returned codes: %w", err)
	}
	if len(rv.freeIDs) > 0 {
		if _, err := tx.ExecContext(ctx, countReturnedTaken, pq.Array(rv.freeRngs)); err != nil {
			return fmt.Errorf("counting returned codes taken: %w", err)
		}
		rv.ids = append(rv.ids, rv.freeIDs...)
	}
	return nil
}

// recordReservation records what reserveOnce took: a new reservation row when rv.id is
// 0 (setting it), else the spans and free codes are added to reservation rv.id
// (ErrReservationLost when a recoverer took it meanwhile).
func recordReservation(ctx context.Context, tx *sqlx.Tx, groupID int64, scope string, now time.Time, rv *reservation) error {
	if rv.id == 0 {
		err := tx.GetContext(ctx, &rv.id, insertReservation, groupID, scope, pq.Array(nonNil(rv.ranges)), pq.Array(nonNil(rv.lo)), pq.Array(nonNil(rv.hi)),
			pq.Array(nonNil(rv.freeIDs)), now)
		if err != nil {
			return fmt.Errorf("recording the reservation: %w", err)
		}
		return nil
	}
	r, err := tx.ExecContext(ctx, extendReservation, rv.id, pq.Array(nonNil(rv.ranges)), pq.Array(nonNil(rv.lo)), pq.Array(nonNil(rv.hi)),
		pq.Array(nonNil(rv.freeIDs)))
	if err != nil {
		return fmt.Errorf("recording the reservation: %w", err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("reservation %d: %w", rv.id, ErrReservationLost)
	}
	return nil
}

func nonNil(a []int64) []int64 {
	if a == nil {
		return []int64{}
	}
	return a
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

// ReservationsHeld says whether the group's pool may still yield codes although a claim
// just found it empty: unfinished claims hold codes of the group reserved (claims still
// running, or claims that crashed between reserving and issuing, whose codes
// RecoverReservations returns once they are old enough), or codes already came back to
// the pool, or its ranges still hold active codes — the last two when a recovery or a
// release ran between that claim and this check. A group for which this is true is not
// exhausted: its recipients wait for a retry instead of pausing the mailing.
func (s *Store) ReservationsHeld(ctx context.Context, groupID int64) (bool, error) {
	var held bool
	err := s.db.GetContext(ctx, &held, `
		SELECT EXISTS (SELECT 1 FROM reservations WHERE group_id = $1)
		    OR EXISTS (SELECT 1 FROM returned_codes WHERE group_id = $1 AND (expires_at IS NULL OR expires_at > $2))
		    OR EXISTS (SELECT 1 FROM code_ranges WHERE group_id = $1 AND taken < total AND (expires_at IS NULL OR expires_at > $2))`,
		groupID, s.now())
	if err != nil {
		return false, fmt.Errorf("checking the reservations of group %d: %w", groupID, err)
	}
	return held, nil
}

// isRetryable reports a deadlock or serialization failure: the transaction can rerun.
func isRetryable(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
