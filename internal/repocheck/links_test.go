package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository's top directory, seen from this package's.
const root = "../.."

// TestDocLinks follows every relative link of README.md and docs/*.md: its file must
// exist inside the repository, and a #fragment must name a heading of the target
// Markdown file (as GitHub derives anchors from headings).
func TestDocLinks(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	if len(files) < 2 {
		t.Fatalf("found %v: want README.md and docs/*.md", files)
	}
	top, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(src)) {
			if isExternal(l.target) {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(l.target, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
			}
			abs, err := filepath.Abs(target)
			if err != nil {
				t.Fatal(err)
			}
			if abs != top && !strings.HasPrefix(abs, top+string(filepath.Separator)) {
				t.Errorf("%s:%d: link %q leaves the repository", rel(f), l.line, l.target)
				continue
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s:%d: link %q: no such file %s", rel(f), l.line, l.target, rel(target))
				continue
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: link %q: a fragment into a file that is not Markdown", rel(f), l.line, l.target)
				continue
			}
			doc, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(doc))[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", rel(f), l.line, l.target, rel(target), frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link parser is broken")
	}
}

func rel(path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}

func isExternal(target string) bool {
	for _, p := range []string{"http://", "https://", "mailto:"} {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}

type link struct {
	target string
	line   int
}

// inlineLink matches [text](target) and ![alt](target); the target stops at a space
// (a title) or the closing parenthesis.
var inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)

// markdownLinks returns the inline links of a Markdown text outside code: fenced
// blocks and `code spans` are skipped.
func markdownLinks(src string) []link {
	var out []link
	for i, line := range proseLines(src) {
		for _, m := range inlineLink.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			out = append(out, link{target: m[1], line: i + 1})
		}
	}
	return out
}

// proseLines returns the text's lines with those inside fenced code blocks blanked.
func proseLines(src string) []string {
	lines := strings.Split(src, "\n")
	fence := ""
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case fence == "" && (strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~")):
			fence = t[:3]
			lines[i] = ""
		case fence != "":
			if strings.HasPrefix(t, fence) {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return lines
}

// stripCodeSpans blanks `code spans` (of any number of backticks) in one line.
func stripCodeSpans(line string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(line, '`')
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		ticks := line[i : i+n]
		end := strings.Index(line[i+n:], ticks)
		if end < 0 {
			b.WriteString(line)
			return b.String()
		}
		b.WriteString(line[:i])
		line = line[i+n+end+n:]
	}
}

// anchors returns the anchors GitHub gives a Markdown text's headings: lower case,
// every character but letters, marks, numbers, connectors (_), hyphens and spaces
// dropped, spaces turned into hyphens, and -1, -2… appended to repeats.
func anchors(src string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range proseLines(src) {
		t := strings.TrimLeft(l, "#")
		if len(t) == len(l) || len(l)-len(t) > 6 || (t != "" && t[0] != ' ') {
			continue
		}
		a := slug(strings.TrimSpace(t))
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestLinkParsing pins the parser on the cases the documents use, so that a broken
// parser cannot pass TestDocLinks by finding nothing to check.
func TestLinkParsing(t *testing.T) {
	src := "See [ops](docs/operations.md#metrics) and ![shot](screenshots/group.png \"title\").\n" +
		"Not `[code](nowhere.md)` nor:\n```\n[fenced](nowhere.md)\n```\n" +
		"[web](https://example.com) [here](#code-map)\n"
	var got []string
	for _, l := range markdownLinks(src) {
		got = append(got, l.target)
	}
	want := []string{"docs/operations.md#metrics", "screenshots/group.png", "https://example.com", "#code-map"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("links = %q, want %q", got, want)
	}
	heads := anchors("# promopool\n## Segment filters (`segments/`)\n## Configuration (environment)\n" +
		"```\n# not a heading\n```\n## Code map\n## Code map\n#hashtag\n")
	for _, a := range []string{"promopool", "segment-filters-segments", "configuration-environment", "code-map", "code-map-1"} {
		if !heads[a] {
			t.Errorf("anchor %q missing from %v", a, heads)
		}
	}
	for _, a := range []string{"not-a-heading", "hashtag"} {
		if heads[a] {
			t.Errorf("%q is not a heading", a)
		}
	}
}
