package groups_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"promopool/groups"
	"promopool/internal/testdb"
)

type fixture struct {
	db    *testdb.DB
	store *groups.Store
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{db: testdb.New(t), now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	f.store = groups.NewStore(f.db.DB, groups.Config{Now: func() time.Time { return f.now }})
	return f
}

func ptr[T any](v T) *T { return &v }

func (f *fixture) group(t *testing.T, name string) *groups.Group {
	t.Helper()
	g, err := f.store.Create(context.Background(), "tester", groups.Input{Name: &name})
	if err != nil {
		t.Fatalf("creating group %q: %v", name, err)
	}
	return g
}

// load uploads body as plain text (or the given format) and fails the test on error.
func (f *fixture) load(t *testing.T, g int64, format groups.Format, body string) *groups.UploadReport {
	t.Helper()
	rep, err := f.store.Load(context.Background(), groups.UploadRequest{GroupID: g, Format: format, Source: groups.SourceAPI, Actor: "tester"}, strings.NewReader(body))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return rep
}

func (f *fixture) count(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.db.GetContext(context.Background(), &n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// take marks the first n codes of a group's first range as issued, the way a claim
// advances the cursor (claims themselves arrive with the issuing feature).
func (f *fixture) take(t *testing.T, group int64, n int64) {
	t.Helper()
	_, err := f.db.Exec(`
		UPDATE code_ranges r SET taken = taken + $2,
		       next_id = (SELECT max(id) + 1 FROM (SELECT id FROM codes WHERE id >= r.next_id AND id <= r.last_id ORDER BY id LIMIT $2) x)
		WHERE id = (SELECT min(id) FROM code_ranges WHERE group_id = $1)`, group, n)
	if err != nil {
		t.Fatal(err)
	}
}

func TestGroupCRUD(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.store.Create(ctx, "alice", groups.Input{Name: ptr("  Spring 30%  "), Description: ptr("sale"),
		LowBalanceThreshold: groups.NullInt{Set: true, Value: ptr[int64](10)}, AlertEmails: []string{"CRM <crm@example.com>"}})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "Spring 30%" || g.Description != "sale" || *g.LowBalanceThreshold != 10 || g.AlertEmails[0] != "crm@example.com" {
		t.Fatalf("created %+v", g)
	}
	if g.State != groups.StateEmpty || g.Total != 0 {
		t.Fatalf("new group state %q total %d", g.State, g.Total)
	}
	// Names are unique case-insensitively.
	if _, err := f.store.Create(ctx, "alice", groups.Input{Name: ptr("SPRING 30%")}); !errors.Is(err, groups.ErrNameTaken) {
		t.Fatalf("duplicate name: got %v, want ErrNameTaken", err)
	}
	other := f.group(t, "Autumn")
	if _, err := f.store.Update(ctx, "alice", other.ID, groups.Input{Name: ptr("spring 30%")}); !errors.Is(err, groups.ErrNameTaken) {
		t.Fatalf("rename onto a taken name: got %v", err)
	}
	// Edit: only set fields change; null clears the threshold.
	g2, err := f.store.Update(ctx, "bob", g.ID, groups.Input{Name: ptr("Spring 35%"), LowBalanceThreshold: groups.NullInt{Set: true}})
	if err != nil {
		t.Fatal(err)
	}
	if g2.Name != "Spring 35%" || g2.LowBalanceThreshold != nil || g2.Description != "sale" {
		t.Fatalf("updated %+v", g2)
	}
	byName, err := f.store.GetByName(ctx, "spring 35%")
	if err != nil || byName.ID != g.ID {
		t.Fatalf("GetByName: %v %v", byName, err)
	}
	list, err := f.store.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "Autumn" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if _, err := f.store.Get(ctx, 999999); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("missing group: %v", err)
	}
}

func TestGroupValidation(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name  string
		in    groups.Input
		field string
	}{
		{"no name", groups.Input{}, "name"},
		{"blank name", groups.Input{Name: ptr("   ")}, "name"},
		{"name of 201 characters", groups.Input{Name: ptr(strings.Repeat("é", 201))}, "name"},
		{"control character in name", groups.Input{Name: ptr("a\x00b")}, "name"},
		{"negative threshold", groups.Input{Name: ptr("x"), LowBalanceThreshold: groups.NullInt{Set: true, Value: ptr[int64](-1)}}, "low_balance_threshold"},
		{"bad email", groups.Input{Name: ptr("x"), AlertEmails: []string{"ok@example.com", "nope"}}, "alert_emails[1]"},
		{"bad webhook", groups.Input{Name: ptr("x"), AlertWebhook: ptr("ftp://x")}, "alert_webhook"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.store.Create(context.Background(), "t", c.in)
			var inv *groups.InvalidError
			if !errors.As(err, &inv) || inv.Field != c.field {
				t.Fatalf("got %v, want an InvalidError on %s", err, c.field)
			}
		})
	}
	// 200 characters is allowed.
	f.group(t, strings.Repeat("é", 200))
	if n := f.count(t, `SELECT count(*) FROM groups`); n != 1 {
		t.Fatalf("%d groups stored, want only the valid one", n)
	}
}

