package groups

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"promopool/internal/csvsafe"
)

// Kinds of issue.
const (
	KindInitial = "initial" // the code left the pool for this customer
	KindRepeat  = "repeat"  // last_promocode re-inserted a code the customer holds
)

// Issue is one row of a customer's promo-code history.
type Issue struct {
	ID         int64  `db:"id" json:"id"`
	CustomerID string `db:"customer_id" json:"customer_id"`
	GroupID    int64  `db:"group_id" json:"group_id"`
	// GroupName is the group's current name, also for an archived group ("" for a
	// group that was removed).
	GroupName     string     `db:"group_name" json:"group_name"`
	GroupArchived bool       `db:"group_archived" json:"group_archived"`
	Code          string     `db:"code" json:"code"`
	Kind          string     `db:"kind" json:"kind"`
	Scope         string     `db:"scope" json:"scope"`
	MailingID     *int64     `db:"mailing_id" json:"mailing_id"`
	IssuedAt      time.Time  `db:"issued_at" json:"issued_at"`
	ReleasedAt    *time.Time `db:"released_at" json:"released_at,omitempty"`
	// VoidedAt is when the code was voided (POST /v1/codes/{code}/void): it stays on
	// the profile, and checkout refuses it.
	VoidedAt *time.Time `db:"voided_at" json:"voided_at,omitempty"`
}

// customerIssues lists a customer's issues newest first. The three branches match the
// three partial customer-keyed indexes (live initial, repeat, released), which together
// hold every row once.
const customerIssues = `
SELECT i.id, i.customer_id, i.group_id, coalesce(g.name, '') AS group_name,
       (g.archived_at IS NOT NULL) AS group_archived, coalesce(c.code, '') AS code,
       i.kind, i.scope, i.mailing_id, i.issued_at, i.released_at, v.voided_at
FROM (
    (SELECT * FROM issues WHERE customer_id = $1 AND id < $2 AND kind = 'initial' AND released_at IS NULL)
    UNION ALL
    (SELECT * FROM issues WHERE customer_id = $1 AND id < $2 AND kind = 'repeat')
    UNION ALL
    (SELECT * FROM issues WHERE customer_id = $1 AND id < $2 AND released_at IS NOT NULL)
) i
LEFT JOIN groups g ON g.id = i.group_id
LEFT JOIN codes c ON c.id = i.code_id
LEFT JOIN code_voids v ON v.code_id = i.code_id
ORDER BY i.id DESC
LIMIT $3`

// CustomerIssues lists the codes issued to a customer, newest first, up to limit
// (default 100, at most 1000) with ids below before (0 for the newest).
func (s *Store) CustomerIssues(ctx context.Context, customerID string, before int64, limit int) ([]Issue, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	out := []Issue{}
	if err := s.db.SelectContext(ctx, &out, customerIssues, customerID, before, limit); err != nil {
		return nil, fmt.Errorf("reading the promo codes of customer %q: %w", customerID, err)
	}
	return out, nil
}

// exportIssues streams a group's history in issue order. It scans issues (no
// group-keyed index: exports are rare and an index would tax every claim).
const exportIssues = `
SELECT i.customer_id, coalesce(cu.email, ''), coalesce(c.code, ''), g.name,
       coalesce(i.mailing_id::text, ''), i.scope, i.issued_at, i.kind, i.released_at, c.columns
FROM issues i
JOIN groups g ON g.id = i.group_id
LEFT JOIN customers cu ON cu.id = i.customer_id
LEFT JOIN codes c ON c.id = i.code_id
WHERE i.group_id = $1
ORDER BY i.id`

