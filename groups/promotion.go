package groups

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/customers"
	"promopool/metrics"
	"promopool/offers"
)

// Errors of shared promotion codes.
var (
	// ErrNotShared: promotion codes belong to shared groups; a unique group's codes are
	// uploaded.
	ErrNotShared = errors.New("the group is not shared: promotion codes belong to groups of kind shared (upload codes into a unique group)")
	// ErrShared: a shared group has promotion codes, not uploads.
	ErrShared = errors.New("the group is shared: create its promotion codes instead of uploading codes")
	// ErrPromotionCodeNotFound: the group has no promotion code with that id.
	ErrPromotionCodeNotFound = errors.New("promotion code not found")
	// ErrCodeTaken: the code string is already a code of the account (in this or
	// another group). Codes are unique across all groups.
	ErrCodeTaken = errors.New("that code already exists in the account")
)

// Actions of the activity log on a shared group's codes.
const (
	ActionPromotionCodeCreate    = "promotion_code_create"
	ActionPromotionCodeUpdate    = "promotion_code_update"
	ActionPromotionCodeArchive   = "promotion_code_archive"
	ActionPromotionCodeUnarchive = "promotion_code_unarchive"
)

// GeneratedCodeAlphabet is what generated promotion codes are made of: capital letters
// and digits without the ones a reader confuses (0/O, 1/I/L, 5/S, 2/Z, 8/B, U/V).
const GeneratedCodeAlphabet = "ACDEFGHJKMNPQRTWXY34679"

// GeneratedCodeLength is a generated code's length: 23^10 ≈ 4·10^13 strings.
const GeneratedCodeLength = 10

