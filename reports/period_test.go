package reports_test

import (
	"errors"
	"testing"
	"time"

	"promopool/reports"
)

func TestParsePeriod(t *testing.T) {
	now := time.Date(2026, 12, 5, 19, 30, 0, 0, time.FixedZone("CET", 3600))
	for _, c := range []struct {
		from, to         string
		wantFrom, wantTo string
		days             int
		field            string // the parameter an error names
	}{
		{"", "", "2026-11-06", "2026-12-05", 30, ""},
		{"2026-12-01", "", "2026-12-01", "2026-12-05", 5, ""},
		{"", "2026-11-30", "2026-11-01", "2026-11-30", 30, ""},
		{" 2026-01-01 ", "2026-12-31", "2026-01-01", "2026-12-31", 365, ""},
		{"2026-12-05", "2026-12-05", "2026-12-05", "2026-12-05", 1, ""},
		{"2027-01-10", "", "2027-01-10", "2027-01-10", 1, ""}, // from alone in the future: that day
		{"2024-02-28", "2024-03-01", "2024-02-28", "2024-03-01", 3, ""},
		{"2026-12-06", "2026-12-05", "", "", 0, "to"},
		{"yesterday", "", "", "", 0, "from"},
		{"2026-12-01T00:00:00Z", "", "", "", 0, "from"},
		{"", "2026-13-01", "", "", 0, "to"},
		{"1999-12-31", "", "", "", 0, "from"},
		{"2020-01-01", "2026-12-05", "", "", 0, "to"}, // longer than MaxPeriodDays
	} {
		p, err := reports.ParsePeriod(c.from, c.to, now)
		if c.field != "" {
			var ie *reports.InvalidError
			if !errors.As(err, &ie) || ie.Field != c.field || ie.Reason == "" {
				t.Errorf("%q..%q: error %v, want one naming %s", c.from, c.to, err, c.field)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q..%q: %v", c.from, c.to, err)
			continue
		}
		if got := p.From.Format("2006-01-02"); got != c.wantFrom {
			t.Errorf("%q..%q: from %s, want %s", c.from, c.to, got, c.wantFrom)
		}
		if got := p.To.Format("2006-01-02"); got != c.wantTo {
			t.Errorf("%q..%q: to %s, want %s", c.from, c.to, got, c.wantTo)
		}
		if p.Days() != c.days {
			t.Errorf("%q..%q: %d days, want %d", c.from, c.to, p.Days(), c.days)
		}
		if !p.End().Equal(p.To.AddDate(0, 0, 1)) || p.From.Location() != time.UTC {
			t.Errorf("%q..%q: end %v, location %v", c.from, c.to, p.End(), p.From.Location())
		}
	}
}
