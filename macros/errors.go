package macros

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of template problems. Every [Problem] carries one of them in its Err
// field, and a [*ValidationError] matches each of its problems' kinds with
// errors.Is, so errors.Is(err, ErrUnknownGroup) reports whether any macro of
// the template names a group that does not exist.
var (
	// ErrSyntax marks a malformed macro: double or typographic quotes, a
	// missing quote, parenthesis or closing "}}", an empty or invalid
	// group name, a bad escape, or a line break in the subject.
	ErrSyntax = errors.New("macro syntax error")

	// ErrUnknownName marks a client.* name the engine does not know, such
	// as client.phone or client.promo('G'), or a field used as a function.
	ErrUnknownName = errors.New("unknown macro name")

	// ErrUnknownGroup marks a promocode or last_promocode macro whose group
	// the GroupChecker reported as not existing.
	ErrUnknownGroup = errors.New("unknown promo-code group")
)

// ErrMissingCode is returned (wrapped) by [Template.CheckValues] when a
// [Values] lacks the new code of a group the template draws from.
var ErrMissingCode = errors.New("missing promo code")

// ErrNilChecker is returned by [Compile] when it is given a nil GroupChecker.
var ErrNilChecker = errors.New("macros: nil GroupChecker")

// Part names one of the three parts of a message template.
type Part string

// The parts of a message template.
const (
	PartSubject Part = "subject"
	PartHTML    Part = "html"
	PartText    Part = "text"
)

// Problem is one thing wrong in a template.
//
// Line and Column are 1-based and locate the "{{" that opens the macro
// (for a line break in the subject, the line break itself). Column counts
// characters (runes) from the start of the line, so a "{{" after "Señor "
// on the first line is at column 7; an invalid UTF-8 byte counts as one
// character. Lines are separated by "\n".
type Problem struct {
	Part    Part   // which part of the template: subject, html or text
	Line    int    // 1-based line of the macro's "{{"
	Column  int    // 1-based column, in runes, of the macro's "{{"
	Macro   string // the macro as written (shortened to 60 characters with "…")
	Message string // what is wrong, in plain words
	Fix     string // how to fix it
	Err     error  // ErrSyntax, ErrUnknownName or ErrUnknownGroup

	offset int // byte offset in the part, for ordering
}

// String formats the problem on one line, e.g.
//
//	html line 3, column 7: {{client.promocode("Spring")}}: the group name is in double quotes; fix: write {{client.promocode('Spring')}}
func (p Problem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s line %d, column %d: ", p.Part, p.Line, p.Column)
	if p.Macro != "" {
		b.WriteString(p.Macro)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// ValidationError lists every problem found in a template, ordered by part
// (subject, html, text) and then by position. [Parse] and [Compile] return
// it as a *ValidationError; find it with errors.As.
type ValidationError struct {
	Problems []Problem // never empty
}

// Error lists all problems, one per line after a summary line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("macros: 1 problem in the template")
	} else {
		fmt.Fprintf(&b, "macros: %d problems in the template", len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns the distinct kinds (ErrSyntax, ErrUnknownName,
// ErrUnknownGroup) of the problems, so that errors.Is matches any of them.
func (e *ValidationError) Unwrap() []error {
	var kinds []error
	for _, p := range e.Problems {
		if p.Err != nil && !containsErr(kinds, p.Err) {
			kinds = append(kinds, p.Err)
		}
	}
	return kinds
}

func containsErr(errs []error, err error) bool {
	for _, e := range errs {
		if e == err {
			return true
		}
	}
	return false
}
