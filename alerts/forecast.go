package alerts

import (
	"math"
	"time"
)

// Forecast is the issue rate of the last RateWindow and what it means for a balance.
type Forecast struct {
	// Issued counts the initial issues (not since released) of the window.
	Issued int64
	// WindowDays is the window's length in days.
	WindowDays float64
	// RatePerDay is Issued / WindowDays.
	RatePerDay float64
	// DryAt is when the balance reaches zero at RatePerDay (now when it already is);
	// nil when nothing was issued in the window: the group does not run dry at the
	// current rate.
	DryAt *time.Time
}

// NewForecast computes the forecast for balance at now from the issues of the window.
// The dry date is rounded to the second.
func NewForecast(now time.Time, balance, issued int64, window time.Duration) Forecast {
	f := Forecast{Issued: issued, WindowDays: window.Hours() / 24}
	if f.WindowDays > 0 {
		f.RatePerDay = float64(issued) / f.WindowDays
	}
	switch {
	case balance <= 0:
		t := now
		f.DryAt = &t
	case f.RatePerDay > 0:
		secs := float64(balance) / f.RatePerDay * 86400
		t := now.Add(time.Duration(math.Round(secs)) * time.Second)
		f.DryAt = &t
	}
	return f
}

// Expiring is the active codes that share one expiry.
type Expiring struct {
	ExpiresAt time.Time `db:"expires_at"`
	Count     int64     `db:"n"`
}

// UnissuedAtExpiry estimates how many of the expiring codes (sorted by expiry) expire
// before they are issued, at ratePerDay from now. Claims take the soonest-expiring codes
// first, so the codes are consumed bucket by bucket: a bucket gets the issues between
// the moment the previous one was used up or expired and its own expiry, and whatever
// is left of it then expires unissued. Returns the expiring total and the unissued part.
func UnissuedAtExpiry(now time.Time, buckets []Expiring, ratePerDay float64) (total, unissued int64) {
	perSec := ratePerDay / 86400
	cursor := now // when the consumer starts on the next bucket
	for _, b := range buckets {
		total += b.Count
		if !b.ExpiresAt.After(cursor) || perSec <= 0 {
			unissued += b.Count
			continue
		}
		capacity := b.ExpiresAt.Sub(cursor).Seconds() * perSec
		if capacity >= float64(b.Count) {
			cursor = cursor.Add(time.Duration(float64(b.Count) / perSec * float64(time.Second)))
			continue
		}
		taken := int64(math.Floor(capacity))
		unissued += b.Count - taken
		cursor = b.ExpiresAt
	}
	return total, unissued
}
