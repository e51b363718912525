// Package groups keeps groups of promo codes: creating and editing them, uploading
// codes into them (streamed with COPY), undoing uploads, and the activity log of every
// change. Codes are stored once across all groups.
package groups

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/egress"
	"promopool/offers"
)

// Store is the groups' data layer over PostgreSQL.
type Store struct {
	db             *sqlx.DB
	now            func() time.Time
	exampleTimeout time.Duration
	stmts          *stmtSet
	hooks          claimHooks
	webhooks       egress.Policy
	reader         Reader
	usageFn        UsageFunc
	// codeRedemptions counts promotion codes' redemptions (Config.CodeRedemptions).
	codeRedemptions CodeRedemptionsFunc
}

// Config configures a Store.
type Config struct {
	// Now is the clock used for expiry decisions (default time.Now); tests inject one.
	Now func() time.Time
	// ExampleTimeout bounds the best-effort query that finds an upload's duplicate
	// examples (default 3s; it counts in whole milliseconds); past it the report says
	// its examples are incomplete. The load itself is never bounded.
	ExampleTimeout time.Duration
	// Webhooks is the address policy an alert_webhook must pass when it is saved
	// (WEBHOOK_ALLOW_PRIVATE; default: public addresses only). Delivery checks again,
	// at dial time.
	Webhooks egress.Policy
	// Reader runs the exports' queries (default: db); see reader.go.
	Reader Reader
	// Usage reads what a group has used of its limits (package checkout provides it);
	// nil: nothing is used, every cap may be lowered to 1.
	Usage UsageFunc
	// CodeRedemptions counts promotion codes' redemptions (package checkout provides it):
	// a code with one is locked and says so; nil: every code counts 0 (the database's
	// trigger still refuses a restriction edit of a redeemed code).
	CodeRedemptions CodeRedemptionsFunc
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB, cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Reader == nil {
		cfg.Reader = db
	}
	return &Store{db: db, reader: cfg.Reader, now: cfg.Now, exampleTimeout: cmp.Or(cfg.ExampleTimeout, 3*time.Second),
		stmts: &stmtSet{m: map[string]*sql.Stmt{}}, webhooks: cfg.Webhooks, usageFn: cfg.Usage, codeRedemptions: cfg.CodeRedemptions}
}

// Balance state of a group, as the list shows it.
const (
	StateOK    = "ok"    // above its threshold (or no threshold and codes left)
	StateLow   = "low"   // active balance at or under the threshold
	StateEmpty = "empty" // no active code left
)

// Group is a group of promo codes with its counters.
type Group struct {
	ID                  int64          `db:"id" json:"id"`
	Name                string         `db:"name" json:"name"`
	Description         string         `db:"description" json:"description"`
	LowBalanceThreshold *int64         `db:"low_balance_threshold" json:"low_balance_threshold"`
	AlertEmails         pq.StringArray `db:"alert_emails" json:"alert_emails"`
	AlertWebhook        string         `db:"alert_webhook" json:"alert_webhook"`
	CreatedAt           time.Time      `db:"created_at" json:"created_at"`
	UpdatedAt           time.Time      `db:"updated_at" json:"updated_at"`
	ArchivedAt          *time.Time     `db:"archived_at" json:"archived_at,omitempty"`
	// OnePerCustomer: a customer holding a live code of the group gets that code again
	// (a repeat) in any mailing, render or direct issue, never a second one.
	OnePerCustomer bool `db:"one_per_customer" json:"one_per_customer"`
	// LowBalancePercent is an optional threshold as a percentage of Total; the effective
	// threshold is the larger of the two (EffectiveThreshold).
	LowBalancePercent *float64 `db:"low_balance_percent" json:"low_balance_percent"`
	// Total is every code the group holds, issued or not, expired or not.
	Total int64 `db:"total" json:"total"`
	// Active is the balance: codes not issued and not expired.
	Active int64 `db:"active" json:"active"`
	// PromotionCodes counts a shared group's promotion codes (0 for a unique group).
	PromotionCodes int64 `db:"promotion_codes" json:"promotion_codes"`
	// PromotionCodesActive counts the promotion codes in use: active (not archived),
	// not voided and not expired.
	PromotionCodesActive int64 `db:"promotion_codes_active" json:"promotion_codes_active"`
	// Issued counts codes handed out.
	Issued int64 `db:"issued" json:"issued"`
	// Expired counts codes that expired before they were issued.
	Expired int64 `db:"expired" json:"expired"`
	// State is StateOK, StateLow or StateEmpty.
	State string `db:"-" json:"balance_state"`
	// Metadata is free-form string keys and values (at most MaxMetadataKeys keys of
	// MaxMetadataKeyLen characters, values of MaxMetadataValueLen).
	Metadata Metadata `db:"metadata" json:"metadata"`
	// Columns are the extra upload columns the group declares (nil: none declared, any
	// accepted): an upload with another column, and a template naming another, are refused.
	Columns pq.StringArray `db:"code_columns" json:"columns"`
	// The offer: kind, status, terms, limits (SPEC §10).
	offerFields
}

