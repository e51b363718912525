package alerts

import (
	"fmt"
	"testing"
)

// classify without PostgreSQL: which balance levels a group has reached and which it is
// above, for each kind of threshold and balance.
func TestClassify(t *testing.T) {
	threshold := func(v int64) *int64 { return &v }
	names := func(ls []level) string {
		out := ""
		for _, l := range ls {
			out += fmt.Sprintf("%s=%d ", l.name, l.value)
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		threshold     *int64
		total, active int64
		exhausted     bool
		reached       string
		above         string
	}{
		{"no threshold, codes left", nil, 10, 4, false, "", "empty=0 "},
		{"no threshold, run out", nil, 10, 0, false, "empty=0 ", ""},
		{"above the threshold", threshold(100), 500, 101, false, "", "threshold=100 half=50 quarter=25 empty=0 "},
		{"at the threshold", threshold(100), 500, 100, false, "threshold=100 ", "half=50 quarter=25 empty=0 "},
		{"under a quarter", threshold(100), 500, 20, false, "threshold=100 half=50 quarter=25 ", "empty=0 "},
		{"run out", threshold(100), 500, 0, false, "threshold=100 half=50 quarter=25 empty=0 ", ""},
		// Levels round down, and one that rounds to zero is left out: 3/2 = 1, 3/4 = 0.
		{"small threshold", threshold(3), 10, 1, false, "threshold=3 half=1 ", "empty=0 "},
		{"odd threshold rounds down", threshold(5), 10, 2, false, "threshold=5 half=2 ", "quarter=1 empty=0 "},
		{"threshold 0 is the zero level alone", threshold(0), 10, 0, false, "empty=0 ", ""},
		// A group that never held a code waits for its first codes…
		{"never held a code", threshold(10), 0, 0, false, "", ""},
		// …unless a mailing paused for lack of its codes, which reaches the zero level.
		{"exhausted by a mailing, never held a code", threshold(10), 0, 0, true, "empty=0 ", ""},
		{"exhausted by a mailing, codes left", threshold(10), 50, 30, true, "empty=0 ", "threshold=10 half=5 quarter=2 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached, above := classify(tc.threshold, tc.total, tc.active, tc.exhausted)
			if got := names(reached); got != tc.reached {
				t.Errorf("reached %q, want %q", got, tc.reached)
			}
			if got := names(above); got != tc.above {
				t.Errorf("above %q, want %q", got, tc.above)
			}
		})
	}
}
