// Command promopool is the promo-code service: one binary whose subcommands are its
// processes (web, worker, scheduler), its operations (migrate, keys) and its tools
// (upload, groups, bench). It only wires things: configuration from the environment,
// connections, and the packages that do the work.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"runtime/pprof"
	"syscall"

	"github.com/jmoiron/sqlx"

	"promopool/auth"
	"promopool/migrations"
	"promopool/postgres"
	"promopool/segments"
)

// usage is the text of `promopool help`. TestUsageIsComplete holds it to the commands
// Run dispatches and to the configuration table of docs/operations.md.
const usage = `promopool — promo-code service

Usage: promopool <command> [arguments]

Processes (the Procfile runs these three, after migrate):
  web                      HTTP API and admin pages (/admin/) on HTTP_ADDR
  worker                   mailing batches from the Asynq queues, the reconciler of
                           lost batches, the segment folder
  scheduler                the balance-alert check on ALERTS_SCHEDULE

Operations:
  migrate                  apply the embedded database migrations
  keys create NAME -scopes LIST
                           make an API key (printed once) that may do LIST:
                           render,issue,checkout,read,export,write,admin
  keys scopes NAME LIST    change a key's scopes
  keys revoke NAME         revoke a key
  keys list                list keys (names, scopes and who created them)
  users create EMAIL -name NAME -role viewer|marketer|admin [-password-stdin]
                           add a person who signs in (the first admin is made
                           here); -password-stdin enables password sign-in
  users role EMAIL ROLE    change a user's role (ends their sessions)
  users password EMAIL     set a user's password from stdin (empty: remove it)
  users disable EMAIL      stop a user signing in (ends their sessions)
  users enable EMAIL       let a disabled user sign in again
  users list               list users, roles and how they sign in
  alerts check             run the balance-alert check once, now; print the result

Tools:
  groups list              list groups with their balances
  groups create NAME       create a group
  upload [-format plain|csv|json] [-expires-at TIME] GROUP FILE
                           upload codes (GROUP is a name or id; FILE may be - for stdin)
  customers import [-format jsonl|csv] FILE
                           insert or update customers (FILE may be - for stdin)
  bench upload|claim|mailing|segments|checkout|metrics [flags]
                           benchmarks, each beside a raw baseline of the same run
                           (promopool bench NAME -h lists its flags)
  help                     this text

Environment (defaults and details: docs/operations.md):
  every command            DATABASE_URL DATABASE_SEARCH_PATH DATABASE_MAX_CONNS
                           LOG_LEVEL LOG_FORMAT CPU_PROFILE
  web                      DATABASE_REPLICA_URL DATABASE_REPLICA_MAX_LAG
                           HTTP_ADDR API_KEYS MAX_UPLOAD_BYTES ADMIN_PASSWORD
                           ADMIN_SESSION_SECRET ADMIN_SESSION_TTL OIDC_ISSUER
                           OIDC_CLIENT_ID OIDC_CLIENT_SECRET OIDC_REDIRECT_URL
                           OIDC_API_AUDIENCE OIDC_DEFAULT_ROLE MAILING_BATCH_SIZE
                           ISSUE_RATE_LIMIT VALIDATE_RATE_LIMIT HTTP_READ_TIMEOUT
                           HTTP_WRITE_TIMEOUT HTTP_STREAM_IDLE VALIDATE_MISS_LIMIT
                           VALIDATE_CUSTOMER_MISS_LIMIT REDEMPTION_HOLD_TTL
  web, worker, scheduler   REDEMPTION_WEBHOOK_URL REDEMPTION_WEBHOOK_SECRET
                           REDEMPTION_WEBHOOK_EVENTS
  scheduler                REDEMPTION_SWEEP_INTERVAL
  web, worker              REDIS_URL
  worker                   WORKER_CONCURRENCY MAILER_URL MAILING_LEASE
                           RECONCILE_INTERVAL REENQUEUE_AFTER RESERVATION_TIMEOUT
                           WORKER_SHUTDOWN_TIMEOUT SEGMENT_FOLD_INTERVAL GOGC GOMEMLIMIT
                           MAILING_BATCH_BYTES
  web, worker              MAX_MESSAGE_BYTES
  web, worker, scheduler   METRICS_ADDR WEBHOOK_ALLOW_PRIVATE
  scheduler, alerts check  ALERTS_SCHEDULE ALERTS_EXPIRY_WINDOW ALERTS_MAIL_FROM
                           ALERTS_MAILER_URL ALERTS_TIMEOUT ALERTS_WEBHOOK_TIMEOUT
                           (a worker too: it alerts at once when a mailing pauses
                           for lack of codes)
  bench                    BENCH_DATABASE_URL BENCH_REDIS_URL
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	err := m.Run(ctx, os.Args[1:])
	m.Close()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		if ctx.Err() != nil && isService(m.cmd) {
			// A service asked to stop (SIGTERM, SIGINT) while it was still starting up,
			// waiting for PostgreSQL say: stopping is what it was asked to do, and a
			// supervisor must not count it as a crash.
			fmt.Fprintln(os.Stderr, "promopool: stopped while starting:", err)
			return
		}
		fmt.Fprintln(os.Stderr, "promopool:", err)
		os.Exit(1)
	}
}

// isService says whether a subcommand is one of the Procfile's long-running processes,
// which end by being stopped. A tool interrupted mid-work (an upload, a benchmark)
// still exits 1: its work did not finish.
func isService(cmd string) bool {
	return cmd == "web" || cmd == "worker" || cmd == "scheduler"
}

// Main is the program: tests run it in-process with their own environment and streams.
type Main struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	cfg    Config
	cmd    string // the subcommand, reported as application_name "promopool-<cmd>"
	log    *slog.Logger
	db     *sqlx.DB
	reader *postgres.ReadPool // heavy reads (web only): the replica while it keeps up
	segs   *segments.Service
	closer []func()
}

// Run runs one subcommand until it ends or ctx is cancelled.
func (m *Main) Run(ctx context.Context, args []string) error {
	cfg, err := loadConfig(m.Getenv)
	if err != nil {
		return err
	}
	m.cfg = cfg
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		m.log = slog.New(slog.NewJSONHandler(m.Stderr, opts))
	} else {
		m.log = slog.New(slog.NewTextHandler(m.Stderr, opts))
	}
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	m.cmd = cmd
	if cfg.CPUProfile != "" {
		if err := m.startCPUProfile(cfg.CPUProfile); err != nil {
			return err
		}
	}
	// What a command changes is recorded as done by the person who ran it.
	ctx = auth.WithActor(ctx, auth.Actor{Kind: auth.ActorCLI, Name: m.actor()})
	switch cmd {
	case "migrate":
		return m.migrate(ctx)
	case "web":
		return m.web(ctx)
	case "worker":
		return m.worker(ctx)
	case "scheduler":
		return m.scheduler(ctx)
	case "alerts":
		return m.alertsCmd(ctx, rest)
	case "keys":
		return m.keys(ctx, rest)
	case "users":
		return m.usersCmd(ctx, rest)
	case "groups":
		return m.groupsCmd(ctx, rest)
	case "upload":
		return m.upload(ctx, rest)
	case "bench":
		return m.bench(ctx, rest)
	case "customers":
		return m.customersCmd(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	}
	fmt.Fprint(m.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// startCPUProfile writes a CPU profile of the process to path until Close (pprof
// format: `go tool pprof -top promopool path`).
func (m *Main) startCPUProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("CPU_PROFILE: %w", err)
	}
	m.closer = append(m.closer, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
	return nil
}

// Close releases what Run opened.
func (m *Main) Close() {
	for i := len(m.closer) - 1; i >= 0; i-- {
		m.closer[i]()
	}
	m.closer = nil
}

// openDB connects to PostgreSQL; current says whether to refuse a schema that is not at
// this binary's version (every command but migrate does).
func (m *Main) openDB(ctx context.Context, current bool) (*sqlx.DB, error) {
	if m.db != nil {
		return m.db, nil
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: m.cfg.DatabaseURL, MaxConns: m.cfg.DatabaseMaxConns, SearchPath: m.cfg.DatabaseSearchPath,
		AppName: "promopool-" + cmp.Or(m.cmd, "main")})
	if err != nil {
		return nil, err
	}
	m.closer = append(m.closer, func() { db.Close() })
	if current {
		if err := migrations.Check(ctx, db); err != nil {
			return nil, err
		}
	}
	if m.cmd == "web" || m.cmd == "worker" || m.cmd == "scheduler" {
		warnings, err := postgres.SettingsWarnings(ctx, db)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			m.log.Warn(w)
		}
	}
	m.db = db
	return db, nil
}

func (m *Main) migrate(ctx context.Context) error {
	db, err := m.openDB(ctx, false)
	if err != nil {
		return err
	}
	applied, err := migrations.Migrate(ctx, db)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(m.Stdout, "schema is current (version %d)\n", migrations.Latest())
		return nil
	}
	fmt.Fprintf(m.Stdout, "applied migrations %v; schema at version %d\n", applied, migrations.Latest())
	if n, err := migrations.CaseCollisions(ctx, db); err != nil {
		return err
	} else if n > 0 {
		fmt.Fprintf(m.Stdout, "%d stored codes differ only in case from an earlier code; all are kept: see the view code_case_collisions\n", n)
	}
	return nil
}

// actor names the person running a CLI command in the activity log.
func (m *Main) actor() string {
	name := m.Getenv("USER")
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	return "cli:" + cmp.Or(name, "unknown")
}

// openInput opens a command's input file, or standard input for "-".
func (m *Main) openInput(path string) (io.Reader, func(), error) {
	if path == "-" {
		return m.Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}
