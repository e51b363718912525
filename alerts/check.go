package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/groups"
)

// tickLockClass is the first key of the tick's advisory lock; the second is a hash of
// the schema, so checkers of different schemas (tests, benchmarks) do not exclude
// each other.
const tickLockClass = 0x616c7274 // "alrt"

// Result says what one Check did.
type Result struct {
	// Skipped is true when another checker held the tick lock: this one did nothing.
	Skipped bool `json:"skipped"`
	// Groups is how many groups were checked.
	Groups int `json:"groups"`
	// Raised counts the alerts claimed by this check (suppressed ones included).
	Raised int `json:"raised"`
	// GroupErrors counts groups whose check failed (logged; the others went on).
	GroupErrors int `json:"group_errors"`
	// Sent and Failed count delivery attempts of this check.
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
}

// Check checks every live group at now, raises the alerts due and sends every pending
// delivery (new ones, and those that failed before). It runs under Config.Timeout.
//
// A transaction-scoped advisory lock makes one checker at a time do the tick: a Check
// that cannot take it returns at once with Skipped set. The lock only saves work; each
// alert's unique row is what keeps it from being sent twice. A group whose check fails
// is logged and counted, and the other groups go on; so does a delivery that fails.
func (c *Service) Check(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	tx, err := c.db.BeginTxx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("checking alerts: %w", err)
	}
	defer tx.Rollback()
	var locked bool
	if err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))`, tickLockClass); err != nil {
		return res, fmt.Errorf("checking alerts: taking the tick lock: %w", err)
	}
	if !locked {
		res.Skipped = true
		return res, nil
	}
	survey, err := c.survey(ctx, now)
	if err != nil {
		return res, fmt.Errorf("checking alerts: %w", err)
	}
	var due []int64
	for _, g := range survey {
		if g.due() {
			due = append(due, g.ID)
		}
	}
	res.Groups = len(survey)
	var issued map[int64]int64
	if len(due) > 0 {
		if issued, err = c.issuedInWindow(ctx, now, 0); err != nil {
			return res, fmt.Errorf("checking alerts: %w", err)
		}
	}
	for _, id := range due {
		if ctx.Err() != nil {
			return res, fmt.Errorf("checking alerts: %w", ctx.Err())
		}
		raised, err := c.checkGroup(ctx, id, now, issued[id], nil)
		if err != nil {
			res.GroupErrors++
			c.log.Error("alert check of a group failed", "group_id", id, "err", err)
			continue
		}
		res.Raised += len(raised)
	}
	res.Sent, res.Failed = c.deliver(ctx, now, nil)
	c.log.Info("alert check done", "groups", res.Groups, "raised", res.Raised, "group_errors", res.GroupErrors,
		"sent", res.Sent, "failed", res.Failed)
	return res, nil
}

// CheckGroup checks one group at now and sends the alerts it raised, without the tick
// lock. It returns the alerts raised (none when they were raised before).
// Errors: the database's.
func (c *Service) CheckGroup(ctx context.Context, groupID int64, now time.Time) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	issued, err := c.issuedInWindow(ctx, now, groupID)
	if err != nil {
		return nil, err
	}
	ids, err := c.checkGroup(ctx, groupID, now, issued[groupID], nil)
	if err != nil {
		return nil, err
	}
	c.deliver(ctx, now, ids)
	return ids, nil
}

// GroupExhausted implements mailings.Alerter: a mailing paused because the group ran
// out of codes raises the group's zero-level alert at once (if it has not fired since
// the last upload) and sends it, instead of waiting for the next tick. Failures are
// logged; the scheduler retries the deliveries.
func (c *Service) GroupExhausted(ctx context.Context, groupID int64, mailingID int64, waiting int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
	defer cancel()
	now := c.cfg.Now()
	issued, err := c.issuedInWindow(ctx, now, groupID)
	if err != nil {
		c.log.Error("raising the alert of a paused mailing failed", "group_id", groupID, "mailing_id", mailingID, "err", err)
		return
	}
	ids, err := c.checkGroup(ctx, groupID, now, issued[groupID], &pause{mailingID: mailingID, waiting: waiting})
	if err != nil {
		c.log.Error("raising the alert of a paused mailing failed", "group_id", groupID, "mailing_id", mailingID, "err", err)
		return
	}
	c.deliver(ctx, now, ids)
}

// pause is the mailing that ran a group out of codes.
type pause struct {
	mailingID int64
	waiting   int
}

// issuedInWindow counts initial issues (not released since) of the RateWindow before
// now, per group (one group when groupID is not 0). issued_at follows insertion order,
// so the BRIN index on it limits the scan to the window's blocks.
func (c *Service) issuedInWindow(ctx context.Context, now time.Time, groupID int64) (map[int64]int64, error) {
	var rows []struct {
		GroupID int64 `db:"group_id"`
		N       int64 `db:"n"`
	}
	err := c.db.SelectContext(ctx, &rows, `
		SELECT group_id, count(*) AS n FROM issues
		WHERE issued_at > $1 AND issued_at <= $2 AND kind = 'initial' AND released_at IS NULL
		  AND ($3::bigint = 0 OR group_id = $3::bigint)
		GROUP BY group_id`, now.Add(-RateWindow), now, groupID)
	if err != nil {
		return nil, fmt.Errorf("counting the issues of the last %s: %w", RateWindow, err)
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.GroupID] = r.N
	}
	return out, nil
}

// surveyed is a group as the tick's survey sees it, without locks.
type surveyed struct {
	groups.Balance
	// Fired lists the levels whose current arming has an alert.
	Fired []string
	// ExpiryFired says whether the expiry alert of SoonestExpiry's day exists.
	ExpiryFired bool
}

// selectFired reads, for each group of $1, the balance levels whose current arming has
// fired and whether the expiry alert of day $2 (-1: none) exists.
const selectFired = `
SELECT u.group_id,
       coalesce((SELECT array_agg(s.level) FROM alert_state s
                 WHERE s.group_id = u.group_id AND EXISTS (
                     SELECT 1 FROM alerts a WHERE a.group_id = s.group_id AND a.level = s.level AND a.arming = s.arming)),
                '{}') AS fired,
       EXISTS (SELECT 1 FROM alerts a WHERE a.group_id = u.group_id AND a.level = 'expiry' AND a.arming = u.day) AS expiry_fired