// EffectiveThreshold is the low-balance threshold in codes: the larger of the absolute
// threshold and LowBalancePercent of Total (rounded down); nil when neither is set.
func (g *Group) EffectiveThreshold() *int64 {
	var t *int64
	if g.LowBalanceThreshold != nil {
		v := *g.LowBalanceThreshold
		t = &v
	}
	if g.LowBalancePercent != nil {
		v := int64(*g.LowBalancePercent * float64(g.Total) / 100)
		if t == nil || v > *t {
			t = &v
		}
	}
	return t
}

func (g *Group) setState() {
	t := g.EffectiveThreshold()
	switch {
	case g.Active == 0:
		g.State = StateEmpty
	case t != nil && g.Active <= *t:
		g.State = StateLow
	default:
		g.State = StateOK
	}
}

// selectGroups reads groups with their counters, summed from code_ranges (a handful of
// rows per group) rather than counted over codes, so a list of groups holding hundreds
// of millions of codes costs a few index lookups per group. $1 is "now" for expiry.
const selectGroups = `
SELECT ` + groupColumns + `,
       ` + counterColumns + `, ` + promotionCounterColumns + `
FROM groups g
LEFT JOIN LATERAL (
    SELECT ` + rangeSums + `
    FROM code_ranges r WHERE r.group_id = g.id
) s ON true
` + promotionCounts

// List returns the live (not archived) groups ordered by name.
func (s *Store) List(ctx context.Context) ([]Group, error) {
	var out []Group
	if err := s.db.SelectContext(ctx, &out, selectGroups+` WHERE g.archived_at IS NULL ORDER BY lower(g.name), g.id`, s.now()); err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	now := s.now()
	for i := range out {
		out[i].State = ""
		out[i].setState()
		out[i].derive(now)
	}
	return out, nil
}

// Get returns a live group by id, or ErrGroupNotFound.
func (s *Store) Get(ctx context.Context, id int64) (*Group, error) {
	return getGroup(ctx, s.db, s.now(), `g.id = $2 AND g.archived_at IS NULL`, id)
}

// GetByName returns the live group with that name (case-insensitively), or ErrGroupNotFound.
func (s *Store) GetByName(ctx context.Context, name string) (*Group, error) {
	return getGroup(ctx, s.db, s.now(), `lower(g.name) = lower($2) AND g.archived_at IS NULL`, name)
}

func getGroup(ctx context.Context, q sqlx.QueryerContext, now time.Time, where string, arg any) (*Group, error) {
	var g Group
	err := sqlx.GetContext(ctx, q, &g, selectGroups+` WHERE `+where, now, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %v: %w", arg, ErrGroupNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading group %v: %w", arg, err)
	}
	g.setState()
	g.derive(now)
	return &g, nil
}

