package segments

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Horizon returns the instant below which no issue can still appear (see horizonSQL):
// every issue stamped earlier is committed. Other folders of the issue history (package
// reports) read it in their own transaction, as Fold does.
func Horizon(ctx context.Context, q sqlx.QueryerContext) (time.Time, error) {
	var horizon time.Time
	if err := sqlx.GetContext(ctx, q, &horizon, horizonSQL, writerLock); err != nil {
		return time.Time{}, fmt.Errorf("issue history horizon: %w", err)
	}
	return horizon, nil
}
