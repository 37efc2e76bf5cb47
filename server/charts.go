package server

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Charts drawn on the server as SVG: axes with labels and units, a legend,
// a title on every point with its numbers, readable without JavaScript.
// Every chart on a page sits beside a table (or a details element) with
// the numbers behind it.

// chartSeries is one line of an xy chart.
type chartSeries struct {
	Name  string
	Color string
	Dash  bool
	X, Y  []float64
	Tips  []string // one per point, shown on hover
}

// Chart colours: the live model dashed grey-blue, the candidate solid blue.
const (
	colorLive      = "#6b7280"
	colorCandidate = "#0b5cad"
	colorVolume    = "#b45309"
)

// xyChart draws series on a square of [0, 1] by [0, 1], as the
// precision-recall curve and the calibration plot need; diagonal adds the
// line of perfect calibration.
func xyChart(label, xLabel, yLabel string, series []chartSeries, diagonal bool) template.HTML {
	const w, h, left, right, top, bottom = 340.0, 270.0, 44.0, 12.0, 12.0, 58.0
	x := func(v float64) float64 { return left + v*(w-left-right) }
	y := func(v float64) float64 { return top + (1-v)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(label))
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, x(0), y(f), x(1), y(f))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, x(f), y(0), x(f), y(1))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="#57606a" text-anchor="end">%.2g</text>`, left-4, y(f)+3, f)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="#57606a" text-anchor="middle">%.2g</text>`, x(f), y(0)+13, f)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#24292f" text-anchor="middle">%s</text>`, x(0.5), y(0)+27, template.HTMLEscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="11" y="%.1f" font-size="11" fill="#24292f" text-anchor="middle" transform="rotate(-90 11 %.1f)">%s</text>`,
		y(0.5), y(0.5), template.HTMLEscapeString(yLabel))
	if diagonal {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#9ca3af" stroke-dasharray="2 3"><title>perfect calibration</title></line>`, x(0), y(0), x(1), y(1))
	}
	for _, s := range series {
		pts := make([]string, 0, len(s.X))
		for i := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(clamp01(s.X[i])), y(clamp01(s.Y[i]))))
		}
		dash := ""
		if s.Dash {
			dash = ` stroke-dasharray="6 4"`
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.Join(pts, " "), s.Color, dash)
		}
		for i := range s.X {
			tip := ""
			if i < len(s.Tips) {
				tip = s.Tips[i]
			}
			fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s</title></circle>`,
				x(clamp01(s.X[i])), y(clamp01(s.Y[i])), s.Color, template.HTMLEscapeString(s.Name+": "+tip))
		}
	}
	legend(&b, series, left, h-14)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped text only
}

// legend writes one swatch and name per series along a line at (x, y).
func legend(b *strings.Builder, series []chartSeries, x, y float64) {
	for _, s := range series {
		dash := ""
		if s.Dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%.1f" font-size="11" fill="#24292f">%s</text>`,
			x, y-4, x+18, y-4, s.Color, dash, x+22, y, template.HTMLEscapeString(s.Name))
		x += 30 + 6.5*float64(len(s.Name))
	}
}

// weekBarsChart draws a count per week as bars (left axis, countUnit) and
// a rate per week as a line (right axis, 0 to 1), for alert volume and
// precision by week. A nil rate leaves a gap.
func weekBarsChart(label string, weeks []string, counts []int, countUnit string, rates []*float64, rateName string) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 220.0, 44.0, 44.0, 12.0, 48.0
	hi := 1
	for _, c := range counts {
		hi = max(hi, c)
	}
	hiF := niceCeil(float64(hi))
	n := len(weeks)
	slot := (w - left - right) / float64(max(n, 1))
	cx := func(i int) float64 { return left + slot*(float64(i)+0.5) }
	yc := func(v float64) float64 { return top + (1-v/hiF)*(h-top-bottom) }
	yr := func(v float64) float64 { return top + (1-v)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(label))
	for _, f := range []float64{0, 0.5, 1} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, left, yr(f), w-right, yr(f))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="%s" text-anchor="end">%g</text>`, left-4, yr(f)+3, colorVolume, f*hiF)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="%s">%.1f</text>`, w-right+4, yr(f)+3, colorCandidate, f)
	}
	for i, c := range counts {
		bh := float64(c) / hiF * (h - top - bottom)
		fmt.Fprintf(&b, `<rect class="pt" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.55"><title>%s: %d %s</title></rect>`,
			cx(i)-slot*0.3, yc(float64(c)), slot*0.6, bh, colorVolume, template.HTMLEscapeString(weeks[i]), c, template.HTMLEscapeString(countUnit))
	}
	var seg []string
	flush := func() {
		if len(seg) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(seg, " "), colorCandidate)
		}
		seg = seg[:0]
	}
	for i, r := range rates {
		if r == nil {
			flush()
			continue
		}
		seg = append(seg, fmt.Sprintf("%.1f,%.1f", cx(i), yr(*r)))
		fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s %.2f</title></circle>`,
			cx(i), yr(*r), colorCandidate, template.HTMLEscapeString(weeks[i]), template.HTMLEscapeString(rateName), *r)
	}
	flush()
	step := max(1, (n+7)/8)
	for i := 0; i < n; i += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="#57606a" text-anchor="middle">%s</text>`, cx(i), h-bottom+14, template.HTMLEscapeString(weeks[i]))
	}
	legend(&b, []chartSeries{{Name: countUnit + " (left axis)", Color: colorVolume}, {Name: rateName + " (right axis)", Color: colorCandidate}}, left, h-8)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped text only
}

func clamp01(v float64) float64 { return math.Min(1, math.Max(0, v)) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