FROM unnest($1::bigint[], $2::bigint[]) AS u(group_id, day)`

// survey reads the state of every live group, so that a tick opens a locked
// transaction only for the groups with something to do (at 1,000 groups, a tick with
// nothing due went from 2.8 s to one statement; it is two now, the balances from
// groups and the alert state from here).
func (c *Service) survey(ctx context.Context, now time.Time) ([]surveyed, error) {
	balances, err := c.groups.Balances(ctx, now, now.Add(c.cfg.ExpiryWindow))
	if err != nil {
		return nil, fmt.Errorf("surveying groups: %w", err)
	}
	ids, days := make([]int64, len(balances)), make([]int64, len(balances))
	for i, b := range balances {
		ids[i], days[i] = b.ID, -1
		if b.SoonestExpiry != nil {
			days[i] = expiryDay(*b.SoonestExpiry)
		}
	}
	var rows []struct {
		GroupID     int64          `db:"group_id"`
		Fired       pq.StringArray `db:"fired"`
		ExpiryFired bool           `db:"expiry_fired"`
	}
	if err := c.db.SelectContext(ctx, &rows, selectFired, pq.Array(ids), pq.Array(days)); err != nil {
		return nil, fmt.Errorf("surveying alert state: %w", err)
	}
	out := make([]surveyed, len(balances))
	at := make(map[int64]*surveyed, len(balances))
	for i := range balances {
		out[i].Balance = balances[i]
		at[balances[i].ID] = &out[i]
	}
	for _, r := range rows {
		if g := at[r.GroupID]; g != nil {
			g.Fired, g.ExpiryFired = r.Fired, r.ExpiryFired
		}
	}
	return out, nil
}

// expiryDay is the arming of the expiry alert of codes expiring at t: its day, in days
// since 1970-01-01 UTC.
func expiryDay(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// due says whether the group may have an alert to raise or a level to re-arm. It is
// only a filter: checkGroup decides again under the group's lock.
func (g *surveyed) due() bool {
	if g.Total == 0 {
		return false
	}
	for _, l := range levelsFor(g.EffectiveThreshold()) {
		fired := slices.Contains(g.Fired, l.name)
		if (g.Active <= l.value) != fired {
			return true // a level to raise, or one to re-arm
		}
	}
	return g.SoonestExpiry != nil && !g.ExpiryFired
}

// level is one balance level of a group.
type level struct {
	name  string
	value int64
}

// levelsFor returns a group's balance levels, highest first: the threshold, half and a
// quarter of it (rounded down; a level equal to the next lower one is left out) and
// zero. A group without a threshold has only the zero level.
func levelsFor(threshold *int64) []level {
	var out []level
	if threshold != nil && *threshold > 0 {
		t := *threshold
		out = append(out, level{LevelThreshold, t})
		if t/2 > 0 {
			out = append(out, level{LevelHalf, t / 2})
		}
		if t/4 > 0 && t/4 < t/2 {
			out = append(out, level{LevelQuarter, t / 4})
		}
	}
	return append(out, level{LevelEmpty, 0})
}

var balanceLevels = pq.StringArray{LevelThreshold, LevelHalf, LevelQuarter, LevelEmpty}

// checkGroup decides a group's alerts at now in one transaction and returns the ids of
// the alerts it raised that have deliveries. It locks the group's alert_state rows
// first, so checkers of one group take turns and each reads the balance after the
// previous one committed. For each level the balance is at or under, it claims the
// alert (group, level, current arming); for each level the balance is above whose
// current arming has fired, it re-arms the level. When several levels are reached at
// once, only the lowest is sent. p forces the zero level (a paused mailing).
func (c *Service) checkGroup(ctx context.Context, groupID int64, now time.Time, issued int64, p *pause) ([]int64, error) {
	tx, err := c.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	arming, err := lockAlertState(ctx, tx, groupID)
	if err != nil || arming == nil {
		return nil, err // nil: the group was removed
	}
	snap, err := c.groups.Snapshot(ctx, tx, groupID, now, now.Add(c.cfg.ExpiryWindow))
	if err != nil {
		return nil, fmt.Errorf("checking group %d: reading its balance: %w", groupID, err)
	}
	if snap.ArchivedAt != nil {
		return nil, nil
	}
	g := &snap.Group
	threshold := g.EffectiveThreshold()
	fc := NewForecast(now, g.Active, issued, RateWindow)
	base := Alert{GroupID: g.ID, GroupName: g.Name, Balance: g.Active, Total: g.Total, Threshold: threshold,
		IssuedInWindow: fc.Issued, WindowDays: fc.WindowDays, RatePerDay: fc.RatePerDay, DryAt: fc.DryAt, CreatedAt: now}
	if p != nil {
		base.MailingID = &p.mailingID
	}
	reached, above := classify(threshold, g.Total, g.Active, p != nil)
	raised, err := c.raise(ctx, tx, reached, arming, base, g, p)
	if err != nil {
		return nil, fmt.Errorf("checking group %d: %w", groupID, err)
	}
	if err := rearm(ctx, tx, groupID, above); err != nil {
		return nil, fmt.Errorf("checking group %d: re-arming: %w", groupID, err)
	}
	buckets := make([]Expiring, len(snap.Expiring))
	for i, e := range snap.Expiring {
		buckets[i] = Expiring(e)
	}
	id, err := c.checkExpiry(ctx, tx, g, buckets, base, now)
	if err != nil {
		return nil, fmt.Errorf("checking group %d: %w", groupID, err)
	}
	if id != 0 {
		raised = append(raised, id)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("checking group %d: %w", groupID, err)
	}
	return raised, nil
}

// lockAlertState makes sure the group's balance levels have their alert_state rows
// and locks them: the checkers of one group take turns from here to commit. It returns
// each level's current arming, or nil when the group was removed.
func lockAlertState(ctx context.Context, tx *sqlx.Tx, groupID int64) (map[string]int64, error) {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO alert_state (group_id, level) SELECT $1, unnest($2::text[])
		ON CONFLICT DO NOTHING`, groupID, balanceLevels)
	if isForeignKeyViolation(err) {
		return nil, nil // the group was removed
	}
	if err != nil {
		return nil, fmt.Errorf("checking group %d: %w", groupID, err)
	}
	var states []struct {
		Level  string `db:"level"`
		Arming int64  `db:"arming"`
	}
	// FOR UPDATE: the checkers of this group take turns from here to commit.
	if err := tx.SelectContext(ctx, &states, `SELECT level, arming FROM alert_state WHERE group_id = $1 FOR UPDATE`, groupID); err != nil {
		return nil, fmt.Errorf("checking group %d: locking its alert state: %w", groupID, err)
	}
	arming := make(map[string]int64, len(states))
	for _, s := range states {
		arming[s.Level] = s.Arming
	}
	return arming, nil
}

