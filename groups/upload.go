package groups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/auth"
	"promopool/metrics"
)

// Sources of an upload.
const (
	SourceAPI = "api"
	SourceWeb = "web"
	SourceCLI = "cli"
)

// UploadRequest describes an upload; the codes come from the reader passed beside it.
type UploadRequest struct {
	GroupID int64
	Format  Format
	// Source is SourceAPI, SourceWeb or SourceCLI.
	Source string
	// Actor is who uploads: an API key's name, or the CLI user.
	Actor    string
	Filename string
	// ExpiresAt applies to every code that does not carry its own expiry.
	ExpiresAt *time.Time
}

// LineProblem is one example line of a report: a rejected or duplicate code.
type LineProblem struct {
	// Line is the 1-based line of the file (the item number for JSON).
	Line   int64  `json:"line"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason"`
}

// Upload is a recorded upload with its counts.
type Upload struct {
	ID         int64      `db:"id" json:"id"`
	GroupID    int64      `db:"group_id" json:"group_id"`
	Actor      string     `db:"actor" json:"actor"`
	Source     string     `db:"source" json:"source"`
	Format     string     `db:"format" json:"format"`
	Filename   string     `db:"filename" json:"filename"`
	ExpiresAt  *time.Time `db:"expires_at" json:"expires_at"`
	Lines      int64      `db:"lines" json:"lines"`
	Accepted   int64      `db:"accepted" json:"accepted"`
	Duplicates int64      `db:"duplicates" json:"duplicates"`
	Invalid    int64      `db:"invalid" json:"invalid"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	UndoneAt   *time.Time `db:"undone_at" json:"undone_at"`
	UndoneBy   *string    `db:"undone_by" json:"undone_by"`
	// Who uploaded, and who undid the upload (nil until then), with kind, user id, name
	// and email as they were at the time.
	Who       auth.Actor  `db:"who" json:"who"`
	UndoneWho *auth.Actor `db:"undone_who" json:"undone_who"`
	// Removed is how many unissued codes the undo deleted.
	Removed *int64 `db:"removed" json:"removed"`
}

// UploadReport is what an upload did.
type UploadReport struct {
	Upload
	DuplicateExamples []LineProblem `json:"duplicate_examples"`
	InvalidExamples   []LineProblem `json:"invalid_examples"`
	// ExamplesIncomplete is set when finding duplicate examples took too long and fewer
	// were listed than exist; the counts are always exact.
	ExamplesIncomplete bool `json:"examples_incomplete,omitempty"`
}

// Load streams codes into a group in one transaction: every valid, new code is stored,
// or, if anything fails midway (the reader errors, the client goes away, the process
// dies), none is. Lines are validated one by one: invalid lines and duplicates (within
// the upload or against any stored code of any group) are counted and skipped, with
// their line numbers in the report's examples. Memory stays flat whatever the size:
// rows go to PostgreSQL with COPY into a staging table, then into codes with one
// INSERT … ON CONFLICT DO NOTHING.
//
// Errors: ErrGroupNotFound; *InvalidError for a bad request; *UploadError when the body
// cannot be read as a whole (then nothing is stored); the reader's own error.
func (s *Store) Load(ctx context.Context, req UploadRequest, body io.Reader) (*UploadReport, error) {
	t := &tally{}
	src, err := req.reader(ctxReader{ctx: ctx, r: body}, t)
	if err != nil {
		return nil, err
	}

	// The transaction is not bound to ctx: database/sql would roll it back from another
	// goroutine on cancellation while lib/pq's COPY goroutine still reads the connection
	// (a data race in lib/pq). Cancellation reaches the reader instead (the COPY then
	// ends and the deferred Rollback runs) and each ordinary statement.
	tx, err := s.db.BeginTxx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// KEY SHARE lets renames go on during a long upload but makes Delete (FOR UPDATE)
	// wait until it commits, so no code lands in a group being deleted.
	g, err := lockGroup(ctx, tx, s.now(), req.GroupID, "FOR KEY SHARE")
	if err != nil {
		return nil, err
	} else if g.Kind == KindShared {
		return nil, fmt.Errorf("uploading into group %d: %w", req.GroupID, ErrShared)
	}
	rep := &UploadReport{Upload: Upload{GroupID: req.GroupID, Actor: req.Actor, Source: req.Source,
		Format: string(req.Format), Filename: req.Filename, ExpiresAt: req.ExpiresAt}}
	rep.Who = auth.ActorFrom(ctx, req.Actor)
	withCols := false
	var columns pq.StringArray // the upload's extra columns (nil: none)
	if cr, ok := src.(*csvReader); ok {
		if withCols, err = cr.start(g.Columns); err != nil {
			return nil, err
		}
		if withCols {
			columns = cr.extra
		}
	}
	err = tx.GetContext(ctx, &rep.ID, `
		INSERT INTO uploads (group_id, actor, source, format, filename, expires_at, lines, accepted, duplicates, invalid,
			actor_kind, actor_user_id, actor_name, actor_email)
		VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, $7, $8, $9, $10) RETURNING id`,
		req.GroupID, req.Actor, req.Source, req.Format, req.Filename, req.ExpiresAt, rep.Who.Kind, rep.Who.UserID, rep.Who.Name, rep.Who.Email)
	if err != nil {
		return nil, fmt.Errorf("recording upload: %w", err)
	}

	st, err := stage(context.WithoutCancel(ctx), tx, src, withCols)
	if err != nil {
		return nil, err
	}
	if exp := src.defaultExpiry(); exp != nil {
		if req.ExpiresAt != nil && !req.ExpiresAt.Equal(*exp) {
			return nil, invalid("expires_at", "given both in the request and in the body, with different values")
		}
		rep.ExpiresAt = exp
	}
	rep.Lines, rep.Invalid, rep.InvalidExamples = t.lines, t.invalid, t.examples
	if rep.InvalidExamples == nil {
		rep.InvalidExamples = []LineProblem{}
	}
	rep.DuplicateExamples = []LineProblem{}

	if st.rows > 0 {
		if err := s.insertStaged(ctx, tx, rep, st); err != nil {
			return nil, err
		}
	}
	rep.Duplicates = st.rows - rep.Accepted
	if rep.Duplicates > 0 {
		s.duplicateExamples(ctx, tx, rep, st.sorted)
	}
	if columns != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE uploads SET columns = $2 WHERE id = $1`, rep.ID, columns); err != nil {
			return nil, fmt.Errorf("recording upload %d's columns: %w", rep.ID, err)
		}
	}
	if err := recordUpload(ctx, tx, rep); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing upload: %w", err)
	}
	metrics.UploadRows.WithLabelValues("accepted").Add(float64(rep.Accepted))
	metrics.UploadRows.WithLabelValues("duplicate").Add(float64(rep.Duplicates))
	metrics.UploadRows.WithLabelValues("invalid").Add(float64(rep.Invalid))
	return rep, nil
}

