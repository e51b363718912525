package macros

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFallback(t *testing.T) {
	tpl := mustParse(t, Source{
		Subject: "{{client.promocode('Spring', fallback='Our offer')}}",
		HTML:    "<b>{{client.promocode('spring', fallback='Visit the shop for today’s <offer>')}}</b>",
		Text:    "{{client.promocode('Spring', fallback='Visit the shop')}} {{client.promocode('Gifts')}} [{{client.last_promocode('Winter', fallback='no winter code')}}]",
	})
	if got, want := tpl.NewCodeGroups(), []string{"Spring", "Gifts"}; !slices.Equal(got, want) {
		t.Fatalf("NewCodeGroups = %q", got)
	}
	if !tpl.HasFallback(0) || tpl.HasFallback(1) || tpl.HasFallback(2) || tpl.HasFallback(-1) {
		t.Errorf("HasFallback = %v %v", tpl.HasFallback(0), tpl.HasFallback(1))
	}
	if got := tpl.FallbackGroups(); !slices.Equal(got, []string{"Spring"}) {
		t.Errorf("FallbackGroups = %q", got)
	}
	tests := []struct {
		name                string
		v                   *Values
		subject, html, text string
	}{
		{"codes", &Values{NewCodes: []string{"S-1", "G-1"}, LastCodes: []string{"W-0"}},
			"S-1", "<b>S-1</b>", "S-1 G-1 [W-0]"},
		{"exhausted: fallback, code ignored", &Values{NewCodes: []string{"IGNORED", "G-1"}, UseFallback: []bool{true, false}},
			"Our offer", "<b>Visit the shop for today’s &lt;offer&gt;</b>", "Visit the shop G-1 [no winter code]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := tpl.Render(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject || m.HTML != tt.html || m.Text != tt.text {
				t.Errorf("got %q / %q / %q\nwant %q / %q / %q", m.Subject, m.HTML, m.Text, tt.subject, tt.html, tt.text)
			}
		})
	}
	// A group without a fallback cannot be skipped.
	_, _, err := tpl.Render(nil, &Values{NewCodes: []string{"S-1", ""}, UseFallback: []bool{false, true}})
	if !errors.Is(err, ErrMissingCode) || !strings.Contains(err.Error(), `"Gifts"`) || !strings.Contains(err.Error(), "no fallback") {
		t.Errorf("UseFallback on a group without one: %v", err)
	}
}

// TestFallbackEverywhereOrNowhere checks that a group's macros all have a
// fallback or none do, and that the fallback is parsed strictly.
func TestFallbackEverywhereOrNowhere(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		msg  string // "" for valid
		col  int
	}{
		{"all", Source{Subject: "{{client.promocode('G', fallback='a')}}", Text: "{{client.promocode('g', fallback='b')}} {{client.last_promocode('G', fallback='c')}} {{client.promocode('G', fallback='').pin}}"}, "", 0},
		{"none", Source{Text: "{{client.promocode('G')}} {{client.promocode('G').pin}}"}, "", 0},
		{"repeat groups are separate", Source{Text: "{{client.last_promocode('W', fallback='x')}} {{client.last_promocode('W')}}"}, "", 0},
		{"one lacks it", Source{Text: "{{client.promocode('G', fallback='a')}} {{client.promocode('G')}}"}, "has a fallback but this one has none", 41},
		{"folded last_promocode lacks it", Source{Text: "{{client.promocode('G', fallback='a')}} {{client.last_promocode('G')}}"}, "has a fallback but this one has none", 41},
		{"column lacks it", Source{Text: "{{client.promocode('G', fallback='a')}} {{client.promocode('G').pin}}"}, "fallback='…').pin", 41},
		{"attr takes none", Source{Text: "{{client.attr('x', fallback='a')}}"}, "takes a single attribute name", 1},
		{"unknown keyword", Source{Text: "{{client.promocode('G', default='a')}}"}, "optionally fallback='TEXT'", 1},
		{"double quotes", Source{Text: `{{client.promocode('G', fallback="a")}}`}, "fallback text is in double quotes", 1},
		{"no equals", Source{Text: "{{client.promocode('G', fallback 'a')}}"}, "expected =", 1},
		{"two fallbacks", Source{Text: "{{client.promocode('G', fallback='a', fallback='b')}}"}, "takes a single group name", 1},
		{"uppercase keyword", Source{Text: "{{client.promocode('G', Fallback='a')}}"}, "lowercase", 1},
		{"line break", Source{Text: "{{client.promocode('G', fallback='a\nb')}}"}, "no closing single quote", 1},
		{"too long", Source{Text: "{{client.promocode('G', fallback='" + strings.Repeat("é", 1001) + "')}}"}, "longer than 1000", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.src)
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if p := ve.Problems[0]; !strings.Contains(p.Message+p.Fix, tt.msg) || p.Column != tt.col || p.Err != ErrSyntax {
				t.Errorf("problem %v, want %q at column %d", p, tt.msg, tt.col)
			}
		})
	}
}

