package reports

import (
	"testing"
	"time"
)

// TestSpans: the blocks of a period cover each of its days exactly once, are aligned,
// and number at most two per level.
func TestSpans(t *testing.T) {
	base := time.Date(1999, 12, 20, 0, 0, 0, 0, time.UTC)
	for start := 0; start < 90; start += 7 {
		for n := 1; n <= 1097; n += 37 {
			from := base.AddDate(0, 0, start)
			to := from.AddDate(0, 0, n-1)
			levels, blocks, days := spans(from, to)
			seen := map[time.Time]int{}
			perLevel := map[int16]int{}
			for _, d := range days {
				seen[d]++
				perLevel[0]++
			}
			for i, k := range levels {
				perLevel[k]++
				first := spanEpoch.AddDate(0, 0, int(blocks[i])<<k)
				for j := 0; j < 1<<k; j++ {
					seen[first.AddDate(0, 0, j)]++
				}
			}
			if len(seen) != n {
				t.Fatalf("%v..%v: %d days covered, want %d", from, to, len(seen), n)
			}
			for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
				if seen[d] != 1 {
					t.Fatalf("%v..%v: day %v covered %d times", from, to, d, seen[d])
				}
			}
			for k, c := range perLevel {
				if c > 2 {
					t.Fatalf("%v..%v: %d blocks of level %d", from, to, c, k)
				}
			}
		}
	}
}