// Input is a group's editable fields. On create, unset fields take their defaults;
// on update, only the fields that are set change.
type Input struct {
	Name                *string  `json:"name"`
	Description         *string  `json:"description"`
	LowBalanceThreshold NullInt  `json:"low_balance_threshold"`
	AlertEmails         []string `json:"alert_emails"`
	AlertWebhook        *string  `json:"alert_webhook"`
	// LowBalancePercent is a threshold as a percentage (0 < p ≤ 100) of the group's total.
	LowBalancePercent NullFloat `json:"low_balance_percent"`
	// Kind is unique (default) or shared; set on create only.
	Kind *string `json:"kind"`
	// Status is draft, active (default) or paused.
	Status *string `json:"status"`
	// CodeBinding is holder (default) or bearer: who may redeem a unique code.
	CodeBinding *string `json:"code_binding"`
	// Terms are the discount terms (null removes them); locked once a code was issued.
	Terms NullTerms `json:"terms"`
	// Limits are the caps, window and budget; only the fields present change.
	Limits *LimitsInput `json:"limits"`
	// OnePerCustomer sets Group.OnePerCustomer.
	OnePerCustomer *bool `json:"one_per_customer"`
	// Metadata replaces the group's metadata as a whole ({} clears it).
	Metadata *map[string]string `json:"metadata"`
	// Columns declares the extra upload columns (null: none declared).
	Columns NullStrings `json:"columns"`
}

// NullInt is a JSON field that can be absent (Set false), null (Set, Value nil) or a number.
type NullInt struct {
	Set   bool
	Value *int64
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *NullInt) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v int64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a whole number or null")
	}
	n.Value = &v
	return nil
}

// NullFloat is a JSON field that can be absent (Set false), null (Set, Value nil) or a number.
type NullFloat struct {
	Set   bool
	Value *float64
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *NullFloat) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a number or null")
	}
	n.Value = &v
	return nil
}

// apply validates in and writes it over g.
func (in *Input) apply(g *Group) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if err := checkName(name); err != nil {
			return err
		}
		g.Name = name
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > 2000 {
			return invalid("description", "longer than 2000 characters")
		}
		g.Description = *in.Description
	}
	if in.LowBalanceThreshold.Set {
		if v := in.LowBalanceThreshold.Value; v != nil && *v < 0 {
			return invalid("low_balance_threshold", "must be 0 or more, got %d", *v)
		}
		g.LowBalanceThreshold = in.LowBalanceThreshold.Value
	}
	if in.LowBalancePercent.Set {
		if v := in.LowBalancePercent.Value; v != nil && (*v <= 0 || *v > 100) {
			return invalid("low_balance_percent", "must be more than 0 and at most 100 (rounded to 2 decimals), got %v", *v)
		}
		g.LowBalancePercent = in.LowBalancePercent.Value
	}
	if in.OnePerCustomer != nil {
		g.OnePerCustomer = *in.OnePerCustomer
	}
	if err := in.applyColumns(g); err != nil {
		return err
	}
	if in.AlertEmails != nil {
		emails := make([]string, 0, len(in.AlertEmails))
		for i, e := range in.AlertEmails {
			addr, err := mail.ParseAddress(strings.TrimSpace(e))
			if err != nil {
				return invalid(fmt.Sprintf("alert_emails[%d]", i), "%q is not an email address", e)
			}
			emails = append(emails, addr.Address)
		}
		g.AlertEmails = emails
	}
	if in.AlertWebhook != nil {
		w := strings.TrimSpace(*in.AlertWebhook)
		if w != "" {
			u, err := url.Parse(w)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return invalid("alert_webhook", "%q is not an http(s) URL", w)
			}
		}
		g.AlertWebhook = w
	}
	return nil
}

