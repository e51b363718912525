package admin

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"promopool/offers"
)

// pageNames are the templates under templates/, each drawn inside layout.html.
var pageNames = []string{"login", "error", "groups", "group", "customer", "mailings", "mailing_new", "mailing", "segments", "users", "group_tab", "portfolio"}

var funcs = template.FuncMap{
	"num":  num,
	"when": when,
	"pct": func(part, whole int64) string {
		if whole <= 0 {
			return "0"
		}
		return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64)
	},
	"diff":  diffRows,
	"deref": func(p *int64) int64 { return *p },
	"add":   func(a, b int) int { return a + b },
	"bytes": bytesText,
	"path":  url.PathEscape,
	"ops":   func() any { return quantityOps },
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"join": strings.Join,
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"money":      money,
	"currencyOf": currencyOf,
	"percent":    func(f float64) float64 { return f * 100 },
	"dict3": func(id int64, action, csrf string) struct {
		ID           int64
		Action, CSRF string
	} {
		return struct {
			ID           int64
			Action, CSRF string
		}{id, action, csrf}
	},
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("admin templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("admin templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}

// num writes a whole number with thin separators: 1 234 567.
func num(v any) string {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int:
		n = int64(x)
	case *int64:
		if x == nil {
			return "—"
		}
		n = *x
	default:
		return fmt.Sprint(v)
	}
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// when writes a time in UTC to the second.
func when(v any) string {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return ""
}

// diffRow is one field of an activity entry: before and after.
type diffRow struct {
	Field, Before, After string
	// Changed is false for a fact with no before (an upload's counts, a creation).
	Changed bool
}

// entryView is an activity entry's fields: changed ones (before → after) and facts.
type entryView struct {
	Changes, Facts []diffRow
}

// diffRows lays an activity entry's before/after objects side by side, one row per
// field; fields with no before are facts (an upload's counts, a new group's values).
func diffRows(before, after json.RawMessage) entryView {
	var b, a map[string]any
	json.Unmarshal(before, &b)
	json.Unmarshal(after, &a)
	keys := map[string]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out entryView
	show := func(m map[string]any, k string) string {
		v, ok := m[k]
		if !ok {
			return ""
		}
		if v == nil {
			return "(none)"
		}
		if s, ok := v.(string); ok {
			return s
		}
		j, _ := json.Marshal(v)
		return string(j)
	}
	for _, k := range names {
		row := diffRow{Field: k, Before: show(b, k), After: show(a, k)}
		if _, had := b[k]; had {
			row.Changed = true
			out.Changes = append(out.Changes, row)
		} else if row.After != "" && row.After != "(none)" && row.After != "[]" {
			out.Facts = append(out.Facts, row)
		}
	}
	return out
}

// bytesText writes a size in the largest binary unit that divides it (1 GiB), else in bytes.
func bytesText(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return num(n) + " bytes"
}

// money writes minor units of cur as the terms summary does ("15.50 EUR"); a nil
// pointer is a dash.
func money(v any, cur string) string {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case *int64:
		if x == nil {
			return "—"
		}
		n = *x
	default:
		return fmt.Sprint(v)
	}
	if cur == "" {
		return num(n)
	}
	return offers.FormatMoney(n, cur)
}
