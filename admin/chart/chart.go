// Package chart draws the admin pages' charts as SVG on the server: line charts of daily
// series, with an optional dashed forecast to a date past the last day. No script and
// no front-end build; each chart carries the scale it was drawn with (data-* attributes
// on the <svg>), so a test can read the drawn points back as figures.
package chart

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Series is one line: a value per date, nil where there is none (the line breaks).
type Series struct {
	// Key names the series in the markup (data-series, the class series-KEY).
	Key string
	// Label is what the legend says.
	Label  string
	Values []*float64
}

// Forecast is a dashed segment from the last value of the first series to zero at
// Days days after the last date (fractional), labelled Label ("runs dry 2026-12-24").
type Forecast struct {
	Days  float64
	Label string
}

// Line is a line chart over consecutive dates.
type Line struct {
	// ID is the <svg>'s id; Title its accessible name.
	ID, Title string
	// Dates label the x steps (YYYY-MM-DD), one per value of each series.
	Dates  []string
	Series []Series
	// Forecast, when set, extends the x axis to where it reaches zero (at most
	// MaxForecastDays past the last date, where it is cut).
	Forecast *Forecast
	// Format writes a y value for the axis (default: a whole number).
	Format func(float64) string
}

// MaxForecastDays bounds how far past the period a forecast is drawn.
const MaxForecastDays = 60

// The drawing's geometry in SVG units (it scales to its container's width).
const (
	width, height            = 640, 220
	left, right, top, bottom = 64, 16, 12, 30
	plotW, plotH             = width - left - right, height - top - bottom
)

// Max is the largest value of every series (0 when there is none).
func (c *Line) Max() float64 {
	m := 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if v != nil && *v > m {
				m = *v
			}
		}
	}
	return m
}

// niceCeil is the smallest of 1, 2, 2.5, 5 × 10^k at or above v (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// SVG draws the chart.
func (c *Line) SVG() template.HTML {
	format := c.Format
	if format == nil {
		format = func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	}
	n := len(c.Dates)
	extra := 0.0
	if c.Forecast != nil && n > 0 {
		extra = math.Min(math.Max(c.Forecast.Days, 0), MaxForecastDays)
	}
	span := float64(n-1) + extra
	if span <= 0 {
		span = 1
	}
	step := float64(plotW) / span
	ymax := niceCeil(c.Max())
	x := func(i float64) float64 { return left + i*step }
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" data-ymax="%s" data-left="%d" data-top="%d" data-height="%d" data-step="%s" preserveAspectRatio="xMinYMin meet">`,
		html.EscapeString(c.ID), width, height, html.EscapeString(c.Title), num(ymax), left, top, plotH, strconv.FormatFloat(step, 'f', -1, 64))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(c.Title))
	// Grid and y labels at 0, half and the top.
	for _, f := range []float64{0, 0.5, 1} {
		yy := y(f * ymax)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, left, num(yy), width-right, num(yy))
		fmt.Fprintf(&b, `<text class="ylabel" x="%d" y="%s" text-anchor="end">%s</text>`, left-6, num(yy+4), html.EscapeString(format(f*ymax)))
	}
	// x labels: first, middle and last date.
	if n > 0 {
		for _, i := range []int{0, (n - 1) / 2, n - 1} {
			anchor := "middle"
			switch i {
			case 0:
				anchor = "start"
			case n - 1:
				if extra == 0 {
					anchor = "end"
				}
			}
			fmt.Fprintf(&b, `<text class="xlabel" x="%s" y="%d" text-anchor="%s">%s</text>`, num(x(float64(i))), height-8, anchor, html.EscapeString(c.Dates[i]))
		}
	}
	for si, s := range c.Series {
		var pts []string
		from := 0
		flush := func() {
			if len(pts) == 0 {
				return
			}
			fmt.Fprintf(&b, `<polyline class="series series-%d" data-series="%s" data-from="%d" points="%s"/>`,
				si, html.EscapeString(s.Key), from, strings.Join(pts, " "))
			if len(pts) == 1 {
				p := strings.Split(pts[0], ",")
				fmt.Fprintf(&b, `<circle class="series-%d" cx="%s" cy="%s" r="2.5"/>`, si, p[0], p[1])
			}
			pts = nil
		}
		for i, v := range s.Values {
			if v == nil {
				flush()
				continue
			}
			if len(pts) == 0 {
				from = i
			}
			pts = append(pts, num(x(float64(i)))+","+num(y(*v)))
		}
		flush()
	}
	if f := c.Forecast; f != nil && n > 0 && len(c.Series) > 0 {
		last := n - 1
		if v := c.Series[0].Values[last]; v != nil && f.Days > 0 {
			end, endV := float64(last)+f.Days, 0.0
			if f.Days > extra {
				// Cut at the axis' end, on the same straight line.
				end, endV = float64(last)+extra, *v*(1-extra/f.Days)
			}
			fmt.Fprintf(&b, `<polyline class="forecast" data-series="forecast" points="%s,%s %s,%s"/>`,
				num(x(float64(last))), num(y(*v)), num(x(end)), num(y(endV)))
			fmt.Fprintf(&b, `<text class="flabel" x="%s" y="%s" text-anchor="end">%s</text>`, num(x(end)), num(y(endV)-6), html.EscapeString(f.Label))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