// reader checks the request's format and source and returns the reader of its codes.
func (req *UploadRequest) reader(body io.Reader, t *tally) (codeReader, error) {
	var src codeReader
	switch req.Format {
	case FormatPlain:
		src = newPlainReader(body, t)
	case FormatCSV:
		src = newCSVReader(body, t)
	case FormatJSON:
		src = newJSONReader(body, t)
	default:
		return nil, invalid("format", "unknown format %q (want plain, csv or json)", req.Format)
	}
	switch req.Source {
	case SourceAPI, SourceWeb, SourceCLI:
	default:
		return nil, invalid("source", "unknown source %q", req.Source)
	}
	return src, nil
}

// recordUpload writes an upload's final counts over its row and logs it.
func recordUpload(ctx context.Context, tx *sqlx.Tx, rep *UploadReport) error {
	err := tx.GetContext(ctx, &rep.CreatedAt, `
		UPDATE uploads SET expires_at = $2, lines = $3, accepted = $4, duplicates = $5, invalid = $6
		WHERE id = $1 RETURNING created_at`,
		rep.ID, rep.ExpiresAt, rep.Lines, rep.Accepted, rep.Duplicates, rep.Invalid)
	if err != nil {
		return fmt.Errorf("recording upload %d: %w", rep.ID, err)
	}
	after := map[string]any{"upload_id": rep.ID, "source": rep.Source, "format": rep.Format, "filename": rep.Filename,
		"accepted": rep.Accepted, "duplicates": rep.Duplicates, "invalid": rep.Invalid, "expires_at": rep.ExpiresAt}
	return appendActivity(ctx, tx, rep.GroupID, rep.Actor, ActionUpload, nil, after)
}