// classify sorts a group's balance levels (levelsFor(threshold)), highest first, into
// those its active balance is at or under (reached) and those it is above. A group
// that never held a code (or whose uploads were all undone) is not running low: its
// levels are in neither list and wait for its first codes. exhausted (a mailing paused
// for lack of the group's codes) reaches the zero level whatever the balance says.
func classify(threshold *int64, total, active int64, exhausted bool) (reached, above []level) {
	for _, l := range levelsFor(threshold) {
		switch {
		case l.name == LevelEmpty && exhausted:
			reached = append(reached, l)
		case total == 0:
		case active <= l.value:
			reached = append(reached, l)
		default:
			above = append(above, l)
		}
	}
	return reached, above
}

// raise claims the alert of each reached level at its current arming; only the lowest
// is sent, the others are recorded as suppressed. It returns the ids of the alerts it
// raised that have deliveries.
func (c *Service) raise(ctx context.Context, tx *sqlx.Tx, reached []level, arming map[string]int64, base Alert, g *groups.Group, p *pause) ([]int64, error) {
	var raised []int64
	for i, l := range reached {
		a := base
		a.Level, a.Arming, a.Suppressed = l.name, arming[l.name], i < len(reached)-1
		v := l.value
		a.LevelValue = &v
		a.Message = levelMessage(&a, p)
		id, ok, err := c.claim(ctx, tx, &a, g)
		if err != nil {
			return nil, err
		}
		if ok {
			c.logAlert(&a)
			if !a.Suppressed {
				raised = append(raised, id)
			}
		}
	}
	return raised, nil
}

