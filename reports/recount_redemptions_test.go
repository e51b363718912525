package reports_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"promopool/reports"
)

// redemptionActivity writes random redemptions of the fixture's groups on four
// connections, as checkout's statements leave them — succeeded, held, refused — and
// moves some on: a hold confirmed, cancelled or expired, a use refunded whole or in part.
// Days are spread over the last two weeks.
func (f *fixture) redemptionActivity(ctx context.Context, rng *rand.Rand) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		seed := rng.Uint64()
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			var mine []int64
			for op := range 80 {
				if len(mine) > 0 && rng.IntN(3) == 0 {
					f.moveRedemption(mine[rng.IntN(len(mine))], rng)
					continue
				}
				id, err := f.insertRedemption(w, op, rng)
				if err != nil {
					f.t.Errorf("worker %d: %v", w, err)
					return
				}
				mine = append(mine, id)
			}
		}()
	}
	wg.Wait()
}

func (f *fixture) insertRedemption(w, op int, rng *rand.Rand) (int64, error) {
	g := f.groups[rng.IntN(len(f.groups))]
	kind, code := "unique", int64(1+rng.IntN(1<<30))
	if g == f.groups[0] {
		kind, code = "shared", int64(1+rng.IntN(3)) // three partner codes
	}
	var mailing any
	if kind == "unique" && rng.IntN(2) == 0 {
		mailing = int64(1 + rng.IntN(4))
	}
	status, reason, hold := "succeeded", any(nil), any(nil)
	switch rng.IntN(6) {
	case 0:
		status, reason = "failed", "exhausted"
	case 1:
		status, hold = "pending", f.now.Add(time.Hour)
	}
	amount := int64(1000 + rng.IntN(20000))
	discount := amount / 10
	if status == "failed" {
		discount = 0
	}
	at := f.now.Add(-time.Duration(rng.Int64N(int64(14 * 24 * time.Hour))))
	hash := sha256.Sum256(fmt.Appendf(nil, "%d-%d", w, op))
	var id int64
	// A mailing's code has its issue (any of the history: the delay is what is checked).
	err := f.db.Get(&id, `INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, request_hash, status, reason,
		mailing_id, currency, order_amount, discount_amount, utm_source, snapshot, hold_expires_at, created_at, updated_at, issue_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'EUR', $11, $12, $13, '{}', $14, $15, $15,
		        CASE WHEN $10::bigint IS NOT NULL THEN (SELECT id FROM issues ORDER BY id OFFSET $16 LIMIT 1) END) RETURNING id`,
		g, code, fmt.Sprintf("C%d", code), kind, fmt.Sprintf("cust%d", rng.IntN(30)), fmt.Sprintf("w%d-o%d", w, op), hash[:],
		status, reason, mailing, amount, discount, []string{"", "instagram", "youtube"}[rng.IntN(3)], hold, at, rng.IntN(200))
	return id, err
}

// moveRedemption moves a redemption to a next state, as checkout's confirm, cancel,
// expiry and refunds do (an impossible move changes nothing).
func (f *fixture) moveRedemption(id int64, rng *rand.Rand) {
	var err error
	switch rng.IntN(5) {
	case 0:
		_, err = f.db.Exec(`UPDATE redemptions SET status = 'succeeded', hold_expires_at = NULL WHERE id = $1 AND status = 'pending'`, id)
	case 1:
		_, err = f.db.Exec(`UPDATE redemptions SET status = $2 WHERE id = $1 AND status = 'pending'`, id, []string{"cancelled", "expired"}[rng.IntN(2)])
	case 2:
		_, err = f.db.Exec(`UPDATE redemptions SET status = 'refunded', refunded_amount = discount_amount WHERE id = $1 AND status = 'succeeded'`, id)
	default:
		_, err = f.db.Exec(`UPDATE redemptions SET refunded_amount = least(discount_amount, refunded_amount + discount_amount / 4)
			WHERE id = $1 AND status = 'succeeded'`, id)
	}
	if err != nil {
		f.t.Errorf("moving redemption %d: %v", id, err)
	}
}

