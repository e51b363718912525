package jsonlimit

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestWithinLimitsPassesUnchanged(t *testing.T) {
	in := `{"codes": ["A1", {"code": "A\"2\\", "expires_at": "2026-01-01"}, 42, true, null], "x": [[1]]}`
	var v any
	if err := json.NewDecoder(NewReader(strings.NewReader(in), 16, 3)).Decode(&v); err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		offset   int64
	}{
		{"a long string", `["ok", "` + strings.Repeat("x", 100) + `"]`, 8 + 16},
		{"a long string of escapes", `["` + strings.Repeat(`\"`, 100) + `"]`, 2 + 16},
		{"a long number", `[` + strings.Repeat("1", 100) + `]`, 1 + 16},
		{"deep nesting", strings.Repeat("[", 100), 3},
	} {
		_, err := io.Copy(io.Discard, NewReader(strings.NewReader(tc.in), 16, 3))
		var e *Error
		if !errors.As(err, &e) || e.Offset != tc.offset {
			t.Errorf("%s: %v, want an Error at byte %d", tc.name, err, tc.offset)
		}
	}
}
