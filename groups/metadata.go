package groups

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/lib/pq"
)

// Bounds of a group's metadata (issue 21 item 8; Stripe's are the same order).
const (
	MaxMetadataKeys     = 50
	MaxMetadataKeyLen   = 40  // characters
	MaxMetadataValueLen = 500 // characters
)

// Bounds of a code's extra columns (an upload's CSV columns beside code and expires_at).
const (
	MaxCodeColumns      = 20
	MaxColumnValueLen   = 500 // characters, per cell
	maxColumnNameLength = 40
)

// columnName is what an extra column may be called: a name the macros can write after
// promocode('G').
var columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Metadata is a group's free-form string keys and values, stored as a JSON object.
type Metadata map[string]string

// Scan implements sql.Scanner (jsonb).
func (m *Metadata) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	case nil:
		*m = Metadata{}
		return nil
	default:
		return fmt.Errorf("metadata: cannot scan %T", src)
	}
	out := Metadata{}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	*m = out
	return nil
}

// Value implements driver.Valuer.
func (m Metadata) Value() (driver.Value, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(m))
}

// checkMetadata refuses metadata over its bounds, naming the key (metadata.KEY).
func checkMetadata(m map[string]string) error {
	if len(m) > MaxMetadataKeys {
		return invalid("metadata", "%d keys, at most %d", len(m), MaxMetadataKeys)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad key in a stable order
	for _, k := range keys {
		v := m[k]
		switch n := utf8.RuneCountInString(k); {
		case n == 0:
			return invalid("metadata", "a key is empty")
		case n > MaxMetadataKeyLen:
			return invalid("metadata."+k, "key longer than %d characters (%d)", MaxMetadataKeyLen, n)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return invalid("metadata."+k, "is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(v); n > MaxMetadataValueLen {
			return invalid("metadata."+k, "value longer than %d characters (%d)", MaxMetadataValueLen, n)
		}
	}
	return nil
}

// NullStrings is a JSON field that can be absent (Set false), null (Set, Value nil) or
// a list of strings.
type NullStrings struct {
	Set   bool
	Value []string
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *NullStrings) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a list of strings or null")
	}
	if v == nil {
		v = []string{}
	}
	n.Value = v
	return nil
}

// checkColumnNames checks the extra column names of a group's declaration (field) or
// of an upload's header: each a name the macros can write (letters, digits, _; not
// starting with a digit; at most 40 characters), not code or expires_at, no repeat, at
// most MaxCodeColumns.
func checkColumnNames(field string, names []string) error {
	if len(names) > MaxCodeColumns {
		return invalid(field, "%d columns, at most %d", len(names), MaxCodeColumns)
	}
	for i, c := range names {
		switch {
		case len(c) > maxColumnNameLength || !columnName.MatchString(c):
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q is not a column name: letters, digits and _, not starting with a digit, at most %d characters", c, maxColumnNameLength)
		case c == "code" || c == "expires_at":
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q is not an extra column", c)
		case slices.Contains(names[:i], c):
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q is listed twice", c)
		}
	}
	return nil
}

// applyColumns sets the group's declared columns from in (nil: none declared).
func (in *Input) applyColumns(g *Group) error {
	if in.Metadata != nil {
		if err := checkMetadata(*in.Metadata); err != nil {
			return err
		}
		g.Metadata = Metadata(*in.Metadata)
	}
	if in.Columns.Set {
		if in.Columns.Value != nil {
			if err := checkColumnNames("columns", in.Columns.Value); err != nil {
				return err
			}
		}
		g.Columns = pq.StringArray(in.Columns.Value)
	}
	return nil
}

