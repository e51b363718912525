package groups

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// groupColumns are a group's own columns (alias g).
const groupColumns = `g.id, g.name, g.description, g.low_balance_threshold, g.low_balance_percent, g.alert_emails, g.alert_webhook,
       g.created_at, g.updated_at, g.archived_at, g.one_per_customer, g.metadata, g.code_columns, ` + offerColumns

// rangeSums sums a group's code_ranges (alias r) into its counters at $1 (now). It is
// the one place the balance is written: a range's codes below its cursor are issued
// (taken), the others are active until the range's expiry and expired after it.
const rangeSums = `sum(r.total) AS total, sum(r.taken) AS issued,
           sum(r.total - r.taken) FILTER (WHERE r.expires_at IS NULL OR r.expires_at > $1) AS active,
           sum(r.total - r.taken) FILTER (WHERE r.expires_at <= $1) AS expired,
           bool_and(r.expires_at IS NOT NULL AND r.expires_at <= $1) AS all_expired`

// counterColumns are the counters of rangeSums (alias s), 0 for a group without codes.
const counterColumns = `coalesce(s.total, 0) AS total, coalesce(s.issued, 0) AS issued,
       coalesce(s.active, 0) AS active, coalesce(s.expired, 0) AS expired, s.all_expired`

// promotionCounts counts a shared group's promotion codes (alias p), all and in use
// at $1: one probe of promotion_codes_group, which finds nothing for a unique group.
const promotionCounts = `LEFT JOIN LATERAL (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE pc.active AND (pc.expires_at IS NULL OR pc.expires_at > $1)
                              AND NOT EXISTS (SELECT 1 FROM code_voids v WHERE v.code_id = pc.code_id)) AS active
    FROM promotion_codes pc WHERE pc.group_id = g.id
) p ON true`

// promotionCounterColumns are promotionCounts' counters.
const promotionCounterColumns = `p.n AS promotion_codes, p.active AS promotion_codes_active`

// Balance is a live group with its counters, as the alert check surveys it.
type Balance struct {
	Group
	// SoonestExpiry is the soonest expiry of the group's active codes within the
	// window Balances was given; nil when none expires in it.
	SoonestExpiry *time.Time `db:"soonest"`
}

// selectBalances reads every live group with its counters at $1 and the soonest expiry
// of its active codes in ($1, $2], in one statement.
const selectBalances = `
SELECT ` + groupColumns + `,
       ` + counterColumns + `, ` + promotionCounterColumns + `, s.soonest
FROM groups g
LEFT JOIN LATERAL (
    SELECT ` + rangeSums + `,
           min(r.expires_at) FILTER (WHERE r.expires_at > $1 AND r.expires_at <= $2 AND r.total > r.taken) AS soonest
    FROM code_ranges r WHERE r.group_id = g.id
) s ON true
` + promotionCounts + `
WHERE g.archived_at IS NULL
ORDER BY g.id`

// Balances returns every live group, ordered by id, with its counters at now and the
// soonest expiry of its active codes in (now, expiringBy].
func (s *Store) Balances(ctx context.Context, now, expiringBy time.Time) ([]Balance, error) {
	var out []Balance
	if err := s.db.SelectContext(ctx, &out, selectBalances, now, expiringBy); err != nil {
		return nil, fmt.Errorf("reading the balances of groups: %w", err)
	}
	for i := range out {
		out[i].setState()
		out[i].derive(now)
	}
	return out, nil
}

// Expiring is the active codes of a group that share one expiry.
type Expiring struct {
	ExpiresAt time.Time `db:"expires_at"`
	Count     int64     `db:"n"`
}

// Snapshot is one group's balance as an alert check decides on it: the group, live or
// archived, with its counters, and its active codes that expire within a window.
type Snapshot struct {
	Group
	// Expiring lists the active codes expiring within the window, soonest first, one
	// entry per expiry.
	Expiring []Expiring
}

// Snapshot reads a group with its counters at now and its active codes expiring in
// (now, expiringBy]. It reads through q, the caller's transaction (nil: the store's
// handle), so that it sees what the caller's locks ordered before it. Archived groups
// are read too (ArchivedAt says so). Errors: ErrGroupNotFound.
func (s *Store) Snapshot(ctx context.Context, q sqlx.QueryerContext, groupID int64, now, expiringBy time.Time) (*Snapshot, error) {
	if q == nil {
		q = s.db
	}
	g, err := getGroup(ctx, q, now, `g.id = $2`, groupID)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Group: *g}
	err = sqlx.SelectContext(ctx, q, &snap.Expiring, `
		SELECT expires_at, sum(total - taken) AS n FROM code_ranges
		WHERE group_id = $1 AND expires_at > $2 AND expires_at <= $3
		GROUP BY expires_at HAVING sum(total - taken) > 0 ORDER BY expires_at`, groupID, now, expiringBy)
	if err != nil {
		return nil, fmt.Errorf("reading the expiring codes of group %d: %w", groupID, err)
	}
	return snap, nil
}