// ctxReader fails reads once ctx is done, so a cancelled upload stops reading.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// staged describes what went into the staging table.
type staged struct {
	rows          int64
	firstOrd      int64
	lastOrd       int64
	mixed         bool       // codes carry different expiries
	expiry        *time.Time // the one expiry of the codes that carry one, when not mixed
	withoutExpiry int64      // codes without an expiry of their own
	sorted        bool       // insertStaged renumbered the rows by expiry (upload_sorted)
	columns       bool       // the rows carry extra columns (upload_stage.columns)
}

// insertLockKey is the advisory lock that serialises the insert phase of uploads.
const insertLockKey = 0x7570_6c6f_6164

// createStage makes the session's staging table. Unlogged and dropped at commit or
// rollback: a crash mid-upload leaves nothing, and the load writes no WAL twice.
// code is COLLATE "C", like codes.code, so lower(code) folds as the unique index does.
const createStage = `CREATE TEMP TABLE upload_stage (ord bigint, line bigint, code text COLLATE "C", expires_at timestamptz) ON COMMIT DROP`

// createStageColumns is createStage for an upload with extra columns: only such an
// upload stages, copies and inserts them, so a plain upload runs the same statements as
// before they existed.
const createStageColumns = `CREATE TEMP TABLE upload_stage (ord bigint, line bigint, code text COLLATE "C", expires_at timestamptz, columns jsonb) ON COMMIT DROP`

