package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// envName matches an environment variable's name in prose.
var envName = regexp.MustCompile(`\b(?:[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]|GOGC|GOMEMLIMIT)\b`)

// TestUsageIsComplete holds `promopool help` to the code and the docs: every command
// Run dispatches is listed, and the variables it names are exactly those of the
// configuration table in docs/operations.md, which names every variable the binary reads.
func TestUsageIsComplete(t *testing.T) {
	for _, cmd := range dispatched(t) {
		if cmd == "-h" || cmd == "--help" {
			continue
		}
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(cmd) + `\b`).MatchString(usage) {
			t.Errorf("usage does not list the command %q", cmd)
		}
	}

	_, env, ok := strings.Cut(usage, "\nEnvironment")
	if !ok {
		t.Fatal("usage has no Environment section")
	}
	inUsage := unique(envName.FindAllString(env, -1))
	inTable := configTable(t)
	for _, v := range inUsage {
		if !slices.Contains(inTable, v) {
			t.Errorf("usage names %s, which docs/operations.md's configuration table lacks", v)
		}
	}
	for _, v := range inTable {
		if !slices.Contains(inUsage, v) {
			t.Errorf("docs/operations.md's configuration table names %s, which usage lacks", v)
		}
	}
	for _, v := range readVariables(t) {
		if !slices.Contains(inTable, v) {
			t.Errorf("the binary reads %s, which docs/operations.md's configuration table lacks", v)
		}
	}
}

// dispatched returns the string cases of the switch in Main.Run.
func dispatched(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Run" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						cmds = append(cmds, s)
					}
				}
			}
			return true
		})
		return false
	})
	if len(cmds) < 10 {
		t.Fatalf("found commands %v in Main.Run: the switch moved?", cmds)
	}
	return cmds
}

// configTable returns the variables in the first column of the table under
// "## Configuration (environment)" in docs/operations.md.
func configTable(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Configuration (environment)\n")
	if !ok {
		t.Fatal("docs/operations.md has no Configuration (environment) section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var names []string
	for _, line := range strings.Split(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.Contains(cells[1], "`") {
			continue
		}
		names = append(names, envName.FindAllString(cells[1], -1)...)
	}
	if len(names) < 20 {
		t.Fatalf("found %d variables in the configuration table: the table moved?", len(names))
	}
	return unique(names)
}

// readVariables returns the variables the binary reads: those loadConfig asks for, and
// those read elsewhere with m.Getenv("NAME") (the worker's GC settings, the benchmarks').
func readVariables(t *testing.T) []string {
	t.Helper()
	var names []string
	loadConfig(func(name string) string { names = append(names, name); return "" })
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Getenv" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, _ := strconv.Unquote(lit.Value)
				if v != "USER" { // the CLI's actor in the activity log, not configuration
					names = append(names, v)
				}
			}
			return true
		})
	}
	names = unique(names)
	for _, want := range []string{"DATABASE_URL", "ALERTS_SCHEDULE", "GOGC", "BENCH_DATABASE_URL"} {
		if !slices.Contains(names, want) {
			t.Fatalf("found %v read: %s missing, the search is broken", names, want)
		}
	}
	return names
}

func unique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
