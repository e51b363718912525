package reports_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"promopool/groups"
	"promopool/internal/testdb"
	"promopool/reports"
)

// fixture is a database with groups of codes and a reports.Service over it.
type fixture struct {
	t      testing.TB
	db     *testdb.DB
	store  *groups.Store
	svc    *reports.Service
	groups []int64
	now    time.Time
}

func newFixture(t testing.TB, nGroups, codes int, cfg reports.Config) *fixture {
	t.Helper()
	db := testdb.New(t)
	f := &fixture{t: t, db: db, store: groups.NewStore(db.DB, groups.Config{}), now: time.Now().UTC()}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return f.now }
	}
	var err error
	if f.svc, err = reports.New(cfg, reports.Deps{DB: db.DB, Groups: f.store}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for g := range nGroups {
		name := fmt.Sprintf("G%02d", g)
		grp, err := f.store.Create(ctx, "test", groups.Input{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := range codes {
			fmt.Fprintf(&b, "%s-%06d\n", name, i)
		}
		if _, err := f.store.Load(ctx, groups.UploadRequest{GroupID: grp.ID, Format: groups.FormatPlain, Source: groups.SourceCLI, Actor: "test"},
			strings.NewReader(b.String())); err != nil {
			t.Fatal(err)
		}
		f.groups = append(f.groups, grp.ID)
	}
	return f
}

// backdate inserts n issues of group g spread over the last days days (codes that are
// not in the pool: only the history matters to the rollups). Only before the first fold:
// the fold's watermark is time.
func (f *fixture) backdate(g int64, n, days int, mailing int64, rng *rand.Rand) {
	f.t.Helper()
	for i := range n {
		at := f.now.Add(-time.Duration(rng.Int64N(int64(days) * int64(24*time.Hour))))
		kind := "initial"
		if i%5 == 4 {
			kind = "repeat"
		}
		var mid any
		if mailing != 0 {
			mid = mailing
		}
		if _, err := f.db.Exec(`INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind, issued_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, fmt.Sprintf("old%d", rng.IntN(500)), g, -1-rng.Int64N(1<<40),
			fmt.Sprintf("old:%d:%d:%d", g, mailing, i), mid, kind, at); err != nil {
			f.t.Fatal(err)
		}
	}
}

// recountRow is a rollup row, recounted from the issues.
type recountRow struct {
	GroupID   int64     `db:"group_id"`
	Day       time.Time `db:"day"`
	MailingID int64     `db:"mailing_id"`
	Initial   int64     `db:"initial"`
	Repeat    int64     `db:"repeat"`
}

// recount compares report_issue_days with a GROUP BY over the live issues below the
// fold's watermark, and returns the recount.
func (f *fixture) recount() []recountRow {
	f.t.Helper()
	var want, got []recountRow
	if err := f.db.Select(&want, `
		SELECT group_id, (issued_at AT TIME ZONE 'UTC')::date AS day, coalesce(mailing_id, 0) AS mailing_id,
		       count(*) FILTER (WHERE kind = 'initial') AS initial, count(*) FILTER (WHERE kind = 'repeat') AS repeat
		FROM issues WHERE released_at IS NULL AND issued_at < (SELECT folded_to FROM report_fold)
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&got, `SELECT group_id, day, mailing_id, initial, repeat FROM report_issue_days
		WHERE initial > 0 OR repeat > 0 ORDER BY 1, 2, 3`); err != nil {
		f.t.Fatal(err)
	}
	if len(want) == 0 {
		f.t.Fatal("the recount is empty: the test made no activity")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Fatalf("rollups differ from the recount:\n got %v\nwant %v", got, want)
	}
	// 0027's per-group days: the same issues summed over mailings, and the direct ones.
	var wantG, gotG []string
	if err := f.db.Select(&wantG, `
		SELECT format('%s/%s/%s/%s/%s', group_id, (issued_at AT TIME ZONE 'UTC')::date,
		       count(*) FILTER (WHERE kind = 'initial'), count(*) FILTER (WHERE kind = 'repeat'),
		       count(*) FILTER (WHERE kind = 'initial' AND mailing_id IS NULL))
		FROM issues WHERE released_at IS NULL AND issued_at < (SELECT folded_to FROM report_fold)
		GROUP BY group_id, (issued_at AT TIME ZONE 'UTC')::date ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotG, `SELECT format('%s/%s/%s/%s/%s', group_id, day, initial, repeat, direct)
		FROM report_issue_group_days WHERE initial > 0 OR repeat > 0 ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if fmt.Sprint(gotG) != fmt.Sprint(wantG) {
		f.t.Fatalf("issue group days differ from the recount:\n got %v\nwant %v", gotG, wantG)
	}
	// 0028's spans: each mailing's initial issues over each block of days.
	var wantS, gotS []string
	if err := f.db.Select(&wantS, `
		SELECT format('%s/%s/%s/%s/%s', group_id, k, report_block(day, k), mailing_id, sum(initial))
		FROM report_issue_days CROSS JOIN generate_series(1, 10) k WHERE mailing_id <> 0
		GROUP BY group_id, k, report_block(day, k), mailing_id HAVING sum(initial) > 0 ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Select(&gotS, `SELECT format('%s/%s/%s/%s/%s', group_id, level, block, mailing_id, initial)
		FROM report_issue_mailing_spans WHERE initial > 0 ORDER BY 1`); err != nil {
		f.t.Fatal(err)
	}
	if len(wantS) == 0 || fmt.Sprint(gotS) != fmt.Sprint(wantS) {
		f.t.Fatalf("issue spans differ from the day rows:\n got %v\nwant %v", gotS, wantS)
	}
	return want
}

// TestMetricsEqualRecount: after random activity — claims of mailings and direct
// issues, repeats and releases on several connections while folds run — the rollups
// equal a recount of the live issues, and the reports (per group, per mailing, daily,
// portfolio) equal sums over that recount.
func TestMetricsEqualRecount(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 19))
	f := newFixture(t, 3, 3000, reports.Config{FoldBatch: 37, QueryFold: 11})
	ctx := context.Background()

	// A history from before reports existed: the first fold takes it at once.
	for i, g := range f.groups {
		f.backdate(g, 150, 60, int64(900+i), rng)
		f.backdate(g, 40, 60, 0, rng)
	}
	if _, err := f.svc.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	f.recount()

	// Live activity on four connections, with folds (the worker's and the reports'
	// short ones) running beside it.
	stop := make(chan struct{})
	var folds sync.WaitGroup
	folds.Add(1)
	go func() {
		defer folds.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if i%2 == 0 {
				_, err = f.svc.Fold(ctx)
			} else {
				_, err = f.svc.GroupMetrics(ctx, f.groups[i%len(f.groups)], reports.Period{From: f.now.AddDate(0, 0, -1), To: f.now})
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var work sync.WaitGroup
	for w := range 4 {
		work.Add(1)
		seed := rng.Uint64()
		go func() {
			defer work.Done()
			f.activity(ctx, w, rand.New(rand.NewPCG(seed, uint64(w))))
		}()
	}
	work.Wait()
	close(stop)
	folds.Wait()
	if t.Failed() {
		return
	}
	if _, err := f.svc.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	rows := f.recount()
	f.checkReports(ctx, rows)

	// Redemptions as checkout leaves them, and their later moves, on four connections,
	// while folds of the change queue and reports (which fold it first) run beside them.
	stop = make(chan struct{})
	folds.Add(1)
	go func() {
		defer folds.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if i%2 == 0 {
				_, err = f.svc.FoldRedemptions(ctx)
			} else {
				_, err = f.svc.GroupMetrics(ctx, f.groups[i%len(f.groups)], reports.Period{From: f.now.AddDate(0, 0, -13), To: f.now})
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	f.redemptionActivity(ctx, rng)
	close(stop)
	folds.Wait()
	if t.Failed() {
		return
	}
	if _, err := f.svc.FoldRedemptions(ctx); err != nil {
		t.Fatal(err)
	}
	f.checkRedemptionReports(ctx, f.recountRedemptions())
	f.checkUniqueCustomers(ctx, rng)
}

// activity makes random claims, repeats and releases on one worker's customers.
func (f *fixture) activity(ctx context.Context, w int, rng *rand.Rand) {
	for op := range 60 {
		g := f.groups[rng.IntN(len(f.groups))]
		var mailing *int64
		scope := fmt.Sprintf("direct:%d:%d", w, op)
		if rng.IntN(3) > 0 {
			id := int64(1 + rng.IntN(4))
			mailing, scope = &id, fmt.Sprintf("mailing:%d", id)
		}
		custs := make([]string, 1+rng.IntN(20))
		for i := range custs {
			custs[i] = fmt.Sprintf("w%d-c%d", w, rng.IntN(40))
		}
		var err error
		switch r := rng.IntN(10); {
		case r < 6:
			_, err = f.store.Claim(ctx, groups.ClaimRequest{GroupID: g, Scope: scope, MailingID: mailing, CustomerIDs: custs})
		case r < 8:
			_, err = f.store.Repeat(ctx, groups.RepeatRequest{GroupID: g, Scope: scope + ":r", MailingID: mailing, CustomerIDs: custs})
		default:
			_, err = f.store.Release(ctx, g, scope, custs)
		}
		if err != nil {
			f.t.Errorf("worker %d op %d: %v", w, op, err)
			return
		}
	}
}

// checkReports compares the reports with sums over the recount.
func (f *fixture) checkReports(ctx context.Context, rows []recountRow) {
	f.t.Helper()
	p := reports.Period{From: f.now.AddDate(0, 0, -20).Truncate(24 * time.Hour), To: f.now.Truncate(24 * time.Hour)}
	in := func(r recountRow) bool { return !r.Day.Before(p.From) && !r.Day.After(p.To) }
	portfolio, err := f.svc.Portfolio(ctx, p, "-issued")
	if err != nil {
		f.t.Fatal(err)
	}
	if len(portfolio.Groups) != len(f.groups) {
		f.t.Fatalf("portfolio lists %d groups, want %d", len(portfolio.Groups), len(f.groups))
	}
	for i := 1; i < len(portfolio.Groups); i++ {
		if portfolio.Groups[i].Issued > portfolio.Groups[i-1].Issued {
			f.t.Errorf("portfolio not sorted by -issued: %+v", portfolio.Groups)
		}
	}
	for _, g := range f.groups {
		m, err := f.svc.GroupMetrics(ctx, g, p)
		if err != nil {
			f.t.Fatal(err)
		}
		var want reports.IssueFigures
		byMailing := map[int64]int64{}
		daily := map[string][2]int64{}
		for _, r := range rows {
			if r.GroupID != g || !in(r) {
				continue
			}
			want.Initial += r.Initial
			want.Repeat += r.Repeat
			if r.MailingID == 0 {
				want.Direct += r.Initial
			} else {
				want.ByMailing += r.Initial
				if r.Initial > 0 {
					byMailing[r.MailingID] += r.Initial
				}
			}
			d := daily[r.Day.Format("2006-01-02")]
			daily[r.Day.Format("2006-01-02")] = [2]int64{d[0] + r.Initial, d[1] + r.Repeat}
		}
		nMailings := int64(len(byMailing))
		if m.Issues != want {
			f.t.Errorf("group %d: issues %+v, recount %+v", g, m.Issues, want)
		}
		for _, mf := range m.Mailings {
			if mf.Issued != byMailing[mf.MailingID] {
				f.t.Errorf("group %d mailing %d: issued %d, recount %d", g, mf.MailingID, mf.Issued, byMailing[mf.MailingID])
			}
			delete(byMailing, mf.MailingID)
		}
		if len(byMailing) > 0 {
			f.t.Errorf("group %d: mailings missing from the report: %v", g, byMailing)
		}
		if len(m.Daily) != p.Days() {
			f.t.Errorf("group %d: %d days, want %d", g, len(m.Daily), p.Days())
		}
		for _, d := range m.Daily {
			if w := daily[d.Date]; d.Issued != w[0] || d.Repeat != w[1] {
				f.t.Errorf("group %d %s: issued %d repeat %d, recount %v", g, d.Date, d.Issued, d.Repeat, w)
			}
		}
		for _, row := range portfolio.Groups {
			if row.GroupID == g && (row.Issued != want.Initial || row.Repeat != want.Repeat || row.Mailings != nMailings) {
				f.t.Errorf("portfolio group %d: %+v, recount %+v and %d mailings", g, row, want, nMailings)
			}
		}
	}
}