// stage COPYs the reader's valid rows into upload_stage (with their extra columns when
// withCols). ctx must not be cancellable (see Load); the reader carries cancellation.
// ord is the line number, so an id (upload << 32 | ord) keeps upload order and names
// the line it came from.
func stage(ctx context.Context, tx *sqlx.Tx, src codeReader, withCols bool) (*staged, error) {
	create, copyIn := createStage, pq.CopyIn("upload_stage", "ord", "line", "code", "expires_at")
	if withCols {
		create, copyIn = createStageColumns, pq.CopyIn("upload_stage", "ord", "line", "code", "expires_at", "columns")
	}
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("creating staging table: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, copyIn)
	if err != nil {
		return nil, fmt.Errorf("starting COPY: %w", err)
	}
	defer stmt.Close()
	st := &staged{columns: withCols}
	for {
		r, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if r.line >= 1<<32 {
			return nil, &UploadError{Line: r.line, Reason: "an upload holds at most 4,294,967,295 lines: split the file"}
		}
		var exp any
		if r.expires != nil {
			exp = *r.expires
			switch {
			case st.expiry == nil:
				st.expiry = r.expires
			case !st.expiry.Equal(*r.expires):
				st.mixed = true
			}
		} else {
			st.withoutExpiry++
		}
		if st.rows == 0 {
			st.firstOrd = r.line
		}
		st.lastOrd = r.line
		st.rows++
		if withCols {
			_, err = stmt.ExecContext(ctx, r.line, r.line, r.code, exp, string(r.cols))
		} else {
			_, err = stmt.ExecContext(ctx, r.line, r.line, r.code, exp)
		}
		if err != nil {
			return nil, fmt.Errorf("COPY at line %d: %w", r.line, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("finishing COPY: %w", err)
	}
	return st, nil
}

// insertStaged moves the staged rows into codes, skipping duplicates, and records the
// claim ranges. With one expiry for the whole upload (the usual case) the staged order
// is the claim order and one range covers the upload. With several, the rows are first
// renumbered by expiry then line, and each expiry gets its range.
func (s *Store) insertStaged(ctx context.Context, tx *sqlx.Tx, rep *UploadReport, st *staged) error {
	base := rep.ID << 32
	mixed := st.mixed || (st.expiry != nil && st.withoutExpiry > 0 &&
		(rep.ExpiresAt == nil || !rep.ExpiresAt.Equal(*st.expiry)))
	st.sorted = mixed
	table := "upload_stage"
	if mixed {
		table = "upload_sorted"
		_, err := tx.ExecContext(ctx, `
			CREATE TEMP TABLE upload_sorted ON COMMIT DROP AS
			SELECT row_number() OVER (ORDER BY coalesce(expires_at, $1) NULLS LAST, line) AS ord,
			       line, code, coalesce(expires_at, $1) AS expires_at`+stagedColumns(st)+`
			FROM upload_stage`, rep.ExpiresAt)
		if err != nil {
			return fmt.Errorf("ordering codes by expiry: %w", err)
		}
	}
	// Two uploads inserting overlapping codes in different orders would deadlock on the
	// unique index (and again on every retry). The insert phase is serialised instead;
	// staging (the COPY) still runs concurrently, and this phase is bound by the one
	// unique index anyway. The lock is held to commit.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, insertLockKey); err != nil {
		return fmt.Errorf("waiting for other uploads: %w", err)
	}
	// Rows go in sorted by the index's key (lower(code) under "C", migration 0024): the
	// unique index then takes them in key order, touching each leaf page once, instead of
	// at random all over an index larger than memory (1.16x on 3M rows, more as the index
	// grows). Codes compare case-insensitively: within the upload the first line of a
	// code wins, in whatever case it was typed; against the stored codes, the stored one
	// (case_dup 0) wins. The sort gets its own memory; PostgreSQL spills beyond it.
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO codes (id, code`+stagedColumns(st)+`) SELECT $1 + ord, code`+stagedColumns(st)+` FROM `+table+` ORDER BY lower(code), ord ON CONFLICT (lower(code), case_dup) DO NOTHING`, base)
	if err != nil {
		return fmt.Errorf("storing codes: %w", err)
	}
	accepted, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `RESET work_mem`); err != nil {
		return err
	}
	rep.Accepted = accepted
	if accepted == 0 {
		return nil
	}
	if !mixed {
		exp := st.expiry
		if exp == nil {
			exp = rep.ExpiresAt
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO code_ranges (group_id, upload_id, expires_at, first_id, last_id, next_id, total)
			VALUES ($1, $2, $3, $4, $5, $4, $6)`,
			rep.GroupID, rep.ID, exp, base+st.firstOrd, base+st.lastOrd, accepted)
		if err != nil {
			return fmt.Errorf("recording code range: %w", err)
		}
		return nil
	}
	// One range per expiry; its total counts the codes that made it in (an index-only
	// scan of the upload's key range).
	_, err = tx.ExecContext(ctx, `
		INSERT INTO code_ranges (group_id, upload_id, expires_at, first_id, last_id, next_id, total)
		SELECT $1, $2, b.expires_at, $3 + b.lo, $3 + b.hi, $3 + b.lo,
		       (SELECT count(*) FROM codes c WHERE c.id BETWEEN $3 + b.lo AND $3 + b.hi)
		FROM (SELECT expires_at, min(ord) AS lo, max(ord) AS hi FROM upload_sorted GROUP BY expires_at) b`,
		rep.GroupID, rep.ID, base)
	if err != nil {
		return fmt.Errorf("recording code ranges: %w", err)
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM code_ranges WHERE upload_id = $1 AND total = 0`, rep.ID)
	return err
}

// stagedColumns is ", columns" when the staged rows carry extra columns, else "".
func stagedColumns(st *staged) string {
	if st.columns {
		return ", columns"
	}
	return ""
}

// duplicateExamples lists a few duplicates: staged rows whose code is stored under
// another id (another upload's, or an earlier line of this one). Best effort: bounded
// by a statement timeout inside a savepoint, since with few duplicates near the end of
// a large file the scan can be long; the counts never depend on it.
func (s *Store) duplicateExamples(ctx context.Context, tx *sqlx.Tx, rep *UploadReport, sorted bool) {
	base := rep.ID << 32
	table := "upload_stage"
	if sorted {
		table = "upload_sorted"
	}
	var ex []struct {
		Line   int64  `db:"line"`
		Code   string `db:"code"`
		Other  int64  `db:"other"`
		Stored string `db:"stored"`
		Group  string `db:"grp"`
		GID    int64  `db:"gid"`
	}
	_, _ = tx.ExecContext(ctx, `SAVEPOINT examples`)
	timeout := fmt.Sprint(max(1, s.exampleTimeout.Milliseconds())) // in ms
	_, _ = tx.ExecContext(ctx, `SELECT set_config('statement_timeout', $1, true)`, timeout)
	err := tx.SelectContext(ctx, &ex, `
		SELECT s.line, s.code, c.id AS other, c.code AS stored, g.name AS grp, g.id AS gid
		FROM (SELECT s.line, s.code, c.id FROM `+table+` s JOIN codes c ON lower(c.code) = lower(s.code) AND c.case_dup = 0
		      WHERE c.id <> $1 + s.ord LIMIT $2) AS s(line, code, id)
		JOIN codes c ON c.id = s.id
		LEFT JOIN promotion_codes pc ON pc.code_id = c.id
		JOIN groups g ON g.id = COALESCE(pc.group_id, (SELECT u.group_id FROM uploads u WHERE u.id = c.id >> 32))
		ORDER BY s.line`, base, maxExamples)
	if err != nil {
		_, _ = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT examples`)
		rep.ExamplesIncomplete = true
		return
	}
	_, _ = tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`)
	_, _ = tx.ExecContext(ctx, `RELEASE SAVEPOINT examples`)
	for _, e := range ex {
		reason := fmt.Sprintf("already stored in group %q", e.Group)
		switch {
		case e.Other>>32 == rep.ID && !sorted:
			reason = fmt.Sprintf("repeats line %d", e.Other-base)
		case e.Other>>32 == rep.ID:
			reason = "repeats an earlier line of this upload"
		case e.GID == rep.GroupID:
			reason = "already stored in this group"
		}
		if e.Stored != e.Code {
			// Codes compare case-insensitively: say which spelling it collides with.
			reason += fmt.Sprintf(" as %q (codes compare case-insensitively)", e.Stored)
		}
		rep.DuplicateExamples = append(rep.DuplicateExamples, LineProblem{Line: e.Line, Code: e.Code, Reason: reason})
	}
	if int64(len(rep.DuplicateExamples)) < min(rep.Duplicates, maxExamples) {
		rep.ExamplesIncomplete = true
	}
}

// Uploads lists a group's uploads, newest first. Errors: ErrGroupNotFound.
func (s *Store) Uploads(ctx context.Context, groupID int64) ([]Upload, error) {
	if err := s.Exists(ctx, groupID); err != nil {
		return nil, err
	}
	out := []Upload{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+uploadColumns+` FROM uploads WHERE group_id = $1 ORDER BY id DESC`, groupID)
	if err != nil {
		return nil, fmt.Errorf("listing uploads of group %d: %w", groupID, err)
	}
	return out, nil
}

var uploadColumns = `id, group_id, actor, source, format, filename, expires_at, lines, accepted, duplicates, invalid, created_at, undone_at, undone_by, removed, ` +
	auth.ActorSQL("actor", "actor") + ` AS who, CASE WHEN undone_at IS NOT NULL THEN ` + auth.ActorSQL("undone_by", "undone_by") + ` END AS undone_who`

// Undo removes an upload's codes that were not issued yet; issued ones stay, with their
// history. Errors: ErrUploadNotFound, ErrUploadUndone, ErrGroupNotFound (the group was
// archived or removed).
func (s *Store) Undo(ctx context.Context, actor string, uploadID int64) (*Upload, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var u Upload
	err = tx.GetContext(ctx, &u, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1 FOR UPDATE`, uploadID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("upload %d: %w", uploadID, ErrUploadNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading upload %d: %w", uploadID, err)
	}
	if u.UndoneAt != nil {
		return nil, fmt.Errorf("upload %d: %w", uploadID, ErrUploadUndone)
	}
	if _, err := lockGroup(ctx, tx, s.now(), u.GroupID, "FOR KEY SHARE"); err != nil {
		return nil, err
	}
	removed, err := removeUntaken(ctx, tx, `upload_id = $1`, uploadID)
	if err != nil {
		return nil, fmt.Errorf("undoing upload %d: %w", uploadID, err)
	}
	who := auth.ActorFrom(ctx, actor)
	err = tx.GetContext(ctx, &u, `
		UPDATE uploads SET undone_at = now(), undone_by = $2, removed = $3,
			undone_by_kind = $4, undone_by_user_id = $5, undone_by_name = $6, undone_by_email = $7
		WHERE id = $1 RETURNING `+uploadColumns,
		uploadID, actor, removed, who.Kind, who.UserID, who.Name, who.Email)
	if err != nil {
		return nil, fmt.Errorf("undoing upload %d: %w", uploadID, err)
	}
	after := map[string]any{"upload_id": uploadID, "removed": removed, "kept_issued": u.Accepted - removed}
	if err := appendActivity(ctx, tx, u.GroupID, actor, ActionUndo, nil, after); err != nil {
		return nil, err
	}
	return &u, tx.Commit()
}
