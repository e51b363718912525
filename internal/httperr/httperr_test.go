package httperr_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"promopool/internal/httperr"
	"promopool/internal/httperr/httperrtest"
)

// root is the module's directory, seen from this package's.
const root = "../.."

func TestClassifyEveryDomainError(t *testing.T) {
	for _, c := range httperrtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			p := httperr.Classify(c.Err)
			if p.Internal() || p.Status == http.StatusInternalServerError {
				t.Fatalf("a domain error classifies as internal: %+v", p)
			}
			if p.Status != c.Status || p.Code != c.Code {
				t.Errorf("got %d %q, want %d %q", p.Status, p.Code, c.Status, c.Code)
			}
			if p.Message == "" {
				t.Error("no message")
			}
		})
	}
	for _, u := range httperrtest.NotHTTP() {
		t.Run(u.Name, func(t *testing.T) {
			if p := httperr.Classify(fmt.Errorf("wrapped: %w", u.Err)); !p.Internal() {
				t.Errorf("an error that never reaches HTTP classifies as %+v; move it to Cases", p)
			}
		})
	}
}

func TestClassifyUnknownAndDetails(t *testing.T) {
	p := httperr.Classify(fmt.Errorf("reading group 3: %w", errors.New("pq: connection refused")))
	if !p.Internal() || p.Status != http.StatusInternalServerError || strings.Contains(p.Message, "pq") {
		t.Errorf("unknown error: %+v (want 500 internal, its text not shown)", p)
	}
	for _, c := range httperrtest.Cases() {
		p := httperr.Classify(c.Err)
		switch c.Code {
		case "invalid_template":
			if c.Name == "macros.ValidationError" && len(p.Details["problems"].([]map[string]any)) != 1 {
				t.Errorf("%s: details %v", c.Name, p.Details)
			}
		case "invalid_filter":
			if p.Details["path"] != "$.and[0].op" {
				t.Errorf("%s: details %v", c.Name, p.Details)
			}
		case "insufficient_codes":
			if p.Details["audience"] != int64(10) {
				t.Errorf("%s: details %v", c.Name, p.Details)
			}
		case "body_too_large":
			if !strings.HasSuffix(p.Message, "1 MiB") {
				t.Errorf("%s: message %q", c.Name, p.Message)
			}
		}
	}
}

// TestEveryDomainErrorIsListed reads the source of every promopool package the front
// ends (api, admin) import and fails when one declares an error (an exported Err… var,
// or an exported type with an Error method) that httperrtest neither lists in Cases nor
// names in NotHTTP. Adding a sentinel therefore means classifying it.
func TestEveryDomainErrorIsListed(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range httperrtest.Cases() {
		listed[c.Name] = true
	}
	for _, u := range httperrtest.NotHTTP() {
		if listed[u.Name] {
			t.Errorf("%s is both in Cases and in NotHTTP", u.Name)
		}
		listed[u.Name] = true
	}
	pkgs := domainPackages(t, "api", "admin")
	if !slices.Contains(pkgs, "groups") || !slices.Contains(pkgs, "mailings") {
		t.Fatalf("the front ends' imports were not found: %v", pkgs)
	}
	found := map[string]bool{}
	for _, pkg := range pkgs {
		for _, name := range declaredErrors(t, pkg) {
			found[pkg+"."+name] = true
			if !listed[pkg+"."+name] {
				t.Errorf("%s.%s is a domain error the HTTP layer does not classify: add it to internal/httperr "+
					"and to httperrtest.Cases (or to httperrtest.NotHTTP with the reason it never reaches a handler)", pkg, name)
			}
		}
	}
	for name := range listed {
		pkg, _, _ := strings.Cut(name, ".")
		if slices.Contains(pkgs, pkg) && !found[name] {
			t.Errorf("httperrtest lists %s, which its package no longer declares", name)
		}
	}
}

// domainPackages returns the promopool packages (outside internal/) that the given
// packages' product files import, by directory name.
func domainPackages(t *testing.T, dirs ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, dir := range dirs {
		for _, f := range parseDir(t, dir, parser.ImportsOnly) {
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				rest, ok := strings.CutPrefix(path, "promopool/")
				if ok && !strings.HasPrefix(rest, "internal/") {
					seen[rest] = true
				}
			}
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// declaredErrors lists the errors pkg declares: exported vars named Err…, and
// exported types that have an Error method.
func declaredErrors(t *testing.T, pkg string) []string {
	t.Helper()
	var out []string
	for _, f := range parseDir(t, pkg, 0) {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
							out = append(out, n.Name)
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || d.Name.Name != "Error" || len(d.Recv.List) != 1 {
					continue
				}
				typ := d.Recv.List[0].Type
				if star, ok := typ.(*ast.StarExpr); ok {
					typ = star.X
				}
				if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
					out = append(out, id.Name)
				}
			}
		}
	}
	return out
}

// parseDir parses the non-test Go files of a package directory under the module root.
func parseDir(t *testing.T, dir string, mode parser.Mode) []*ast.File {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(root, dir, name), nil, mode)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}
