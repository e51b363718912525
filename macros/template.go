package macros

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Source is a message template as the marketer wrote it. Any part may be
// empty.
type Source struct {
	Subject string // the subject line; it may not contain a line break
	HTML    string // the HTML body; inserted values are HTML-escaped
	Text    string // the plain-text body; inserted values are inserted raw
}

// GroupChecker tells [Compile] which promo-code groups exist. The groups
// package satisfies it with one query.
type GroupChecker interface {
	// GroupsExist reports, for each name, whether a group of that name
	// exists and can be used in macros (a deleted or archived group
	// cannot). Names must be compared case-insensitively; they are given
	// as the template spells them, deduplicated by [GroupKey]. The result
	// must have one entry per name, in the same order.
	GroupsExist(ctx context.Context, names []string) ([]bool, error)
}

// GroupList is a GroupChecker over a fixed list of group names, compared
// with [GroupKey]. It suits tests, previews and callers that already hold
// the list of groups.
type GroupList []string

// GroupsExist reports whether each name is in the list, ignoring case. It
// never returns an error.
func (l GroupList) GroupsExist(_ context.Context, names []string) ([]bool, error) {
	keys := make(map[string]bool, len(l))
	for _, n := range l {
		keys[GroupKey(n)] = true
	}
	found := make([]bool, len(names))
	for i, n := range names {
		found[i] = keys[GroupKey(n)]
	}
	return found, nil
}

// GroupKey returns the form in which group names are compared:
// strings.ToLower of the name, with no other change (spaces and
// punctuation count). promocode('Spring') and promocode('SPRING') draw
// from the same group. A GroupChecker and the store that claims codes
// should compare names the same way, e.g. lower(name) = lower($1) in
// PostgreSQL.
func GroupKey(name string) string { return strings.ToLower(name) }

// Limits bound what a template may cost, so that a small template cannot
// make a huge message. The zero value means the defaults.
type Limits struct {
	// MaxMacros is the most macros a template may hold, all parts
	// together: every client macro, well-formed or not, and every
	// client.NAME opened with a single { or <. One more is a problem of
	// kind ErrTemplateTooLarge at that macro. 0 means DefaultMaxMacros;
	// a negative value means no limit.
	MaxMacros int

	// MaxMessageBytes is the most bytes one rendered message may have,
	// subject, HTML and text together: [Template.Render] returns
	// ErrMessageTooLarge beyond it, having used little more than that much
	// memory. A template whose own text is larger is a problem of kind
	// ErrTemplateTooLarge. 0 means DefaultMaxMessageBytes; a negative
	// value means no limit.
	MaxMessageBytes int
}

// Default limits.
const (
	DefaultMaxMacros       = 1000
	DefaultMaxMessageBytes = 1 << 20 // 1 MiB
)

func (l Limits) withDefaults() Limits {
	if l.MaxMacros == 0 {
		l.MaxMacros = DefaultMaxMacros
	}
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return l
}

// Template is a compiled message template. It renders any number of
// messages and is safe for concurrent use; it never changes after
// [Parse] or [Compile] returned it.
type Template struct {
	subject, html, text part
	newGroups           []string   // first spelling of each group drawn from, by index
	repeatGroups        []string   // first spelling of each group re-issued from, by index
	attrs               []string   // attribute names, first-appearance order
	columns             [][]string // columns inserted per new group, first-appearance order
	lastColumns         [][]string // columns inserted per repeat group, first-appearance order
	fallback            []bool     // per new group: its macros have fallbacks
	warnings            []Problem
	maxBytes            int // Limits.MaxMessageBytes; negative: none
}

// part is one compiled part: literal text and the macros between.
type part struct {
	ops  []op
	tail string // literal text after the last macro
}

// op is a literal followed by the value of one macro.
type op struct {
	lit  string // literal text before the macro
	fn   fn     // what the macro inserts
	idx  int    // index into Values.NewCodes (and Columns, UseFallback) or Values.LastCodes
	name string // attribute name (fnAttr) or column name (fnColumn)

	// slow is set when any field below matters; the other ops take the
	// plain path: value, escaped for the part.
	slow        bool
	filter      filter
	format      string // barcode format
	hasFallback bool
	fallback    string
	esc         escMode // HTML: how to escape beyond the part's default
	url         urlPos  // HTML: urlStart or urlScheme when the value is checked as a link's start
	dataURI     bool    // HTML: an image filter in an attribute renders the data: URI alone
}

