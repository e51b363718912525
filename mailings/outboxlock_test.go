package mailings_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lib/pq"

	"promopool/mailings"
)

// TestOutboxLockLetsCountersIn: while a transaction writing the outbox holds the
// mailing's row (as Start and every chunk of the outbox do, for seconds at 1M
// recipients), the batches already sending can still insert their counters and events,
// whose foreign keys lock the mailing FOR KEY SHARE; a second outbox writer or a state
// change still waits for it.
func TestOutboxLockLetsCountersIn(t *testing.T) {
	e := newEnv(t, nil, mailings.Config{})
	ctx := context.Background()
	e.customers(t, 3)
	e.group(t, "Spring", 10, "SPRING")
	m, err := e.svc.Create(ctx, "tester", mailings.Input{Name: "Lock", Sender: "shop@example.com",
		Subject: "Hi", Text: "code {{client.promocode('Spring')}}", Audience: mailings.Audience{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback()
	if _, err := writer.ExecContext(ctx, `SELECT id FROM mailings WHERE id = $1 `+mailings.OutboxLock, m.ID); err != nil {
		t.Fatal(err)
	}

	other := func(q string, args ...any) error {
		tx, err := e.db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, q, args...)
		return err
	}
	if err := other(`INSERT INTO mailing_group_counts (mailing_id, group_id, batch, issued) VALUES ($1, 1, 0, 5)`, m.ID); err != nil {
		t.Fatalf("a batch's counter waited for the outbox writer: %v", err)
	}
	for _, q := range []string{
		`SELECT id FROM mailings WHERE id = $1 ` + mailings.OutboxLock, // a second writer
		`SELECT id FROM mailings WHERE id = $1 FOR UPDATE`,             // a state change
	} {
		var pe *pq.Error
		if err := other(q, m.ID); !errors.As(err, &pe) || pe.Code != "55P03" {
			t.Fatalf("%s did not wait for the outbox writer: err %v, want lock_not_available", q, err)
		}
	}
}
