package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"promopool/internal/smtptest"
	"promopool/internal/syncbuf"
	"promopool/internal/testdb"
)

// alertsMain is the binary with the test schema's environment plus extra variables.
func alertsMain(db *testdb.DB, extra map[string]string) (*Main, *syncbuf.Buffer, *syncbuf.Buffer) {
	env := map[string]string{"USER": "tester"}
	for _, kv := range db.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	out, errOut := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	return &Main{Getenv: func(k string) string { return env[k] }, Stdout: out, Stderr: errOut}, out, errOut
}

func TestAlertsCheckCommandAndScheduler(t *testing.T) {
	db := testdb.New(t)
	smtp := smtptest.Start(t)
	// Spring is at its threshold (2 codes, threshold 2); Autumn is empty once the scheduler runs.
	_, err := db.Exec(`INSERT INTO groups (name, low_balance_threshold, alert_emails) VALUES ('Spring', 2, '{ops@shop.test}'), ('Autumn', 1, '{ops@shop.test}')`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, db, "S1\nS2\n", "upload", "Spring", "-"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ALERTS_MAILER_URL": smtp.URL(), "ALERTS_MAIL_FROM": "Alerts <alerts@promopool.test>", "ALERTS_SCHEDULE": "@every 1s"}
	m, out, _ := alertsMain(db, env)
	err = m.Run(context.Background(), []string{"alerts", "check"})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Groups, Raised, Sent int }
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil || res.Groups != 2 || res.Raised != 1 || res.Sent != 1 {
		t.Fatalf("alerts check: %q (%v)", out.String(), err)
	}
	if msgs := smtp.Messages(); len(msgs) != 1 || msgs[0].From != "alerts@promopool.test" || !strings.Contains(string(msgs[0].Data), `"Spring" is low: 2 codes left`) {
		t.Fatalf("emails: %+v", msgs)
	}

	// The scheduler runs the same check on its schedule.
	if _, err := run(t, db, "A1\n", "upload", "Autumn", "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE code_ranges SET taken = total WHERE group_id = (SELECT id FROM groups WHERE name = 'Autumn')`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m, _, logs := alertsMain(db, env)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"scheduler"}) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(smtp.Messages()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.Close()
	msgs := smtp.Messages()
	if len(msgs) != 2 || !strings.Contains(string(msgs[1].Data), `"Autumn" has run out of codes`) {
		t.Fatalf("the scheduler sent %d emails; logs:\n%s", len(msgs), logs.String())
	}
	if !strings.Contains(logs.String(), "balance alert") || !strings.Contains(logs.String(), "scheduler stopped") {
		t.Fatalf("logs:\n%s", logs.String())
	}

	// A bad schedule is refused at start.
	m, _, _ = alertsMain(db, map[string]string{"ALERTS_SCHEDULE": "every minute"})
	if err := m.Run(context.Background(), []string{"alerts", "check"}); err == nil || !strings.Contains(err.Error(), "ALERTS_SCHEDULE") {
		t.Fatalf("bad schedule: %v", err)
	}
	m, _, _ = alertsMain(db, map[string]string{"ALERTS_EXPIRY_WINDOW": "0d"})
	if err := m.Run(context.Background(), []string{"alerts", "check"}); err == nil || !strings.Contains(err.Error(), "ALERTS_EXPIRY_WINDOW") {
		t.Fatalf("bad window: %v", err)
	}
}
