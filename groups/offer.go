package groups

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/offers"
)

// Kinds of group (SPEC §10): unique codes drawn one per customer, or a few shared
// promotion codes each redeemable by many customers.
const (
	KindUnique = "unique"
	KindShared = "shared"
)

// Statuses of a group. Draft, active and paused are what a person chose (groups.status);
// expired is derived (past ends_at, or every code expired) and archived is archived_at.
const (
	StatusDraft    = "draft"
	StatusActive   = "active"
	StatusPaused   = "paused"
	StatusExpired  = "expired"
	StatusArchived = "archived"
	// StatusAll is the list filter that includes archived groups.
	StatusAll = "all"
)

// Who may redeem a unique code (groups.code_binding; checkout reads it).
const (
	BindingHolder = "holder"
	BindingBearer = "bearer"
)

// Errors of the offer lifecycle.
var (
	// ErrGroupPaused: the group is paused; it issues no code until it is activated
	// (its mailings wait; last_promocode still renders a customer's code).
	ErrGroupPaused = errors.New("the group is paused: it issues no codes until it is activated")
	// ErrGroupDraft: the group is a draft; it issues no code until it is activated.
	ErrGroupDraft = errors.New("the group is a draft: it issues no codes until it is activated")
	// ErrGroupArchived: an archived group is kept for history and never re-activated.
	ErrGroupArchived = errors.New("the group is archived: it is kept for history and cannot be activated or paused")
)

// termsValue scans and writes groups.terms (jsonb, NULL for a group without terms).
type termsValue struct{ T *offers.Terms }

// Scan implements sql.Scanner.
func (v *termsValue) Scan(src any) error {
	v.T = nil
	var b []byte
	switch s := src.(type) {
	case nil:
		return nil
	case []byte:
		b = s
	case string:
		b = []byte(s)
	default:
		return fmt.Errorf("groups.terms: cannot scan %T", src)
	}
	var t offers.Terms
	if err := json.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("groups.terms: %w", err)
	}
	v.T = &t
	return nil
}

// Value implements driver.Valuer.
func (v termsValue) Value() (driver.Value, error) {
	if v.T == nil {
		return nil, nil
	}
	b, err := json.Marshal(v.T)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// offerColumns are a group's offer columns (alias g), scanned into Group's raw fields.
const offerColumns = `g.kind, g.status, g.terms, g.max_redemptions, g.max_per_customer, g.starts_at, g.ends_at,
       g.budget, g.code_binding, g.terms_locked_at`

// offerFields is the offer part of a Group: its raw columns (scanned) and what derive
// makes of them for the JSON answer.
type offerFields struct {
	// Kind is unique or shared.
	Kind string `db:"kind" json:"kind"`
	// StoredStatus is the status a person chose (draft, active, paused).
	StoredStatus string `db:"status" json:"-"`
	// Status is StoredStatus, or expired (past ends_at, or every code expired), or
	// archived.
	Status   string     `db:"-" json:"status"`
	TermsCol termsValue `db:"terms" json:"-"`
	// Terms is what a code of the group is worth; nil: no terms (codes only).
	Terms *offers.Terms `db:"-" json:"terms"`
	// TermsSummary is Terms in plain language ("20% off, at most 100 EUR"); empty
	// without terms.
	TermsSummary   string     `db:"-" json:"terms_summary"`
	MaxRedemptions *int64     `db:"max_redemptions" json:"-"`
	MaxPerCustomer *int64     `db:"max_per_customer" json:"-"`
	StartsAt       *time.Time `db:"starts_at" json:"-"`
	EndsAt         *time.Time `db:"ends_at" json:"-"`
	Budget         *int64     `db:"budget" json:"-"`
	// Limits are the caps, window and budget.
	Limits offers.Limits `db:"-" json:"limits"`
	// CodeBinding says who may redeem a unique code: its holder or any bearer.
	CodeBinding string `db:"code_binding" json:"code_binding"`
	// TermsLockedAt is when the first code was issued or redeemed: from then on the
	// locked fields of the terms cannot change.
	TermsLockedAt *time.Time `db:"terms_locked_at" json:"terms_locked_at"`
	// AllExpired: every code range of the group is past its expiry (scanned).
	AllExpired *bool `db:"all_expired" json:"-"`
}

// derive fills the answer's fields from the raw columns at now.
func (g *Group) derive(now time.Time) {
	g.Terms = g.TermsCol.T
	g.TermsSummary = g.Terms.Summary()
	g.Limits = offers.Limits{MaxRedemptions: g.MaxRedemptions, MaxPerCustomer: g.MaxPerCustomer,
		StartsAt: g.StartsAt, EndsAt: g.EndsAt, Budget: g.Budget}
	g.Status = g.StoredStatus
	switch {
	case g.ArchivedAt != nil:
		g.Status = StatusArchived
	case g.StoredStatus != StatusDraft && (g.Limits.At(now) == offers.WindowEnded || (g.AllExpired != nil && *g.AllExpired)):
		g.Status = StatusExpired
	}
}

// Locked reports whether the terms are locked: a code of the group was issued or
// redeemed (groups issued before terms existed count too).
func (g *Group) Locked() bool { return g.TermsLockedAt != nil || g.Issued > 0 }

// NullTime is a JSON field that can be absent (Set false), null (Set, Value nil) or an
// RFC 3339 time.
type NullTime struct {
	Set   bool
	Value *time.Time
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *NullTime) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want an RFC 3339 time or null")
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	n.Value = &t
	return nil
}

