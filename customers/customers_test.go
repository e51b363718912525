package customers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"promopool/customers"
	"promopool/internal/testdb"
)

func TestUpsertJSONLinesAndCSV(t *testing.T) {
	db := testdb.New(t)
	s := customers.NewStore(db.DB)
	ctx := context.Background()
	body := `{"id": "c1", "email": "a@example.com", "first_name": "Ann", "attributes": {"tier": "gold"}}
{"id": "c2", "nickname": "x"}

{"id": "c3", "email": "not-an-email"}
{"email": "b@example.com"}
{"id": "c1", "last_name": "Lee", "attributes": {"city": "Oslo"}}
not json
`
	rep, err := s.Upsert(ctx, customers.FormatJSONLines, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 7 || rep.Upserted != 2 || rep.Invalid != 4 {
		t.Fatalf("report %+v", rep)
	}
	wantLines := []int64{2, 4, 5, 7}
	for i, p := range rep.Problems {
		if p.Line != wantLines[i] {
			t.Errorf("problem %d at line %d, want %d (%s)", i, p.Line, wantLines[i], p.Reason)
		}
	}
	if !strings.Contains(rep.Problems[0].Reason, "nickname") {
		t.Errorf("unknown field not named: %q", rep.Problems[0].Reason)
	}
	c, err := s.Get(ctx, "c1")
	if err != nil || c.Email != "a@example.com" || c.FirstName != "Ann" || c.LastName != "Lee" ||
		!strings.Contains(string(c.Attributes), `"tier": "gold"`) || !strings.Contains(string(c.Attributes), `"city": "Oslo"`) {
		t.Fatalf("c1 %+v %s %v", c, c.Attributes, err)
	}

	csv := "id,email,first_name,attr.tier\nc1,new@example.com,,silver\nc4,,Bo,\n,x@example.com,,\nc5,bad,,\nc6,\"broken\n"
	rep, err = s.Upsert(ctx, customers.FormatCSV, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Upserted != 2 || rep.Invalid != 3 || rep.Problems[0].Line != 4 || rep.Problems[1].Line != 5 || rep.Problems[2].Line != 6 {
		t.Fatalf("csv report %+v", rep)
	}
	c, _ = s.Get(ctx, "c1")
	if c.Email != "new@example.com" || c.FirstName != "" || !strings.Contains(string(c.Attributes), `"tier": "silver"`) {
		t.Fatalf("c1 after csv %+v %s", c, c.Attributes)
	}
	var ue *customers.UploadError
	if _, err := s.Upsert(ctx, customers.FormatCSV, strings.NewReader("id,phone\nc1,123\n")); !errors.As(err, &ue) || ue.Line != 1 {
		t.Fatalf("unknown column: %v", err)
	}
	if c, err := s.Get(ctx, "nobody"); !errors.Is(err, customers.ErrNotFound) || c != nil {
		t.Fatalf("unknown customer: %v %v, want ErrNotFound", c, err)
	}
}

func TestUpsertManyWithRepeats(t *testing.T) {
	db := testdb.New(t)
	s := customers.NewStore(db.DB)
	var b strings.Builder
	for i := range 2500 {
		// every id twice, far apart and within one chunk
		b.WriteString(`{"id": "k` + string(rune('a'+i%26)) + `-` + strings.Repeat("x", i%3) + `"}` + "\n")
	}
	rep, err := s.Upsert(context.Background(), customers.FormatJSONLines, strings.NewReader(b.String()))
	if err != nil || rep.Invalid != 0 || rep.Upserted != 2500 {
		t.Fatalf("%+v %v", rep, err)
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM customers`)
	if n != 78 {
		t.Fatalf("%d customers, want 78 distinct", n)
	}
}

// TestAttributeLimitEveryFormat: one limit on a customer's attributes, whatever the
// format: a line over it is refused with its number and the others load; a CSV record
// longer than a JSON line may be (a quoted field spanning lines) fails the upload before
// it is buffered, as an over-long JSON line does.
func TestAttributeLimitEveryFormat(t *testing.T) {
	db := testdb.New(t)
	s := customers.NewStore(db.DB)
	ctx := context.Background()
	big := strings.Repeat("x", customers.MaxAttributesBytes)
	nd := `{"id": "n1", "attributes": {"note": "` + big + `"}}` + "\n" + `{"id": "n2", "attributes": {"note": "ok"}}` + "\n"
	csvBody := "id,attr.note\nv1,\"" + big + "\"\nv2,ok\n"
	for name, up := range map[string]func() (*customers.Report, error){
		"ndjson": func() (*customers.Report, error) {
			return s.Upsert(ctx, customers.FormatJSONLines, strings.NewReader(nd))
		},
		"csv": func() (*customers.Report, error) {
			return s.Upsert(ctx, customers.FormatCSV, strings.NewReader(csvBody))
		},
	} {
		rep, err := up()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Upserted != 1 || rep.Invalid != 1 || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Reason, "64 KiB") {
			t.Errorf("%s: a 64 KiB attribute: %+v", name, rep)
		}
	}
	// 8 MB in one quoted CSV field, over several lines: refused, nothing stored.
	huge := "id,attr.note\nh1,ok\nh2,\"" + strings.Repeat("line of text\n", 8<<20/13) + "\"\n"
	_, err := s.Upsert(ctx, customers.FormatCSV, strings.NewReader(huge))
	var ue *customers.UploadError
	if !errors.As(err, &ue) || ue.Line != 3 {
		t.Fatalf("an 8 MB quoted field: %v, want an UploadError at line 3", err)
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM customers WHERE id IN ('h1', 'h2')`)
	if n != 0 {
		t.Fatalf("%d customers stored from a refused upload", n)
	}
}