// redemptionRecount is a rollup row recounted from the redemptions.
type redemptionRecount struct {
	GroupID   int64     `db:"group_id"`
	Day       time.Time `db:"day"`
	MailingID int64     `db:"mailing_id"`
	CodeID    int64     `db:"code_id"`
	UTMSource string    `db:"utm_source"`
	Uses      int64     `db:"uses"`
	Revenue   int64     `db:"revenue"`
	Discount  int64     `db:"discount"`
	Refunds   int64     `db:"refunds"`
	Refunded  int64     `db:"refunded"`
	Failed    int64     `db:"failed"`
}

// recountRedemptions compares report_redemption_days and report_redeemer_days with a
// GROUP BY over the redemptions, and returns the recount.
func (f *fixture) recountRedemptions() []redemptionRecount {
	f.t.Helper()
	var want, got []redemptionRecount
	if err := f.db.Select(&want, `
		SELECT group_id, (created_at AT TIME ZONE 'UTC')::date AS day, coalesce(mailing_id, 0) AS mailing_id,
		       CASE WHEN kind = 'shared' THEN code_id ELSE 0 END AS code_id, utm_source,
		       count(*) FILTER (WHERE status = 'succeeded') AS uses,
		       coalesce(sum(order_amount) FILTER (WHERE status = 'succeeded'), 0) AS revenue,
		       coalesce(sum(discount_amount - refunded_amount) FILTER (WHERE status IN ('succeeded', 'refunded')), 0) AS discount,
		       count(*) FILTER (WHERE status = 'refunded') AS refunds,
		       coalesce(sum(refunded_amount) FILTER (WHERE status IN ('succeeded', 'refunded')), 0) AS refunded,
		       count(*) FILTER (WHERE status = 'failed') AS failed
		FROM redemptions WHERE group_id IS NOT NULL
		GROUP BY 1, 2, 3, 4, 5
		HAVING count(*) FILTER (WHERE status IN ('succeeded', 'refunded', 'failed')) > 0
		ORDER BY 1, 2, 3, 4, 5`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&got, `SELECT group_id, day, mailing_id, code_id, utm_source, uses, revenue, discount, refunds, refunded, failed
		FROM report_redemption_days WHERE uses + refunds + failed > 0 ORDER BY 1, 2, 3, 4, 5`); err != nil {
		f.t.Fatal(err)
	}
	if len(want) == 0 {
		f.t.Fatal("no redemption to recount")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Fatalf("redemption rollups differ from the recount:\n got %v\nwant %v", got, want)
	}
	var wantC, gotC []string
	if err := f.db.Select(&wantC, `SELECT format('%s/%s/%s/%s', group_id, (created_at AT TIME ZONE 'UTC')::date, customer_id, count(*))
		FROM redemptions WHERE status = 'succeeded' GROUP BY group_id, (created_at AT TIME ZONE 'UTC')::date, customer_id ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotC, `SELECT format('%s/%s/%s/%s', group_id, day, customer_id, uses) FROM report_redeemer_days ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if fmt.Sprint(gotC) != fmt.Sprint(wantC) {
		f.t.Fatalf("redeemer days differ from the recount:\n got %v\nwant %v", gotC, wantC)
	}
	var wantD, gotD []string
	if err := f.db.Select(&wantD, `SELECT format('%s/%s/%s/%s/%s', r.group_id, (r.created_at AT TIME ZONE 'UTC')::date, r.mailing_id,
		       (extract(epoch FROM r.created_at - i.issued_at) * 1000000)::bigint, count(*))
		FROM redemptions r JOIN issues i ON i.id = r.issue_id WHERE r.status = 'succeeded' AND r.mailing_id IS NOT NULL
		GROUP BY r.group_id, (r.created_at AT TIME ZONE 'UTC')::date, r.mailing_id, (extract(epoch FROM r.created_at - i.issued_at) * 1000000)::bigint ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotD, `SELECT format('%s/%s/%s/%s/%s', group_id, day, mailing_id, micros, uses) FROM report_redemption_delays ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if len(wantD) == 0 || fmt.Sprint(gotD) != fmt.Sprint(wantD) {
		f.t.Fatalf("redemption delays differ from the recount:\n got %v\nwant %v", gotD, wantD)
	}
	// 0027's per-group days: the same sums over every mailing, code and source.
	var wantG, gotG []string
	if err := f.db.Select(&wantG, `
		SELECT format('%s/%s/%s/%s/%s/%s/%s/%s/%s', group_id, (created_at AT TIME ZONE 'UTC')::date, currency,
		       count(*) FILTER (WHERE status = 'succeeded'),
		       coalesce(sum(order_amount) FILTER (WHERE status = 'succeeded'), 0),
		       coalesce(sum(discount_amount - refunded_amount) FILTER (WHERE status IN ('succeeded', 'refunded')), 0),
		       count(*) FILTER (WHERE status = 'refunded'),
		       coalesce(sum(refunded_amount) FILTER (WHERE status IN ('succeeded', 'refunded')), 0),
		       count(*) FILTER (WHERE status = 'failed'))
		FROM redemptions WHERE group_id IS NOT NULL
		GROUP BY group_id, (created_at AT TIME ZONE 'UTC')::date, currency
		HAVING count(*) FILTER (WHERE status IN ('succeeded', 'refunded', 'failed')) > 0 ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotG, `SELECT format('%s/%s/%s/%s/%s/%s/%s/%s/%s', group_id, day, currency, uses, revenue, discount, refunds, refunded, failed)
		FROM report_redemption_group_days WHERE uses + refunds + failed > 0 ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if fmt.Sprint(gotG) != fmt.Sprint(wantG) {
		f.t.Fatalf("redemption group days differ from the recount:\n got %v\nwant %v", gotG, wantG)
	}
	// 0027's last days: how many customers used each group last on each day.
	var wantL, gotL []string
	if err := f.db.Select(&wantL, `
		SELECT format('%s/%s/%s', group_id, last, count(*)) FROM (
		    SELECT group_id, customer_id, max((created_at AT TIME ZONE 'UTC')::date) AS last
		    FROM redemptions WHERE status = 'succeeded' AND group_id IS NOT NULL GROUP BY 1, 2) c
		GROUP BY group_id, last ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotL, `SELECT format('%s/%s/%s', group_id, day, customers) FROM report_redeemer_last_days
		WHERE customers > 0 ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if len(wantL) == 0 || fmt.Sprint(gotL) != fmt.Sprint(wantL) {
		f.t.Fatalf("redeemer last days differ from the recount:\n got %v\nwant %v", gotL, wantL)
	}
	// 0028's spans: each block's sums of the day rows (themselves equal to the recount).
	var wantS, gotS []string
	if err := f.db.Select(&wantS, `
		SELECT format('%s/%s/%s/%s/%s/%s/%s/%s/%s', group_id, k, report_block(day, k), mailing_id, code_id, utm_source,
		       sum(uses), sum(revenue), sum(discount))
		FROM report_redemption_days CROSS JOIN generate_series(1, 10) k WHERE mailing_id <> 0 OR code_id <> 0
		GROUP BY group_id, k, report_block(day, k), mailing_id, code_id, utm_source ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotS, `SELECT format('%s/%s/%s/%s/%s/%s/%s/%s/%s', group_id, level, block, mailing_id, code_id, utm_source,
		uses, revenue, discount) FROM report_redemption_spans ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if len(wantS) == 0 || fmt.Sprint(gotS) != fmt.Sprint(wantS) {
		f.t.Fatalf("redemption spans differ from the day rows:\n got %v\nwant %v", gotS, wantS)
	}
	return want
}

// checkUniqueCustomers compares each group's unique customers, in its report and in the
// portfolio, with a distinct count of the raw rows over periods that end today (read
// from the customers' last days) and periods with uses after them (a distinct count of
// the redeemer days).
func (f *fixture) checkUniqueCustomers(ctx context.Context, rng *rand.Rand) {
	f.t.Helper()
	today := f.now.Truncate(24 * time.Hour)
	periods := []reports.Period{{From: today, To: today}, {From: today.AddDate(0, 0, -20), To: today}}
	for range 6 {
		from := today.AddDate(0, 0, -rng.IntN(16))
		periods = append(periods, reports.Period{From: from, To: from.AddDate(0, 0, rng.IntN(int(today.Sub(from).Hours()/24)+1))})
	}
	for _, p := range periods {
		pf, err := f.svc.Portfolio(ctx, p, "name")
		if err != nil {
			f.t.Fatal(err)
		}
		for _, g := range f.groups {
			var want int64
			if err := f.db.Get(&want, `SELECT count(DISTINCT customer_id) FROM redemptions
				WHERE group_id = $1 AND status = 'succeeded' AND created_at >= $2 AND created_at < $3`, g, p.Start(), p.End()); err != nil {
				f.t.Fatal(err)
			}
			m, err := f.svc.GroupMetrics(ctx, g, p)
			if err != nil {
				f.t.Fatal(err)
			}
			if m.Redemptions.UniqueCustomers != want {
				f.t.Errorf("group %d %v..%v: %d unique customers, recount %d", g, p.From, p.To, m.Redemptions.UniqueCustomers, want)
			}
			// The mailings' and codes' parts (read from spans of days) over the same period.
			var wantM, wantC []string
			if err := f.db.Select(&wantM, `
				SELECT format('%s/%s/%s', mailing_id, count(*) FILTER (WHERE status = 'succeeded'),
				       coalesce(sum(order_amount) FILTER (WHERE status = 'succeeded'), 0))
				FROM redemptions WHERE group_id = $1 AND mailing_id IS NOT NULL AND status IN ('succeeded', 'refunded', 'failed')
				  AND created_at >= $2 AND created_at < $3
				GROUP BY mailing_id ORDER BY 1`, g, p.Start(), p.End()); err != nil {
				f.t.Fatal(err)
			}
			if err := f.db.Select(&wantC, `
				SELECT format('%s/%s/%s/%s', code_id, utm_source, count(*) FILTER (WHERE status = 'succeeded'),
				       coalesce(sum(order_amount) FILTER (WHERE status = 'succeeded'), 0))
				FROM redemptions WHERE group_id = $1 AND kind = 'shared' AND status IN ('succeeded', 'refunded', 'failed')
				  AND created_at >= $2 AND created_at < $3
				GROUP BY code_id, utm_source ORDER BY 1`, g, p.Start(), p.End()); err != nil {
				f.t.Fatal(err)
			}
			// Each mailing's issues in the period (read from spans of days).
			var issued []struct {
				MailingID int64 `db:"mailing_id"`
				N         int64 `db:"n"`
			}
			if err := f.db.Select(&issued, `SELECT mailing_id, count(*) AS n FROM issues
				WHERE group_id = $1 AND mailing_id IS NOT NULL AND kind = 'initial' AND released_at IS NULL
				  AND issued_at >= $2 AND issued_at < $3 AND issued_at < (SELECT folded_to FROM report_fold)
				GROUP BY 1`, g, p.Start(), p.End()); err != nil {
				f.t.Fatal(err)
			}
			for _, is := range issued {
				i := slices.IndexFunc(m.Mailings, func(mf reports.MailingFigures) bool { return mf.MailingID == is.MailingID })
				if i < 0 || m.Mailings[i].Issued != is.N {
					f.t.Errorf("group %d %v..%v: mailing %d issued %d in the recount, report %+v", g, p.From, p.To, is.MailingID, is.N, m.Mailings)
				}
			}
			gotM := map[int64]string{}
			for _, mf := range m.Mailings {
				gotM[mf.MailingID] = fmt.Sprintf("%d/%d/%d", mf.MailingID, mf.Redeemed, mf.Revenue)
			}
			for _, w := range wantM {
				var id int64
				fmt.Sscanf(w, "%d/", &id)
				if gotM[id] != w {
					f.t.Errorf("group %d %v..%v: mailing %q, recount %q", g, p.From, p.To, gotM[id], w)
				}
				delete(gotM, id)
			}
			for id, got := range gotM {
				if got != fmt.Sprintf("%d/0/0", id) {
					f.t.Errorf("group %d %v..%v: mailing %q without redemptions in the recount", g, p.From, p.To, got)
				}
			}
			var gotC []string
			for _, c := range m.Redemptions.Codes {
				for _, src := range c.BySource {
					gotC = append(gotC, fmt.Sprintf("%d/%s/%d/%d", c.CodeID, src.UTMSource, src.Uses, src.Revenue))
				}
			}
			slices.Sort(gotC)
			slices.Sort(wantC)
			if fmt.Sprint(gotC) != fmt.Sprint(wantC) {
				f.t.Errorf("group %d %v..%v: codes by source %v, recount %v", g, p.From, p.To, gotC, wantC)
			}
			for _, row := range pf.Groups {
				if row.GroupID == g && row.Customers != want {
					f.t.Errorf("portfolio group %d %v..%v: %d customers, recount %d", g, p.From, p.To, row.Customers, want)
				}
			}
		}
	}
}

// checkRedemptionReports compares each group's redemption figures with sums over the
// recount, and its unique customers with a distinct count of the raw rows.
func (f *fixture) checkRedemptionReports(ctx context.Context, rows []redemptionRecount) {
	f.t.Helper()
	p := reports.Period{From: f.now.AddDate(0, 0, -6).Truncate(24 * time.Hour), To: f.now.Truncate(24 * time.Hour)}
	pf, err := f.svc.Portfolio(ctx, p, "-uses")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, g := range f.groups {
		var want reports.Redemptions
		for _, r := range rows {
			if r.GroupID == g && !r.Day.Before(p.From) && !r.Day.After(p.To) {
				want.Uses += r.Uses
				want.Revenue += r.Revenue
				want.Discount += r.Discount
				want.Refunds += r.Refunds
				want.Refunded += r.Refunded
				want.Failed += r.Failed
			}
		}
		if err := f.db.Get(&want.UniqueCustomers, `SELECT count(DISTINCT customer_id) FROM redemptions
			WHERE group_id = $1 AND status = 'succeeded' AND created_at >= $2 AND created_at < $3`, g, p.Start(), p.End()); err != nil {
			f.t.Fatal(err)
		}
		m, err := f.svc.GroupMetrics(ctx, g, p)
		if err != nil {
			f.t.Fatal(err)
		}
		got := m.Redemptions
		if got.Uses != want.Uses || got.Revenue != want.Revenue || got.Discount != want.Discount || got.Refunds != want.Refunds ||
			got.Refunded != want.Refunded || got.Failed != want.Failed || got.UniqueCustomers != want.UniqueCustomers {
			f.t.Errorf("group %d redemptions: %+v, recount %+v", g, got, want)
		}
		// Each mailing's median time to redeem, as percentile_cont over the raw rows.
		var medians []struct {
			MailingID int64   `db:"mailing_id"`
			Seconds   float64 `db:"seconds"`
		}
		if err := f.db.Select(&medians, `
			SELECT r.mailing_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.created_at - i.issued_at)) AS seconds
			FROM redemptions r JOIN issues i ON i.id = r.issue_id
			WHERE r.group_id = $1 AND r.status = 'succeeded' AND r.mailing_id IS NOT NULL AND r.created_at >= $2 AND r.created_at < $3
			GROUP BY r.mailing_id`, g, p.Start(), p.End()); err != nil {
			f.t.Fatal(err)
		}
		for _, md := range medians {
			want := math.Round(md.Seconds/3600*100) / 100
			found := false
			for _, mf := range m.Mailings {
				if mf.MailingID == md.MailingID {
					found = mf.MedianHoursToRedeem != nil && *mf.MedianHoursToRedeem == want
				}
			}
			if !found {
				f.t.Errorf("group %d mailing %d: median hours to redeem not %v: %+v", g, md.MailingID, want, m.Mailings)
			}
		}
		var days int64
		for _, d := range m.Daily {
			days += d.Uses
		}
		if days != want.Uses {
			f.t.Errorf("group %d: daily uses sum to %d, recount %d", g, days, want.Uses)
		}
		for _, row := range pf.Groups {
			if row.GroupID == g && (row.Uses != want.Uses || row.Customers != want.UniqueCustomers || row.Discount != want.Discount || row.Revenue != want.Revenue) {
				f.t.Errorf("portfolio group %d: %+v, recount %+v", g, row, want)
			}
		}
	}
}
