package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/qr"
)

// Issue 21 items 7 and 9 end to end. Validate answers the url/href warnings with
// their stable code, part, line and column (and none once | url is written); a mailing
// through SMTP whose link carries ?promo={{client.promocode('G') | url}} delivers the
// code percent-encoded, so the link gives the shop back the exact code; | qr and
// | barcode('code128') deliver PNG data URIs that decode as PNGs of the drawn size
// whose modules are the code's (compared with the library's own encoding of it).
func TestCodeLinksAndImagesEndToEnd(t *testing.T) {
	s := newSending(t)
	s.customers(2)
	if status, body := s.json("POST", "/v1/groups", `{"name":"Spring"}`); status != 201 {
		t.Fatalf("group: %d %v", status, body)
	}
	codes := []string{"SPR&NG+1/2 %A", "SPR#NG?2=ok"}
	if status, body := s.do("POST", "/v1/groups/1/codes", "text/plain", strings.NewReader(strings.Join(codes, "\n")+"\n")); status != 201 || body["accepted"] != 2.0 {
		t.Fatalf("codes: %d %v", status, body)
	}

	// Validate: a code in an href without | url is a warning with a stable code.
	bare := "<p>Hi</p>\n<a href=\"https://shop.example/?promo={{client.promocode('Spring')}}\">Shop</a>"
	status, body := s.json("POST", "/v1/templates/validate", fmt.Sprintf(`{"html":%q}`, bare))
	warnings, _ := body["warnings"].([]any)
	if status != 200 || body["valid"] != true || len(warnings) != 1 {
		t.Fatalf("validate without | url: %d %v", status, body)
	}
	w := warnings[0].(map[string]any)
	if w["code"] != "url_not_encoded" || w["part"] != "html" || w["line"] != 2.0 || w["column"] != 38.0 ||
		!strings.Contains(fmt.Sprint(w["fix"]), "| url") {
		t.Fatalf("warning: %v", w)
	}
	encoded := "<p>Hi</p>\n<a href=\"https://shop.example/?promo={{client.promocode('Spring') | url}}\">Shop</a>"
	status, body = s.json("POST", "/v1/templates/validate", fmt.Sprintf(`{"html":%q}`, encoded))
	if warnings, ok := body["warnings"].([]any); status != 200 || !ok || len(warnings) != 0 {
		t.Fatalf("validate with | url: %d %v", status, body)
	}
	// A template with a problem answers its warnings beside the problems.
	status, body = s.json("POST", "/v1/templates/validate", fmt.Sprintf(`{"html":%q}`, bare+"{{client.promocode('Nope')}}"))
	e, _ := body["error"].(map[string]any)
	if status != 400 || errCode(body) != "invalid_template" || len(e["warnings"].([]any)) != 1 ||
		e["problems"].([]any)[0].(map[string]any)["code"] != "unknown_group" {
		t.Fatalf("validate with a problem: %d %v", status, body)
	}

	htmlTmpl := encoded + "\n<p>{{client.promocode('Spring') | qr}}</p>\n<p>{{client.promocode('Spring') | barcode('code128')}}</p>"
	path := s.mailing(2, fmt.Sprintf(`"html":%q,"text":"Code: {{client.promocode('Spring')}}"`, htmlTmpl))
	if m := s.run(path); m["status"] != "finished" || m["progress"].(map[string]any)["sent"] != 2.0 {
		t.Fatalf("mailing: %v", m)
	}
	delivered := s.parts()
	if len(delivered) != 2 {
		t.Fatalf("%d messages, want 2", len(delivered))
	}
	hrefRe := regexp.MustCompile(`href="([^"]*)"`)
	imgRe := regexp.MustCompile(`<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)" width="(\d+)" height="(\d+)">`)
	seen := map[string]bool{}
	for to, p := range delivered {
		code := strings.TrimPrefix(p[0], "Code: ")
		if !strings.HasPrefix(p[0], "Code: ") || (code != codes[0] && code != codes[1]) || seen[code] {
			t.Fatalf("text part to %s: %q", to, p[0])
		}
		seen[code] = true
		hm := hrefRe.FindStringSubmatch(p[1])
		if hm == nil {
			t.Fatalf("no link in the HTML to %s:\n%s", to, p[1])
		}
		href := html.UnescapeString(hm[1])
		if want := "https://shop.example/?promo=" + url.QueryEscape(code); strings.ReplaceAll(want, "+", "%20") != href {
			t.Fatalf("link to %s: %q, want the code percent-encoded %q", to, href, want)
		}
		u, err := url.Parse(href)
		if err != nil || u.Query().Get("promo") != code || len(u.Query()) != 1 {
			t.Fatalf("the shop reads promo=%q from %q (%v), want %q", u.Query().Get("promo"), href, err, code)
		}
		imgs := imgRe.FindAllStringSubmatch(p[1], -1)
		if len(imgs) != 2 {
			t.Fatalf("%d images in the HTML to %s, want 2:\n%s", len(imgs), to, p[1])
		}
		qrWant, err := qr.Encode(code, qr.M, qr.Auto)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, "qr", imgs[0], code, qrWant, 6, 4, 0)
		barWant, err := code128.Encode(code)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, "code128", imgs[1], code, barWant, 2, 10, 80)
	}
}

// checkImage decodes an <img> data URI (m: the match of its base64, alt, width and
// height) and checks that it is a PNG of the declared size, the drawing of want at
// module pixels per module with a quiet zone of quiet modules (height: a 1D code's
// bar height), dark exactly where want is.
func checkImage(t *testing.T, what string, m []string, code string, want barcode.Barcode, module, quiet, height int) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatalf("%s: data URI is not base64: %v", what, err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", what, err)
	}
	if html.UnescapeString(m[2]) != code {
		t.Fatalf("%s: alt %q, want the code %q", what, m[2], code)
	}
	b := want.Bounds()
	w := (b.Dx() + 2*quiet) * module
	h := height
	if want.Metadata().Dimensions == 2 {
		h = (b.Dy() + 2*quiet) * module
	}
	if img.Bounds() != image.Rect(0, 0, w, h) || m[3] != strconv.Itoa(w) || m[4] != strconv.Itoa(h) {
		t.Fatalf("%s: %v, width=%s height=%s; want %dx%d", what, img.Bounds(), m[3], m[4], w, h)
	}
	isDark := func(c color.Color) bool {
		r, g, bl, _ := c.RGBA()
		return r+g+bl < 3*0x8000
	}
	rows := 1
	if want.Metadata().Dimensions == 2 {
		rows = b.Dy()
	}
	for my := -quiet; my < rows+quiet; my++ {
		for mx := -quiet; mx < b.Dx()+quiet; mx++ {
			px, py := (mx+quiet)*module+module/2, (my+quiet)*module+module/2
			if want.Metadata().Dimensions == 1 {
				if my != 0 {
					continue
				}
				py = h / 2
			}
			inside := mx >= 0 && mx < b.Dx() && my >= 0 && my < rows
			wantDark := inside && isDark(want.At(b.Min.X+mx, b.Min.Y+my))
			if got := isDark(img.At(px, py)); got != wantDark {
				t.Fatalf("%s of %q: module (%d,%d) dark=%v, want %v", what, code, mx, my, got, wantDark)
			}
		}
	}
}
