package macros

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var imgRE = regexp.MustCompile(`^<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"<>]*)" width="(\d+)" height="(\d+)">$`)

// decodeImg checks an <img> element rendered by the engine and returns its
// picture and alt text.
func decodeImg(t *testing.T, s string) (image.Image, string) {
	t.Helper()
	m := imgRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("not an inline PNG image: %.120q", s)
	}
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := strconv.Atoi(m[3])
	h, _ := strconv.Atoi(m[4])
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("image is %v, attributes say %dx%d", b, w, h)
	}
	return img, m[2]
}

func isDark(img image.Image, x, y int) bool { return dark(img.At(x, y)) }

func TestQRCode(t *testing.T) {
	tpl := mustParse(t, Source{Subject: "{{client.promocode('G') | qr}}", HTML: "{{client.promocode('G') | qr}}", Text: "{{client.promocode('G') | qr}}"})
	v := &Values{NewCodes: []string{`SPR-7KQ2&"<>`}}
	m, _, err := tpl.Render(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != v.NewCodes[0] || m.Text != v.NewCodes[0] {
		t.Errorf("subject %q, text %q: want the plain code", m.Subject, m.Text)
	}
	img, alt := decodeImg(t, m.HTML)
	if alt != "SPR-7KQ2&amp;&#34;&lt;&gt;" {
		t.Errorf("alt = %q", alt)
	}
	// A version-1 or -2 QR code (21 or 25 modules) in a 4-module quiet zone,
	// 4 pixels a module: square, white margin, dark finder patterns in three
	// corners and a light one in the fourth.
	b := img.Bounds()
	n := b.Dx()/qrModule - 2*qrQuiet
	if b.Dx() != b.Dy() || n != 21 && n != 25 {
		t.Fatalf("QR image %v: %d modules", b, n)
	}
	px := func(mx, my int) bool { return isDark(img, (qrQuiet+mx)*qrModule+1, (qrQuiet+my)*qrModule+1) }
	for _, c := range [][2]int{{0, 0}, {6, 0}, {0, 6}, {n - 1, 0}, {n - 7, 6}, {0, n - 1}, {6, n - 7}, {2, 2}, {n - 3, 2}} {
		if !px(c[0], c[1]) {
			t.Errorf("module %v of a finder pattern is light", c)
		}
	}
	for _, c := range [][2]int{{1, 1}, {5, 5}, {7, 7}, {n - 2, 1}} {
		if px(c[0], c[1]) {
			t.Errorf("module %v (finder ring or separator) is dark", c)
		}
	}
	for x := 0; x < b.Dx(); x++ {
		if isDark(img, x, 0) || isDark(img, x, b.Dy()-1) {
			t.Fatalf("quiet zone is dark at x=%d", x)
		}
	}
}

func TestBarcodes(t *testing.T) {
	tests := []struct {
		format, code string
		modules      int // width in modules without the quiet zone; 0 for not drawable
	}{
		{"code128", "SPR-7KQ2", 0}, // width depends on the encoding; checked > 0 below
		{"ean13", "400638133393", 95},
		{"ean13", "4006381333931", 95},
		{"ean8", "9638507", 67},
		{"code39", "AB-12", 0},
		{"ean13", "4006381333932", -1}, // bad check digit
		{"ean13", "40063813339", -1},   // too short
		{"ean8", "ABCDEFG", -1},
		{"code128", "Grüße", -1}, // not ASCII
		{"code128", strings.Repeat("X", 200), -1},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.code[:min(len(tt.code), 20)], func(t *testing.T) {
			tpl := mustParse(t, Source{HTML: "{{client.promocode('G') | barcode('" + tt.format + "')}}"})
			got := string(tpl.AppendHTML(nil, &Values{NewCodes: []string{tt.code}}))
			if tt.modules < 0 {
				if got != tt.code {
					t.Errorf("undrawable code rendered %.80q, want the plain code", got)
				}
				return
			}
			img, alt := decodeImg(t, got)
			b := img.Bounds()
			if alt != tt.code || b.Dy() != barHeight {
				t.Errorf("alt %q, height %d", alt, b.Dy())
			}
			modules := b.Dx()/barModule - 2*barQuiet
			if tt.modules > 0 && modules != tt.modules || modules < 20 {
				t.Errorf("%d modules, want %d", modules, tt.modules)
			}
			first, last := barQuiet*barModule, (barQuiet+modules)*barModule-1
			if isDark(img, first-1, 10) || !isDark(img, first, 10) || !isDark(img, last, 10) || isDark(img, last+1, 10) {
				t.Errorf("the bars do not start and end at the quiet zone")
			}
		})
	}
}

func TestImageDataURIAndFallback(t *testing.T) {
	tpl := mustParse(t, Source{HTML: `<img src="{{client.promocode('G', fallback='Ask in store') | qr}}" alt="your code"><p>{{client.promocode('G', fallback='Ask in store') | barcode('ean13')}}</p>`})
	v := &Values{NewCodes: []string{"400638133393"}}
	got := string(tpl.AppendHTML(nil, v))
	if !strings.HasPrefix(got, `<img src="data:image/png;base64,`) || !strings.Contains(got, `" alt="your code"><p><img src="data:image/png;base64,`) {
		t.Errorf("rendered %.200q", got)
	}
	v.UseFallback = []bool{true}
	if got := string(tpl.AppendHTML(nil, v)); got != `<img src="Ask in store" alt="your code"><p>Ask in store</p>` {
		t.Errorf("with the fallback: %q", got)
	}
	for _, bad := range []string{"{{client.id | barcode}}", "{{client.id | barcode('upc')}}", "{{client.id | barcode(code128)}}", "{{client.id | qr('x')}}"} {
		if _, err := Parse(Source{Text: bad}); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
