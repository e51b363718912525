package macros

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestMacroLimit(t *testing.T) {
	thousand := strings.Repeat("{{client.attr('n')}}", 1000)
	if _, err := Parse(Source{HTML: thousand}); err != nil {
		t.Fatalf("1,000 macros: %v", err)
	}
	tests := []struct {
		name      string
		src       Source
		lim       Limits
		part      Part
		line, col int
	}{
		{"1,001 in one part", Source{HTML: thousand + "\n{{client.id}}"}, Limits{}, PartHTML, 2, 1},
		{"counted across parts", Source{Subject: "{{client.id}}", HTML: thousand}, Limits{}, PartHTML, 1, 19981},
		{"malformed ones count", Source{Text: strings.Repeat("{{client.nope}}", 3)}, Limits{MaxMacros: 2}, PartText, 1, 31},
		{"single-brace ones count", Source{Text: "{client.id} {client.id}"}, Limits{MaxMacros: 1}, PartText, 1, 13},
		{"angles count", Source{Text: "<<client.id>><<client.id>>"}, Limits{MaxMacros: 1}, PartText, 1, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileLimits(context.Background(), tt.src, GroupList{}, tt.lim)
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrTemplateTooLarge) {
				t.Fatalf("err = %v, want ErrTemplateTooLarge", err)
			}
			var p *Problem
			for i := range ve.Problems {
				if ve.Problems[i].Err == ErrTemplateTooLarge {
					p = &ve.Problems[i]
				}
			}
			max := cmpInt(tt.lim.MaxMacros, DefaultMaxMacros)
			if p == nil || p.Part != tt.part || p.Line != tt.line || p.Column != tt.col ||
				!strings.Contains(p.Message, fmt.Sprintf("more than %d macros", max)) || p.Fix == "" {
				t.Errorf("limit problem %+v, want at %s %d:%d", p, tt.part, tt.line, tt.col)
			}
			if len(ve.Problems) > max+1 {
				t.Errorf("%d problems for a limit of %d", len(ve.Problems), max)
			}
		})
	}
	if _, err := ParseLimits(Source{HTML: thousand + thousand}, Limits{MaxMacros: -1}); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

func cmpInt(a, def int) int {
	if a == 0 {
		return def
	}
	return a
}

func TestTemplateSizeLimit(t *testing.T) {
	_, err := ParseLimits(Source{Subject: "s", HTML: strings.Repeat("x", 100), Text: "t"}, Limits{MaxMessageBytes: 101})
	if !errors.Is(err, ErrTemplateTooLarge) || !strings.Contains(err.Error(), "the template is 102 bytes, more than a message may have (101)") {
		t.Errorf("err = %v", err)
	}
	if _, err := ParseLimits(Source{HTML: strings.Repeat("x", 101)}, Limits{MaxMessageBytes: 101}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

// TestRenderedSizeLimit is issue 20.5: 1,000 attr macros over a 64 KiB
// attribute would render 64 MiB; Render refuses past 1 MiB and allocates
// about that much, not 64 MiB.
func TestRenderedSizeLimit(t *testing.T) {
	tpl := mustParse(t, Source{Subject: "Hi", HTML: strings.Repeat("<p>{{client.attr('n')}}</p>\n", 1000)})
	v := &Values{Customer: Customer{Attributes: map[string]string{"n": strings.Repeat("<", 64<<10)}}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, buf, err := tpl.Render(nil, v)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "html part") || !strings.Contains(err.Error(), "1048576 bytes") {
		t.Fatalf("err = %v, want ErrMessageTooLarge naming the part and the limit", err)
	}
	if m != (Message{}) || len(buf) != 0 {
		t.Errorf("a refused message returned %d bytes", len(buf))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Render allocated %d bytes to refuse the message, want a few MiB at most", alloc)
	}

	// The limit counts subject, HTML and text together, and escaping.
	tpl = mustParse(t, Source{Subject: "{{client.first_name}}", HTML: "{{client.first_name}}", Text: "{{client.first_name}}"})
	tpl.maxBytes = 30
	for _, tt := range []struct {
		name string
		ok   bool
	}{{"0123456789", true}, {"01234567890", false}, {"<<<<<", true}, {"<<<<<<", false}} {
		_, _, err := tpl.Render(nil, &Values{Customer: Customer{FirstName: tt.name}})
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrMessageTooLarge) {
			t.Errorf("first name %q: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}

	// Values other than attributes are bounded too: columns, fallbacks, images.
	tpl, err = ParseLimits(Source{HTML: "{{client.promocode('G').pin}} {{client.promocode('G') | qr}}"}, Limits{MaxMessageBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tpl.Render(nil, &Values{NewCodes: []string{"C"}, Columns: []map[string]string{{"pin": strings.Repeat("9", 999)}}}); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("long column: %v", err)
	}
	if _, _, err := tpl.Render(nil, &Values{NewCodes: []string{strings.Repeat("Q", 400)}, Columns: []map[string]string{{"pin": "1"}}}); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("large QR image: %v", err)
	}
}

// TestRenderReusesBuffer checks that Render renders what Append* render and
// reuses its buffer.
func TestRenderReusesBuffer(t *testing.T) {
	tpl := mustParse(t, Source{Subject: "S {{client.first_name}}", HTML: "<b>{{client.promocode('G')}}</b>", Text: "T {{client.email}}"})
	v := testValues(tpl)
	m, buf, err := tpl.Render(make([]byte, 0, 256), v)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{Subject: string(tpl.AppendSubject(nil, v)), HTML: string(tpl.AppendHTML(nil, v)), Text: string(tpl.AppendText(nil, v))}
	if m != want || cap(buf) != 256 {
		t.Errorf("Render = %+v (cap %d), want %+v", m, cap(buf), want)
	}
	if _, _, err := tpl.Render(buf, &Values{}); !errors.Is(err, ErrMissingCode) {
		t.Errorf("Render without a code: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { m, buf, _ = tpl.Render(buf, v) }); n > 3 {
		t.Errorf("Render allocates %v times, want the 3 strings only", n)
	}
}
