package segments

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/groups"
)

// Config tunes a Service; zero values take the defaults.
type Config struct {
	// FoldBatch is the most issues one fold transaction adds (default 200,000).
	FoldBatch int
	// QueryFold is the most issues a query folds before it answers; a longer tail is
	// left to the worker's folder and the answer is as of an earlier instant (default
	// 20,000).
	QueryFold int
	// MaxPage caps Page's limit (default 10,000).
	MaxPage int
	// Now is the clock of "last N days" windows (default time.Now).
	Now func() time.Time
	// Reader begins the read-only transactions Count, Page and Stream read in: a
	// postgres.ReadPool serves them from a read replica (default: the database).
	Reader Reader
}

// Service answers filters over one database.
type Service struct {
	db     *sqlx.DB
	cfg    Config
	groups *groups.Store
}

// New returns a Service over db. The groups a filter names are looked up through a
// groups.Store on the same db (groups owns their table).
func New(db *sqlx.DB, cfg Config) *Service {
	if cfg.FoldBatch <= 0 {
		cfg.FoldBatch = 200_000
	}
	if cfg.QueryFold <= 0 {
		cfg.QueryFold = 20_000
	}
	if cfg.MaxPage <= 0 {
		cfg.MaxPage = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Reader == nil {
		cfg.Reader = db
	}
	return &Service{db: db, cfg: cfg, groups: groups.NewStore(db, groups.Config{})}
}

// ErrBadCursor is returned for a paging cursor this package did not produce.
var ErrBadCursor = errors.New("invalid cursor: pass back next_cursor as received")

// Count is the size of an answer and the instant it is as of.
type Count struct {
	Count int64     `json:"count"`
	AsOf  time.Time `json:"as_of"`
}

// Page is one page of an answer, in a stable order (the customers' numbers).
type Page struct {
	Count
	CustomerIDs []string `json:"customer_ids"`
	// NextCursor fetches the next page; empty on the last one.
	NextCursor string `json:"next_cursor"`
}

// Query is a checked, compiled filter.
type Query struct {
	sql       string // SELECT cust of the answer
	args      []any
	countSQL  string // SELECT of its size
	countArgs []any
	bits      bool // the count reads segment_bits
	asOf      time.Time
}

// Check validates f and resolves its groups (by id or name, archived ones included), so
// that an unknown group is an *InvalidError naming its path.
func (s *Service) Check(ctx context.Context, f *Filter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	return s.resolve(ctx, f)
}

// Prepare checks f, folds a short tail of new issues so the answer is current, and
// compiles f as of the summaries on the primary (a mailing's audience at its start
// joins it into its own statement there).
func (s *Service) Prepare(ctx context.Context, f *Filter) (*Query, error) {
	if err := s.checkFold(ctx, f); err != nil {
		return nil, err
	}
	at, err := readInstants(ctx, s.db)
	if err != nil {
		return nil, err
	}
	return s.compile(f, at), nil
}

// instants are the summaries' instants: the issue fold's watermark and the redemption
// fold's start.
type instants struct {
	Issues      time.Time `db:"issues"`
	Redemptions time.Time `db:"redemptions"`
}

func readInstants(ctx context.Context, q sqlx.QueryerContext) (instants, error) {
	var at instants
	err := sqlx.GetContext(ctx, q, &at, `SELECT f.folded_to AS issues, r.as_of AS redemptions FROM segment_fold f, segment_redemption_fold r`)
	if err != nil {
		return at, fmt.Errorf("reading the summaries' instant: %w", err)
	}
	return at, nil
}

// checkFold checks f and folds a short tail of new issues (on the primary).
func (s *Service) checkFold(ctx context.Context, f *Filter) error {
	if err := s.Check(ctx, f); err != nil {
		return err
	}
	if _, _, err := s.foldOnce(ctx, s.cfg.QueryFold, false); err != nil {
		return err
	}
	if !hasRedeemed(f) {
		return nil
	}
	_, err := s.foldRedemptions(ctx, s.cfg.QueryFold)
	return err
}

// compile builds f's statements over the summaries as of their instants. The answer is
// as of the issue fold's watermark, or of the redemption fold's start when f reads
// redemptions and that is earlier.
func (s *Service) compile(f *Filter, at instants) *Query {
	b := &builder{now: s.cfg.Now(), asOf: at.Issues, redAsOf: at.Redemptions}
	set := b.node(f)
	q := &Query{asOf: at.Issues}
	if hasRedeemed(f) && at.Redemptions.Before(q.asOf) {
		q.asOf = at.Redemptions
	}
	q.sql, q.args = compact(set.materialize(), b.args)
	q.countSQL, q.countArgs = compact(set.count(), b.args)
	if sql, args, ok := bitCount(f); ok {
		q.countSQL, q.countArgs = compact(sql, args)
		q.bits = true
	}
	return q
}

// FromBitmaps says the query's count is read from segment_bits (see bits.go) rather
// than computed by its SQL.
func (q *Query) FromBitmaps() bool { return q.bits }

// SQL returns the query's SELECT of customer numbers (column cust) and its arguments,
// for callers that join it into their own statement (mailing audiences).
func (q *Query) SQL() (string, []any) { return q.sql, q.args }

// CountSQL returns the query's SELECT of the answer's size and its arguments.
func (q *Query) CountSQL() (string, []any) { return q.countSQL, q.countArgs }

// Count returns how many customers match f.
func (s *Service) Count(ctx context.Context, f *Filter) (Count, error) {
	q, tx, err := s.prepareRead(ctx, f)
	if err != nil {
		return Count{}, err
	}
	defer tx.Rollback()
	return q.count(ctx, tx)
}

func (q *Query) count(ctx context.Context, db sqlx.QueryerContext) (Count, error) {
	c := Count{AsOf: q.asOf}
	err := sqlx.GetContext(ctx, db, &c.Count, q.countSQL, q.countArgs...)
	return c, err
}

// Page returns the count and up to limit customer ids after cursor ("" for the first
// page). The order is stable while the answer stays the same, and a customer is never on
// two pages.
func (s *Service) Page(ctx context.Context, f *Filter, cursor string, limit int) (*Page, error) {
	after, err := parseCursor(cursor)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > s.cfg.MaxPage {
		limit = min(max(limit, 1000), s.cfg.MaxPage)
	}
	q, tx, err := s.prepareRead(ctx, f)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	c, err := q.count(ctx, tx)
	if err != nil {
		return nil, err
	}
	p := &Page{Count: c, CustomerIDs: []string{}}
	var rows []struct {
		Num int64  `db:"cust"`
		ID  string `db:"id"`
	}
	n := len(q.args)
	err = tx.SelectContext(ctx, &rows, fmt.Sprintf(`SELECT s.cust, c.id FROM (%s) s JOIN customers c ON c.num = s.cust
		WHERE s.cust > $%d ORDER BY s.cust LIMIT $%d`, q.sql, n+1, n+2), append(q.args, after, limit+1)...)
	if err != nil {
		return nil, err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		p.NextCursor = "c" + strconv.FormatInt(rows[limit-1].Num, 10)
	}
	for _, r := range rows {
		p.CustomerIDs = append(p.CustomerIDs, r.ID)
	}
	return p, nil
}

func parseCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(c, "c"), 10, 64)
	if err != nil || !strings.HasPrefix(c, "c") || n < 0 {
		return 0, ErrBadCursor
	}
	return n, nil
}