// PromotionCode is a shared group's code (SPEC §10): one string redeemable by many
// customers, with optional restrictions of its own. The restrictions lock once the code
// has a redemption; active (archive, unarchive) stays editable.
type PromotionCode struct {
	// ID numbers the code in the API.
	ID      int64  `db:"id" json:"id"`
	GroupID int64  `db:"group_id" json:"group_id"`
	Code    string `db:"code" json:"code"`
	// Active is false for an archived code: validate answers voided, macros skip it.
	Active bool `db:"active" json:"active"`
	// FirstTimeOnly: only a customer with no live redemption anywhere may redeem it.
	FirstTimeOnly bool `db:"first_time_only" json:"first_time_only"`
	// CustomerID: only that customer may redeem it (nil: anyone).
	CustomerID *string `db:"customer_id" json:"customer_id"`
	// MaxRedemptions caps this code's redemptions (nil: only the group's caps).
	MaxRedemptions *int64 `db:"max_redemptions" json:"max_redemptions"`
	// ExpiresAt: the code is refused from then on (nil: only the group's window).
	ExpiresAt *time.Time `db:"expires_at" json:"expires_at"`
	// MinOrder is a minimum order for this code, in minor units of the order's currency.
	MinOrder  *int64    `db:"min_order" json:"min_order"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
	// Redemptions counts the code's held, succeeded and refunded redemptions.
	Redemptions int64 `db:"-" json:"redemptions"`
	// Locked: the code has a redemption, so only Active may change.
	Locked bool `db:"-" json:"locked"`

	codeID int64
	key    sql.NullString
}

// NullString is a JSON field that can be absent (Set false), null (Set, Value nil) or a string.
type NullString struct {
	Set   bool
	Value *string
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *NullString) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a string or null")
	}
	n.Value = &v
	return nil
}

// PromotionCodeInput is what a create or an edit of a promotion code sets. On create,
// an empty or absent Code is generated; on edit, Code cannot be sent and only the fields
// present change (null removes a restriction).
type PromotionCodeInput struct {
	Code           *string    `json:"code"`
	Active         *bool      `json:"active"`
	FirstTimeOnly  *bool      `json:"first_time_only"`
	CustomerID     NullString `json:"customer_id"`
	MaxRedemptions NullInt    `json:"max_redemptions"`
	ExpiresAt      NullTime   `json:"expires_at"`
	MinOrder       NullInt    `json:"min_order"`
}

// apply validates in and writes it over p; it returns the restriction fields it changed.
func (in *PromotionCodeInput) apply(p *PromotionCode) ([]string, error) {
	var changed []string
	if in.Active != nil {
		p.Active = *in.Active
	}
	if in.FirstTimeOnly != nil && *in.FirstTimeOnly != p.FirstTimeOnly {
		p.FirstTimeOnly = *in.FirstTimeOnly
		changed = append(changed, "first_time_only")
	}
	if in.CustomerID.Set {
		v := in.CustomerID.Value
		if v != nil {
			if err := customers.CheckCustomerID(*v); err != nil {
				return nil, invalid("customer_id", "%s", err)
			}
		}
		if !equalPtr(v, p.CustomerID) {
			p.CustomerID = v
			changed = append(changed, "customer_id")
		}
	}
	if in.MaxRedemptions.Set {
		v := in.MaxRedemptions.Value
		if v != nil && (*v < 1 || *v > 1_000_000_000_000) {
			return nil, invalid("max_redemptions", "must be between 1 and 1000000000000, got %d", *v)
		}
		if !equalPtr(v, p.MaxRedemptions) {
			p.MaxRedemptions = v
			changed = append(changed, "max_redemptions")
		}
	}
	if in.ExpiresAt.Set {
		v := in.ExpiresAt.Value
		if v != nil {
			t := v.UTC().Truncate(time.Microsecond)
			v = &t
		}
		if !equalTime(v, p.ExpiresAt) {
			p.ExpiresAt = v
			changed = append(changed, "expires_at")
		}
	}
	if in.MinOrder.Set {
		v := in.MinOrder.Value
		if v != nil && (*v < 0 || *v > offers.MaxAmount) {
			return nil, invalid("min_order", "must be between 0 and %d minor units, got %d", int64(offers.MaxAmount), *v)
		}
		if !equalPtr(v, p.MinOrder) {
			p.MinOrder = v
			changed = append(changed, "min_order")
		}
	}
	return changed, nil
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func equalTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// logged is the part of a promotion code the activity log records.
func (p *PromotionCode) logged() map[string]any {
	return map[string]any{"id": p.ID, "code": p.Code, "active": p.Active, "first_time_only": p.FirstTimeOnly,
		"customer_id": p.CustomerID, "max_redemptions": p.MaxRedemptions, "expires_at": p.ExpiresAt, "min_order": p.MinOrder}
}

// CodeRedemptionsFunc counts the redemptions (held, succeeded, refunded) of codes, by
// code id, inside the caller's transaction or on the pool. The checkout package provides
// it; without it every code counts 0.
type CodeRedemptionsFunc func(ctx context.Context, q sqlx.QueryerContext, codeIDs []int64) (map[int64]int64, error)

// selectPromotionCodes reads a group's promotion codes with their strings.
const selectPromotionCodes = `
SELECT pc.id, pc.group_id, c.code, pc.active, pc.first_time_only, pc.customer_id, pc.max_redemptions,
       pc.expires_at, pc.min_order, pc.created_at, pc.updated_at, pc.code_id, pc.idempotency_key
FROM promotion_codes pc JOIN codes c ON c.id = pc.code_id`

func scanPromotionCodes(rows *sqlx.Rows) ([]PromotionCode, error) {
	defer rows.Close()
	var out []PromotionCode
	for rows.Next() {
		var p PromotionCode
		if err := rows.Scan(&p.ID, &p.GroupID, &p.Code, &p.Active, &p.FirstTimeOnly, &p.CustomerID, &p.MaxRedemptions,
			&p.ExpiresAt, &p.MinOrder, &p.CreatedAt, &p.UpdatedAt, &p.codeID, &p.key); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// redemptions fills Redemptions and Locked of codes.
func (s *Store) redemptions(ctx context.Context, q sqlx.QueryerContext, codes []PromotionCode) error {
	if s.codeRedemptions == nil || len(codes) == 0 {
		return nil
	}
	ids := make([]int64, len(codes))
	for i := range codes {
		ids[i] = codes[i].codeID
	}
	n, err := s.codeRedemptions(ctx, q, ids)
	if err != nil {
		return fmt.Errorf("counting the redemptions of promotion codes: %w", err)
	}
	for i := range codes {
		codes[i].Redemptions = n[codes[i].codeID]
		codes[i].Locked = codes[i].Redemptions > 0
	}
	return nil
}

// lockShared locks a live group against deletion and says ErrNotShared unless it is shared.
func lockShared(ctx context.Context, tx *sqlx.Tx, id int64) error {
	var kind string
	err := tx.GetContext(ctx, &kind, `SELECT kind FROM groups WHERE id = $1 AND archived_at IS NULL FOR NO KEY UPDATE`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %d: %w", id, ErrGroupNotFound)
	}
	if err != nil {
		return fmt.Errorf("locking group %d: %w", id, err)
	}
	if kind != KindShared {
		return fmt.Errorf("group %d: %w", id, ErrNotShared)
	}
	return nil
}

// CreatePromotionCode adds a promotion code to a shared group and logs it. An empty or
// absent code is generated (crypto/rand over GeneratedCodeAlphabet). It is safe to run
// twice: under the same idempotency key (or, without one, for the same code string) a
// create that was already done answers the code it made, with created false; the key
// sent again with another request is ErrIdempotencyConflict.
// Errors: ErrGroupNotFound, ErrNotShared, ErrCodeTaken, ErrIdempotencyConflict,
// *InvalidError.
func (s *Store) CreatePromotionCode(ctx context.Context, actor string, groupID int64, key string, in PromotionCodeInput) (p *PromotionCode, created bool, err error) {
	if len(key) > 200 {
		return nil, false, invalid("idempotency_key", "must be 1–200 bytes")
	}
	var code string
	if in.Code != nil {
		code = strings.TrimSpace(*in.Code)
		if code != "" {
			if why := checkCode(code); why != "" {
				return nil, false, invalid("code", "%s", why)
			}
		}
	}
	want := PromotionCode{Active: true}
	if _, err := in.apply(&want); err != nil {
		return nil, false, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	if err := lockShared(ctx, tx, groupID); err != nil {
		return nil, false, err
	}
	// A retry: the key's code, or (without a key) the same string in this group.
	var prior []PromotionCode
	if key != "" {
		prior, err = s.queryPromotionCodes(ctx, tx, ` WHERE pc.group_id = $1 AND pc.idempotency_key = $2`, groupID, key)
	} else if code != "" {
		prior, err = s.queryPromotionCodes(ctx, tx, ` WHERE pc.group_id = $1 AND lower(c.code) = lower($2::text COLLATE "C")`, groupID, code)
	}
	if err != nil {
		return nil, false, err
	}
	if len(prior) == 1 {
		p := &prior[0]
		if (code != "" && p.Code != code) || !sameRestrictions(p, &want) {
			if key == "" {
				return nil, false, fmt.Errorf("code %q: %w", code, ErrCodeTaken)
			}
			return nil, false, fmt.Errorf("idempotency key already made promotion code %d with other settings: %w", p.ID, ErrIdempotencyConflict)
		}
		return p, false, s.redemptions(ctx, tx, prior)
	}
	codeID, code, err := insertPromotionCodeString(ctx, tx, code)
	if err != nil {
		return nil, false, err
	}
	var k sql.NullString
	if key != "" {
		k = sql.NullString{String: key, Valid: true}
	}
	var id int64
	err = tx.GetContext(ctx, &id, `
		INSERT INTO promotion_codes (code_id, group_id, active, first_time_only, customer_id, max_redemptions, expires_at, min_order, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		codeID, groupID, want.Active, want.FirstTimeOnly, want.CustomerID, want.MaxRedemptions, want.ExpiresAt, want.MinOrder, k)
	if err != nil {
		return nil, false, fmt.Errorf("creating a promotion code in group %d: %w", groupID, err)
	}
	got, err := s.queryPromotionCodes(ctx, tx, ` WHERE pc.id = $1`, id)
	if err != nil {
		return nil, false, err
	}
	if err := appendActivity(ctx, tx, groupID, actor, ActionPromotionCodeCreate, nil, got[0].logged()); err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, err
	}
	return &got[0], true, nil
}

