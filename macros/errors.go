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

	// ErrUnknownColumn marks promocode('G').NAME (or last_promocode) naming a
	// column that G, which declares its columns, does not have (see
	// [ColumnChecker]).
	ErrUnknownColumn = errors.New("unknown code column")

	// ErrTemplateTooLarge marks a template over its [Limits]: more macros
	// than MaxMacros, or more bytes than a message may have.
	ErrTemplateTooLarge = errors.New("template too large")
)

// Kinds of template warnings. A warning does not stop a template from
// compiling; it is listed in [Template.Warnings] (and in
// ValidationError.Warnings) with its place and a fix, like a [Problem].
var (
	// ErrLooksLikeMacro marks text that looks like a macro but is not one
	// and would be sent as written: client.email outside {{ }}, a
	// misspelt client ({{clinet.email}}), a missing dot or client.
	// ({{promocode('G')}}). See doc.go for which near misses are errors.
	ErrLooksLikeMacro = errors.New("text looks like a macro")

	// ErrURLNotEncoded marks a macro inside a link (href, src, …) written
	// without | url: a code with & ? # + % or spaces would break the link.
	ErrURLNotEncoded = errors.New("value in a link without | url")

	// ErrUnsafeURL marks a macro that begins a link's value: unless it
	// renders an http, https or mailto URL (or a relative one), it renders
	// empty, so a customer field cannot make a javascript: link.
	ErrUnsafeURL = errors.New("value begins a link")

	// ErrUnsafeContext marks a macro in <script> or <style>, in an on… or
	// style attribute, inside a tag outside any attribute value, or right
	// after "<": HTML escaping does not make a value safe there.
	ErrUnsafeContext = errors.New("value in an unsafe HTML context")

	// ErrGroupNotActive marks promocode('G') of a group that is a draft or
	// paused (see [StatusChecker]): nothing is drawn from it until it is
	// activated, so a mailing using it waits.
	ErrGroupNotActive = errors.New("group issues no codes for now")
)

// ErrMissingCode is returned (wrapped) by [Template.CheckValues] and
// [Template.Render] when a [Values] lacks the new code of a group the
// template draws from, and does not ask for its fallback.
var ErrMissingCode = errors.New("missing promo code")

// ErrMissingColumn is returned (wrapped) by [Template.CheckValues] and
// [Template.Render] when the code row of a group lacks a column the
// template inserts with promocode('G').NAME (the key is absent from
// Values.Columns; an empty value is not missing).
var ErrMissingColumn = errors.New("missing code column")

// ErrMessageTooLarge is returned (wrapped) by [Template.Render] when the
// rendered message would exceed Limits.MaxMessageBytes. The mailer should
// record the recipient as failed with the error's text as the reason.
var ErrMessageTooLarge = errors.New("rendered message too large")

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

// Problem is one thing wrong in a template, or one warning about it.
//
// Line and Column are 1-based and locate the "{{" or "<<" that opens the
// macro (for a line break in the subject, the line break itself; for
// client.NAME outside a macro, its first character or its single opening
// brace). Column counts
// characters (runes) from the start of the line, so a "{{" after "Señor "
// on the first line is at column 7; an invalid UTF-8 byte counts as one
// character. Lines are separated by "\n".
type Problem struct {
	Part    Part   // which part of the template: subject, html or text
	Line    int    // 1-based line of the macro's opener
	Column  int    // 1-based column, in runes, of the macro's opener
	Macro   string // the macro as written (shortened to 60 characters with "…")
	Message string // what is wrong, in plain words
	Fix     string // how to fix it
	Err     error  // its kind: ErrSyntax, ErrUnknownName, ErrUnknownGroup, ErrUnknownColumn or ErrTemplateTooLarge; for a warning ErrLooksLikeMacro, ErrURLNotEncoded, ErrUnsafeURL, ErrUnsafeContext or ErrGroupNotActive

	offset int // byte offset in the part, for ordering
}

// Code is the problem's kind as a stable lowercase code, for programs (the HTTP
// API answers it with each problem and warning): "syntax", "unknown_name",
// "unknown_group", "unknown_column", "template_too_large" for problems; "looks_like_macro",
// "url_not_encoded", "unsafe_url", "unsafe_context", "group_not_active" for warnings; "" for a
// Problem without a kind.
func (p Problem) Code() string {
	for _, k := range problemCodes {
		if errors.Is(p.Err, k.err) {
			return k.code
		}
	}
	return ""
}

// problemCodes are the stable codes of the problem and warning kinds.
var problemCodes = []struct {
	err  error
	code string
}{
	{ErrSyntax, "syntax"},
	{ErrUnknownName, "unknown_name"},
	{ErrUnknownGroup, "unknown_group"},
	{ErrUnknownColumn, "unknown_column"},
	{ErrTemplateTooLarge, "template_too_large"},
	{ErrLooksLikeMacro, "looks_like_macro"},
	{ErrURLNotEncoded, "url_not_encoded"},
	{ErrUnsafeURL, "unsafe_url"},
	{ErrUnsafeContext, "unsafe_context"},
	{ErrGroupNotActive, "group_not_active"},
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
	Warnings []Problem // what would only be warned about, as [Template.Warnings]; not part of Error()
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
// ErrUnknownGroup, ErrTemplateTooLarge) of the problems, so that errors.Is
// matches any of them. Warnings are not included.
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
