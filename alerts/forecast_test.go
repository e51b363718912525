package alerts_test

import (
	"strings"
	"testing"
	"time"

	"promopool/alerts"
)

func TestForecastArithmetic(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		balance, issued int64
		rate            float64
		dry             time.Duration // -1: never
	}{
		{balance: 100, issued: 70, rate: 10, dry: 10 * 24 * time.Hour},
		{balance: 5, issued: 7, rate: 1, dry: 5 * 24 * time.Hour},
		{balance: 1, issued: 7 * 24, rate: 24, dry: time.Hour},
		{balance: 100, issued: 0, rate: 0, dry: -1},
		{balance: 0, issued: 0, rate: 0, dry: 0},
	} {
		f := alerts.NewForecast(now, tc.balance, tc.issued, alerts.RateWindow)
		if f.RatePerDay != tc.rate || f.WindowDays != 7 {
			t.Errorf("%+v: rate %v over %v days", tc, f.RatePerDay, f.WindowDays)
		}
		switch {
		case tc.dry < 0 && f.DryAt != nil:
			t.Errorf("%+v: runs dry at %v, want never", tc, f.DryAt)
		case tc.dry >= 0 && (f.DryAt == nil || !f.DryAt.Equal(now.Add(tc.dry))):
			t.Errorf("%+v: runs dry at %v, want %v", tc, f.DryAt, now.Add(tc.dry))
		}
	}

	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		buckets  []alerts.Expiring
		rate     float64
		unissued int64
	}{
		{"no issues: all expire", []alerts.Expiring{{now.Add(day), 10}, {now.Add(3 * day), 5}}, 0, 15},
		{"consumed in time", []alerts.Expiring{{now.Add(2 * day), 10}}, 5, 0},
		{"half left", []alerts.Expiring{{now.Add(2 * day), 20}}, 5, 10},
		// 10/day: the first bucket takes 1 day (10 codes), the second gets days 1–3 (20 of 50).
		{"soonest first", []alerts.Expiring{{now.Add(2 * day), 10}, {now.Add(3 * day), 50}}, 10, 30},
		// The first bucket expires with 5 left at day 1; the second gets days 1–2 only.
		{"left over expires", []alerts.Expiring{{now.Add(day), 15}, {now.Add(2 * day), 15}}, 10, 10},
		{"already expired", []alerts.Expiring{{now, 4}}, 10, 4},
	} {
		total, unissued := alerts.UnissuedAtExpiry(now, tc.buckets, tc.rate)
		var want int64
		for _, b := range tc.buckets {
			want += b.Count
		}
		if total != want || unissued != tc.unissued {
			t.Errorf("%s: %d expiring, %d unissued; want %d, %d", tc.name, total, unissued, want, tc.unissued)
		}
	}
}

func TestForecastCountsTheLastSevenDays(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	g := e.group(t, "Spring", 50, 100)
	e.take(t, g.ID, 70)
	// 14 of the 70 issues are older than the window: 56 in 7 days, 8 a day.
	if _, err := e.db.Exec(`UPDATE issues SET issued_at = now() - interval '8 days' WHERE id IN (SELECT id FROM issues ORDER BY id LIMIT 14)`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	check(t, c, now)
	list := e.list(t, c, g.ID)
	if len(list) != 1 {
		t.Fatalf("alerts: %s", levels(list))
	}
	a := list[0]
	wantDry := now.Add(30 * 24 * time.Hour / 8).Truncate(time.Second) // 30 left at 8 a day: 3.75 days
	if a.IssuedInWindow != 56 || a.RatePerDay != 8 || a.DryAt == nil || a.DryAt.Sub(wantDry).Abs() > time.Second {
		t.Fatalf("forecast: issued %d rate %v dry %v, want 56, 8, %v", a.IssuedInWindow, a.RatePerDay, a.DryAt, wantDry)
	}
	if !strings.Contains(a.Message, "(8.0 codes a day) it runs dry on") || !strings.Contains(a.Message, "(in 3.8 days)") {
		t.Fatalf("message: %q", a.Message)
	}
	// A group that issued nothing this week does not run dry.
	q := e.group(t, "Quiet", 50, 40)
	check(t, c, time.Now())
	ql := e.list(t, c, q.ID)
	if len(ql) != 1 || ql[0].DryAt != nil || !strings.Contains(ql[0].Message, "does not run dry at the current rate") {
		t.Fatalf("quiet group: %+v", ql)
	}
}

func TestExpiryAlert(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	g := e.group(t, "Spring", -1, 100) // no threshold; 100 codes without expiry
	soon := time.Now().Add(2*24*time.Hour + time.Hour)
	e.upload(t, g.ID, 50, &soon)
	late := time.Now().Add(30 * 24 * time.Hour) // outside the window
	e.upload(t, g.ID, 20, &late)
	e.take(t, g.ID, 14) // from the soonest-expiring codes: 36 left, 2 issued a day
	check(t, c, time.Now())
	check(t, c, time.Now())
	list := e.list(t, c, g.ID)
	if levels(list) != "expiry" {
		t.Fatalf("alerts: %s", levels(list))
	}
	a := list[0]
	// 2 days and 1 hour at 2 a day: 4 more are issued, 32 expire unissued.
	if *a.Expiring != 36 || *a.ExpiringUnissued != 32 || a.SoonestExpiry.Sub(soon).Abs() > time.Millisecond {
		t.Fatalf("expiry alert: expiring %d unissued %d soonest %v", *a.Expiring, *a.ExpiringUnissued, a.SoonestExpiry)
	}
	if !strings.Contains(a.Message, "36 active codes expire by") || !strings.Contains(a.Message, "about 32 of them will expire unissued") {
		t.Fatalf("message: %q", a.Message)
	}
	if e.mailsTo("ops+spring@shop.test") != 1 || e.hook.count("/Spring") != 1 {
		t.Fatal("the expiry alert was not sent once")
	}
	// Codes expiring sooner raise a new one.
	sooner := time.Now().Add(24 * time.Hour)
	e.upload(t, g.ID, 5, &sooner)
	check(t, c, time.Now())
	list = e.list(t, c, g.ID)
	if levels(list) != "expiry,expiry" || *list[0].Expiring != 41 {
		t.Fatalf("after a sooner upload: %s", levels(list))
	}
}
