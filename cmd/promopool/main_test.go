package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"promopool/internal/testdb"
	"promopool/migrations"
)

// run runs the binary in-process with the test schema's environment.
func run(t *testing.T, db *testdb.DB, stdin string, args ...string) (string, error) {
	t.Helper()
	env := map[string]string{"USER": "tester"}
	for _, kv := range db.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out, errOut bytes.Buffer
	m := &Main{Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	defer m.Close()
	err := m.Run(context.Background(), args)
	return out.String(), err
}

func TestCLIUploadAndList(t *testing.T) {
	db := testdb.New(t)
	if _, err := run(t, db, "", "groups", "create", "Spring"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "codes.csv")
	os.WriteFile(file, []byte("code,expires_at\nC1,2099-01-01\nC2,\nC1,\n"), 0o600)
	out, err := run(t, db, "", "upload", "spring", file)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Accepted, Duplicates int64
		Source, Format       string
		Actor, Filename      string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if rep.Accepted != 2 || rep.Duplicates != 1 || rep.Source != "cli" || rep.Format != "csv" || rep.Actor != "cli:tester" || rep.Filename != "codes.csv" {
		t.Fatalf("CLI upload report %+v", rep)
	}
	// Standard input, plain text, by group id.
	if _, err := run(t, db, "S1\nS2\n", "upload", "-expires-at", "2099-12-31", "1", "-"); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, db, "", "groups", "list")
	if err != nil {
		t.Fatal(err)
	}
	if fields := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); strings.Join(fields, " ") != "1 Spring 4 4 0 ok" {
		t.Fatalf("groups list:\n%s", out)
	}
	if _, err := run(t, db, "", "upload", "Nope", file); err == nil || !strings.Contains(err.Error(), "group not found") {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestKeysCommands(t *testing.T) {
	db := testdb.New(t)
	if _, err := run(t, db, "", "keys", "create", "crm"); err == nil || !strings.Contains(err.Error(), "-scopes") {
		t.Fatalf("a key without scopes: %v, want a refusal asking for -scopes", err)
	}
	if _, err := run(t, db, "", "keys", "create", "crm", "-scopes", "render,everything"); err == nil || !strings.Contains(err.Error(), `unknown scope "everything"`) {
		t.Fatalf("an unknown scope: %v", err)
	}
	key, err := run(t, db, "", "keys", "create", "crm", "-scopes", "issue,render")
	if err != nil || !strings.HasPrefix(key, "pp_") {
		t.Fatalf("keys create: %q %v", key, err)
	}
	if _, err := run(t, db, "", "keys", "create", "-scopes=admin", "CRM"); err == nil {
		t.Fatal("a second live key with the same name was created")
	}
	out, _ := run(t, db, "", "keys", "list")
	if !regexp.MustCompile(`(?m)^crm\s+render,issue\s`).MatchString(out) || strings.Contains(out, strings.TrimSpace(key)) {
		t.Fatalf("keys list must name keys and their scopes, never show them:\n%s", out)
	}
	if _, err := run(t, db, "", "keys", "scopes", "crm", "read"); err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, db, "", "keys", "list"); !regexp.MustCompile(`(?m)^crm\s+read\s`).MatchString(out) {
		t.Fatalf("after keys scopes:\n%s", out)
	}
	if _, err := run(t, db, "", "keys", "revoke", "crm"); err != nil {
		t.Fatal(err)
	}
}

func TestProcessesRefuseSchemaBehind(t *testing.T) {
	db := testdb.Empty(t)
	for _, cmd := range []string{"web", "worker", "scheduler", "upload"} {
		args := []string{cmd}
		if cmd == "upload" {
			args = append(args, "G", "-")
		}
		_, err := run(t, db, "", args...)
		if err == nil || !strings.Contains(err.Error(), "run `promopool migrate`") {
			t.Errorf("%s on an empty schema: got %v, want a refusal naming promopool migrate", cmd, err)
		}
	}
	if out, err := run(t, db, "", "migrate"); err != nil || !strings.Contains(out, "applied migrations") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	if err := migrations.Check(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct{ name, val, want string }{
		{"DATABASE_MAX_CONNS", "zero", "DATABASE_MAX_CONNS"},
		{"MAX_UPLOAD_BYTES", "-1", "MAX_UPLOAD_BYTES"},
		{"LOG_FORMAT", "xml", "LOG_FORMAT"},
		{"LOG_LEVEL", "loud", "LOG_LEVEL"},
		{"REDIS_URL", "localhost:6379", "REDIS_URL"},
		{"WORKER_SHUTDOWN_TIMEOUT", "soon", "WORKER_SHUTDOWN_TIMEOUT"},
		{"ADMIN_PASSWORD", "hunter2", "at least 12 characters"},
		{"ADMIN_SESSION_SECRET", "not-random-enough", "at least 32"},
		{"ISSUE_RATE_LIMIT", "fast", "ISSUE_RATE_LIMIT"},
		{"VALIDATE_RATE_LIMIT", "10/day", "VALIDATE_RATE_LIMIT"},
		{"WEBHOOK_ALLOW_PRIVATE", "localhost", "WEBHOOK_ALLOW_PRIVATE"},
		{"HTTP_READ_TIMEOUT", "0", "HTTP_READ_TIMEOUT"},
		{"REDEMPTION_SWEEP_INTERVAL", "500ms", "REDEMPTION_SWEEP_INTERVAL"},
		{"REDEMPTION_SWEEP_INTERVAL", "2h", "REDEMPTION_SWEEP_INTERVAL"},
		{"REDEMPTION_WEBHOOK_EVENTS", "redemption.lost", "unknown event"},
		{"REDEMPTION_WEBHOOK_EVENTS", "redemption.failed", "set REDEMPTION_WEBHOOK_URL"},
	} {
		_, err := loadConfig(func(k string) string {
			if k == tc.name {
				return tc.val
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: got %v", tc.name, tc.val, err)
		}
	}
	c, err := loadConfig(func(string) string { return "" })
	if err != nil || c.HTTPAddr != "127.0.0.1:8080" || c.MaxUploadBytes != 1<<30 || c.WorkerShutdownTimeout != 30*time.Second || c.MetricsAddr != "" ||
		c.RedemptionSweepInterval != time.Minute || c.RedemptionWebhookFailed {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = loadConfig(func(k string) string {
		return map[string]string{"REDEMPTION_SWEEP_INTERVAL": "5s", "REDEMPTION_WEBHOOK_URL": "https://shop.example/hooks",
			"REDEMPTION_WEBHOOK_SECRET": "0123456789abcdef", "REDEMPTION_WEBHOOK_EVENTS": "redemption.succeeded, redemption.failed"}[k]
	})
	if err != nil || c.RedemptionSweepInterval != 5*time.Second || !c.RedemptionWebhookFailed {
		t.Fatalf("sweep interval and failed webhooks: %+v %v", c, err)
	}
}
