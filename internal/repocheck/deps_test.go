package repocheck

import (
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// isBench says whether an import path is a benchmark package of promopool's (today
// promopool/cmd/promopool/internal/bench): part of the binary, never of the service.
func isBench(pkg string) bool {
	return strings.HasPrefix(pkg, "promopool/") && path.Base(pkg) == "bench"
}

// TestBenchStaysInTheBinary: no service package and no test helper links the
// benchmarks, so a database test links only what it tests (internal/testdb in
// particular, which every such test imports).
func TestBenchStaysInTheBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "./internal/testdb")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./internal/testdb: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "promopool/postgres") {
		t.Fatalf("go list -deps ./internal/testdb = %v: want promopool/postgres among them", deps)
	}
	if i := slices.IndexFunc(deps, isBench); i >= 0 {
		t.Errorf("internal/testdb depends on %s", deps[i])
	}

	cmd = exec.Command(goTool, "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...")
	cmd.Dir = root
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		if strings.HasPrefix(pkg, "promopool/cmd/") {
			continue
		}
		n++
		if d := strings.Fields(deps); slices.ContainsFunc(d, isBench) {
			t.Errorf("%s depends on %s", pkg, d[slices.IndexFunc(d, isBench)])
		}
	}
	if n < 10 {
		t.Fatalf("go list ./... listed %d packages outside cmd/: the listing is broken", n)
	}
}