// ExportIssues writes a group's issue history as CSV (header: customer_id, email, code,
// group, mailing_id, scope, issued_at, kind, released_at, then the code's extra columns
// (exportColumns) if the group has any), streamed: memory stays flat.
// A cell a spreadsheet would run as a formula is written behind an apostrophe (csvsafe).
// Archived groups export too. Errors: ErrGroupNotFound; w's error.
func (s *Store) ExportIssues(ctx context.Context, groupID int64, w io.Writer) error {
	if err := s.Exists(ctx, groupID); err != nil {
		return err
	}
	extra, err := s.exportColumns(ctx, groupID)
	if err != nil {
		return err
	}
	rows, err := s.reader.QueryContext(ctx, exportIssues, groupID)
	if err != nil {
		return fmt.Errorf("exporting issues of group %d: %w", groupID, err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	cw.Write(append([]string{"customer_id", "email", "code", "group", "mailing_id", "scope", "issued_at", "kind", "released_at"}, extra...))
	rec := make([]string, 9+len(extra))
	for n := 1; rows.Next(); n++ {
		var issued time.Time
		var released sql.NullTime
		var cols []byte
		if err := rows.Scan(&rec[0], &rec[1], &rec[2], &rec[3], &rec[4], &rec[5], &issued, &rec[7], &released, &cols); err != nil {
			return err
		}
		if err := columnCells(rec[9:], extra, cols); err != nil {
			return err
		}
		rec[6] = issued.UTC().Format(time.RFC3339Nano)
		rec[8] = ""
		if released.Valid {
			rec[8] = released.Time.UTC().Format(time.RFC3339Nano)
		}
		// Codes, ids, emails and group names came from users: no cell may run as a
		// spreadsheet formula.
		if err := cw.Write(csvsafe.Record(rec)); err != nil {
			return err
		}
		if n%1000 == 0 {
			if cw.Flush(); cw.Error() != nil {
				return cw.Error()
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("exporting issues of group %d: %w", groupID, err)
	}
	cw.Flush()
	return cw.Error()
}

// exportUnused streams the codes of a group that were never issued (or came back to
// the pool), in claim order: above each range's cursor but voided ones, then the
// returned ones.
const exportUnused = `
(SELECT c.code, r.expires_at, c.columns FROM code_ranges r
 JOIN codes c ON c.id BETWEEN r.next_id AND r.last_id AND c.id <> ALL (r.voided)
 WHERE r.group_id = $1
 ORDER BY r.expires_at NULLS LAST, r.id, c.id)
UNION ALL
(SELECT c.code, rc.expires_at, c.columns FROM returned_codes rc
 JOIN codes c ON c.id = rc.code_id
 WHERE rc.group_id = $1
 ORDER BY rc.expires_at NULLS LAST, rc.code_id)`

// ExportUnused writes a group's unissued codes as CSV (header: code, expires_at,
// expired, then the codes' extra columns (exportColumns) if the group has any), streamed. Expired codes are listed, flagged; a code a spreadsheet would run
// as a formula is written behind an apostrophe (csvsafe). Errors: ErrGroupNotFound; w's error.
func (s *Store) ExportUnused(ctx context.Context, groupID int64, w io.Writer) error {
	if err := s.Exists(ctx, groupID); err != nil {
		return err
	}
	now := s.now()
	extra, err := s.exportColumns(ctx, groupID)
	if err != nil {
		return err
	}
	rows, err := s.reader.QueryContext(ctx, exportUnused, groupID)
	if err != nil {
		return fmt.Errorf("exporting unused codes of group %d: %w", groupID, err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	cw.Write(append([]string{"code", "expires_at", "expired"}, extra...))
	rec := make([]string, 3+len(extra))
	for n := 1; rows.Next(); n++ {
		var exp sql.NullTime
		var cols []byte
		if err := rows.Scan(&rec[0], &exp, &cols); err != nil {
			return err
		}
		if err := columnCells(rec[3:], extra, cols); err != nil {
			return err
		}
		rec[1], rec[2] = "", "false"
		if exp.Valid {
			rec[1] = exp.Time.UTC().Format(time.RFC3339)
			rec[2] = strconv.FormatBool(!exp.Time.After(now))
		}
		if err := cw.Write(csvsafe.Record(rec)); err != nil {
			return err
		}
		if n%1000 == 0 {
			if cw.Flush(); cw.Error() != nil {
				return cw.Error()
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("exporting unused codes of group %d: %w", groupID, err)
	}
	cw.Flush()
	return cw.Error()
}