func TestUploadValidationRules(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	long := strings.Repeat("x", 201)
	huge := strings.Repeat("y", 100_000)
	body := "\uFEFFBOM-FIRST\r\n" + // 1: BOM stripped, CRLF trimmed
		"  spaced  \n" + // 2: trimmed
		"\n" + // 3: blank, skipped
		"bad\x00nul\n" + // 4
		"bad\xffutf8\n" + // 5
		"tab\tinside\n" + // 6
		long + "\n" + // 7
		strings.Repeat("é", 200) + "\n" + // 8: 200 characters (400 bytes) is fine
		strings.Repeat("é", 201) + "\n" + // 9
		huge + "\n" + // 10: longer than the reader's buffer, reported, not truncated
		"zero\u200bwidth\n" + // 11: non-printable
		"with space ok\n" + // 12
		"   \t  \n" + // 13: blank after trim
		"LAST-NO-NEWLINE" // 14
	rep := f.load(t, g.ID, groups.FormatPlain, body)
	if rep.Lines != 14 || rep.Accepted != 5 || rep.Invalid != 7 || rep.Duplicates != 0 {
		t.Fatalf("lines %d accepted %d invalid %d dup %d, want 14/5/7/0", rep.Lines, rep.Accepted, rep.Invalid, rep.Duplicates)
	}
	wantInvalid := map[int64]string{4: "control character (U+0000)", 5: "not valid UTF-8", 6: "control character (U+0009)",
		7: "longer than 200 characters (201)", 9: "longer than 200 characters (201)"}
	if len(rep.InvalidExamples) != 5 {
		t.Fatalf("want the first 5 invalid examples, got %+v", rep.InvalidExamples)
	}
	for _, ex := range rep.InvalidExamples {
		if want := wantInvalid[ex.Line]; want == "" || !strings.Contains(ex.Reason, want) {
			t.Errorf("line %d: reason %q, want it to contain %q", ex.Line, ex.Reason, want)
		}
	}
	var stored []string
	f.db.Select(&stored, `SELECT code FROM codes ORDER BY id`)
	want := []string{"BOM-FIRST", "spaced", strings.Repeat("é", 200), "with space ok", "LAST-NO-NEWLINE"}
	if strings.Join(stored, "|") != strings.Join(want, "|") {
		t.Fatalf("stored %q, want %q", stored, want)
	}
	// The invalid lines past the examples (10, 11) are still counted; check them alone.
	rep2 := f.load(t, g.ID, groups.FormatPlain, huge+"\nzero\u200bwidth\n")
	if rep2.Invalid != 2 || !strings.Contains(rep2.InvalidExamples[0].Reason, "100001 bytes") ||
		!strings.Contains(rep2.InvalidExamples[1].Reason, "non-printable character (U+200B)") {
		t.Fatalf("long and non-printable lines: %+v", rep2.InvalidExamples)
	}
}

