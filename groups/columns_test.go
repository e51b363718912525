package groups_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"

	"promopool/groups"
)

// Issue 21 item 8: a CSV upload's columns beside code and expires_at are stored with
// each code (an empty cell as "", a cell the line lacks as absent), read back with the
// code a customer holds, and exported with it; a plain upload stores none; bad headers
// and cells are refused; a group that declares its columns refuses any other.
func TestUploadExtraColumns(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	g := f.group(t, "Store")
	rep := f.load(t, g.ID, groups.FormatCSV, "code,pin,expires_at,barcode\n"+
		"ST-1,0001,,4006381333931\n"+
		"ST-2,,2030-01-01,\n"+
		"ST-3,0003\n"+ // no barcode cell: absent
		"ST-4,"+strings.Repeat("9", 501)+",,x\n") // too long: invalid line
	if rep.Accepted != 3 || rep.Invalid != 1 || !strings.Contains(rep.InvalidExamples[0].Reason, "column pin is longer than 500") {
		t.Fatalf("report: %+v", rep)
	}
	got := map[string]string{}
	rows, err := f.db.QueryContext(ctx, `SELECT code, columns::text FROM codes ORDER BY code`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var code, cols string
		rows.Scan(&code, &cols)
		got[code] = cols
	}
	want := map[string]string{"ST-1": `{"pin": "0001", "barcode": "4006381333931"}`, "ST-2": `{"pin": "", "barcode": ""}`, "ST-3": `{"pin": "0003"}`}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("columns of %s = %s, want %s", c, got[c], w)
		}
	}
	// A plain upload stores no columns (NULL: nothing more per row).
	f.load(t, g.ID, groups.FormatPlain, "PL-1\n")
	if n := f.count(t, `SELECT count(*) FROM codes WHERE code = 'PL-1' AND columns IS NULL`); n != 1 {
		t.Fatalf("a plain upload stored columns")
	}
	// The code a customer holds under a scope comes back with its own row.
	res, err := f.store.Claim(ctx, groups.ClaimRequest{GroupID: g.ID, Scope: "s1", CustomerIDs: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	held, err := f.store.CodeColumns(ctx, g.ID, "s1", []string{"a", "b", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held["a"].Code != res.Codes["a"] || held["b"].Code != res.Codes["b"] {
		t.Fatalf("held %+v, claimed %v", held, res.Codes)
	}
	pins := map[string]string{"ST-1": "0001", "ST-2": "", "ST-3": "0003"}
	for _, c := range []string{"a", "b"} {
		if pin, ok := held[c].Columns["pin"]; !ok || pin != pins[held[c].Code] {
			t.Fatalf("%s holds %s with columns %v", c, held[c].Code, held[c].Columns)
		}
	}

	// Exports carry the columns after their own (unused: ST-3 and PL-1 are left: ST-2,
	// the soonest to expire, and ST-1 were claimed).
	var buf bytes.Buffer
	if err := f.store.ExportUnused(ctx, g.ID, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "code,expires_at,expired,pin,barcode" || len(recs) != 3 {
		t.Fatalf("unused.csv: %q", recs)
	}
	byCode := map[string][]string{}
	for _, r := range recs[1:] {
		byCode[r[0]] = r
	}
	if r := byCode["ST-3"]; r == nil || r[3] != "0003" || r[4] != "" {
		t.Fatalf("ST-3 exported as %q", r)
	}
	if r := byCode["PL-1"]; r == nil || r[3] != "" || r[4] != "" {
		t.Fatalf("PL-1 exported as %q", r)
	}
	buf.Reset()
	if err := f.store.ExportIssues(ctx, g.ID, &buf); err != nil {
		t.Fatal(err)
	}
	recs, _ = csv.NewReader(&buf).ReadAll()
	if len(recs) != 3 || recs[0][9] != "pin" || recs[0][10] != "barcode" {
		t.Fatalf("issues.csv: %q", recs)
	}
	for _, r := range recs[1:] {
		if r[9] != pins[r[2]] || (r[2] == "ST-1") != (r[10] == "4006381333931") {
			t.Fatalf("issues.csv row %q", r)
		}
	}

	// Headers that cannot be columns, and a group's declared columns.
	for _, bad := range []struct{ body, reason string }{
		{"code,PIN code\nX-1,1\n", "not a column name"},
		{"code,pin,pin\nX-1,1,2\n", "listed twice"},
		{"code,9pin\nX-1,1\n", "not a column name"},
	} {
		_, err := f.store.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatCSV, Source: groups.SourceAPI, Actor: "t"}, strings.NewReader(bad.body))
		var ue *groups.UploadError
		if !errors.As(err, &ue) || ue.Line != 1 || !strings.Contains(ue.Reason, bad.reason) {
			t.Errorf("%q: %v, want an UploadError on line 1 saying %q", bad.body, err, bad.reason)
		}
	}
	declared := f.group(t, "Declared")
	if _, err := f.store.Update(ctx, "t", declared.ID, groups.Input{Columns: groups.NullStrings{Set: true, Value: []string{"pin"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = f.store.Load(ctx, groups.UploadRequest{GroupID: declared.ID, Format: groups.FormatCSV, Source: groups.SourceAPI, Actor: "t"}, strings.NewReader("code,pin,serial\nD-1,1,2\n"))
	var ue *groups.UploadError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, `"serial" is not one of them`) {
		t.Fatalf("undeclared column: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM codes WHERE code LIKE 'D-%'`); n != 0 {
		t.Fatalf("a refused upload stored %d codes", n)
	}
	if rep := f.load(t, declared.ID, groups.FormatCSV, "code,pin\nD-1,1\n"); rep.Accepted != 1 {
		t.Fatalf("declared column: %+v", rep)
	}
	cols, err := f.store.GroupColumns(ctx, []string{"declared", "Store", "none"})
	if err != nil || len(cols) != 3 || strings.Join(cols[0], ",") != "pin" || cols[1] != nil || cols[2] != nil {
		t.Fatalf("GroupColumns = %q, %v", cols, err)
	}
}

// TestGroupMetadata: metadata and declared columns are stored on create, replaced by an
// update, returned by Get and logged; over their bounds an update is refused naming the
// key, and nothing changes.
func TestGroupMetadata(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	g, err := f.store.Create(ctx, "ann", groups.Input{Name: ptr("Spring"), Metadata: &map[string]string{"campaign": "SPR-26", "owner": "ann"},
		Columns: groups.NullStrings{Set: true, Value: []string{"pin", "barcode"}}})
	if err != nil {
		t.Fatal(err)
	}
	if g.Metadata["campaign"] != "SPR-26" || len(g.Metadata) != 2 || strings.Join(g.Columns, ",") != "pin,barcode" {
		t.Fatalf("created: %+v %q", g.Metadata, g.Columns)
	}
	plain := f.group(t, "Plain")
	if plain.Metadata == nil || len(plain.Metadata) != 0 || plain.Columns != nil {
		t.Fatalf("defaults: %#v %#v", plain.Metadata, plain.Columns)
	}
	g, err = f.store.Update(ctx, "bob", g.ID, groups.Input{Metadata: &map[string]string{"campaign": "SPR-27"}, Columns: groups.NullStrings{Set: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Get(ctx, g.ID); len(got.Metadata) != 1 || got.Metadata["campaign"] != "SPR-27" || got.Columns != nil {
		t.Fatalf("after the update: %+v %q", got.Metadata, got.Columns)
	}
	if n := f.count(t, `SELECT count(*) FROM activity WHERE group_id = $1 AND action = 'update' AND after->'metadata'->>'campaign' = 'SPR-27' AND before->'metadata'->>'owner' = 'ann'`, g.ID); n != 1 {
		t.Fatalf("the change is not in the activity log")
	}
	many := map[string]string{}
	for i := range 51 {
		many[strings.Repeat("k", 1+i%40)+string(rune('a'+i/40))] = "v"
	}
	for _, bad := range []struct {
		in    groups.Input
		field string
	}{
		{groups.Input{Metadata: &many}, "metadata"},
		{groups.Input{Metadata: &map[string]string{strings.Repeat("k", 41): "v"}}, "metadata." + strings.Repeat("k", 41)},
		{groups.Input{Metadata: &map[string]string{"ok": "v", "long": strings.Repeat("é", 501)}}, "metadata.long"},
		{groups.Input{Metadata: &map[string]string{"": "v"}}, "metadata"},
		{groups.Input{Columns: groups.NullStrings{Set: true, Value: []string{"pin", "code"}}}, "columns[1]"},
		{groups.Input{Columns: groups.NullStrings{Set: true, Value: []string{"P IN"}}}, "columns[0]"},
	} {
		_, err := f.store.Update(ctx, "bob", g.ID, bad.in)
		var ie *groups.InvalidError
		if !errors.As(err, &ie) || ie.Field != bad.field {
			t.Errorf("%+v: %v, want invalid %s", bad.in, err, bad.field)
		}
	}
	if got, _ := f.store.Get(ctx, g.ID); len(got.Metadata) != 1 || got.Metadata["campaign"] != "SPR-27" {
		t.Fatalf("a refused update changed the metadata: %+v", got.Metadata)
	}
	// exactly at the bounds is fine
	edge := map[string]string{}
	for i := range 50 {
		edge[strings.Repeat("k", 39)+string(rune('A'+i))] = strings.Repeat("v", 500)
	}
	if _, err := f.store.Update(ctx, "bob", g.ID, groups.Input{Metadata: &edge}); err != nil {
		t.Fatalf("50 keys of 40 characters, values of 500: %v", err)
	}
}