func sameRestrictions(a, b *PromotionCode) bool {
	return a.Active == b.Active && a.FirstTimeOnly == b.FirstTimeOnly && equalPtr(a.CustomerID, b.CustomerID) &&
		equalPtr(a.MaxRedemptions, b.MaxRedemptions) && equalTime(a.ExpiresAt, b.ExpiresAt) && equalPtr(a.MinOrder, b.MinOrder)
}

// insertPromotionCode stores a promotion code's string as a row of codes (id 2^62 +
// promotion_code_ids, migration 0020), generating one when code is empty. A string
// already stored, in any case (codes compare case-insensitively, migration 0024), is
// ErrCodeTaken; a generated one that is taken is drawn again.
func insertPromotionCodeString(ctx context.Context, tx *sqlx.Tx, code string) (int64, string, error) {
	const insert = `
		INSERT INTO codes (id, code) VALUES ((1::bigint << 62) + nextval('promotion_code_ids'), $1)
		ON CONFLICT (lower(code), case_dup) DO NOTHING RETURNING id`
	for attempt := 0; attempt < 10; attempt++ {
		c := code
		if c == "" {
			var err error
			if c, err = GenerateCode(); err != nil {
				return 0, "", err
			}
		}
		var id int64
		err := tx.GetContext(ctx, &id, insert, c)
		switch {
		case err == nil:
			return id, c, nil
		case !errors.Is(err, sql.ErrNoRows):
			return 0, "", fmt.Errorf("storing a promotion code: %w", err)
		case code != "":
			return 0, "", fmt.Errorf("code %q: %w", code, ErrCodeTaken)
		}
	}
	return 0, "", errors.New("storing a promotion code: 10 generated codes in a row were taken")
}