// Stream calls start with the count, then each with every matching customer id in order,
// from one snapshot (the count and the ids agree). Memory stays flat whatever the size.
func (s *Service) Stream(ctx context.Context, f *Filter, start func(Count) error, each func(id string) error) error {
	q, tx, err := s.prepareRead(ctx, f)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	c, err := q.count(ctx, tx)
	if err != nil {
		return err
	}
	if err := start(c); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.id FROM (`+q.sql+`) s JOIN customers c ON c.num = s.cust ORDER BY s.cust`, q.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id string
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if err := each(id); err != nil {
			return err
		}
	}
	return rows.Err()
}

// resolve fills in the ids of the groups f names (one query for the whole tree); a
// name means the live group of that name, else the latest archived one.
func (s *Service) resolve(ctx context.Context, f *Filter) error {
	type ref struct {
		g    *GroupRef
		path string
	}
	var refs []ref
	var walk func(f *Filter, path string)
	walk = func(f *Filter, path string) {
		add := func(gs []GroupRef, p string) {
			for i := range gs {
				refs = append(refs, ref{&gs[i], fmt.Sprintf("%s[%d]", p, i)})
			}
		}
		for i, c := range f.And {
			walk(c, fmt.Sprintf("%s.and[%d]", path, i))
		}
		for i, c := range f.Or {
			walk(c, fmt.Sprintf("%s.or[%d]", path, i))
		}
		if f.Not != nil {
			walk(f.Not, path+".not")
		}
		if f.Quantity != nil {
			add(f.Quantity.Groups, path+".quantity.groups")
		}
		if f.IssuedFrom != nil {
			add(f.IssuedFrom.Groups, path+".issued_from.groups")
		}
		if f.Redeemed != nil {
			add(f.Redeemed.Groups, path+".redeemed.groups")
		}
	}
	walk(f, "$")
	if len(refs) == 0 {
		return nil
	}
	var ids []int64
	var names []string
	for _, r := range refs {
		if r.g.ID > 0 {
			ids = append(ids, r.g.ID)
		} else {
			names = append(names, strings.ToLower(strings.TrimSpace(r.g.Name)))
		}
	}
	// One round trip: the ids that exist, and per name the live group of that name,
	// else the latest archived one.
	byID, byName, err := s.groups.Resolve(ctx, ids, names)
	if err != nil {
		return err
	}
	for _, r := range refs {
		if r.g.ID > 0 {
			if !byID[r.g.ID] {
				return &InvalidError{Path: r.path, Reason: fmt.Sprintf("no group with id %d", r.g.ID)}
			}
			continue
		}
		id, ok := byName[strings.ToLower(strings.TrimSpace(r.g.Name))]
		if !ok {
			return &InvalidError{Path: r.path, Reason: fmt.Sprintf("no group named %q", r.g.Name)}
		}
		r.g.ID = id
	}
	return nil
}
