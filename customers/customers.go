// Package customers keeps the platform's customers (id, email, names, custom
// attributes) that the macros render and the exports list. Its own package rather than
// part of groups: customers are not pools of codes, and the upsert has nothing to share
// with claiming; the issue history only refers to customers by id.
package customers

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/internal/csvlimit"
)

// Format of an upsert body.
type Format string

// Formats accepted by Upsert.
const (
	FormatJSONLines Format = "jsonl" // one JSON object per line
	FormatCSV       Format = "csv"   // header: id, email, first_name, last_name, attr.NAME…
)

// chunk is how many rows go to PostgreSQL per statement.
const chunk = 1000

// maxProblems caps the problems listed in a report; the count is always exact.
const maxProblems = 100

// Store is the customers' data layer.
type Store struct{ db *sqlx.DB }

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// Problem is a rejected line of an upsert.
type Problem struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

// Report is what an upsert did.
type Report struct {
	Lines    int64     `json:"lines"`
	Upserted int64     `json:"upserted"`
	Invalid  int64     `json:"invalid"`
	Problems []Problem `json:"problems"`
}

// Customer is one customer.
type Customer struct {
	ID         string          `db:"id" json:"id"`
	Email      string          `db:"email" json:"email"`
	FirstName  string          `db:"first_name" json:"first_name"`
	LastName   string          `db:"last_name" json:"last_name"`
	Attributes json.RawMessage `db:"attributes" json:"attributes"`
}

// row is a parsed line: nil fields were absent and keep their stored value.
type row struct {
	id                 string
	email, first, last *string
	attrs              []byte // nil: absent; a JSON object otherwise (merged over the stored one)
}

// ErrNotFound: no customer has that id.
var ErrNotFound = errors.New("customer not found")

// UploadError is a body that cannot be read at all (a CSV header without an id
// column, or with an unknown column): nothing was stored.
type UploadError struct {
	Line   int64
	Reason string
}