// NullTerms is the terms field of an Input: absent (Set false), null (remove the terms)
// or an object. Unknown fields inside it are refused.
type NullTerms struct {
	Set   bool
	Value *offers.Terms
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *NullTerms) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var t offers.Terms
	if err := dec.Decode(&t); err != nil {
		return fmt.Errorf("terms: %v", err)
	}
	n.Value = &t
	return nil
}

// LimitsInput is the limits field of an Input: only the fields present change; null
// removes a limit.
type LimitsInput struct {
	MaxRedemptions NullInt  `json:"max_redemptions"`
	MaxPerCustomer NullInt  `json:"max_per_customer"`
	StartsAt       NullTime `json:"starts_at"`
	EndsAt         NullTime `json:"ends_at"`
	Budget         NullInt  `json:"budget"`
}

// applyOffer validates the offer fields of in and writes them over g. create is true on
// Create (kind may be set); used is what the group has used of its limits.
func (in *Input) applyOffer(g *Group, create bool, used offers.Usage) error {
	if in.Kind != nil {
		switch {
		case *in.Kind != KindUnique && *in.Kind != KindShared:
			return invalid("kind", "must be unique or shared, got %q", *in.Kind)
		case !create && *in.Kind != g.Kind:
			return invalid("kind", "cannot change after the group is created (create a new group)")
		}
		g.Kind = *in.Kind
	}
	if in.Status != nil {
		switch *in.Status {
		case StatusDraft, StatusActive, StatusPaused:
		case StatusExpired:
			return invalid("status", "expired is derived from ends_at and the codes' expiry; change limits.ends_at instead")
		case StatusArchived:
			return invalid("status", "a group is archived by deleting it")
		default:
			return invalid("status", "must be draft, active or paused, got %q", *in.Status)
		}
		if *in.Status == StatusDraft && g.StoredStatus != StatusDraft && g.Locked() {
			return invalid("status", "cannot go back to draft once codes were issued; pause it instead")
		}
		g.StoredStatus = *in.Status
	}
	if in.CodeBinding != nil {
		if *in.CodeBinding != BindingHolder && *in.CodeBinding != BindingBearer {
			return invalid("code_binding", "must be holder or bearer, got %q", *in.CodeBinding)
		}
		g.CodeBinding = *in.CodeBinding
	}
	if in.Terms.Set {
		if t := in.Terms.Value; t != nil {
			if err := t.Normalize(); err != nil {
				return err
			}
		}
		if g.Locked() {
			var before, after offers.Terms
			if g.Terms != nil {
				before = *g.Terms
			}
			if in.Terms.Value != nil {
				after = *in.Terms.Value
			}
			if changed := before.LockedChanges(after); len(changed) > 0 {
				return fmt.Errorf("group %d: %w", g.ID, &offers.LockedError{Fields: changed})
			}
		}
		g.Terms = in.Terms.Value
	}
	if l := in.Limits; l != nil {
		set := func(dst **int64, n NullInt) {
			if n.Set {
				*dst = n.Value
			}
		}
		set(&g.Limits.MaxRedemptions, l.MaxRedemptions)
		set(&g.Limits.MaxPerCustomer, l.MaxPerCustomer)
		set(&g.Limits.Budget, l.Budget)
		if l.StartsAt.Set {
			g.Limits.StartsAt = l.StartsAt.Value
		}
		if l.EndsAt.Set {
			g.Limits.EndsAt = l.EndsAt.Value
		}
	}
	if in.Terms.Set || in.Limits != nil {
		if err := g.Limits.Check(g.Terms, used); err != nil {
			return err
		}
	}
	g.TermsCol = termsValue{g.Terms}
	g.MaxRedemptions, g.MaxPerCustomer, g.Budget = g.Limits.MaxRedemptions, g.Limits.MaxPerCustomer, g.Limits.Budget
	g.StartsAt, g.EndsAt = g.Limits.StartsAt, g.Limits.EndsAt
	return nil
}

// UsageFunc reads what a group has used of its limits (redemptions, the most of one
// customer, the discount given), inside the caller's transaction. The checkout package
// provides it (its tables hold redemptions); without it nothing counts as used.
type UsageFunc func(ctx context.Context, q sqlx.QueryerContext, groupID int64) (offers.Usage, error)

