package csvlimit

import (
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRecordsWithinTheLimitParseAsBefore(t *testing.T) {
	in := "id,note\r\na,\"one\ntwo\"\r\nb,\"say \"\"hi\"\"\"\nc,plain\n"
	want, err := csv.NewReader(strings.NewReader(in)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(NewReader(strings.NewReader(in), 64, ',')).ReadAll()
	if err != nil || len(got) != len(want) || got[1][1] != "one\ntwo" || got[2][1] != `say "hi"` {
		t.Fatalf("got %q %v, want %q", got, err, want)
	}
}

func TestAQuoteLeftOpenStopsAtTheLimit(t *testing.T) {
	// A field opened on line 3 and never closed: 10 MB of "lines" follow.
	body := io.MultiReader(strings.NewReader("id,note\na,ok\nb,\"open\n"),
		strings.NewReader(strings.Repeat("more text\n", 1<<20)))
	cr := csv.NewReader(NewReader(body, 1<<16, ','))
	var recs int
	var err error
	for {
		if _, err = cr.Read(); err != nil {
			break
		}
		recs++
	}
	var tl *TooLongError
	if !errors.As(err, &tl) || tl.Line != 3 || recs != 2 {
		t.Fatalf("after %d records: %v, want a TooLongError at line 3 after 2 records", recs, err)
	}
}

func TestABareQuoteInATextFieldDoesNotOpenOne(t *testing.T) {
	in := "id,note\na,5\" screen\n" + strings.Repeat("b,x\n", 1000)
	r := NewReader(strings.NewReader(in), 64, ',')
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("a bare quote mid-field: %v", err)
	}
}