func (e *UploadError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Upsert streams customers into the table in one transaction: new ids are inserted,
// known ones updated (fields absent from a line keep their value; attributes are merged
// key by key). Lines with unknown fields or bad values are skipped and reported with
// their line number; valid lines still load. Memory stays flat: rows go in chunks.
// Errors: *UploadError, the reader's error.
func (s *Store) Upsert(ctx context.Context, format Format, body io.Reader) (*Report, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rep := &Report{Problems: []Problem{}}
	batch := make([]row, 0, chunk)
	seen := make(map[string]struct{}, chunk)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := upsertBatch(ctx, tx, batch)
		rep.Upserted += n
		batch = batch[:0]
		clear(seen)
		return err
	}
	add := func(line int64, r row, perr error) error {
		rep.Lines = line
		if perr != nil {
			rep.Invalid++
			if len(rep.Problems) < maxProblems {
				rep.Problems = append(rep.Problems, Problem{Line: line, Reason: perr.Error()})
			}
			return nil
		}
		if _, dup := seen[r.id]; dup { // one statement may not touch a row twice
			if err := flush(); err != nil {
				return err
			}
		}
		seen[r.id] = struct{}{}
		batch = append(batch, r)
		if len(batch) == chunk {
			return flush()
		}
		return nil
	}
	switch format {
	case FormatJSONLines:
		err = readJSONLines(body, add)
	case FormatCSV:
		err = readCSV(body, add)
	default:
		return nil, fmt.Errorf("unknown customer format %q (want jsonl or csv)", format)
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	return rep, tx.Commit()
}

// upsertRows writes a chunk from parallel arrays in one statement. NULL means "absent:
// keep the stored value".
const upsertRows = `
INSERT INTO customers AS c (id, email, first_name, last_name, attributes)
SELECT u.id, coalesce(u.email, ''), coalesce(u.first, ''), coalesce(u.last, ''), coalesce(u.attrs::jsonb, '{}')
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, email, first, last, attrs)
ON CONFLICT (id) DO UPDATE SET
    email = coalesce(($2::text[])[array_position($1::text[], excluded.id)], c.email),
    first_name = coalesce(($3::text[])[array_position($1::text[], excluded.id)], c.first_name),
    last_name = coalesce(($4::text[])[array_position($1::text[], excluded.id)], c.last_name),
    attributes = c.attributes || coalesce(($5::text[])[array_position($1::text[], excluded.id)]::jsonb, '{}'),
    updated_at = now()`

func upsertBatch(ctx context.Context, tx *sqlx.Tx, rows []row) (int64, error) {
	ids := make([]string, len(rows))
	email := make([]sql.NullString, len(rows))
	first := make([]sql.NullString, len(rows))
	last := make([]sql.NullString, len(rows))
	attrs := make([]sql.NullString, len(rows))
	ns := func(p *string) sql.NullString {
		if p == nil {
			return sql.NullString{}
		}
		return sql.NullString{String: *p, Valid: true}
	}
	for i, r := range rows {
		ids[i], email[i], first[i], last[i] = r.id, ns(r.email), ns(r.first), ns(r.last)
		if r.attrs != nil {
			attrs[i] = sql.NullString{String: string(r.attrs), Valid: true}
		}
	}
	res, err := tx.ExecContext(ctx, upsertRows, pq.Array(ids), pq.Array(email), pq.Array(first), pq.Array(last), pq.Array(attrs))
	if err != nil {
		return 0, fmt.Errorf("storing customers: %w", err)
	}
	return res.RowsAffected()
}

func checkRow(r *row) error {
	if err := CheckCustomerID(r.id); err != nil {
		return err
	}
	if r.email != nil && *r.email != "" {
		addr, err := mail.ParseAddress(*r.email)
		if err != nil || addr.Address != *r.email {
			return fmt.Errorf("email %q is not an email address", *r.email)
		}
	}
	for name, v := range map[string]*string{"first_name": r.first, "last_name": r.last} {
		if v != nil && len(*v) > 1000 {
			return fmt.Errorf("%s is longer than 1000 bytes", name)
		}
	}
	return nil
}

// maxLine bounds one line of a JSON-lines body, and one record of a CSV body (whose
// quoted fields may span lines): nothing longer is ever buffered.
const maxLine = 1 << 20

// MaxAttributesBytes bounds a customer's attributes, as the JSON object sent (NDJSON)
// or built from the attr.NAME columns (CSV): one limit for every format. A line over
// it is refused with its line number; the others load.
const MaxAttributesBytes = 64 << 10

func checkAttributes(b []byte) error {
	if len(b) > MaxAttributesBytes {
		return fmt.Errorf("attributes are %d bytes, more than the %d KiB a customer may hold", len(b), MaxAttributesBytes>>10)
	}
	return nil
}

func readJSONLines(body io.Reader, add func(int64, row, error) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var line int64
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		r, err := parseJSONLine(b)
		if err := add(line, r, err); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return &UploadError{Line: line + 1, Reason: fmt.Sprintf("line longer than %d bytes", maxLine)}
	}
	return sc.Err()
}

