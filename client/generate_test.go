package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// The committed client.gen.go is what the pinned generator makes of api/openapi.json
// now: regenerated into a temporary directory with the same configuration, byte for byte.
// A change to the document without `go generate ./client` fails here.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	cfg, err := os.ReadFile("cfg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "client.gen.go")
	outLine := regexp.MustCompile(`(?m)^output: .*$`)
	if !outLine.Match(cfg) {
		t.Fatal("cfg.yaml has no output: line")
	}
	tmpCfg := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(tmpCfg, outLine.ReplaceAll(cfg, []byte("output: "+out)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", tmpCfg, "../api/openapi.json")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool oapi-codegen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		line := 0
		for line < len(gl) && line < len(wl) && bytes.Equal(gl[line], wl[line]) {
			line++
		}
		show := func(ls [][]byte) string {
			if line < len(ls) {
				return string(ls[line])
			}
			return "(end of file)"
		}
		t.Fatalf("client/client.gen.go is not what api/openapi.json generates (first difference at line %d:\n  committed: %s\n  generated: %s)\nrun: go generate ./client",
			line+1, show(gl), show(wl))
	}
}
