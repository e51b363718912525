package reports

import "time"

// spanEpoch is day 0 of the span blocks (report_block in migration 0028).
var spanEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// spanLevels is the highest level of report_issue_mailing_spans and
// report_redemption_spans: blocks of 2^10 = 1,024 days.
const spanLevels = 10

// spans covers the days [from, to] with aligned blocks, largest first where they fit:
// levels and blocks of the span tables (level ≥ 1), and the single days left at the
// edges (level 0, read from the day rows). At most two blocks per level.
func spans(from, to time.Time) (levels []int16, blocks []int32, days []time.Time) {
	a := int64(from.Sub(spanEpoch).Hours() / 24)
	b := int64(to.Sub(spanEpoch).Hours() / 24)
	for a <= b {
		k := 0
		for k < spanLevels && a&(1<<(k+1)-1) == 0 && a+1<<(k+1)-1 <= b {
			k++
		}
		if k == 0 {
			days = append(days, spanEpoch.AddDate(0, 0, int(a)))
		} else {
			levels, blocks = append(levels, int16(k)), append(blocks, int32(a>>k))
		}
		a += 1 << k
	}
	return levels, blocks, days
}