// Parse compiles src with the default [Limits] and checks its syntax, but
// not whether its groups exist: use it for previews and to validate a
// draft, and [Compile] before anything is sent.
//
// If src has problems, Parse returns a nil Template and a
// [*ValidationError] that lists every one of them (and the warnings).
func Parse(src Source) (*Template, error) { return ParseLimits(src, Limits{}) }

// ParseLimits is [Parse] with limits other than the defaults.
func ParseLimits(src Source, lim Limits) (*Template, error) {
	t, _, probs := parse(src, lim)
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs, Warnings: t.warnings}
	}
	return t, nil
}

// Compile compiles src with the default [Limits], checks its syntax and
// checks through groups that every group its promocode and last_promocode
// macros name exists (one GroupsExist call for the whole template).
//
// If src has problems (syntax, limits or unknown groups), Compile returns
// a nil Template and a [*ValidationError] listing all of them; it checks
// the groups of well-formed macros even when others are malformed. If
// groups fails, Compile returns its error wrapped; if groups is nil it
// returns [ErrNilChecker]. A template that compiles may still have
// [Template.Warnings].
func Compile(ctx context.Context, src Source, groups GroupChecker) (*Template, error) {
	return CompileLimits(ctx, src, groups, Limits{})
}

// CompileLimits is [Compile] with limits other than the defaults.
func CompileLimits(ctx context.Context, src Source, groups GroupChecker, lim Limits) (*Template, error) {
	if groups == nil {
		return nil, ErrNilChecker
	}
	t, macros, probs := parse(src, lim)
	names := append(slices.Clip(t.newGroups), t.repeatGroups...)
	if len(names) > 0 {
		found, err := groups.GroupsExist(ctx, names)
		if err != nil {
			return nil, fmt.Errorf("macros: checking that the template's groups exist: %w", err)
		}
		if len(found) != len(names) {
			return nil, fmt.Errorf("macros: checking that the template's groups exist: GroupChecker returned %d answers for %d names", len(found), len(names))
		}
		missing := make(map[string]bool)
		var absent []string
		for i, ok := range found {
			if !ok {
				missing[GroupKey(names[i])] = true
				absent = append(absent, names[i])
			}
		}
		archived, err := archivedGroups(ctx, groups, absent)
		if err != nil {
			return nil, err
		}
		drawn := make(map[string]bool, len(t.newGroups))
		for _, g := range t.newGroups {
			drawn[GroupKey(g)] = true
		}
		for _, m := range macros {
			k := GroupKey(m.arg)
			if !m.fn.isCode() || !missing[k] {
				continue
			}
			switch {
			case archived[k] && (m.fn == fnLastPromocode || m.fn == fnLastColumn) && !drawn[k]:
				// last_promocode of an archived group inserts the customer's code from
				// it, or nothing (SPEC §3).
			case archived[k]:
				probs = append(probs, archivedGroup(m))
			default:
				probs = append(probs, unknownGroup(m))
			}
		}
		cp, err := undeclaredColumns(ctx, groups, names, missing, macros)
		if err != nil {
			return nil, err
		}
		probs = append(probs, cp...)
		waits, err := waitingGroups(ctx, groups, t.newGroups, missing, macros)
		if err != nil {
			return nil, err
		}
		if len(waits) > 0 {
			t.warnings = append(t.warnings, waits...)
			sortProblems(t.warnings)
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ValidationError{Problems: probs, Warnings: t.warnings}
	}
	return t, nil
}

// NewCodeGroups returns the groups the template draws a new code from, once
// each (compared with [GroupKey]), spelled as at their first appearance, in
// order of first appearance across subject, HTML and text. Values.NewCodes,
// Values.Columns and Values.UseFallback are indexed like this slice. The
// caller must not modify it.
func (t *Template) NewCodeGroups() []string { return t.newGroups }

// RepeatGroups returns the groups whose last issued code the template
// re-inserts with last_promocode, in the same form as [NewCodeGroups].
// Values.LastCodes is indexed like this slice. A group the template also
// draws a new code from is not listed: there last_promocode inserts the new
// code, and no repeat issue should be recorded. The caller must not modify
// the result.
func (t *Template) RepeatGroups() []string { return t.repeatGroups }

// Attributes returns the names of the custom attributes the template
// inserts with client.attr('NAME'), once each, in order of first
// appearance, so the caller can load only those. The caller must not
// modify the result.
func (t *Template) Attributes() []string { return t.attrs }

// Columns returns the extra columns of the code row of NewCodeGroups()[i]
// that the template inserts with promocode('G').NAME, once each, spelled
// as written (names match exactly), in order of first appearance; nil if
// none (or i is out of range). The claim should fetch these columns with
// the code and put them in Values.Columns[i]. The caller must not modify
// the result.
func (t *Template) Columns(i int) []string {
	if i < 0 || i >= len(t.columns) {
		return nil
	}
	return t.columns[i]
}

// LastColumns returns the extra columns of the code row of RepeatGroups()[i]
// that the template inserts with last_promocode('G').NAME, as [Template.Columns]
// does for new codes: the repeat should fetch them with the code and put them in
// Values.LastColumns[i]. The caller must not modify the result.
func (t *Template) LastColumns(i int) []string {
	if i < 0 || i >= len(t.lastColumns) {
		return nil
	}
	return t.lastColumns[i]
}

// HasFallback reports whether the macros of NewCodeGroups()[i] carry a
// fallback text (then all of them do): a recipient for whom the group
// has no code may get the message with Values.UseFallback[i] set, and no
// code is recorded for that group.
func (t *Template) HasFallback(i int) bool { return i >= 0 && i < len(t.fallback) && t.fallback[i] }

// FallbackGroups returns the groups of [NewCodeGroups] that have a
// fallback, in the same order, for display.
func (t *Template) FallbackGroups() []string {
	var out []string
	for i, g := range t.newGroups {
		if t.fallback[i] {
			out = append(out, g)
		}
	}
	return out
}

// Warnings returns what the template would send that is probably not
// meant: text that looks like a macro but is not one (kind
// ErrLooksLikeMacro), values in links without | url (ErrURLNotEncoded),
// values that begin a link (ErrUnsafeURL), and values where HTML escaping
// is not enough (ErrUnsafeContext). Each has the part, line, column, macro,
// message and fix of a [Problem]; at most 100 are listed. The caller must
// not modify the result.
func (t *Template) Warnings() []Problem { return t.warnings }

// sourceParts lists the parts of src in order.
func sourceParts(src Source) [3]struct {
	part Part
	s    string
} {
	return [3]struct {
		part Part
		s    string
	}{{PartSubject, src.Subject}, {PartHTML, src.HTML}, {PartText, src.Text}}
}

// parse parses the three parts of src and builds a Template from the
// well-formed macros, even if some are malformed.
func parse(src Source, lim Limits) (*Template, []macro, []Problem) {
	lim = lim.withDefaults()
	b := &budget{max: lim.MaxMacros}
	var macros []macro
	var probs, warns []Problem
	for _, p := range sourceParts(src) {
		m, pr, wr := parsePart(p.part, p.s, b)
		if p.part == PartHTML {
			hp, hw := checkHTML(p.s, m)
			pr, wr = append(pr, hp...), append(wr, hw...)
		}
		macros = append(macros, m...)
		probs = append(probs, pr...)
		warns = append(warns, wr...)
	}
	if size := len(src.Subject) + len(src.HTML) + len(src.Text); lim.MaxMessageBytes >= 0 && size > lim.MaxMessageBytes {
		probs = append(probs, Problem{Part: PartSubject, Line: 1, Column: 1,
			Message: fmt.Sprintf("the template is %d bytes, more than a message may have (%d)", size, lim.MaxMessageBytes),
			Fix:     "shorten the template (move images and long text to the web)", Err: ErrTemplateTooLarge, offset: -1})
	}
	t := &Template{maxBytes: lim.MaxMessageBytes}
	newIdx, repeatIdx := t.index(macros)
	probs = append(probs, t.checkFallbacks(macros, newIdx)...)
	for _, p := range sourceParts(src) {
		t.build(p.part, p.s, macros, newIdx, repeatIdx)
	}
	sortProblems(probs)
	sortProblems(warns)
	if len(warns) > maxWarnings {
		warns = warns[:maxWarnings]
	}
	t.warnings = warns
	return t, macros, probs
}

// index lists the groups, attributes and columns of macros, and marks the
// last_promocode macros that insert the message's new code.
func (t *Template) index(macros []macro) (newIdx, repeatIdx map[string]int) {
	newIdx = make(map[string]int)
	for _, m := range macros {
		if m.fn == fnPromocode || m.fn == fnColumn {
			if _, ok := newIdx[GroupKey(m.arg)]; !ok {
				newIdx[GroupKey(m.arg)] = len(t.newGroups)
				t.newGroups = append(t.newGroups, m.arg)
			}
		}
	}
	t.columns = make([][]string, len(t.newGroups))
	t.fallback = make([]bool, len(t.newGroups))
	repeatIdx = make(map[string]int)
	for i := range macros {
		m := &macros[i]
		switch k := GroupKey(m.arg); {
		case m.fn == fnLastPromocode || m.fn == fnLastColumn:
			if g, ok := newIdx[k]; ok {
				m.fold = true // the message's new code, and its row's columns
				if m.fn == fnLastColumn && !slices.Contains(t.columns[g], m.column) {
					t.columns[g] = append(t.columns[g], m.column)
				}
				break
			}
			r, ok := repeatIdx[k]
			if !ok {
				r = len(t.repeatGroups)
				repeatIdx[k] = r
				t.repeatGroups = append(t.repeatGroups, m.arg)
				t.lastColumns = append(t.lastColumns, nil)
			}
			if m.fn == fnLastColumn && !slices.Contains(t.lastColumns[r], m.column) {
				t.lastColumns[r] = append(t.lastColumns[r], m.column)
			}
		case m.fn == fnAttr && !slices.Contains(t.attrs, m.arg):
			t.attrs = append(t.attrs, m.arg)
		case m.fn == fnColumn && !slices.Contains(t.columns[newIdx[k]], m.column):
			t.columns[newIdx[k]] = append(t.columns[newIdx[k]], m.column)
		}
	}
	return newIdx, repeatIdx
}

// checkFallbacks sets t.fallback and reports the macros of a group that
// lack a fallback when another macro of the group has one: when the group
// runs out, they would have nothing to show.
func (t *Template) checkFallbacks(macros []macro, newIdx map[string]int) []Problem {
	with := make([]int, len(t.newGroups))
	without := make([]int, len(t.newGroups))
	newCode := func(m *macro) bool { return m.fn == fnPromocode || m.fn == fnColumn || m.fold }
	for i := range macros {
		if m := &macros[i]; newCode(m) {
			if m.hasFallback {
				with[newIdx[GroupKey(m.arg)]]++
			} else {
				without[newIdx[GroupKey(m.arg)]]++
			}
		}
	}
	var probs []Problem
	for i := range macros {
		m := &macros[i]
		g := newIdx[GroupKey(m.arg)]
		if !newCode(m) || m.hasFallback || with[g] == 0 {
			continue
		}
		probs = append(probs, *m.problem(m.loc.s, fmt.Sprintf("another macro of group %q has a fallback but this one has none, so it would have nothing to show when the group runs out", t.newGroups[g]),
			"give every macro of the group a fallback, e.g. "+m.canonical("…", m.filter)+", or remove the others", ErrSyntax))
	}
	for i := range t.fallback {
		t.fallback[i] = with[i] > 0 && without[i] == 0
	}
	return probs
}

// canonical writes m in its delimiters with fallback (if not "") and the
// filter f.
func (m *macro) canonical(fallback string, f filter) string {
	var b strings.Builder
	b.WriteString(m.d.open + "client.")
	switch m.fn {
	case fnColumn, fnPromocode:
		b.WriteString("promocode")
	case fnLastPromocode, fnLastColumn:
		b.WriteString("last_promocode")
	case fnAttr:
		b.WriteString("attr")
	default:
		b.WriteString(map[fn]string{fnID: "id", fnEmail: "email", fnFirstName: "first_name", fnLastName: "last_name"}[m.fn])
	}
	if m.fn.takesArg() || m.fn == fnColumn || m.fn == fnLastColumn {
		b.WriteString("('" + escapeArg(m.arg) + "'")
		if fallback != "" {
			b.WriteString(", fallback='" + escapeArg(fallback) + "'")
		}
		b.WriteString(")")
	}
	if m.fn == fnColumn || m.fn == fnLastColumn {
		b.WriteString("." + m.column)
	}
	switch f {
	case filterURL:
		b.WriteString(" | url")
	case filterQR:
		b.WriteString(" | qr")
	case filterBarcode:
		b.WriteString(" | barcode('" + m.format + "')")
	}
	b.WriteString(m.d.close)
	return b.String()
}

// build compiles the macros of one part into ops.
func (t *Template) build(pt Part, s string, macros []macro, newIdx, repeatIdx map[string]int) {
	dst := &t.text
	switch pt {
	case PartSubject:
		dst = &t.subject
	case PartHTML:
		dst = &t.html
	}
	last := 0
	for i := range macros {
		m := &macros[i]
		if m.part != pt {
			continue
		}
		o := op{lit: s[last:m.start], fn: m.fn, filter: m.filter, format: m.format, hasFallback: m.hasFallback, fallback: m.fallback}
		switch k := GroupKey(m.arg); m.fn {
		case fnPromocode:
			o.idx = newIdx[k]
		case fnColumn:
			o.idx, o.name = newIdx[k], m.column
		case fnLastPromocode:
			if m.fold {
				o.fn, o.idx = fnPromocode, newIdx[k] // the new code of this message
			} else {
				o.idx = repeatIdx[k]
			}
		case fnLastColumn:
			if m.fold {
				o.fn, o.idx, o.name = fnColumn, newIdx[k], m.column // a column of this message's new code
			} else {
				o.idx, o.name = repeatIdx[k], m.column
			}
		case fnAttr:
			o.name = m.arg
		}
		if pt == PartHTML {
			o.esc, o.url, o.dataURI = m.ctx.rendering(m.filter)
		}
		o.slow = o.filter != filterNone || o.hasFallback || o.esc != escPlain || o.url != urlNone
		dst.ops = append(dst.ops, o)
		last = m.end
	}
	dst.tail = s[last:]
}

// unknownGroup reports a macro whose group does not exist.
// ArchiveChecker is a GroupChecker that also knows archived groups (deleted after
// issuing codes): last_promocode may name one — it inserts the code the customer
// holds from it, or nothing — while promocode may not. The groups package
// satisfies it; a GroupChecker without it makes every archived group unknown.
type ArchiveChecker interface {
	GroupChecker
	// GroupsArchived reports, for each name, whether an archived group of that
	// name exists (compared as GroupsExist compares), in the same order.
	GroupsArchived(ctx context.Context, names []string) ([]bool, error)
}

// StatusChecker is a GroupChecker that also knows which groups issue no new code
// for now (the groups package satisfies it). With it, [Compile] warns
// (ErrGroupNotActive) about promocode('G') of a draft or paused group: the template
// is valid, but a mailing using it waits until G is activated, and a render or a
// direct issue from it is refused meanwhile.
type StatusChecker interface {
	GroupChecker
	// GroupsWaiting returns, for each name, "draft" or "paused" when the live group
	// of that name issues no code for now, or "" (also for a name of no group), in
	// the same order.
	GroupsWaiting(ctx context.Context, names []string) ([]string, error)
}

// waitingGroups warns about the first promocode macro of each drawn group (not in
// missing) that is a draft or paused, when c is a StatusChecker.
func waitingGroups(ctx context.Context, c GroupChecker, drawn []string, missing map[string]bool, ms []macro) ([]Problem, error) {
	sc, ok := c.(StatusChecker)
	if !ok || len(drawn) == 0 {
		return nil, nil
	}
	status, err := sc.GroupsWaiting(ctx, drawn)
	if err != nil {
		return nil, fmt.Errorf("macros: checking which of the template's groups are active: %w", err)
	}
	if len(status) != len(drawn) {
		return nil, fmt.Errorf("macros: checking which of the template's groups are active: %d answers for %d names", len(status), len(drawn))
	}
	waiting := make(map[string]string)
	for i, st := range status {
		if k := GroupKey(drawn[i]); st != "" && !missing[k] {
			waiting[k] = st
		}
	}
	var out []Problem
	for _, m := range ms {
		k := GroupKey(m.arg)
		st, ok := waiting[k]
		if !ok || !m.fn.isCode() || m.fn == fnLastPromocode || m.fn == fnLastColumn {
			continue
		}
		delete(waiting, k) // once per group
		state := "paused"
		if st == "draft" {
			state = "a draft"
		}
		out = append(out, *m.problem(m.loc.s, fmt.Sprintf("group %q is %s: it issues no codes until it is activated, so a mailing using it waits (paused, group_%s) and a render is refused", m.arg, state, st),
			"activate the group before the send (POST /v1/groups/{id}/activate), or draw from an active group", ErrGroupNotActive))
	}
	return out, nil
}

// ColumnChecker is a GroupChecker that also knows which extra columns a group
// declares (the groups package satisfies it). With it, [Compile] refuses
// promocode('G').NAME and last_promocode('G').NAME when G declares its columns
// and NAME is not one of them (ErrUnknownColumn); a group that declares none
// accepts any name (a code uploaded without it fails its message instead).
type ColumnChecker interface {
	GroupChecker
	// GroupColumns returns, for each name, the columns the group declares,
	// or nil when it declares none, in the same order.
	GroupColumns(ctx context.Context, names []string) ([][]string, error)
}

// undeclaredColumns reports the column macros of existing groups (not in missing)
// naming a column their group does not declare, when c is a ColumnChecker.
func undeclaredColumns(ctx context.Context, c GroupChecker, names []string, missing map[string]bool, ms []macro) ([]Problem, error) {
	cc, ok := c.(ColumnChecker)
	if !ok {
		return nil, nil
	}
	uses := false
	for _, m := range ms {
		uses = uses || m.fn == fnColumn || m.fn == fnLastColumn
	}
	if !uses {
		return nil, nil
	}
	cols, err := cc.GroupColumns(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("macros: checking the template's columns: %w", err)
	}
	if len(cols) != len(names) {
		return nil, fmt.Errorf("macros: checking the template's columns: %d answers for %d names", len(cols), len(names))
	}
	declared := make(map[string][]string, len(names))
	for i, n := range names {
		if cols[i] != nil {
			declared[GroupKey(n)] = cols[i]
		}
	}
	var probs []Problem
	for i := range ms {
		m := &ms[i]
		k := GroupKey(m.arg)
		d, ok := declared[k]
		if (m.fn != fnColumn && m.fn != fnLastColumn) || missing[k] || !ok || slices.Contains(d, m.column) {
			continue
		}
		fix := "the group declares no columns; remove the macro"
		if len(d) > 0 {
			fix = "use one of " + strings.Join(d, ", ") + ", or declare " + m.column + " in the group's columns"
		}
		probs = append(probs, *m.problem(m.loc.s, fmt.Sprintf("group %q has no column %q", m.arg, m.column), fix, ErrUnknownColumn))
	}
	return probs, nil
}

// archivedGroups asks c, if it is an ArchiveChecker, which of names are archived
// groups, by GroupKey.
func archivedGroups(ctx context.Context, c GroupChecker, names []string) (map[string]bool, error) {
	ac, ok := c.(ArchiveChecker)
	if !ok || len(names) == 0 {
		return nil, nil
	}
	found, err := ac.GroupsArchived(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("macros: checking which of the template's groups are archived: %w", err)
	}
	if len(found) != len(names) {
		return nil, fmt.Errorf("macros: checking which of the template's groups are archived: %d answers for %d names", len(found), len(names))
	}
	out := make(map[string]bool, len(names))
	for i, ok := range found {
		if ok {
			out[GroupKey(names[i])] = true
		}
	}
	return out, nil
}

func archivedGroup(m macro) Problem {
	return *m.problem(m.loc.s, fmt.Sprintf("group %q is archived: no new code can be drawn from it", m.arg),
		"draw from a live group; last_promocode('"+m.arg+"') alone may still insert the code a customer holds from it", ErrUnknownGroup)
}

func unknownGroup(m macro) Problem {
	return *m.problem(m.loc.s, fmt.Sprintf("group %q does not exist", m.arg),
		"check the spelling against the group list, or create the group first", ErrUnknownGroup)
}

// sortProblems orders problems by part (subject, html, text), then position.
func sortProblems(probs []Problem) {
	rank := func(p Part) int {
		switch p {
		case PartSubject:
			return 0
		case PartHTML:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(probs, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(rank(a.Part), rank(b.Part)), cmp.Compare(a.offset, b.offset))
	})
}
