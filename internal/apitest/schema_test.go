package apitest

import (
	"fmt"
	"testing"
)

// failures is a testing.TB that keeps what Schema reports.
type failures struct {
	testing.TB
	got []string
}

func (f *failures) Errorf(format string, args ...any) {
	f.got = append(f.got, fmt.Sprintf(format, args...))
}

func TestSchema(t *testing.T) {
	for _, tc := range []struct {
		body string
		bad  bool
	}{
		{`{"error":{"code":"group_not_found","message":"no group 7"}}`, false},
		{`{"error":{"code":"insufficient_scope","message":"needs write","scope":"write"}}`, false},
		{`{"error":{"code":"x","message":"y","hint":"an undocumented field"}}`, true},
		{`{"error":{"code":7,"message":"y"}}`, true},
		{`{"error":{"message":"no code"}}`, true},
		{`not json`, true},
	} {
		f := &failures{TB: t}
		Schema(f, "Error", []byte(tc.body))
		if (len(f.got) > 0) != tc.bad {
			t.Errorf("%s: reported %q, want a report: %v", tc.body, f.got, tc.bad)
		}
	}
}