func TestUploadDuplicates(t *testing.T) {
	f := newFixture(t)
	a, b := f.group(t, "A"), f.group(t, "B")
	f.load(t, a.ID, groups.FormatPlain, "X1\nX2\n")
	rep := f.load(t, b.ID, groups.FormatPlain, "Y1\nX1\nY1\nY2\nY1\n")
	if rep.Accepted != 2 || rep.Duplicates != 3 {
		t.Fatalf("accepted %d duplicates %d, want 2 and 3", rep.Accepted, rep.Duplicates)
	}
	want := []groups.LineProblem{
		{Line: 2, Code: "X1", Reason: `already stored in group "A"`},
		{Line: 3, Code: "Y1", Reason: "repeats line 1"},
		{Line: 5, Code: "Y1", Reason: "repeats line 1"},
	}
	if fmt.Sprint(rep.DuplicateExamples) != fmt.Sprint(want) {
		t.Fatalf("examples %+v, want %+v", rep.DuplicateExamples, want)
	}
	again := f.load(t, b.ID, groups.FormatPlain, "Y2\n")
	if again.Duplicates != 1 || again.DuplicateExamples[0].Reason != "already stored in this group" {
		t.Fatalf("re-upload: %+v", again)
	}
	gb, _ := f.store.Get(context.Background(), b.ID)
	if gb.Total != 2 || gb.Active != 2 {
		t.Fatalf("group B total %d active %d, want 2 and 2", gb.Total, gb.Active)
	}
	// 100% duplicates: nothing stored, no empty range.
	all := f.load(t, a.ID, groups.FormatPlain, "X1\nX2\n")
	if all.Accepted != 0 || all.Duplicates != 2 || f.count(t, `SELECT count(*) FROM code_ranges WHERE upload_id = $1`, all.ID) != 0 {
		t.Fatalf("all duplicates: %+v", all)
	}
}

