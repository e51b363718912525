package client_test

import (
	"os"
	"strings"
	"testing"
)

// README's "Go client" example is the code of Example, line for line, so it compiles.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Go client\n")
	if !ok {
		t.Fatal(`README.md has no "### Go client" section`)
	}
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal("README's Go client section has no ```go block")
	}
	block, _, _ = strings.Cut(block, "```")
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(example), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	n := 0
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		n++
		if !have[l] {
			t.Errorf("README line not in client/example_test.go (keep them the same): %s", l)
		}
	}
	if n < 5 {
		t.Errorf("README's Go client example has %d lines", n)
	}
}
