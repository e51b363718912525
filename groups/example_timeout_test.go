package groups_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"promopool/groups"
	"promopool/internal/testdb"
)

// TestExampleTimeout: Config.ExampleTimeout bounds the search for duplicate examples,
// never the counts. The one duplicate sorts after 50,000 new codes, so finding it
// takes far longer than 1 ms and well under the default 3 s.
func TestExampleTimeout(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	patient := groups.NewStore(db.DB, groups.Config{})
	hasty := groups.NewStore(db.DB, groups.Config{ExampleTimeout: time.Millisecond})
	name := "Examples"
	g, err := patient.Create(ctx, "tester", groups.Input{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	load := func(s *groups.Store, body string) *groups.UploadReport {
		t.Helper()
		rep, err := s.Load(ctx, groups.UploadRequest{GroupID: g.ID, Format: groups.FormatPlain, Source: groups.SourceCLI, Actor: "tester"},
			strings.NewReader(body))
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		return rep
	}
	big := func(prefix string) string {
		var b strings.Builder
		for i := range 50_000 {
			fmt.Fprintf(&b, "%s-%07d\n", prefix, i)
		}
		b.WriteString("ZZZ-DUP\n")
		return b.String()
	}
	load(patient, "ZZZ-DUP\n")

	rep := load(patient, big("A"))
	if rep.Accepted != 50_000 || rep.Duplicates != 1 || rep.ExamplesIncomplete || len(rep.DuplicateExamples) != 1 ||
		rep.DuplicateExamples[0].Line != 50_001 {
		t.Fatalf("default timeout: accepted %d, duplicates %d, incomplete %v, examples %+v; want 50000, 1, false, line 50001",
			rep.Accepted, rep.Duplicates, rep.ExamplesIncomplete, rep.DuplicateExamples)
	}
	rep = load(hasty, big("B"))
	if rep.Accepted != 50_000 || rep.Duplicates != 1 || !rep.ExamplesIncomplete || len(rep.DuplicateExamples) != 0 {
		t.Fatalf("1 ms timeout: accepted %d, duplicates %d, incomplete %v, examples %+v; want 50000, 1, true, none",
			rep.Accepted, rep.Duplicates, rep.ExamplesIncomplete, rep.DuplicateExamples)
	}
}
