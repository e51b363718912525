package migrations_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"promopool/migrations"
)

// tableUsers says which packages (directories under the module root) may name each
// table in SQL. A table's SQL lives in the package that owns it, and the others call
// its methods: a schema change then stays in one package. Every table the migrations
// create must be listed, so a new table gets an owner when it is added.
var tableUsers = map[string][]string{
	// groups: pools of codes, uploads, claims and their bookkeeping.
	"groups":            {"groups", "checkout"},
	"code_ranges":       {"groups", "checkout"},
	"codes":             {"groups", "checkout"},
	"reservations":      {"groups"},
	"returned_codes":    {"groups"},
	"uploads":           {"groups"},
	"activity":          {"groups"},
	"direct_issue_keys": {"groups"},
	// offers (0014): a shared group's promotion codes and voided codes; checkout reads
	// them (with groups and codes) in the one statement of a validation.
	"promotion_codes": {"groups", "checkout"},
	"code_voids":      {"groups", "checkout"},

	"mailings":              {"mailings"},
	"mailing_batches":       {"mailings"},
	"mailing_recipients":    {"mailings"},
	"mailing_group_counts":  {"mailings"},
	"mailing_events":        {"mailings"},
	"mailing_event_details": {"mailings"},
	"group_customer_codes":  {"groups"},

	// checkout (0017): redemptions, the counters behind exact caps, refunds and the
	// webhook outbox. code_ranges is read for a unique code's expiry at validation.
	"redemptions":                {"checkout", "reports"},
	"redemption_counts":          {"checkout"},
	"redemption_code_counts":     {"checkout"},
	"redemption_customer_counts": {"checkout"},
	"redemption_refunds":         {"checkout"},
	"redemption_webhooks":        {"checkout"},

	"alerts":           {"alerts"},
	"alert_state":      {"alerts"},
	"alert_deliveries": {"alerts"},

	"segment_bits":            {"segments"},
	"segment_customers":       {"segments"},
	"segment_fold":            {"segments"},
	"segment_groups":          {"segments"},
	"segment_hours":           {"segments"},
	"segment_customer_counts": {"segments"},
	// segments (0023): the summaries behind the redeemed filter and their change queue
	// (filled by the trigger on redemptions).
	"segment_redeemers":          {"segments"},
	"segment_redeemer_customers": {"segments"},
	"segment_redemption_changes": {"segments"},
	"segment_redemption_fold":    {"segments"},

	// reports (0019): daily rollups the reports read, folded from the issue history.
	"report_fold":         {"reports"},
	"report_issue_days":   {"reports"},
	"report_balance_days": {"reports"},
	// reports (0019): redemption rollups, folded from their change queue (0023).
	"report_redemption_days": {"reports"},
	"report_redeemer_days":   {"reports"},
	// reports (0023): the queue of redemption changes the trigger fills and its fold.
	"report_redemption_changes": {"reports"},
	"report_redemption_fold":    {"reports"},
	"report_redemption_delays":  {"reports"},
	// reports (0027): per-group day rows the reports and the portfolio read, how many
	// customers used a group last on each day, and per-mailing (per-code) spans of days.
	"report_issue_group_days":      {"reports"},
	"report_redemption_group_days": {"reports"},
	"report_redeemer_last_days":    {"reports"},
	"report_issue_mailing_spans":   {"reports"},
	"report_redemption_spans":      {"reports"},

	"api_keys": {"auth"},
	// users: the people who sign in, their roles and passwords.
	"admin_users":       {"users"},
	"schema_migrations": {"migrations"},

	// admin: the admin pages' sessions and the secret that signs their cookies.
	"admin_sessions": {"admin"},
	"secrets":        {"admin"},

	// Not yet behind one owner; the list only keeps more packages from joining.
	// issues: written and read by groups (claims, history); alerts counts the
	// rate window; segments folds the history into its summaries; checkout finds a
	// unique code's holder at validation; reports folds it into daily rollups.
	"issues": {"groups", "alerts", "segments", "checkout", "reports"},
	// customers: kept by customers; read (joined) by groups' export, mailings'
	// recipients and segments' answers, and customers without a row get one in
	// the segments fold.
	"customers": {"customers", "groups", "mailings", "segments"},
}

// sqlTable finds the table a statement names after FROM, JOIN, UPDATE, INTO, TABLE or
// TRUNCATE (keywords upper-case, as the code writes SQL).
var sqlTable = regexp.MustCompile(`\b(?:FROM|JOIN|UPDATE|INTO|TABLE|TRUNCATE)\s+(?:ONLY\s+|IF\s+(?:NOT\s+)?EXISTS\s+)?([a-z_][a-z0-9_]*)\b`)

// tablesIn returns the known tables a string literal names in SQL.
func tablesIn(lit string) []string {
	var out []string
	for _, m := range sqlTable.FindAllStringSubmatch(lit, -1) {
		if _, ok := tableUsers[m[1]]; ok && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func TestTablesIn(t *testing.T) {
	for lit, want := range map[string]string{
		"SELECT id FROM groups WHERE id = $1":                        "groups",
		"DELETE FROM reservations WHERE id = $1":                     "reservations",
		"INSERT INTO code_ranges (group_id) VALUES ($1)":             "code_ranges",
		"UPDATE\n\t\tcode_ranges SET taken = 0":                      "code_ranges",
		"SELECT 1 FROM a LEFT JOIN groups g ON g.id = a.group_id":    "groups",
		"SELECT * FROM issues i JOIN customers c ON c.id = i.cust":   "issues,customers",
		"TRUNCATE TABLE alerts":                                      "alerts",
		"CREATE TABLE IF NOT EXISTS schema_migrations (version int)": "schema_migrations",
		"SELECT groups_live FROM x":                                  "",
		"a group from groups, in prose":                              "",
		"SELECT * FROM groups_archive":                               "",
		"JOIN LATERAL (SELECT 1) x":                                  "",
	} {
		if got := strings.Join(tablesIn(lit), ","); got != want {
			t.Errorf("%q names %q, want %q", lit, got, want)
		}
	}
}

// TestEveryTableHasItsUsers: each table the migrations create is in tableUsers, and
// tableUsers lists no table that does not exist.
func TestEveryTableHasItsUsers(t *testing.T) {
	create := regexp.MustCompile(`(?i)\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{"schema_migrations": true} // created by migrate.go itself
	for _, m := range all {
		for _, c := range create.FindAllStringSubmatch(m.SQL, -1) {
			tables[c[1]] = true
		}
	}
	for table := range tables {
		if _, ok := tableUsers[table]; !ok {
			t.Errorf("table %s has no entry in tableUsers: say which package owns it", table)
		}
	}
	for table := range tableUsers {
		if !tables[table] {
			t.Errorf("tableUsers lists %s, which no migration creates", table)
		}
	}
}

// TestTableSQLStaysWithItsOwner scans the SQL in every non-test Go file of the module
// (its string literals) and fails on a table named outside the packages allowed to. The
// benchmark harness (any directory named bench) is left out: it seeds its fixtures
// straight into the tables.
func TestTableSQLStaysWithItsOwner(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, table := range tablesIn(s) {
				if !slices.Contains(tableUsers[table], pkg) {
					t.Errorf("%s: SQL names table %s, which belongs to %s: call its methods instead",
						fset.Position(lit.Pos()), table, strings.Join(tableUsers[table], ", "))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned %d Go files under %s: not the module's tree", files, root)
	}
}

// moduleRoot is the directory of the module's go.mod, above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