func TestUploadCSVAndJSON(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	csv := "name,Code,expires_at\nn1,C1,2026-12-31\nn2,C2,\n\"n3,\"\"q\"\"\",C3,2026-07-01T00:00:00Z\nn4\nn5,C5,not-a-date\nn6,\"bad\n"
	rep := f.load(t, g.ID, groups.FormatCSV, csv)
	if rep.Accepted != 3 || rep.Invalid != 3 {
		t.Fatalf("csv: accepted %d invalid %d (%+v)", rep.Accepted, rep.Invalid, rep.InvalidExamples)
	}
	if rep.InvalidExamples[0].Line != 5 || rep.InvalidExamples[1].Line != 6 || !strings.Contains(rep.InvalidExamples[1].Reason, "expires_at") ||
		rep.InvalidExamples[2].Line != 7 {
		t.Fatalf("csv invalid examples: %+v", rep.InvalidExamples)
	}
	if _, err := f.store.Load(context.Background(), groups.UploadRequest{GroupID: g.ID, Format: groups.FormatCSV, Source: "api", Actor: "t"},
		strings.NewReader("number,expiry\n1,2\n")); !isUploadError(err) {
		t.Fatalf("csv without code column: %v", err)
	}

	js := `{"expires_at": "2027-01-01", "codes": ["J1", {"code": "J2", "expires_at": "2026-09-01"}, 42, {"cod": "x"}, "", "J1"]}`
	rep = f.load(t, g.ID, groups.FormatJSON, js)
	if rep.Accepted != 2 || rep.Invalid != 2 || rep.Duplicates != 1 || rep.Lines != 6 {
		t.Fatalf("json: %+v", rep)
	}
	if rep.InvalidExamples[0].Line != 3 || rep.InvalidExamples[1].Line != 4 || rep.DuplicateExamples[0].Line != 6 {
		t.Fatalf("json examples: %+v %+v", rep.InvalidExamples, rep.DuplicateExamples)
	}
	rep = f.load(t, g.ID, groups.FormatJSON, `["A1", "A2"]`)
	if rep.Accepted != 2 {
		t.Fatalf("json array: %+v", rep)
	}
	for _, bad := range []string{`{"codes": ["Z1", `, `["Z1"] trailing`, `{"codez": []}`, `"just a string"`} {
		_, err := f.store.Load(context.Background(), groups.UploadRequest{GroupID: g.ID, Format: groups.FormatJSON, Source: "api", Actor: "t"}, strings.NewReader(bad))
		if !isUploadError(err) {
			t.Errorf("%s: got %v, want an UploadError", bad, err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM codes WHERE code LIKE 'Z%'`); n != 0 {
		t.Fatalf("a rejected JSON body left %d codes", n)
	}
}

func isUploadError(err error) bool {
	var ue *groups.UploadError
	return errors.As(err, &ue)
}

func TestExpiryOrderAndBalance(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	ctx := context.Background()
	// Upload 1 never expires; upload 2 mixes expiries, some already past.
	f.load(t, g.ID, groups.FormatPlain, "N1\nN2\n")
	f.load(t, g.ID, groups.FormatCSV, "code,expires_at\nL1,2026-12-01\nS1,2026-07-01\nP1,2026-01-01\nS2,2026-07-01\nD1,\n")
	type rng struct {
		Exp   *time.Time `db:"expires_at"`
		Total int64      `db:"total"`
		Codes string     `db:"codes"`
	}
	var ranges []rng
	err := f.db.Select(&ranges, `
		SELECT r.expires_at, r.total, (SELECT string_agg(code, ',' ORDER BY id) FROM codes WHERE id BETWEEN r.first_id AND r.last_id) AS codes
		FROM code_ranges r WHERE group_id = $1 ORDER BY r.expires_at NULLS LAST, r.id`, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, r := range ranges {
		got = append(got, fmt.Sprintf("%d:%s", r.Total, r.Codes))
	}
	// Claim order: soonest expiry first, then upload order.
	want := []string{"1:P1", "2:S1,S2", "1:L1", "2:N1,N2", "1:D1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ranges in claim order %v, want %v", got, want)
	}
	gr, _ := f.store.Get(ctx, g.ID)
	if gr.Total != 7 || gr.Active != 6 || gr.Expired != 1 {
		t.Fatalf("total %d active %d expired %d, want 7/6/1", gr.Total, gr.Active, gr.Expired)
	}
	f.now = time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	gr, _ = f.store.Get(ctx, g.ID)
	if gr.Active != 4 || gr.Expired != 3 {
		t.Fatalf("after S expiry: active %d expired %d, want 4/3", gr.Active, gr.Expired)
	}
	// Upload-wide expiry applies to codes without their own.
	exp := time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)
	rep, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: "cli", Actor: "t", ExpiresAt: &exp}, strings.NewReader("E1\n"))
	if err != nil || rep.ExpiresAt == nil || !rep.ExpiresAt.Equal(exp) {
		t.Fatalf("upload expiry: %v %+v", err, rep)
	}
	if n := f.count(t, `SELECT count(*) FROM code_ranges WHERE upload_id = $1 AND expires_at = $2`, rep.ID, exp); n != 1 {
		t.Fatalf("upload-wide expiry not on its range")
	}
}

func TestUndoKeepsIssued(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	rep := f.load(t, g.ID, groups.FormatPlain, "U1\nU2\nU3\nU4\nU5\n")
	f.take(t, g.ID, 2)
	u, err := f.store.Undo(ctx, "carol", rep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *u.Removed != 3 || u.UndoneAt == nil || *u.UndoneBy != "carol" {
		t.Fatalf("undo: %+v", u)
	}
	var left []string
	f.db.Select(&left, `SELECT code FROM codes ORDER BY id`)
	if strings.Join(left, ",") != "U1,U2" {
		t.Fatalf("after undo codes %v, want the issued U1,U2", left)
	}
	gr, _ := f.store.Get(ctx, g.ID)
	if gr.Total != 2 || gr.Issued != 2 || gr.Active != 0 {
		t.Fatalf("after undo total %d issued %d active %d", gr.Total, gr.Issued, gr.Active)
	}
	if _, err := f.store.Undo(ctx, "carol", rep.ID); !errors.Is(err, groups.ErrUploadUndone) {
		t.Fatalf("second undo: %v", err)
	}
	if _, err := f.store.Undo(ctx, "carol", 424242); !errors.Is(err, groups.ErrUploadNotFound) {
		t.Fatalf("missing upload: %v", err)
	}
	// Undone codes can be uploaded again.
	if again := f.load(t, g.ID, groups.FormatPlain, "U3\nU1\n"); again.Accepted != 1 || again.Duplicates != 1 {
		t.Fatalf("re-upload after undo: %+v", again)
	}
}

func TestDeleteArchivesOrRemoves(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	issued := f.group(t, "Issued")
	f.load(t, issued.ID, groups.FormatPlain, "I1\nI2\nI3\n")
	f.take(t, issued.ID, 1)
	res, err := f.store.Delete(ctx, "dave", issued.ID)
	if err != nil || !res.Archived || res.RemovedCodes != 2 {
		t.Fatalf("delete with issued codes: %+v %v", res, err)
	}
	if _, err := f.store.Get(ctx, issued.ID); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatal("an archived group is still visible")
	}
	if f.count(t, `SELECT count(*) FROM groups WHERE id = $1 AND archived_at IS NOT NULL`, issued.ID) != 1 ||
		f.count(t, `SELECT count(*) FROM codes`) != 1 {
		t.Fatal("archive must keep the group row and its issued code only")
	}
	// The name is free again.
	f.group(t, "issued")

	unused := f.group(t, "Unused")
	f.load(t, unused.ID, groups.FormatPlain, "N1\nN2\n")
	res, err = f.store.Delete(ctx, "dave", unused.ID)
	if err != nil || res.Archived || res.RemovedCodes != 2 {
		t.Fatalf("delete without issued codes: %+v %v", res, err)
	}
	if f.count(t, `SELECT count(*) FROM groups WHERE id = $1`, unused.ID) != 0 || f.count(t, `SELECT count(*) FROM uploads WHERE group_id = $1`, unused.ID) != 0 {
		t.Fatal("a group with no issued codes must be removed")
	}
	if _, err := f.store.Delete(ctx, "dave", unused.ID); !errors.Is(err, groups.ErrGroupNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestActivityLog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t, "G")
	if _, err := f.store.Update(ctx, "erin", g.ID, groups.Input{Name: ptr("H"), Description: ptr("")}); err != nil {
		t.Fatal(err)
	}
	rep := f.load(t, g.ID, groups.FormatPlain, "A\nB\n")
	if _, err := f.store.Undo(ctx, "erin", rep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Delete(ctx, "erin", g.ID); err != nil {
		t.Fatal(err)
	}
	acts, err := f.store.ActivityPage(ctx, g.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		got = append(got, a.Actor+":"+a.Action)
	}
	if strings.Join(got, " ") != "erin:delete erin:undo_upload tester:upload erin:update tester:create" {
		t.Fatalf("activity %v", got)
	}
	// The update records only what changed: the name, not the unchanged description.
	upd := acts[3]
	if compact(upd.Before) != `{"name":"G"}` || compact(upd.After) != `{"name":"H"}` {
		t.Fatalf("update diff before %s after %s", upd.Before, upd.After)
	}
	if !strings.Contains(compact(acts[2].After), `"accepted":2`) {
		t.Fatalf("upload entry %s", acts[2].After)
	}
	// Append-only.
	if _, err := f.db.Exec(`UPDATE activity SET actor = 'mallory'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("activity update: %v", err)
	}
	if _, err := f.db.Exec(`DELETE FROM activity`); err == nil {
		t.Fatal("activity delete succeeded")
	}
}

// failingReader yields some lines, then fails like a dropped connection.
type failingReader struct {
	r     io.Reader
	after int
	read  int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.read >= f.after {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > f.after-f.read {
		p = p[:f.after-f.read]
	}
	n, err := f.r.Read(p)
	f.read += n
	return n, err
}

func TestUploadAllOrNothing(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	var b strings.Builder
	for i := 0; i < 50_000; i++ {
		fmt.Fprintf(&b, "CODE-%07d\n", i)
	}
	body := b.String()
	_, err := f.store.Load(context.Background(), groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: "api", Actor: "t"},
		&failingReader{r: strings.NewReader(body), after: len(body) / 2})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("got %v, want the reader's error", err)
	}
	if n := f.count(t, `SELECT count(*) FROM codes`) + f.count(t, `SELECT count(*) FROM uploads`) + f.count(t, `SELECT count(*) FROM code_ranges`); n != 0 {
		t.Fatalf("a failed upload left %d rows", n)
	}
	// A cancelled context (the client went away) stores nothing either.
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(body[:len(body)/3]))
		cancel()
		pw.CloseWithError(context.Canceled)
	}()
	if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: "api", Actor: "t"}, pr); err == nil {
		t.Fatal("a cancelled upload succeeded")
	}
	if n := f.count(t, `SELECT count(*) FROM codes`); n != 0 {
		t.Fatalf("a cancelled upload left %d codes", n)
	}
	// And the whole body loads.
	if rep := f.load(t, g.ID, groups.FormatPlain, body); rep.Accepted != 50_000 {
		t.Fatalf("accepted %d", rep.Accepted)
	}
}

