package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/jmoiron/sqlx"
)

// ErrCodeNotFound: no code of a group has that string (compared case-insensitively).
var ErrCodeNotFound = errors.New("code not found")

// ActionCodeVoid is the activity log's entry of a voided code (POST /v1/codes/{code}/void).
const ActionCodeVoid = "code_void"

// Statuses of one code (GET /v1/codes/{code}), the first that applies.
const (
	CodeVoided   = "voided"   // voided, or a promotion code archived: checkout answers voided
	CodeRedeemed = "redeemed" // a unique code with a redemption (held, succeeded or refunded)
	CodeExpired  = "expired"  // its own expiry, its group's ends_at, or its group archived
	CodeIssued   = "issued"   // a unique code with a live issue: someone holds it
	CodeActive   = "active"   // usable: a unique code still in the pool, a promotion code in use
)

// CodeInfo is one code: its group, status, holder and void.
type CodeInfo struct {
	CodeID int64  `json:"code_id"`
	Code   string `json:"code"`
	Group  struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"group"`
	Status    string     `json:"status"`
	ExpiresAt *time.Time `json:"expires_at"`
	// Holder is who holds a unique code (its live initial issue), nil when nobody does.
	// A voided code keeps its holder: it stays on the customer's profile, marked voided.
	Holder *CodeHolder `json:"holder"`
	// Void is when, by whom and why the code was voided; nil when it was not.
	Void *CodeVoid `json:"void"`
	// redemptions counts the code's held, succeeded and refunded redemptions (the API
	// answer lists them).
	redemptions int64
}

// CodeHolder is the customer holding a unique code, since when and from which mailing.
type CodeHolder struct {
	CustomerID string    `json:"customer_id"`
	IssueID    int64     `json:"issue_id"`
	IssuedAt   time.Time `json:"issued_at"`
	MailingID  *int64    `json:"mailing_id"`
}

// CodeVoid is a code's void.
type CodeVoid struct {
	VoidedAt time.Time `json:"voided_at"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason"`
}

// findCode is the code typed, compared case-insensitively: one probe of the unique
// index on (lower(code), case_dup) (migration 0024); of legacy codes differing only in
// case, the spelling typed, else the first stored.
const findCode = `SELECT id, code FROM codes WHERE lower(code) = lower($1::text COLLATE "C") ORDER BY code = $1 DESC, case_dup LIMIT 1`

// codeInfo reads everything CodeInfo says about code $1 at $2 (now).
const codeInfo = `
SELECT c.id, c.code, g.id AS group_id, g.name, g.kind, g.archived_at IS NOT NULL AS archived,
       COALESCE(g.ends_at <= $2, false) AS ended,
       COALESCE(pc.expires_at, r.expires_at) AS expires_at, COALESCE(pc.active, true) AS active,
       v.voided_at, v.actor AS void_actor, v.reason AS void_reason,
       i.id AS issue_id, i.customer_id, i.issued_at, i.mailing_id
FROM codes c
LEFT JOIN promotion_codes pc ON pc.code_id = c.id
LEFT JOIN code_ranges r ON pc.code_id IS NULL AND r.upload_id = (c.id >> 32) AND c.id BETWEEN r.first_id AND r.last_id
JOIN groups g ON g.id = COALESCE(pc.group_id, r.group_id)
LEFT JOIN code_voids v ON v.code_id = c.id
LEFT JOIN issues i ON i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL AND NOT i.shared
WHERE c.id = $1`

