package faults

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// row is one line of the report: a fault or input, how often it was tried, the invariant
// checks that passed, and recipients or codes lost or duplicated.
type row struct {
	fault          string
	tried          int
	passed, checks int
	lost, dup      int
	notes          string
}

type table struct {
	mu   sync.Mutex
	rows []row
}

var report = &table{}

func (tb *table) add(r row) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

// print writes the table in Markdown, the form docs/faults.md quotes.
func (tb *table) print(w io.Writer) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return
	}
	version := "short"
	if long {
		version = "long (FAULTS_LONG=1)"
	}
	fmt.Fprintf(w, "\nFault suite report, %s version\n\n", version)
	fmt.Fprintln(w, "| fault or input | tried | invariant checks passed | lost | duplicated | notes |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
	var tried, passed, checks, lost, dup int
	for _, r := range tb.rows {
		fmt.Fprintf(w, "| %s | %d | %d/%d | %d | %d | %s |\n", r.fault, r.tried, r.passed, r.checks, r.lost, r.dup, r.notes)
		tried += r.tried
		passed += r.passed
		checks += r.checks
		lost += r.lost
		dup += r.dup
	}
	fmt.Fprintf(w, "| **total** | %d | %d/%d | %d | %d | |\n\n", tried, passed, checks, lost, dup)
}

// checks collects one scenario's invariant checks and adds its row to the report.
type checks struct {
	t         *testing.T
	fault     string
	tried     int
	passed    int
	total     int
	lost, dup int
	notes     []string
	// unknownOK accepts recipients recorded "delivery unknown" (mailer.Ambiguous: a
	// request in flight when the sender's link was cut) as final: their codes are kept
	// and they are never resent, by design. They are counted in the notes.
	unknownOK bool
}

func newChecks(t *testing.T, fault string) *checks { return &checks{t: t, fault: fault} }

// check records one invariant check; a failure fails the test (after the row is added).
func (c *checks) check(name string, ok bool, format string, args ...any) {
	c.t.Helper()
	c.total++
	if ok {
		c.passed++
		return
	}
	c.t.Errorf("%s: invariant %q broken: %s", c.fault, name, fmt.Sprintf(format, args...))
}

func (c *checks) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// done adds the row; call it with defer right after newChecks so a failing scenario is
// reported too.
func (c *checks) done() {
	report.add(row{fault: c.fault, tried: c.tried, passed: c.passed, checks: c.total, lost: c.lost, dup: c.dup,
		notes: strings.Join(c.notes, "; ")})
}