func TestColumns(t *testing.T) {
	tpl := mustParse(t, Source{
		Subject: "PIN {{client.promocode('Store').pin}}",
		HTML:    "<p>{{client.promocode('store')}} / {{ client.promocode('Store') . pin }} / {{client.promocode('Store').Barcode_2}}</p>",
		Text:    "{{client.promocode('Web')}}",
	})
	if got := tpl.NewCodeGroups(); !slices.Equal(got, []string{"Store", "Web"}) {
		t.Fatalf("NewCodeGroups = %q", got)
	}
	if got := tpl.Columns(0); !slices.Equal(got, []string{"pin", "Barcode_2"}) {
		t.Errorf("Columns(0) = %q", got)
	}
	if tpl.Columns(1) != nil || tpl.Columns(2) != nil {
		t.Errorf("Columns(1) = %q", tpl.Columns(1))
	}
	v := &Values{NewCodes: []string{"ST-1", "W-1"}, Columns: []map[string]string{{"pin": "0042", "Barcode_2": "<x>"}}}
	m, _, err := tpl.Render(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "PIN 0042" || m.HTML != "<p>ST-1 / 0042 / &lt;x&gt;</p>" || m.Text != "W-1" {
		t.Errorf("rendered %q / %q / %q", m.Subject, m.HTML, m.Text)
	}
	// An empty column renders empty; an absent one is refused.
	v.Columns[0]["Barcode_2"] = ""
	if m, _, err = tpl.Render(nil, v); err != nil || m.HTML != "<p>ST-1 / 0042 / </p>" {
		t.Errorf("empty column: %q, %v", m.HTML, err)
	}
	for _, cols := range [][]map[string]string{nil, {{"pin": "1"}}, {{"PIN": "1", "Barcode_2": ""}}} {
		v.Columns = cols
		if _, _, err := tpl.Render(nil, v); !errors.Is(err, ErrMissingColumn) || !strings.Contains(err.Error(), `group "Store"`) {
			t.Errorf("columns %v: err = %v, want ErrMissingColumn", cols, err)
		}
	}
	// Preview fills columns with placeholders.
	if got := string(tpl.AppendSubject(nil, tpl.PreviewValues(nil))); got != "PIN PREVIEW-Store.pin" {
		t.Errorf("preview = %q", got)
	}
	for _, bad := range []struct{ in, msg string }{
		{"{{client.last_promocode('G').code}}", "not an extra column"},
		{"{{client.email.pin}}", "has no columns"},
		{"{{client.promocode('G').}}", "expected a column name"},
		{"{{client.promocode('G').9}}", "expected a column name"},
		{"{{client.promocode('G').code}}", "not an extra column"},
		{"{{client.promocode.pin}}", "needs a group name"},
	} {
		if _, err := Parse(Source{Text: bad.in}); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("Parse(%q) = %v, want %q", bad.in, err, bad.msg)
		}
	}
}

// last_promocode('G').NAME inserts a column of the customer's last code of G (empty
// when none, or when the row lacks it); with promocode('G') in the same message it is
// a column of the new code, needed like promocode('G').NAME.
func TestLastPromocodeColumns(t *testing.T) {
	tpl := mustParse(t, Source{Text: "{{client.last_promocode('Store')}} PIN {{client.last_promocode('store').pin}} {{client.last_promocode('Store').pin | url}}"})
	if !slices.Equal(tpl.RepeatGroups(), []string{"Store"}) || !slices.Equal(tpl.LastColumns(0), []string{"pin"}) || tpl.LastColumns(1) != nil || len(tpl.NewCodeGroups()) != 0 {
		t.Fatalf("RepeatGroups %q LastColumns %q", tpl.RepeatGroups(), tpl.LastColumns(0))
	}
	v := &Values{LastCodes: []string{"ST-1"}, LastColumns: []map[string]string{{"pin": "00 42"}}}
	if m, _, err := tpl.Render(nil, v); err != nil || m.Text != "ST-1 PIN 00 42 00%2042" {
		t.Fatalf("rendered %q, %v", m.Text, err)
	}
	for _, v := range []*Values{{LastCodes: []string{""}}, {LastCodes: []string{"ST-1"}}} {
		if m, _, err := tpl.Render(nil, v); err != nil || strings.Contains(m.Text, "42") {
			t.Fatalf("no last code or no column: %q, %v", m.Text, err)
		}
	}
	if got := tpl.AppendText(nil, tpl.PreviewValues(nil)); string(got) != "PREVIEW-LAST-Store PIN PREVIEW-LAST-Store.pin PREVIEW-LAST-Store.pin" {
		t.Errorf("preview = %q", got)
	}
	// Beside promocode('G'), it is the new code's column, and required.
	both := mustParse(t, Source{Text: "{{client.promocode('G')}} {{client.last_promocode('G').pin}}"})
	if len(both.RepeatGroups()) != 0 || !slices.Equal(both.Columns(0), []string{"pin"}) {
		t.Fatalf("RepeatGroups %q Columns %q", both.RepeatGroups(), both.Columns(0))
	}
	if m, _, err := both.Render(nil, &Values{NewCodes: []string{"G-1"}, Columns: []map[string]string{{"pin": "7"}}}); err != nil || m.Text != "G-1 7" {
		t.Fatalf("rendered %q, %v", m.Text, err)
	}
	if _, _, err := both.Render(nil, &Values{NewCodes: []string{"G-1"}}); !errors.Is(err, ErrMissingColumn) {
		t.Fatalf("missing column of the new code: %v", err)
	}
}
