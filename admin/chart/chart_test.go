package chart

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func v(f float64) *float64 { return &f }

// TestPointsReadBack: the drawn points, read back through the scale the <svg> carries,
// are the values; a nil breaks the line; the forecast reaches zero at its date.
func TestPointsReadBack(t *testing.T) {
	c := Line{ID: "c", Title: "t", Dates: []string{"d0", "d1", "d2", "d3", "d4"},
		Series:   []Series{{Key: "a", Values: []*float64{v(3), v(7), nil, v(10), v(4)}}},
		Forecast: &Forecast{Days: 2, Label: "runs dry d6"}}
	svg := string(c.SVG())
	attr := func(name string) float64 {
		m := regexp.MustCompile(name + `="([0-9.]+)"`).FindStringSubmatch(svg)
		f, _ := strconv.ParseFloat(m[1], 64)
		return f
	}
	ymax, l, top, h, step := attr("data-ymax"), attr("data-left"), attr("data-top"), attr("data-height"), attr("data-step")
	if ymax != 10 {
		t.Fatalf("ymax %v", ymax)
	}
	got := map[int]float64{}
	lines := regexp.MustCompile(`data-series="a" data-from="(\d+)" points="([^"]+)"`).FindAllStringSubmatch(svg, -1)
	if len(lines) != 2 {
		t.Fatalf("%d polylines, want 2 (the nil breaks the line)", len(lines))
	}
	for _, m := range lines {
		for _, p := range strings.Fields(m[2]) {
			xy := strings.Split(p, ",")
			x, _ := strconv.ParseFloat(xy[0], 64)
			y, _ := strconv.ParseFloat(xy[1], 64)
			got[int((x-l)/step+0.5)] = ymax * (top + h - y) / h
		}
	}
	want := map[int]float64{0: 3, 1: 7, 3: 10, 4: 4}
	for i, w := range want {
		if d := got[i] - w; d > 0.01 || d < -0.01 {
			t.Fatalf("point %d reads %v, want %v (all %v)", i, got[i], w, got)
		}
	}
	f := regexp.MustCompile(`data-series="forecast" points="[0-9.,]+ ([0-9.]+),([0-9.]+)"`).FindStringSubmatch(svg)
	fx, _ := strconv.ParseFloat(f[1], 64)
	fy, _ := strconv.ParseFloat(f[2], 64)
	if day := (fx - l) / step; day < 5.99 || day > 6.01 || fy != top+h {
		t.Fatalf("forecast ends at day %v, y %v; want day 6 at zero", day, fy)
	}
}
