package bench

import (
	"strings"
	"testing"
)

func TestStatementLabel(t *testing.T) {
	for q, want := range map[string]string{
		"INSERT INTO mailing_group_counts (mailing_id) SELECT 1":                                      "INSERT INTO mailing_group_counts",
		"WITH d AS (DELETE FROM reservations WHERE id = $1)\n INSERT INTO issues (a) SELECT 1 FROM d": "WITH … DELETE FROM reservations, INSERT INTO issues",
		"  UPDATE mailing_recipients r SET status = u.status FROM unnest($1)":                         "UPDATE mailing_recipients",
		"SELECT folded_to FROM segment_fold":                                                          "SELECT … FROM segment_fold",
		"INSERT INTO mailing_group_counts (a) SELECT 1 ON CONFLICT (a) DO UPDATE SET a = 2":           "INSERT INTO mailing_group_counts",
		"COMMIT": "COMMIT",
		"":       "(none)",
	} {
		if got := statementLabel(q); got != want {
			t.Errorf("statementLabel(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestParseCounters(t *testing.T) {
	text := "# HELP promopool_segment_fold_issues_total x\n# TYPE promopool_segment_fold_issues_total counter\n" +
		"promopool_segment_fold_issues_total 110000\npromopool_segment_fold_seconds_total 8.35\n" +
		"promopool_mailing_messages_total{status=\"sent\"} 5\n"
	got, err := parseCounters(strings.NewReader(text), "promopool_segment_fold_issues_total", "promopool_segment_fold_seconds_total")
	if err != nil {
		t.Fatal(err)
	}
	if got["promopool_segment_fold_issues_total"] != 110000 || got["promopool_segment_fold_seconds_total"] != 8.35 || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}
