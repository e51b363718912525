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

// Template is a compiled message template. It renders any number of
// messages and is safe for concurrent use; it never changes after
// [Parse] or [Compile] returned it.
type Template struct {
	subject, html, text part
	newGroups           []string // first spelling of each group drawn from, by index
	repeatGroups        []string // first spelling of each group re-issued from, by index
	attrs               []string // attribute names, first-appearance order
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
	idx  int    // index into Values.NewCodes or Values.LastCodes
	attr string // attribute name, for fnAttr
}

// Parse compiles src and checks its syntax, but not whether its groups
// exist: use it for previews and to validate a draft, and [Compile] before
// anything is sent.
//
// If src has problems, Parse returns a nil Template and a
// [*ValidationError] that lists every one of them.
func Parse(src Source) (*Template, error) {
	t, _, probs := parse(src)
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	return t, nil
}

// Compile compiles src, checks its syntax and checks through groups that
// every group its promocode and last_promocode macros name exists (one
// GroupsExist call for the whole template).
//
// If src has problems (syntax or unknown groups), Compile returns a nil
// Template and a [*ValidationError] listing all of them; it checks the
// groups of well-formed macros even when others are malformed. If groups
// fails, Compile returns its error wrapped; if groups is nil it returns
// [ErrNilChecker].
func Compile(ctx context.Context, src Source, groups GroupChecker) (*Template, error) {
	if groups == nil {
		return nil, ErrNilChecker
	}
	t, macros, probs := parse(src)
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
		for i, ok := range found {
			if !ok {
				missing[GroupKey(names[i])] = true
			}
		}
		locs := map[Part]*locator{
			PartSubject: {s: src.Subject, line: 1, col: 1},
			PartHTML:    {s: src.HTML, line: 1, col: 1},
			PartText:    {s: src.Text, line: 1, col: 1},
		}
		for _, m := range macros {
			if (m.fn == fnPromocode || m.fn == fnLastPromocode) && missing[GroupKey(m.arg)] {
				probs = append(probs, unknownGroup(locs[m.part], m))
			}
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ValidationError{Problems: probs}
	}
	return t, nil
}

// NewCodeGroups returns the groups the template draws a new code from, once
// each (compared with [GroupKey]), spelled as at their first appearance, in
// order of first appearance across subject, HTML and text. Values.NewCodes
// is indexed like this slice. The caller must not modify it.
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

// parse parses the three parts of src and builds a Template from the
// well-formed macros, even if some are malformed.
func parse(src Source) (*Template, []macro, []Problem) {
	var macros []macro
	var probs []Problem
	for _, p := range [...]struct {
		part Part
		s    string
	}{{PartSubject, src.Subject}, {PartHTML, src.HTML}, {PartText, src.Text}} {
		m, pr := parsePart(p.part, p.s)
		macros = append(macros, m...)
		probs = append(probs, pr...)
	}

	t := &Template{}
	newIdx := make(map[string]int)
	for _, m := range macros {
		if m.fn == fnPromocode {
			if _, ok := newIdx[GroupKey(m.arg)]; !ok {
				newIdx[GroupKey(m.arg)] = len(t.newGroups)
				t.newGroups = append(t.newGroups, m.arg)
			}
		}
	}
	repeatIdx := make(map[string]int)
	for _, m := range macros {
		switch k := GroupKey(m.arg); {
		case m.fn == fnLastPromocode:
			if _, ok := newIdx[k]; ok {
				break
			}
			if _, ok := repeatIdx[k]; !ok {
				repeatIdx[k] = len(t.repeatGroups)
				t.repeatGroups = append(t.repeatGroups, m.arg)
			}
		case m.fn == fnAttr && !slices.Contains(t.attrs, m.arg):
			t.attrs = append(t.attrs, m.arg)
		}
	}

	for _, p := range [...]struct {
		part Part
		s    string
		dst  *part
	}{{PartSubject, src.Subject, &t.subject}, {PartHTML, src.HTML, &t.html}, {PartText, src.Text, &t.text}} {
		last := 0
		for _, m := range macros {
			if m.part != p.part {
				continue
			}
			o := op{lit: p.s[last:m.start], fn: m.fn}
			switch m.fn {
			case fnPromocode:
				o.idx = newIdx[GroupKey(m.arg)]
			case fnLastPromocode:
				if i, ok := newIdx[GroupKey(m.arg)]; ok {
					o.fn, o.idx = fnPromocode, i // the new code of this message
				} else {
					o.idx = repeatIdx[GroupKey(m.arg)]
				}
			case fnAttr:
				o.attr = m.arg
			}
			p.dst.ops = append(p.dst.ops, o)
			last = m.end
		}
		p.dst.tail = p.s[last:]
	}
	return t, macros, probs
}

// unknownGroup reports a macro whose group does not exist; loc locates
// positions in the macro's part.
func unknownGroup(loc *locator, m macro) Problem {
	line, col := loc.at(m.start)
	return Problem{
		Part: m.part, Line: line, Column: col, Macro: shorten(loc.s[m.start:m.end]),
		Message: fmt.Sprintf("group %q does not exist", m.arg),
		Fix:     "check the spelling against the group list, or create the group first",
		Err:     ErrUnknownGroup, offset: m.start,
	}
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