// LookupCode finds one code by its string, case-insensitively, with its group, status,
// holder and void. Errors: ErrCodeNotFound.
func (s *Store) LookupCode(ctx context.Context, code string) (*CodeInfo, error) {
	var id int64
	var stored string
	err := s.db.QueryRowContext(ctx, findCode, code).Scan(&id, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("code %q: %w", code, ErrCodeNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up a code: %w", err)
	}
	return s.codeByID(ctx, s.db, id)
}

func (s *Store) codeByID(ctx context.Context, q sqlx.QueryerContext, id int64) (*CodeInfo, error) {
	now := s.now()
	var (
		info              CodeInfo
		archived, ended   bool
		active            bool
		expires, voidedAt sql.NullTime
		voidActor, reason sql.NullString
		issueID, mailing  sql.NullInt64
		holder            sql.NullString
		issuedAt          sql.NullTime
	)
	err := q.QueryRowxContext(ctx, codeInfo, id, now).Scan(&info.CodeID, &info.Code, &info.Group.ID, &info.Group.Name, &info.Group.Kind,
		&archived, &ended, &expires, &active, &voidedAt, &voidActor, &reason, &issueID, &holder, &issuedAt, &mailing)
	if errors.Is(err, sql.ErrNoRows) {
		// A code row with no group (its range or promotion code gone) is no code.
		return nil, fmt.Errorf("code %d: %w", id, ErrCodeNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading code %d: %w", id, err)
	}
	if expires.Valid {
		info.ExpiresAt = &expires.Time
	}
	if issueID.Valid {
		info.Holder = &CodeHolder{CustomerID: holder.String, IssueID: issueID.Int64, IssuedAt: issuedAt.Time}
		if mailing.Valid {
			info.Holder.MailingID = &mailing.Int64
		}
	}
	if voidedAt.Valid {
		info.Void = &CodeVoid{VoidedAt: voidedAt.Time, Actor: voidActor.String, Reason: reason.String}
	}
	if s.codeRedemptions != nil {
		n, err := s.codeRedemptions(ctx, q, []int64{id})
		if err != nil {
			return nil, fmt.Errorf("counting the redemptions of code %d: %w", id, err)
		}
		info.redemptions = n[id]
	}
	switch {
	case info.Void != nil || !active:
		info.Status = CodeVoided
	case info.Group.Kind == KindUnique && info.redemptions > 0:
		info.Status = CodeRedeemed
	case archived || ended || (info.ExpiresAt != nil && !now.Before(*info.ExpiresAt)):
		info.Status = CodeExpired
	case info.Holder != nil:
		info.Status = CodeIssued
	default:
		info.Status = CodeActive
	}
	return &info, nil
}

// VoidCode takes one code out of use: it is never issued (a unique code still in the
// pool), never redeemed (validate and redeem answer voided), and stays on its holder's
// profile marked voided. It is logged in the group's activity with who and why.
// Idempotent: voiding a voided code changes nothing and answers the same (voided is
// false then). Errors: ErrCodeNotFound; *InvalidError (reason too long).
//
// A unique code not issued yet leaves the pool in the same transaction, under the row
// lock of its range that every claim takes to advance the cursor, so no claim can draw
// it afterwards: ahead of the cursor it is listed in code_ranges.voided (the claim reads
// the codes after next_id minus those); on the free list (a released code) it is deleted
// from returned_codes; reserved by a claim in flight (or by one that crashed), the void
// takes that reservation back as the recoverer would (the claim then issues nothing and
// is retried) and returns its other codes. Either way the range's total drops by one, so
// the balance, the list and the alerts count one code less.
func (s *Store) VoidCode(ctx context.Context, actor, code, reason string) (info *CodeInfo, voided bool, err error) {
	if len(reason) > 500 {
		return nil, false, invalid("reason", "is at most 500 characters")
	}
	for attempt := 0; ; attempt++ {
		info, voided, err = s.voidOnce(ctx, actor, code, reason)
		if err != nil && attempt < 3 && isRetryable(err) {
			continue
		}
		return info, voided, err
	}
}

func (s *Store) voidOnce(ctx context.Context, actor, code, reason string) (*CodeInfo, bool, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	var id int64
	var stored string
	err = tx.QueryRowContext(ctx, findCode, code).Scan(&id, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("code %q: %w", code, ErrCodeNotFound)
	}
	if err != nil {
		return nil, false, fmt.Errorf("looking up a code: %w", err)
	}
	// The code's group, and for a unique code its range, locked as a claim locks it.
	var groupID int64
	var rng struct {
		ID     int64 `db:"id"`
		Group  int64 `db:"group_id"`
		NextID int64 `db:"next_id"`
	}
	err = tx.GetContext(ctx, &groupID, `SELECT group_id FROM promotion_codes WHERE code_id = $1`, id)
	unique := errors.Is(err, sql.ErrNoRows)
	if unique {
		err = tx.GetContext(ctx, &rng, `SELECT id, group_id, next_id FROM code_ranges
			WHERE upload_id = $1::bigint >> 32 AND $1 BETWEEN first_id AND last_id FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("code %q: %w", code, ErrCodeNotFound)
		}
		groupID = rng.Group
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the group of code %d: %w", id, err)
	}
	var exists bool
	if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM code_voids WHERE code_id = $1)`, id); err != nil {
		return nil, false, err
	}
	if exists {
		info, err := s.codeByID(ctx, tx, id)
		return info, false, err
	}
	before, err := s.codeByID(ctx, tx, id)
	if err != nil {
		return nil, false, err
	}
	if unique {
		if err := takeOutOfPool(ctx, tx, id, rng.ID, rng.NextID, groupID); err != nil {
			return nil, false, fmt.Errorf("voiding code %d: %w", id, err)
		}
	}
	// A promotion code has no range to lock: of two concurrent voids, the second finds
	// the first's row here and answers it.
	res, err := tx.ExecContext(ctx, `INSERT INTO code_voids (code_id, group_id, actor, reason) VALUES ($1, $2, $3, $4)
		ON CONFLICT (code_id) DO NOTHING`, id, groupID, actor, reason)
	if err != nil {
		return nil, false, fmt.Errorf("voiding code %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		tx.Rollback()
		info, err := s.codeByID(ctx, s.db, id)
		return info, false, err
	}
	after := map[string]any{"code_id": id, "code": stored, "reason": reason, "status_before": before.Status}
	if before.Holder != nil {
		after["customer_id"] = before.Holder.CustomerID
	}
	if err := appendActivity(ctx, tx, groupID, actor, ActionCodeVoid, nil, after); err != nil {
		return nil, false, err
	}
	info, err := s.codeByID(ctx, tx, id)
	if err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("voiding code %d: %w", id, err)
	}
	return info, true, nil
}

// takeOutOfPool removes unique code id, of range rangeID (locked FOR UPDATE by the
// caller, its cursor at nextID), from everything a claim draws from, unless it is issued.
func takeOutOfPool(ctx context.Context, tx *sqlx.Tx, id, rangeID, nextID, groupID int64) error {
	for round := 0; round < 3; round++ {
		// Issued (live): it stays with its holder, marked voided. A claim that issued it
		// a moment ago is seen here: this statement starts after the range lock was
		// granted, and a reservation the claim held is gone once its issue committed.
		var issued bool
		if err := tx.GetContext(ctx, &issued, `SELECT EXISTS (SELECT 1 FROM issues
			WHERE code_id = $1 AND kind = 'initial' AND released_at IS NULL AND NOT shared)`, id); err != nil {
			return err
		}
		if issued {
			return nil
		}
		// Ahead of the cursor: listed for the claim to skip, one code less in total. Only
		// these are listed: never issued, an undo deletes them with the range's rest.
		if id >= nextID {
			_, err := tx.ExecContext(ctx, `UPDATE code_ranges SET voided = voided || $2::bigint, total = total - 1 WHERE id = $1`, rangeID, id)
			return err
		}
		// On the free list (released earlier): off it. A returned code is out of taken.
		res, err := tx.ExecContext(ctx, `DELETE FROM returned_codes WHERE code_id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			_, err := tx.ExecContext(ctx, `UPDATE code_ranges SET total = total - 1 WHERE id = $1`, rangeID)
			return err
		}
		// Reserved by a claim in flight, or by one that crashed: take the reservation back
		// as RecoverReservations does (the claim's issue then finds it gone and records
		// nothing), return its other codes, and keep this one out (it was counted taken).
		var rsv struct {
			ID   int64         `db:"id"`
			Lo   pq.Int64Array `db:"span_lo"`
			Hi   pq.Int64Array `db:"span_hi"`
			Free pq.Int64Array `db:"free_ids"`
		}
		err = tx.GetContext(ctx, &rsv, `
			SELECT id, span_lo, span_hi, free_ids FROM reservations
			WHERE group_id = $1 AND ($2 = ANY (free_ids) OR EXISTS (
			    SELECT 1 FROM unnest(span_lo, span_hi) AS s(lo, hi) WHERE $2 BETWEEN s.lo AND s.hi))
			LIMIT 1 FOR UPDATE`, groupID, id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the claim's issue committed while this looked: read again
		}
		if err != nil {
			return err
		}
		if res, err := tx.ExecContext(ctx, `DELETE FROM reservations WHERE id = $1`, rsv.ID); err != nil {
			return err
		} else if n, _ := res.RowsAffected(); n != 1 {
			continue
		}
		var others []int64
		if err := tx.SelectContext(ctx, &others, `
			SELECT c.id FROM unnest($1::bigint[], $2::bigint[]) AS s(lo, hi)
			JOIN codes c ON c.id BETWEEN s.lo AND s.hi WHERE c.id <> $3
			UNION ALL SELECT f FROM unnest($4::bigint[]) f WHERE f <> $3`, rsv.Lo, rsv.Hi, id, rsv.Free); err != nil {
			return err
		}
		if err := returnCodes(ctx, tx, groupID, others); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE code_ranges SET total = total - 1, taken = taken - 1 WHERE id = $1`, rangeID)
		return err
	}
	// Below the cursor, not issued, not free, not reserved: nothing can draw it.
	return nil
}