// rearm re-arms the levels the balance is above again, if they fired at their current
// arming: the next fall to such a level raises a new alert.
func rearm(ctx context.Context, tx *sqlx.Tx, groupID int64, above []level) error {
	if len(above) == 0 {
		return nil
	}
	names := make(pq.StringArray, len(above))
	for i, l := range above {
		names[i] = l.name
	}
	_, err := tx.ExecContext(ctx, `
		UPDATE alert_state s SET arming = s.arming + 1
		WHERE s.group_id = $1 AND s.level = ANY($2)
		  AND EXISTS (SELECT 1 FROM alerts a WHERE a.group_id = s.group_id AND a.level = s.level AND a.arming = s.arming)`,
		groupID, names)
	return err
}

// checkExpiry raises the expiry alert of the group's active codes expiring within the
// window (buckets, soonest first), once per soonest-expiry day. It returns the alert's id, or 0.
func (c *Service) checkExpiry(ctx context.Context, tx *sqlx.Tx, g *groups.Group, buckets []Expiring, base Alert, now time.Time) (int64, error) {
	if len(buckets) == 0 {
		return 0, nil
	}
	end := now.Add(c.cfg.ExpiryWindow)
	total, unissued := UnissuedAtExpiry(now, buckets, base.RatePerDay)
	a := base
	soonest := buckets[0].ExpiresAt
	a.Level, a.Arming = LevelExpiry, expiryDay(soonest)
	a.MailingID = nil
	a.Expiring, a.ExpiringUnissued, a.ExpiringBefore, a.SoonestExpiry = &total, &unissued, &end, &soonest
	a.Message = expiryMessage(&a)
	id, ok, err := c.claim(ctx, tx, &a, g)
	if err != nil || !ok {
		return 0, err
	}
	c.logAlert(&a)
	return id, nil
}