func parseJSONLine(b []byte) (row, error) {
	var in struct {
		ID         *string         `json:"id"`
		Email      *string         `json:"email"`
		FirstName  *string         `json:"first_name"`
		LastName   *string         `json:"last_name"`
		Attributes json.RawMessage `json:"attributes"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return row{}, fmt.Errorf("not a customer object: %v", err)
	}
	if dec.More() {
		return row{}, errors.New("more than one JSON value on the line")
	}
	if in.ID == nil {
		return row{}, errors.New(`"id" is required`)
	}
	r := row{id: *in.ID, email: in.Email, first: in.FirstName, last: in.LastName}
	if len(in.Attributes) > 0 && string(in.Attributes) != "null" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(in.Attributes, &obj); err != nil {
			return row{}, errors.New(`"attributes" must be a JSON object`)
		}
		if err := checkAttributes(in.Attributes); err != nil {
			return row{}, err
		}
		r.attrs = in.Attributes
	}
	return r, checkRow(&r)
}

func readCSV(body io.Reader, add func(int64, row, error) error) error {
	err := readCSVRecords(csvlimit.NewReader(body, maxLine, ','), add)
	var tl *csvlimit.TooLongError
	if errors.As(err, &tl) {
		return &UploadError{Line: tl.Line, Reason: tl.Error()}
	}
	return err
}

func readCSVRecords(body io.Reader, add func(int64, row, error) error) error {
	cr := csv.NewReader(body)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return &UploadError{Line: 1, Reason: "reading the header: " + err.Error()}
	}
	col := map[string]int{}
	var attrCols []string
	attrIdx := []int{}
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
		switch {
		case h == "id" || h == "email" || h == "first_name" || h == "last_name":
			col[h] = i
		case strings.HasPrefix(h, "attr.") && len(h) > 5:
			attrCols, attrIdx = append(attrCols, h[5:]), append(attrIdx, i)
		default:
			return &UploadError{Line: 1, Reason: fmt.Sprintf("unknown column %q (want id, email, first_name, last_name or attr.NAME)", h)}
		}
	}
	if _, ok := col["id"]; !ok {
		return &UploadError{Line: 1, Reason: "no id column"}
	}
	field := func(rec []string, name string) *string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return nil
		}
		v := strings.TrimSpace(rec[i])
		return &v
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		var r row
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return err
			}
			if err := add(int64(pe.StartLine), r, errors.New(pe.Err.Error())); err != nil {
				return err
			}
			continue
		}
		if len(rec) != len(head) {
			err = fmt.Errorf("%d fields, the header has %d", len(rec), len(head))
		} else {
			r = row{id: *field(rec, "id"), email: field(rec, "email"), first: field(rec, "first_name"), last: field(rec, "last_name")}
			if len(attrCols) > 0 {
				obj := make(map[string]string, len(attrCols))
				for k, name := range attrCols {
					obj[name] = rec[attrIdx[k]]
				}
				r.attrs, _ = json.Marshal(obj)
			}
			err = cmp.Or(checkAttributes(r.attrs), checkRow(&r))
		}
		if err := add(int64(line), r, err); err != nil {
			return err
		}
	}
}

// Get returns a customer. Errors: ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Customer, error) {
	var c Customer
	err := s.db.GetContext(ctx, &c, `SELECT id, email, first_name, last_name, attributes FROM customers WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("customer %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading customer %q: %w", id, err)
	}
	return &c, nil
}

// IDByEmail returns the id of the customer with the email, compared case-insensitively
// (one probe of the index on lower(email), migration 0026); "" when no customer has it.
// Several customers with one email: the smallest id, so the answer is always the same.
func (s *Store) IDByEmail(ctx context.Context, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", nil
	}
	var id string
	err := s.db.GetContext(ctx, &id, `SELECT id FROM customers WHERE lower(email) = lower($1) AND email <> '' ORDER BY id LIMIT 1`, email)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("finding the customer of an email: %w", err)
	}
	return id, nil
}

// Require returns nil if a customer has id, else ErrNotFound. With create, a customer
// with that id and no other field is stored first when none has it (a direct issue
// that asks for it, "create_customer": true). Errors: ErrNotFound, a bad id.
func (s *Store) Require(ctx context.Context, id string, create bool) error {
	if create {
		if err := CheckCustomerID(id); err != nil {
			return err
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO customers (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, id); err != nil {
			return fmt.Errorf("creating customer %q: %w", id, err)
		}
		return nil
	}
	var one int
	err := s.db.GetContext(ctx, &one, `SELECT 1 FROM customers WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("customer %q (send \"create_customer\": true to create it): %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading customer %q: %w", id, err)
	}
	return nil
}
