package groups

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

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
// whose range is gone (its group was removed) is not returned, nor is a voided code (a
// voided code whose issue is released stays out of the pool, counted as taken). The
// caller locked the ranges first (lockRangesOf), as VoidCode does: this statement sees
// every void committed before.
const insertReturned = `
WITH r AS (
    SELECT c AS code_id, cr.id AS range_id, cr.expires_at
    FROM unnest($2::bigint[]) c
    JOIN code_ranges cr ON cr.group_id = $1 AND c BETWEEN cr.first_id AND cr.last_id
    WHERE NOT EXISTS (SELECT 1 FROM code_voids v WHERE v.code_id = c)),
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
	// A one_per_customer group's customers no longer hold the released codes.
	if len(ids) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_customer_codes WHERE group_id = $1 AND code_id = ANY($2)`, groupID, pq.Array(ids)); err != nil {
			return 0, fmt.Errorf("releasing issues of group %d: %w", groupID, err)
		}
	}
	return int64(len(ids)), tx.Commit()
}

// HeldUnder counts the customers holding a live code of the group under scope (a
// mailing's progress recount): one probe of issues_scope_initial per customer, the
// LATERAL … LIMIT 1 keeping the plan a nested loop over the batch.
// Errors: *InvalidError.
func (s *Store) HeldUnder(ctx context.Context, groupID int64, scope string, customerIDs []string) (int64, error) {
	if len(customerIDs) == 0 {
		return 0, nil
	}
	customers, err := checkBatch(scope, customerIDs)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.db.GetContext(ctx, &n, `
		SELECT count(*) FROM unnest($1::text[]) AS u(customer_id)
		CROSS JOIN LATERAL (
		    SELECT 1 FROM issues i
		    WHERE i.customer_id = u.customer_id AND i.group_id = $2 AND i.scope = $3
		      AND i.kind = 'initial' AND i.released_at IS NULL
		    LIMIT 1) i`, pq.Array(customers), groupID, scope)
	if err != nil {
		return 0, fmt.Errorf("counting the codes held under %s in group %d: %w", scope, groupID, err)
	}
	return n, nil
}