// checkWebhook holds a new alert_webhook to the address policy before it is stored:
// a loopback, private, link-local (cloud metadata) or otherwise non-public address is
// refused unless WEBHOOK_ALLOW_PRIVATE names it. It runs before any transaction (it
// may resolve the host) and is not the last word: the delivery checks the address it
// actually connects to. The message shows the URL without its query or password.
func (s *Store) checkWebhook(ctx context.Context, in Input) error {
	if in.AlertWebhook == nil {
		return nil
	}
	w := strings.TrimSpace(*in.AlertWebhook)
	if w == "" {
		return nil
	}
	if err := s.webhooks.CheckURL(ctx, w); err != nil {
		return invalid("alert_webhook", "%s: %v", egress.RedactURL(w), err)
	}
	return nil
}

func checkName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return invalid("name", "is required")
	case n > 200:
		return invalid("name", "longer than 200 characters (%d)", n)
	case !utf8.ValidString(name):
		return invalid("name", "is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return invalid("name", "contains a control character (U+%04X)", r)
		}
	}
	return nil
}

// Create makes a group and logs it. Errors: *InvalidError, ErrNameTaken.
func (s *Store) Create(ctx context.Context, actor string, in Input) (*Group, error) {
	var g Group
	if in.Name == nil {
		return nil, invalid("name", "is required")
	}
	if err := in.apply(&g); err != nil {
		return nil, err
	}
	g.Kind, g.StoredStatus, g.CodeBinding = KindUnique, StatusActive, BindingHolder
	if err := in.applyOffer(&g, true, offers.Usage{}); err != nil {
		return nil, err
	}
	if err := s.checkWebhook(ctx, in); err != nil {
		return nil, err
	}
	if g.AlertEmails == nil {
		g.AlertEmails = pq.StringArray{}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	err = tx.GetContext(ctx, &g.ID, `
		INSERT INTO groups (name, description, low_balance_threshold, alert_emails, alert_webhook, low_balance_percent,
		                    kind, status, code_binding, terms, max_redemptions, max_per_customer, starts_at, ends_at, budget, one_per_customer,
		                    metadata, code_columns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id`,
		g.Name, g.Description, g.LowBalanceThreshold, g.AlertEmails, g.AlertWebhook, g.LowBalancePercent,
		g.Kind, g.StoredStatus, g.CodeBinding, g.TermsCol, g.MaxRedemptions, g.MaxPerCustomer, g.StartsAt, g.EndsAt, g.Budget, g.OnePerCustomer,
		g.Metadata, g.Columns)
	if isUniqueViolation(err, "groups_live_name") {
		return nil, fmt.Errorf("creating group %q: %w", g.Name, ErrNameTaken)
	}
	if err != nil {
		return nil, fmt.Errorf("creating group: %w", err)
	}
	if err := appendActivity(ctx, tx, g.ID, actor, ActionCreate, nil, editable(&g)); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.Get(ctx, g.ID)
}

// Update changes the set fields of a live group and logs the difference.
// Errors: ErrGroupNotFound, *InvalidError, ErrNameTaken.
func (s *Store) Update(ctx context.Context, actor string, id int64, in Input) (*Group, error) {
	if err := s.checkWebhook(ctx, in); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	g, err := lockGroup(ctx, tx, s.now(), id, "FOR NO KEY UPDATE")
	if err != nil {
		return nil, err
	}
	before := editable(g)
	wasOnePer := g.OnePerCustomer
	if err := in.apply(g); err != nil {
		return nil, err
	}
	var used offers.Usage
	if in.Terms.Set || in.Limits != nil {
		if used, err = s.usage(ctx, tx, id); err != nil {
			return nil, err
		}
	}
	if err := in.applyOffer(g, false, used); err != nil {
		return nil, err
	}
	after := editable(g)
	b, a := diff(before, after)
	if len(a) == 0 {
		return s.Get(ctx, id)
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE groups SET name = $2, description = $3, low_balance_threshold = $4,
		       alert_emails = $5, alert_webhook = $6, low_balance_percent = $7,
		       status = $8, code_binding = $9, terms = $10, max_redemptions = $11, max_per_customer = $12,
		       starts_at = $13, ends_at = $14, budget = $15, one_per_customer = $16, metadata = $17, code_columns = $18, updated_at = now()
		WHERE id = $1`,
		id, g.Name, g.Description, g.LowBalanceThreshold, g.AlertEmails, g.AlertWebhook, g.LowBalancePercent,
		g.StoredStatus, g.CodeBinding, g.TermsCol, g.MaxRedemptions, g.MaxPerCustomer, g.StartsAt, g.EndsAt, g.Budget, g.OnePerCustomer,
		g.Metadata, g.Columns)
	if isUniqueViolation(err, "groups_live_name") {
		return nil, fmt.Errorf("renaming group %d to %q: %w", id, g.Name, ErrNameTaken)
	}
	if err != nil {
		return nil, fmt.Errorf("updating group %d: %w", id, err)
	}
	if g.OnePerCustomer != wasOnePer {
		if err := setOnePerCustomer(ctx, tx, id, g.OnePerCustomer); err != nil {
			return nil, err
		}
	}
	if err := appendActivity(ctx, tx, id, actor, ActionUpdate, b, a); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// DeleteResult says what Delete did.
type DeleteResult struct {
	// Archived is true when the group had issued codes: it left the list and the macros,
	// its issued codes and their history stay. False means the group was removed.
	Archived bool `json:"archived"`
	// RemovedCodes counts the unissued codes that were deleted.
	RemovedCodes int64 `json:"removed_codes"`
}

// Delete removes a group, or archives it when any of its codes was issued; either way
// its unissued codes are deleted (so they can be uploaded again elsewhere).
// Errors: ErrGroupNotFound.
func (s *Store) Delete(ctx context.Context, actor string, id int64) (*DeleteResult, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// FOR UPDATE waits for uploads in flight (they hold FOR KEY SHARE on the group).
	g, err := lockGroup(ctx, tx, s.now(), id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	removed, err := removeUntaken(ctx, tx, `group_id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("deleting group %d: %w", id, err)
	}
	// A shared group's codes are issued without leaving a pool: its terms lock says
	// whether any was issued (or redeemed).
	res := &DeleteResult{RemovedCodes: removed, Archived: g.Issued > 0 || (g.Kind == KindShared && g.TermsLockedAt != nil)}
	if !res.Archived && g.Kind == KindShared {
		n, err := removePromotionCodes(ctx, tx, id)
		if err != nil {
			return nil, fmt.Errorf("deleting group %d: %w", id, err)
		}
		res.RemovedCodes += n
	}
	before := editable(g)
	before["total"], before["issued"] = g.Total, g.Issued
	if res.Archived {
		_, err = tx.ExecContext(ctx, `UPDATE groups SET archived_at = now(), updated_at = now() WHERE id = $1`, id)
		if err == nil {
			err = appendActivity(ctx, tx, id, actor, ActionArchive, before, map[string]any{"removed_codes": removed})
		}
	} else {
		_, err = tx.ExecContext(ctx, `DELETE FROM groups WHERE id = $1`, id)
		if err == nil {
			err = appendActivity(ctx, tx, id, actor, ActionDelete, before, map[string]any{"removed_codes": removed})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("deleting group %d: %w", id, err)
	}
	return res, tx.Commit()
}

// lockGroup reads a live group with its counters under a row lock of the given strength.
func lockGroup(ctx context.Context, tx *sqlx.Tx, now time.Time, id int64, lock string) (*Group, error) {
	var locked int64
	err := tx.GetContext(ctx, &locked, `SELECT id FROM groups WHERE id = $1 AND archived_at IS NULL `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %d: %w", id, ErrGroupNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("locking group %d: %w", id, err)
	}
	return getGroup(ctx, tx, now, `g.id = $2`, id)
}

// removeUntaken deletes the codes not yet taken from the ranges matching where ($1 is
// its argument) and shrinks those ranges to what was taken; ranges left empty go.
// Claims lock ranges FOR UPDATE, so this waits for claims in flight and they never see
// a range half-shrunk. Returns how many codes were deleted.
func removeUntaken(ctx context.Context, tx *sqlx.Tx, where string, arg any) (int64, error) {
	type rng struct {
		ID     int64         `db:"id"`
		NextID int64         `db:"next_id"`
		LastID int64         `db:"last_id"`
		Taken  int64         `db:"taken"`
		Voided pq.Int64Array `db:"voided"`
	}
	var ranges []rng
	if err := tx.SelectContext(ctx, &ranges, `SELECT id, next_id, last_id, taken, voided FROM code_ranges WHERE `+where+` ORDER BY id FOR UPDATE`, arg); err != nil {
		return 0, err
	}
	var removed int64
	for _, r := range ranges {
		n, err := removeReturned(ctx, tx, r.ID) // codes returned to the pool are untaken too
		if err != nil {
			return 0, err
		}
		removed += n
		if len(r.Voided) > 0 {
			// Codes voided before they were issued go too, with their voids (they were
			// already out of total, so not counted as removed).
			if _, err := tx.ExecContext(ctx, `DELETE FROM code_voids WHERE code_id = ANY($1)`, r.Voided); err != nil {
				return 0, err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM codes WHERE id = ANY($1)`, r.Voided); err != nil {
				return 0, err
			}
		}
		if r.NextID <= r.LastID {
			res, err := tx.ExecContext(ctx, `DELETE FROM codes WHERE id BETWEEN $1 AND $2`, r.NextID, r.LastID)
			if err != nil {
				return 0, err
			}
			n, _ := res.RowsAffected()
			removed += n
		}
		if r.Taken == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM code_ranges WHERE id = $1`, r.ID)
			if err != nil {
				return 0, err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE code_ranges SET total = taken, last_id = next_id - 1 WHERE id = $1`, r.ID); err != nil {
			return 0, err
		}
	}
	return removed, nil
}

// editable is the part of a group the activity log records.
func editable(g *Group) map[string]any {
	emails := []string(g.AlertEmails)
	if emails == nil {
		emails = []string{}
	}
	return map[string]any{
		"name":                  g.Name,
		"description":           g.Description,
		"low_balance_threshold": g.LowBalanceThreshold,
		"low_balance_percent":   g.LowBalancePercent,
		"alert_emails":          emails,
		"alert_webhook":         g.AlertWebhook,
		"kind":                  g.Kind,
		"status":                g.StoredStatus,
		"code_binding":          g.CodeBinding,
		"terms":                 g.Terms,
		"limits":                g.Limits,
		"one_per_customer":      g.OnePerCustomer,
		"metadata":              metadataOrEmpty(g.Metadata),
		"columns":               []string(g.Columns),
	}
}

func sortByName(list []Group) {
	slices.SortStableFunc(list, func(a, b Group) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
}

// diff keeps only the keys whose values differ.
func diff(before, after map[string]any) (map[string]any, map[string]any) {
	b, a := map[string]any{}, map[string]any{}
	for k, av := range after {
		bj, _ := json.Marshal(before[k])
		aj, _ := json.Marshal(av)
		if string(bj) != string(aj) {
			b[k], a[k] = before[k], av
		}
	}
	return b, a
}

func isUniqueViolation(err error, constraint string) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.Constraint == constraint)
}

// setOnePerCustomer fills or empties group_customer_codes when a group's
// one_per_customer changes: switched on, each customer's latest live code of the group
// becomes the one they keep getting; switched off, the rows go.
func setOnePerCustomer(ctx context.Context, tx *sqlx.Tx, id int64, on bool) error {
	q := `DELETE FROM group_customer_codes WHERE group_id = $1`
	if on {
		q = `INSERT INTO group_customer_codes (group_id, customer_id, code_id)
			SELECT DISTINCT ON (customer_id) group_id, customer_id, code_id FROM issues
			WHERE group_id = $1 AND kind = 'initial' AND released_at IS NULL
			ORDER BY customer_id, id DESC
			ON CONFLICT (group_id, customer_id) DO NOTHING`
	}
	if _, err := tx.ExecContext(ctx, q, id); err != nil {
		return fmt.Errorf("setting one code per customer on group %d: %w", id, err)
	}
	return nil
}
