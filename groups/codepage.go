package groups

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CodeListing is one unique code of a group with its status and holder.
type CodeListing struct {
	ID        int64      `db:"id" json:"id"`
	Code      string     `db:"code" json:"code"`
	ExpiresAt *time.Time `db:"expires_at" json:"expires_at"`
	// CustomerID and IssuedAt name the holder of an issued code.
	CustomerID *string    `db:"customer_id" json:"customer_id"`
	IssuedAt   *time.Time `db:"issued_at" json:"issued_at"`
	MailingID  *int64     `db:"mailing_id" json:"mailing_id"`
	// Voided: taken out of use (POST /v1/codes/{code}/void).
	Voided bool   `db:"voided" json:"-"`
	Status string `db:"-" json:"status"`
}

// codePage reads a group's codes through its ranges (a handful of rows per group),
// each with its holder. The holder is the code's live initial issue that is not a
// shared one: since 0020 a shared group's code is issued to many customers (marked
// shared), and only the unique-code issues fall under issues_code_initial_v2.
const codePage = `
SELECT c.id, c.code, r.expires_at, i.customer_id, i.issued_at, i.mailing_id, v.code_id IS NOT NULL AS voided
FROM code_ranges r
JOIN codes c ON c.id BETWEEN r.first_id AND r.last_id
LEFT JOIN code_voids v ON v.code_id = c.id
LEFT JOIN LATERAL (
    SELECT i.customer_id, i.issued_at, i.mailing_id FROM issues i
    WHERE i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL AND NOT i.shared
) i ON true
WHERE r.group_id = $1 AND c.id > $2 %s
ORDER BY c.id
LIMIT $3`

// CodePage lists a unique group's codes in upload order (statuses as GET
// /v1/codes/{code}'s: voided, issued, expired, active; redeemed is the Redemption
// history's), limit (1–500, default 100)
// with ids above after; search, when not empty, finds the code with that spelling (as
// typed or upper-cased). Errors: ErrGroupNotFound.
func (s *Store) CodePage(ctx context.Context, groupID int64, search string, after int64, limit int) ([]CodeListing, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	if err := s.Exists(ctx, groupID); err != nil {
		return nil, err
	}
	args := []any{groupID, after, limit}
	where := ""
	if search = strings.TrimSpace(search); search != "" {
		where = `AND c.code IN ($4, $5)`
		args = append(args, search, strings.ToUpper(search))
	}
	var out []CodeListing
	if err := s.db.SelectContext(ctx, &out, fmt.Sprintf(codePage, where), args...); err != nil {
		return nil, fmt.Errorf("listing the codes of group %d: %w", groupID, err)
	}
	now := s.now()
	for i := range out {
		switch r := &out[i]; {
		case r.Voided:
			r.Status = CodeVoided
		case r.CustomerID != nil:
			r.Status = CodeIssued
		case r.ExpiresAt != nil && !r.ExpiresAt.After(now):
			r.Status = CodeExpired
		default:
			r.Status = CodeActive
		}
	}
	return out, nil
}

// Publication is one issue of a group's code: to whom, how and when.
type Publication struct {
	ID         int64      `db:"id" json:"id"`
	CustomerID string     `db:"customer_id" json:"customer_id"`
	Code       string     `db:"code" json:"code"`
	Kind       string     `db:"kind" json:"kind"`
	Scope      string     `db:"scope" json:"-"`
	MailingID  *int64     `db:"mailing_id" json:"mailing_id"`
	IssuedAt   time.Time  `db:"issued_at" json:"issued_at"`
	ReleasedAt *time.Time `db:"released_at" json:"released_at"`
	// Channel is mailing (a mailing of promopool), direct (the direct-issue API) or
	// render (the render API, for a platform's own mailer).
	Channel string `db:"-" json:"channel"`
}

// Publications lists a group's issues newest first, limit (1–500, default 100) with
// ids below before (0: from the newest), each with its channel.
func (s *Store) Publications(ctx context.Context, groupID, before int64, limit int) ([]Publication, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []Publication
	err := s.db.SelectContext(ctx, &out, `
		SELECT i.id, i.customer_id, coalesce(c.code, '') AS code, i.kind, i.scope, i.mailing_id, i.issued_at, i.released_at
		FROM issues i LEFT JOIN codes c ON c.id = i.code_id
		WHERE i.group_id = $1 AND i.id < $2
		ORDER BY i.id DESC LIMIT $3`, groupID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("listing the issues of group %d: %w", groupID, err)
	}
	for i := range out {
		switch p := &out[i]; {
		case p.MailingID != nil:
			p.Channel = "mailing"
		case strings.HasPrefix(p.Scope, "direct:"):
			p.Channel = "direct"
		default:
			p.Channel = "render"
		}
	}
	return out, nil
}