func TestConcurrentOverlappingUploads(t *testing.T) {
	f := newFixture(t)
	a, b := f.group(t, "A"), f.group(t, "B")
	mk := func(from, to int, reverse bool) string {
		var sb strings.Builder
		for i := from; i < to; i++ {
			j := i
			if reverse {
				j = to - 1 - (i - from)
			}
			fmt.Fprintf(&sb, "OV-%06d\n", j)
		}
		return sb.String()
	}
	errs := make(chan error, 2)
	reps := make(chan *groups.UploadReport, 2)
	for i, g := range []int64{a.ID, b.ID} {
		go func() {
			rep, err := f.store.Load(context.Background(), groups.UploadRequest{GroupID: g, Format: groups.FormatPlain, Source: "api", Actor: "t"},
				strings.NewReader(mk(0, 50_000, i == 1)))
			errs <- err
			reps <- rep
		}()
	}
	var accepted int64
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent upload: %v", err)
		}
		accepted += (<-reps).Accepted
	}
	if accepted != 50_000 || f.count(t, `SELECT count(*) FROM codes`) != 50_000 {
		t.Fatalf("accepted %d in all, want each code once (50000)", accepted)
	}
}

func compact(raw []byte) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}

// TestUploadTokensBoundedBeforeBuffering: a JSON string past 64 KiB, JSON nested past 8
// levels and a CSV record past 1 MiB (a quoted field spanning short lines, which the
// line guard alone let through) end the upload with its place named, before the
// parser buffers them; nothing is stored. Elements of any shape within the limits are
// still reported one by one.
func TestUploadTokensBoundedBeforeBuffering(t *testing.T) {
	f := newFixture(t)
	g := f.group(t, "G")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		format groups.Format
		body   string
		want   string
	}{
		{"JSON string of 128 KiB", groups.FormatJSON, `["B1", "` + strings.Repeat("A", 128<<10) + `"]`, "a string longer than 65536 bytes at byte"},
		{"JSON nested 20 deep", groups.FormatJSON, `["B1", ` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `]`, "nested deeper than 8 levels"},
		{"JSON number of 128 KiB", groups.FormatJSON, `{"codes": [` + strings.Repeat("9", 128<<10) + `]}`, "a number or literal longer than"},
		{"CSV quoted field over 2 MiB of short lines", groups.FormatCSV, "code\nB1\n\"" + strings.Repeat("short\n", 2<<20/6) + "\"\n",
			"record starting on line 3 is longer than 1048576 bytes"},
	} {
		_, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: tc.format, Source: "api", Actor: "t"}, strings.NewReader(tc.body))
		if !isUploadError(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an UploadError saying %q", tc.name, err, tc.want)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM codes`); n != 0 {
		t.Fatalf("refused uploads stored %d codes", n)
	}
	rep := f.load(t, g.ID, groups.FormatJSON, `["B1", [1, [2]], {"code": {"x": 1}}, {"code": "B2", "extra": [1, 2]}, null, true, {"code": "B3"}]`)
	if rep.Accepted != 2 || rep.Invalid != 5 || rep.Lines != 7 {
		t.Fatalf("odd elements: %+v", rep)
	}
}
