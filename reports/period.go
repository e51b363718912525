package reports

import (
	"fmt"
	"strings"
	"time"
)

// dateLayout is how a period's days are written: ISO 8601 dates, in UTC.
const dateLayout = "2006-01-02"

// MaxPeriodDays is the longest period a report covers (three years and a day).
const MaxPeriodDays = 1097

// DefaultPeriodDays is the period of a report when none is asked for: the last 30 days,
// today included.
const DefaultPeriodDays = 30

// Period is a run of whole UTC days, From and To included.
type Period struct {
	From time.Time
	To   time.Time
}

// Days is how many days the period covers.
func (p Period) Days() int { return int(p.To.Sub(p.From).Hours()/24) + 1 }

// Start is the first instant of the period; End the first instant after it.
func (p Period) Start() time.Time { return p.From }

// End is the first instant after the period.
func (p Period) End() time.Time { return p.To.AddDate(0, 0, 1) }

// MarshalJSON writes {"from":"YYYY-MM-DD","to":"YYYY-MM-DD","days":N}.
func (p Period) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"from":%q,"to":%q,"days":%d}`, p.From.Format(dateLayout), p.To.Format(dateLayout), p.Days()), nil
}

// String writes the period as "from … to".
func (p Period) String() string {
	return p.From.Format(dateLayout) + " … " + p.To.Format(dateLayout)
}

// InvalidError is a period that cannot be read: which parameter and why.
type InvalidError struct {
	// Field is the query parameter at fault: "from" or "to".
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// ParsePeriod reads a report's period from its from and to parameters (dates,
// YYYY-MM-DD, UTC, both included). A missing to is today (as of now); a missing from
// is DefaultPeriodDays before to. Errors (*InvalidError) name the parameter: not a date,
// to before from, longer than MaxPeriodDays.
func ParsePeriod(from, to string, now time.Time) (Period, error) {
	today := day(now)
	var p Period
	var err error
	if p.To, err = parseDay("to", to, today); err != nil {
		return Period{}, err
	}
	if p.From, err = parseDay("from", from, p.To.AddDate(0, 0, 1-DefaultPeriodDays)); err != nil {
		return Period{}, err
	}
	if strings.TrimSpace(to) == "" && p.From.After(p.To) {
		// Only from was given, in the future: a one-day period on it.
		p.To = p.From
	}
	switch {
	case p.To.Before(p.From):
		return Period{}, &InvalidError{"to", fmt.Sprintf("%s is before from (%s)", p.To.Format(dateLayout), p.From.Format(dateLayout))}
	case p.Days() > MaxPeriodDays:
		return Period{}, &InvalidError{"to", fmt.Sprintf("the period covers %d days; at most %d", p.Days(), MaxPeriodDays)}
	}
	return p, nil
}

// parseDay reads one date parameter; blank takes def.
func parseDay(field, v string, def time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(dateLayout, v)
	if err != nil {
		return time.Time{}, &InvalidError{field, fmt.Sprintf("%q is not a date: write YYYY-MM-DD (UTC), e.g. 2026-12-01", v)}
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, &InvalidError{field, fmt.Sprintf("%q is out of range (years 2000 to 2200)", v)}
	}
	return t, nil
}

// day is the UTC day of t, at midnight.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// lowerName is the portfolio's name order.
func lowerName(r *PortfolioRow) string { return strings.ToLower(r.GroupName) }

// ParsePeriod is ParsePeriod as of the service's clock.
func (s *Service) ParsePeriod(from, to string) (Period, error) {
	return ParsePeriod(from, to, s.cfg.Now())
}
