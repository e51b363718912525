package checkout_test

import (
	"bytes"
	"database/sql"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"promopool/checkout"
	"promopool/internal/testdb"
)

// clock is a settable test clock.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	return c
}
func (c *clock) set(t time.Time)     { c.t.Store(&t) }
func (c *clock) now() time.Time      { return *c.t.Load() }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

type env struct {
	t     *testing.T
	db    *testdb.DB
	svc   *checkout.Service
	clock *clock
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, cfg checkout.Config, deps ...func(*checkout.Deps)) *env {
	t.Helper()
	db := testdb.New(t)
	e := &env{t: t, db: db, clock: newClock(), logs: &bytes.Buffer{}}
	cfg.Now = e.clock.now
	d := checkout.Deps{DB: db.DB, Log: slog.New(slog.NewTextHandler(e.logs, nil))}
	for _, f := range deps {
		f(&d)
	}
	svc, err := checkout.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

// groupOpts are a test group's settings; zero values are the defaults (unique, active,
// no terms, no limits).
type groupOpts struct {
	kind, status, binding string
	terms                 string
	maxTotal, maxPer      *int64
	budget                *int64
	startsAt, endsAt      *time.Time
}

func ptr[T any](v T) *T { return &v }

var groupSeq atomic.Int64

func (e *env) group(o groupOpts) int64 {
	e.t.Helper()
	if o.kind == "" {
		o.kind = "unique"
	}
	if o.status == "" {
		o.status = "active"
	}
	if o.binding == "" {
		o.binding = "holder"
	}
	var terms sql.NullString
	if o.terms != "" {
		terms = sql.NullString{String: o.terms, Valid: true}
	}
	var id int64
	err := e.db.Get(&id, `INSERT INTO groups (name, kind, status, code_binding, terms, max_redemptions, max_per_customer, budget, starts_at, ends_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		"G"+time.Now().Format("150405.000000")+string(rune('a'+groupSeq.Add(1)%26)), o.kind, o.status, o.binding, terms, o.maxTotal, o.maxPer, o.budget, o.startsAt, o.endsAt)
	if err != nil {
		e.t.Fatalf("creating a group: %v", err)
	}
	return id
}

// uniqueCode stores a unique code in the group (its own upload and range).
func (e *env) uniqueCode(group int64, code string, expires *time.Time) int64 {
	e.t.Helper()
	var upload int64
	if err := e.db.Get(&upload, `INSERT INTO uploads (group_id, actor, source, format, lines, accepted, duplicates, invalid)
		VALUES ($1, 'tests', 'api', 'plain', 1, 1, 0, 0) RETURNING id`, group); err != nil {
		e.t.Fatal(err)
	}
	id := upload<<32 | 1
	e.db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, $2)`, id, code)
	e.db.MustExec(`INSERT INTO code_ranges (group_id, upload_id, expires_at, first_id, last_id, next_id, total)
		VALUES ($1, $2, $3, $4, $4, $4, 1)`, group, upload, expires, id)
	return id
}

var promoSeq atomic.Int64

// promoOpts are a promotion code's restrictions.
type promoOpts struct {
	inactive, firstTime bool
	customer            *string
	maxRedemptions      *int64
	expires             *time.Time
	minOrder            *int64
}

// promoCode stores a shared group's promotion code.
func (e *env) promoCode(group int64, code string, o promoOpts) int64 {
	e.t.Helper()
	id := int64(1)<<50 + promoSeq.Add(1)
	e.db.MustExec(`INSERT INTO codes (id, code) VALUES ($1, $2)`, id, code)
	e.db.MustExec(`INSERT INTO promotion_codes (code_id, group_id, active, first_time_only, customer_id, max_redemptions, expires_at, min_order)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, group, !o.inactive, o.firstTime, o.customer, o.maxRedemptions, o.expires, o.minOrder)
	return id
}

// issue records that the customer was issued the code (a live initial issue).
func (e *env) issue(group, code int64, customer string, mailing *int64) int64 {
	e.t.Helper()
	var id int64
	if err := e.db.Get(&id, `INSERT INTO issues (customer_id, group_id, code_id, scope, mailing_id, kind)
		VALUES ($1, $2, $3, $5, $4, 'initial') RETURNING id`, customer, group, code, mailing, "direct:"+customer+":"+strconv.FormatInt(code, 10)); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) void(group, code int64) {
	e.db.MustExec(`INSERT INTO code_voids (code_id, group_id, actor) VALUES ($1, $2, 'tests')`, code, group)
}

// counters returns a group's used and discounted counters.
func (e *env) counters(group int64) (used, discounted int64) {
	e.t.Helper()
	e.db.QueryRow(`SELECT used, discounted FROM redemption_counts WHERE group_id = $1`, group).Scan(&used, &discounted)
	return used, discounted
}
