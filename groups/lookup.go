package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lib/pq"
)

// Lookups for the packages that refer to groups (mailings, alerts, segments): they ask
// here rather than reading the groups table themselves.

// LiveIDs maps the lower-cased name (strings.ToLower, the key macros.GroupKey gives) of
// each live group among names to its id. Names compare case-insensitively; a name
// without a live group is absent.
func (s *Store) LiveIDs(ctx context.Context, names []string) (map[string]int64, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = strings.ToLower(n)
	}
	var rows []struct {
		Key string `db:"key"`
		ID  int64  `db:"id"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT lower(name) AS key, id FROM groups WHERE archived_at IS NULL AND lower(name) = ANY($1)`, pq.Array(keys))
	if err != nil {
		return nil, fmt.Errorf("looking up groups: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Key] = r.ID
	}
	return out, nil
}

// GroupsExist implements macros.GroupChecker: for each name, whether a live group has
// it (case-insensitively). Archived groups do not count.
func (s *Store) GroupsExist(ctx context.Context, names []string) ([]bool, error) {
	ids, err := s.LiveIDs(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(names))
	for i, n := range names {
		_, out[i] = ids[strings.ToLower(n)]
	}
	return out, nil
}

// KnownIDs maps names (lower-cased) to group ids for last_promocode: the live group
// of each name, else the most recently archived one (an archived group still holds
// the codes customers were issued). Names of no group at all are absent.
func (s *Store) KnownIDs(ctx context.Context, names []string) (map[string]int64, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = strings.ToLower(n)
	}
	var rows []struct {
		Key string `db:"key"`
		ID  int64  `db:"id"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT DISTINCT ON (lower(name)) lower(name) AS key, id FROM groups WHERE lower(name) = ANY($1)
		ORDER BY lower(name), archived_at IS NOT NULL, archived_at DESC, id DESC`, pq.Array(keys))
	if err != nil {
		return nil, fmt.Errorf("looking up groups: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Key] = r.ID
	}
	return out, nil
}

// GroupsArchived implements macros.ArchiveChecker: for each name, whether an archived
// group has it (case-insensitively).
func (s *Store) GroupsArchived(ctx context.Context, names []string) ([]bool, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = strings.ToLower(n)
	}
	var found []string
	if err := s.db.SelectContext(ctx, &found, `SELECT DISTINCT lower(name) FROM groups WHERE archived_at IS NOT NULL AND lower(name) = ANY($1)`, pq.Array(keys)); err != nil {
		return nil, fmt.Errorf("looking up archived groups: %w", err)
	}
	out := make([]bool, len(names))
	for i, k := range keys {
		out[i] = slices.Contains(found, k)
	}
	return out, nil
}

// GroupsWaiting implements macros.StatusChecker: for each name, the status of the
// live group of that name when it issues no codes for now (StatusDraft or
// StatusPaused), else "".
func (s *Store) GroupsWaiting(ctx context.Context, names []string) ([]string, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = strings.ToLower(n)
	}
	var rows []struct {
		Key    string `db:"key"`
		Status string `db:"status"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT lower(name) AS key, status FROM groups
		WHERE archived_at IS NULL AND status IN ('draft', 'paused') AND lower(name) = ANY($1)`, pq.Array(keys)); err != nil {
		return nil, fmt.Errorf("looking up draft and paused groups: %w", err)
	}
	out := make([]string, len(names))
	for i, k := range keys {
		for _, r := range rows {
			if r.Key == k {
				out[i] = r.Status
			}
		}
	}
	return out, nil
}

// Exists returns ErrGroupNotFound unless the group exists, live or archived.
func (s *Store) Exists(ctx context.Context, groupID int64) error {
	var one int
	err := s.db.GetContext(ctx, &one, `SELECT 1 FROM groups WHERE id = $1`, groupID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %d: %w", groupID, ErrGroupNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading group %d: %w", groupID, err)
	}
	return nil
}

// Names maps group ids to their current names, archived groups included; the ids of
// groups that were removed are absent.
func (s *Store) Names(ctx context.Context, ids []int64) (map[int64]string, error) {
	var rows []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, name FROM groups WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("reading group names: %w", err)
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}

// Resolve looks groups up as a stored reference to them must (a segment filter names
// groups by id or name), in one round trip: which of ids exist, live or archived, and
// for each of names (compared lower-cased and trimmed; keys are the lower-cased,
// trimmed names) the live group of that name, else the latest archived one. A name or
// id without a group is absent.
func (s *Store) Resolve(ctx context.Context, ids []int64, names []string) (found map[int64]bool, byName map[string]int64, err error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = strings.ToLower(strings.TrimSpace(n))
	}
	var rows []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	err = s.db.SelectContext(ctx, &rows, `
		SELECT id, '' AS name FROM groups WHERE id = ANY ($1)
		UNION ALL
		(SELECT DISTINCT ON (lower(name)) id, lower(name) FROM groups WHERE lower(name) = ANY ($2)
		 ORDER BY lower(name), archived_at IS NOT NULL, archived_at DESC)`, pq.Array(ids), pq.Array(keys))
	if err != nil {
		return nil, nil, fmt.Errorf("resolving groups: %w", err)
	}
	found, byName = map[int64]bool{}, map[string]int64{}
	for _, r := range rows {
		if r.Name == "" {
			found[r.ID] = true
		} else {
			byName[r.Name] = r.ID
		}
	}
	return found, byName, nil
}