// GroupColumns returns, for each group name (compared case-insensitively, live groups),
// the extra columns the group declares, or nil when it declares none or does not
// exist. It lets macros.Compile refuse promocode('G').NAME for a column G does not
// declare (macros.ColumnChecker).
func (s *Store) GroupColumns(ctx context.Context, names []string) ([][]string, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = strings.ToLower(n) // as GroupsExist compares (macros.GroupKey)
	}
	var rows []struct {
		Key  string         `db:"key"`
		Cols pq.StringArray `db:"code_columns"`
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT lower(name) AS key, code_columns FROM groups
		WHERE archived_at IS NULL AND lower(name) = ANY($1) AND code_columns IS NOT NULL`, pq.Array(keys)); err != nil {
		return nil, fmt.Errorf("reading the groups' declared columns: %w", err)
	}
	out := make([][]string, len(names))
	for _, r := range rows {
		for i, k := range keys {
			if k == r.Key {
				out[i] = append([]string{}, r.Cols...)
			}
		}
	}
	return out, nil
}

// CodeRow is the code a customer holds under a scope from a group, with its extra
// columns.
type CodeRow struct {
	Code    string
	Columns map[string]string
}

// heldColumns reads, per customer, the code they hold under scope from group $2 (their
// most recent live issue there: the initial issue of a claim, or the repeat of a
// one_per_customer group or of last_promocode) and its extra columns ({} when none).
// It walks the issues index on (customer_id, group_id), a few entries per customer.
const heldColumns = `
SELECT u.customer_id, c.code, coalesce(c.columns, '{}')
FROM unnest($1::text[]) AS u(customer_id)
CROSS JOIN LATERAL (
    SELECT i.code_id FROM issues i
    WHERE i.customer_id = u.customer_id AND i.group_id = $2 AND i.scope = $3 AND i.released_at IS NULL
    ORDER BY i.id DESC LIMIT 1) l
JOIN codes c ON c.id = l.code_id`

// CodeColumns returns the code each customer holds under scope from the group (issued
// or repeated under it: by a Claim or a Repeat of that scope) with the code's extra
// columns, so a message inserts the columns of the very row whose code it carries.
// Customers holding nothing under scope are absent. Errors: *InvalidError.
func (s *Store) CodeColumns(ctx context.Context, groupID int64, scope string, customerIDs []string) (map[string]CodeRow, error) {
	customers, err := checkBatch(scope, customerIDs)
	if err != nil {
		return nil, err
	}
	slices.Sort(customers)
	st, err := s.stmt(ctx, heldColumns)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, pq.Array(customers), groupID, scope)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of group %d's codes: %w", groupID, err)
	}
	defer rows.Close()
	out := make(map[string]CodeRow, len(customers))
	for rows.Next() {
		var cust, code string
		var raw []byte
		if err := rows.Scan(&cust, &code, &raw); err != nil {
			return nil, err
		}
		cols := map[string]string{}
		if err := json.Unmarshal(raw, &cols); err != nil {
			return nil, fmt.Errorf("code columns of customer %s: %w", cust, err)
		}
		out[cust] = CodeRow{Code: code, Columns: cols}
	}
	return out, rows.Err()
}

func metadataOrEmpty(m Metadata) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// exportColumns are the extra columns a group's exports add after their own: the
// columns the group declares, else every column its uploads carried (first appearance
// first); none for a group whose codes have none.
func (s *Store) exportColumns(ctx context.Context, groupID int64) ([]string, error) {
	// From the reader, like the rows: a replica's export is consistent with itself.
	rows, err := s.reader.QueryContext(ctx, `
		SELECT coalesce((SELECT code_columns FROM groups WHERE id = $1),
		                (SELECT array_agg(c ORDER BY first) FROM (
		                    SELECT x.c, min(u.id * 1000 + x.n) AS first
		                    FROM uploads u, unnest(u.columns) WITH ORDINALITY AS x(c, n)
		                    WHERE u.group_id = $1 AND u.undone_at IS NULL GROUP BY x.c) cs),
		                '{}')`, groupID)
	if err != nil {
		return nil, fmt.Errorf("reading the export columns of group %d: %w", groupID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		if err := rows.Scan((*pq.StringArray)(&out)); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the export columns of group %d: %w", groupID, err)
	}
	return out, nil
}

// columnCells fills dst with the cells of cols (a code's columns, JSON; nil: none) for
// the names of extra, "" where the code lacks one.
func columnCells(dst, extra []string, cols []byte) error {
	for i := range dst {
		dst[i] = ""
	}
	if len(extra) == 0 || cols == nil {
		return nil
	}
	m := map[string]string{}
	if err := json.Unmarshal(cols, &m); err != nil {
		return fmt.Errorf("a code's columns: %w", err)
	}
	for i, c := range extra {
		dst[i] = m[c]
	}
	return nil
}