func (s *Store) usage(ctx context.Context, q sqlx.QueryerContext, groupID int64) (offers.Usage, error) {
	if s.usageFn == nil {
		return offers.Usage{}, nil
	}
	u, err := s.usageFn(ctx, q, groupID)
	if err != nil {
		return offers.Usage{}, fmt.Errorf("reading the usage of group %d: %w", groupID, err)
	}
	return u, nil
}

// Pause pauses a group: it issues no code (claims, direct issues and its mailings are
// refused with ErrGroupPaused) until Activate. Pausing a paused group changes nothing.
// Errors: ErrGroupNotFound, ErrGroupArchived.
func (s *Store) Pause(ctx context.Context, actor string, id int64) (*Group, error) {
	return s.setStatus(ctx, actor, id, StatusPaused, ActionPause)
}

// Activate makes a draft or paused group active. Activating an active group changes
// nothing. Errors: ErrGroupNotFound, ErrGroupArchived.
func (s *Store) Activate(ctx context.Context, actor string, id int64) (*Group, error) {
	return s.setStatus(ctx, actor, id, StatusActive, ActionActivate)
}

func (s *Store) setStatus(ctx context.Context, actor string, id int64, status, action string) (*Group, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	g, err := lockGroup(ctx, tx, s.now(), id, "FOR NO KEY UPDATE")
	if errors.Is(err, ErrGroupNotFound) {
		var archived bool
		if tx.GetContext(ctx, &archived, `SELECT archived_at IS NOT NULL FROM groups WHERE id = $1`, id) == nil && archived {
			return nil, fmt.Errorf("group %d: %w", id, ErrGroupArchived)
		}
	}
	if err != nil {
		return nil, err
	}
	if g.StoredStatus == status {
		return g, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE groups SET status = $2, updated_at = now() WHERE id = $1`, id, status); err != nil {
		return nil, fmt.Errorf("setting group %d %s: %w", id, status, err)
	}
	if err := appendActivity(ctx, tx, id, actor, action, map[string]any{"status": g.StoredStatus}, map[string]any{"status": status}); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// StatusCounts counts groups per status, for the list's tabs: active, draft, paused,
// expired and archived, and all (every group, archived ones included).
type StatusCounts struct {
	All      int64 `json:"all"`
	Active   int64 `json:"active"`
	Draft    int64 `json:"draft"`
	Paused   int64 `json:"paused"`
	Expired  int64 `json:"expired"`
	Archived int64 `json:"archived"`
}

func (c *StatusCounts) add(status string) {
	switch status {
	case StatusActive:
		c.Active++
	case StatusDraft:
		c.Draft++
	case StatusPaused:
		c.Paused++
	case StatusExpired:
		c.Expired++
	case StatusArchived:
		c.Archived++
	}
	c.All++
}

// CheckStatusFilter validates a list filter: "" (every group but archived ones), all,
// or one status. Errors: *InvalidError.
func CheckStatusFilter(status string) error {
	switch status {
	case "", StatusAll, StatusActive, StatusDraft, StatusPaused, StatusExpired, StatusArchived:
		return nil
	}
	return invalid("status", "must be all, active, draft, paused, expired or archived, got %q", status)
}

// ListByStatus returns the groups with that status, ordered by name ("" is every group
// but archived ones, "all" every group), and the counts per status over every group.
// Errors: *InvalidError.
func (s *Store) ListByStatus(ctx context.Context, status string) ([]Group, StatusCounts, error) {
	var counts StatusCounts
	if err := CheckStatusFilter(status); err != nil {
		return nil, counts, err
	}
	now := s.now()
	var live []Group
	if err := s.db.SelectContext(ctx, &live, selectGroups+` WHERE g.archived_at IS NULL ORDER BY lower(g.name), g.id`, now); err != nil {
		return nil, counts, fmt.Errorf("listing groups: %w", err)
	}
	out := make([]Group, 0, len(live))
	for i := range live {
		g := &live[i]
		g.setState()
		g.derive(now)
		counts.add(g.Status)
		if status == "" || status == StatusAll || status == g.Status {
			out = append(out, *g)
		}
	}
	if status == StatusAll || status == StatusArchived {
		var archived []Group
		if err := s.db.SelectContext(ctx, &archived, selectGroups+` WHERE g.archived_at IS NOT NULL ORDER BY lower(g.name), g.id`, now); err != nil {
			return nil, counts, fmt.Errorf("listing archived groups: %w", err)
		}
		for i := range archived {
			archived[i].setState()
			archived[i].derive(now)
		}
		counts.Archived, counts.All = int64(len(archived)), counts.All+int64(len(archived))
		out = append(out, archived...)
		if status == StatusAll {
			sortByName(out)
		}
	} else {
		var n int64
		if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM groups WHERE archived_at IS NOT NULL`); err != nil {
			return nil, counts, fmt.Errorf("counting archived groups: %w", err)
		}
		counts.Archived, counts.All = n, counts.All+n
	}
	return out, counts, nil
}