// GenerateCode returns a new random code of GeneratedCodeLength characters of
// GeneratedCodeAlphabet, from crypto/rand (uniform: each character drawn with
// rand.Int, no modulo bias).
func GenerateCode() (string, error) {
	b := make([]byte, GeneratedCodeLength)
	max := big.NewInt(int64(len(GeneratedCodeAlphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generating a code: %w", err)
		}
		b[i] = GeneratedCodeAlphabet[n.Int64()]
	}
	return string(b), nil
}

func (s *Store) queryPromotionCodes(ctx context.Context, q sqlx.QueryerContext, where string, args ...any) ([]PromotionCode, error) {
	rows, err := q.QueryxContext(ctx, selectPromotionCodes+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading promotion codes: %w", err)
	}
	return scanPromotionCodes(rows)
}

// PromotionCodePage is one page of a group's promotion codes, oldest first.
type PromotionCodePage struct {
	PromotionCodes []PromotionCode `json:"promotion_codes"`
	// NextCursor continues the listing (pass it as cursor); empty on the last page.
	NextCursor string `json:"next_cursor"`
}

// PromotionCodes lists a group's promotion codes in creation order, limit (1–500,
// default 100) after cursor (empty: from the first). Errors: ErrGroupNotFound,
// *InvalidError (a cursor this listing did not give).
func (s *Store) PromotionCodes(ctx context.Context, groupID int64, cursor string, limit int) (*PromotionCodePage, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	var after int64
	if cursor != "" {
		v, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || v < 0 {
			return nil, invalid("cursor", "%q is not a cursor of this listing", cursor)
		}
		after = v
	}
	if _, err := s.Get(ctx, groupID); err != nil {
		return nil, err
	}
	list, err := s.queryPromotionCodes(ctx, s.db, ` WHERE pc.group_id = $1 AND pc.id > $2 ORDER BY pc.id LIMIT $3`, groupID, after, limit+1)
	if err != nil {
		return nil, err
	}
	page := &PromotionCodePage{PromotionCodes: list}
	if len(list) > limit {
		page.PromotionCodes = list[:limit]
		page.NextCursor = strconv.FormatInt(list[limit-1].ID, 10)
	}
	if page.PromotionCodes == nil {
		page.PromotionCodes = []PromotionCode{}
	}
	return page, s.redemptions(ctx, s.db, page.PromotionCodes)
}

// UpdatePromotionCode changes the fields of in that are set and logs the difference.
// Once the code has a redemption only Active may change: an edit changing a restriction
// is an *offers.LockedError naming the fields (a trigger of migration 0020 enforces the
// same rule on the row). Errors: ErrGroupNotFound, ErrNotShared,
// ErrPromotionCodeNotFound, *offers.LockedError, *InvalidError.
func (s *Store) UpdatePromotionCode(ctx context.Context, actor string, groupID, id int64, in PromotionCodeInput) (*PromotionCode, error) {
	if in.Code != nil {
		return nil, invalid("code", "cannot change: create a new promotion code and archive this one")
	}
	action := ActionPromotionCodeUpdate
	return s.changePromotionCode(ctx, actor, groupID, id, in, action)
}

// ArchivePromotionCode takes a promotion code out of use (validate answers voided, the
// macros skip it); UnarchivePromotionCode puts it back. Both are allowed whatever the
// code's redemptions, and logged. Errors: as UpdatePromotionCode.
func (s *Store) ArchivePromotionCode(ctx context.Context, actor string, groupID, id int64) (*PromotionCode, error) {
	off := false
	return s.changePromotionCode(ctx, actor, groupID, id, PromotionCodeInput{Active: &off}, ActionPromotionCodeArchive)
}

// UnarchivePromotionCode puts an archived promotion code back in use.
func (s *Store) UnarchivePromotionCode(ctx context.Context, actor string, groupID, id int64) (*PromotionCode, error) {
	on := true
	return s.changePromotionCode(ctx, actor, groupID, id, PromotionCodeInput{Active: &on}, ActionPromotionCodeUnarchive)
}

// codeLockedState is the SQLSTATE of migration 0020's promotion_code_locked trigger.
const codeLockedState = "PL001"

func (s *Store) changePromotionCode(ctx context.Context, actor string, groupID, id int64, in PromotionCodeInput, action string) (*PromotionCode, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := lockShared(ctx, tx, groupID); err != nil {
		return nil, err
	}
	list, err := s.queryPromotionCodes(ctx, tx, ` WHERE pc.group_id = $1 AND pc.id = $2 FOR NO KEY UPDATE OF pc`, groupID, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("promotion code %d of group %d: %w", id, groupID, ErrPromotionCodeNotFound)
	}
	if err := s.redemptions(ctx, tx, list); err != nil {
		return nil, err
	}
	p := &list[0]
	before := p.logged()
	changed, err := in.apply(p)
	if err != nil {
		return nil, err
	}
	if len(changed) > 0 && p.Locked {
		return nil, fmt.Errorf("promotion code %d: %w", id, &offers.LockedError{Fields: changed})
	}
	b, a := diff(before, p.logged())
	if len(a) == 0 {
		return p, tx.Commit()
	}
	err = tx.GetContext(ctx, &p.UpdatedAt, `
		UPDATE promotion_codes SET active = $2, first_time_only = $3, customer_id = $4, max_redemptions = $5,
		       expires_at = $6, min_order = $7, updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		id, p.Active, p.FirstTimeOnly, p.CustomerID, p.MaxRedemptions, p.ExpiresAt, p.MinOrder)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == codeLockedState {
		// A redemption committed between the read above and this update.
		return nil, fmt.Errorf("promotion code %d: %w", id, &offers.LockedError{Fields: changed})
	}
	if err != nil {
		return nil, fmt.Errorf("updating promotion code %d: %w", id, err)
	}
	b["id"], a["id"] = p.ID, p.ID
	b["code"], a["code"] = p.Code, p.Code
	if err := appendActivity(ctx, tx, groupID, actor, action, b, a); err != nil {
		return nil, err
	}
	return p, tx.Commit()
}

// usablePromotionCode is the promotion code of group $2 a customer u.customer_id is
// given: the first (oldest) that is active, not voided, not expired at $5, and not
// restricted to another customer. Read through promotion_codes_group (group_id, code_id).
const usablePromotionCode = `
    SELECT pc.code_id FROM promotion_codes pc
    WHERE pc.group_id = $2 AND pc.active AND (pc.expires_at IS NULL OR pc.expires_at > $5)
      AND (pc.customer_id IS NULL OR pc.customer_id = u.customer_id)
      AND NOT EXISTS (SELECT 1 FROM code_voids v WHERE v.code_id = pc.code_id)
    ORDER BY pc.code_id LIMIT 1`

// issueSharedCodes gives each customer of $1 the usable promotion code of group $2 and
// records it as their initial issue under scope $3 (mailing $4), shared: one statement.
// A customer already holding a code of the group under the scope keeps it (ON
// CONFLICT on issues_scope_initial); the terms lock with the first issue, as for unique
// codes. It returns every customer given a code, and whether this statement issued it.
const issueSharedCodes = `
WITH pick AS (
    SELECT u.customer_id, p.code_id FROM unnest($1::text[]) AS u(customer_id)
    CROSS JOIN LATERAL (` + usablePromotionCode + `) p),
ins AS (
    INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind, shared)
    SELECT customer_id, $2, code_id, $3, $4, 'initial', true FROM pick
    ON CONFLICT (customer_id, group_id, scope) WHERE kind = 'initial' AND released_at IS NULL DO NOTHING
    RETURNING customer_id),
lock AS (UPDATE groups SET terms_locked_at = now() WHERE id = $2 AND terms_locked_at IS NULL AND EXISTS (SELECT 1 FROM ins))
SELECT pick.customer_id, c.code, ins.customer_id IS NOT NULL
FROM pick JOIN codes c ON c.id = pick.code_id LEFT JOIN ins ON ins.customer_id = pick.customer_id`

// issueShared issues a shared group's promotion code to the customers of rest (who hold
// none of the group's codes under the scope, as far as the claim read): those the group
// has no usable code for are uncovered; those a concurrent identical claim served
// first get that claim's code.
func (s *Store) issueShared(ctx context.Context, req ClaimRequest, rest []string, res *ClaimResult) error {
	st, err := s.stmt(ctx, issueSharedCodes)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, pq.Array(rest), req.GroupID, req.Scope, req.MailingID, s.now())
	if err != nil {
		return fmt.Errorf("issuing promotion codes: %w", err)
	}
	defer rows.Close()
	var raced []string
	issued := 0
	for rows.Next() {
		var cust, code string
		var fresh bool
		if err := rows.Scan(&cust, &code, &fresh); err != nil {
			return err
		}
		if fresh {
			res.Codes[cust] = code
			issued++
		} else {
			raced = append(raced, cust)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("issuing promotion codes: %w", err)
	}
	if len(raced) > 0 {
		if err := s.existingCodes(ctx, nil, req.GroupID, req.Scope, raced, res); err != nil {
			return err
		}
		for _, c := range raced {
			if _, ok := res.Codes[c]; ok {
				res.Existing = append(res.Existing, c)
			}
		}
	}
	for _, c := range rest {
		if _, ok := res.Codes[c]; !ok {
			res.Uncovered = append(res.Uncovered, c)
		}
	}
	if issued > 0 {
		metrics.CodesIssued.WithLabelValues(strconv.FormatInt(req.GroupID, 10)).Add(float64(issued))
	}
	return nil
}

// removePromotionCodes deletes a shared group's promotion codes and their strings (the
// group is being removed: none was issued or redeemed). Returns how many.
func removePromotionCodes(ctx context.Context, tx *sqlx.Tx, groupID int64) (int64, error) {
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, `DELETE FROM promotion_codes WHERE group_id = $1 RETURNING code_id`, groupID); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM code_voids WHERE code_id = ANY($1)`, pq.Array(ids)); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM codes WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
		return 0, err
	}
	return int64(len(ids)), nil
}

// Covers reports whether the group can give a code to each of n more customers: a
// unique group holds n active codes; a shared group has a promotion code in use (every
// customer gets it). Mailings check it before they start and resume.
func (g *Group) Covers(n int64) bool {
	if g.Kind == KindShared {
		return g.PromotionCodesActive > 0
	}
	return g.Active >= n
}