// claim inserts the alert unless (group, level, arming) exists, and its deliveries
// (one per email address, one for the webhook) unless it is suppressed. ok is false
// when the alert had been raised already.
func (c *Service) claim(ctx context.Context, tx *sqlx.Tx, a *Alert, g *groups.Group) (id int64, ok bool, err error) {
	rows, err := sqlx.NamedQueryContext(ctx, tx, `
		INSERT INTO alerts (group_id, level, arming, level_value, balance, total, threshold, issued_in_window,
		                    window_days, rate_per_day, dry_at, expiring, expiring_unissued, expiring_before,
		                    soonest_expiry, mailing_id, suppressed, message, created_at)
		VALUES (:group_id, :level, :arming, :level_value, :balance, :total, :threshold, :issued_in_window,
		        :window_days, :rate_per_day, :dry_at, :expiring, :expiring_unissued, :expiring_before,
		        :soonest_expiry, :mailing_id, :suppressed, :message, :created_at)
		ON CONFLICT (group_id, level, arming) DO NOTHING
		RETURNING id`, a)
	if err != nil {
		return 0, false, fmt.Errorf("claiming the %s alert: %w", a.Level, err)
	}
	if rows.Next() {
		err = rows.Scan(&id)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil || id == 0 {
		return 0, false, err
	}
	a.ID = id
	if a.Suppressed {
		return id, true, nil
	}
	channels, targets := pq.StringArray{}, pq.StringArray{}
	for _, e := range g.AlertEmails {
		channels, targets = append(channels, ChannelEmail), append(targets, e)
	}
	if g.AlertWebhook != "" {
		channels, targets = append(channels, ChannelWebhook), append(targets, g.AlertWebhook)
	}
	if len(channels) > 0 {
		_, err = tx.ExecContext(ctx, `
			INSERT INTO alert_deliveries (alert_id, channel, target)
			SELECT $1, unnest($2::text[]), unnest($3::text[]) ON CONFLICT DO NOTHING`, id, channels, targets)
		if err != nil {
			return 0, false, fmt.Errorf("recording the deliveries of alert %d: %w", id, err)
		}
	}
	return id, true, nil
}

// logAlert is the log channel, which every alert goes to.
func (c *Service) logAlert(a *Alert) {
	attrs := []any{"alert_id", a.ID, "group_id", a.GroupID, "group", a.GroupName, "level", a.Level,
		"balance", a.Balance, "rate_per_day", a.RatePerDay, "suppressed", a.Suppressed}
	if a.Threshold != nil {
		attrs = append(attrs, "threshold", *a.Threshold)
	}
	if a.DryAt != nil {
		attrs = append(attrs, "dry_at", a.DryAt.UTC().Format(time.RFC3339))
	}
	if a.Expiring != nil {
		attrs = append(attrs, "expiring", *a.Expiring, "expiring_unissued", *a.ExpiringUnissued)
	}
	if a.MailingID != nil {
		attrs = append(attrs, "mailing_id", *a.MailingID)
	}
	c.log.Warn("balance alert: "+a.Message, attrs...)
}

// levelMessage is the text of a balance alert.
func levelMessage(a *Alert, p *pause) string {
	var b strings.Builder
	switch a.Level {
	case LevelEmpty:
		fmt.Fprintf(&b, "Group %q has run out of codes: 0 active codes left.", a.GroupName)
		if p != nil {
			fmt.Fprintf(&b, " Mailing %d is paused with %d recipients waiting for a code; it resumes once codes are uploaded.", p.mailingID, p.waiting)
		}
		return b.String()
	case LevelThreshold:
		fmt.Fprintf(&b, "Group %q is low: %d active codes left (threshold %d).", a.GroupName, a.Balance, *a.Threshold)
	case LevelHalf:
		fmt.Fprintf(&b, "Group %q is at half its threshold: %d active codes left (threshold %d).", a.GroupName, a.Balance, *a.Threshold)
	case LevelQuarter:
		fmt.Fprintf(&b, "Group %q is at a quarter of its threshold: %d active codes left (threshold %d).", a.GroupName, a.Balance, *a.Threshold)
	}
	b.WriteString(" " + forecastText(a))
	return b.String()
}

// forecastText says when the group runs dry at the last week's rate.
func forecastText(a *Alert) string {
	if a.DryAt == nil {
		return "No code was issued in the last 7 days: it does not run dry at the current rate."
	}
	days := a.DryAt.Sub(a.CreatedAt).Hours() / 24
	return fmt.Sprintf("At the last 7 days' rate (%.1f codes a day) it runs dry on %s (in %.1f days).",
		a.RatePerDay, a.DryAt.UTC().Format("2006-01-02 15:04 MST"), days)
}

// expiryMessage is the text of an expiry alert.
func expiryMessage(a *Alert) string {
	if a.RatePerDay == 0 {
		return fmt.Sprintf("Group %q: %d active codes expire by %s (the first on %s). No code was issued in the last 7 days: all %d will expire unissued at the current rate.",
			a.GroupName, *a.Expiring, a.ExpiringBefore.UTC().Format("2006-01-02"), a.SoonestExpiry.UTC().Format("2006-01-02 15:04 MST"), *a.ExpiringUnissued)
	}
	return fmt.Sprintf("Group %q: %d active codes expire by %s (the first on %s). At the last 7 days' rate (%.1f codes a day) about %d of them will expire unissued.",
		a.GroupName, *a.Expiring, a.ExpiringBefore.UTC().Format("2006-01-02"), a.SoonestExpiry.UTC().Format("2006-01-02 15:04 MST"), a.RatePerDay, *a.ExpiringUnissued)
}

func isForeignKeyViolation(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23503"
}
