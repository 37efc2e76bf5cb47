package server

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hotlane/hotlane/model"
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

// Contribution charts: one signal's contribution to the candidate's logit
// across its values, the shape the model learned for it.
const (
	colorUp   = "#0b5cad" // raises the score
	colorDown = "#b45309" // lowers it
	colorZero = "#57606a"
	// maxContribBars caps the bars of a category chart; the table beside
	// it lists them all.
	maxContribBars = 12
)

// contribChart draws a contribution curve: a line over a number's values
// (its missing value as a point of its own at the right), or one bar per
// category or boolean value (missing last).
func contribChart(c model.ContribCurve) template.HTML {
	if c.Kind == model.ContribNumber {
		return contribLine(c)
	}
	return contribBars(c)
}

func contribLine(c model.ContribCurve) template.HTML {
	const w, h, left, top, bottom = 340.0, 250.0, 48.0, 12.0, 58.0
	right := 12.0
	if c.Missing != nil {
		right = 74 // a gutter for the missing point
	}
	if len(c.Grid) == 0 {
		return ""
	}
	tf := func(v float64) float64 { return v }
	if c.LogScale {
		tf = func(v float64) float64 { return math.Copysign(math.Log1p(math.Abs(v)), v) }
	}
	xLo, xHi := tf(c.Grid[0].Value), tf(c.Grid[len(c.Grid)-1].Value)
	if !(xHi > xLo) {
		xHi = xLo + 1
	}
	yLo, yHi := 0.0, 0.0
	for _, p := range c.Grid {
		yLo, yHi = min(yLo, p.Contribution), max(yHi, p.Contribution)
	}
	if c.Missing != nil {
		yLo, yHi = min(yLo, c.Missing.Contribution), max(yHi, c.Missing.Contribution)
	}
	yt := niceTicks(yLo, yHi, 4)
	yLo, yHi = yt[0], yt[len(yt)-1]
	x := func(v float64) float64 { return left + (tf(v)-xLo)/(xHi-xLo)*(w-left-right) }
	y := func(v float64) float64 { return top + (yHi-v)/(yHi-yLo)*(h-top-bottom) }
	xLabel := c.Signal
	if c.LogScale {
		xLabel += " (log scale)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h,
		template.HTMLEscapeString("Contribution of "+c.Signal+" to the score across its values"))
	for _, v := range yt {
		stroke := "#e5e7eb"
		if v == 0 {
			stroke = colorZero
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, left, y(v), w-right, y(v), stroke)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#57606a" text-anchor="end">%s</text>`, left-4, y(v)+3, signedTick(v))
	}
	for _, v := range valueTicks(c.Grid[0].Value, c.Grid[len(c.Grid)-1].Value, c.LogScale) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, x(v), y(yHi), x(v), y(yLo))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#57606a" text-anchor="middle">%s</text>`, x(v), y(yLo)+13, fmtNum(v))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" fill="#24292f" text-anchor="middle">%s</text>`,
		(left+w-right)/2, y(yLo)+27, template.HTMLEscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="11" y="%.1f" font-size="11" fill="#24292f" text-anchor="middle" transform="rotate(-90 11 %.1f)">contribution (log-odds)</text>`,
		(top+h-bottom)/2, (top+h-bottom)/2)
	pts := make([]string, 0, len(c.Grid))
	for _, p := range c.Grid {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Value), y(p.Contribution)))
	}
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), colorCandidate)
	for _, p := range c.Grid {
		fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="2" fill="%s"><title>%s</title></circle>`, x(p.Value), y(p.Contribution), colorCandidate,
			template.HTMLEscapeString(fmt.Sprintf("%s %s: %s", c.Signal, fmtNum(p.Value), signedContrib(p.Contribution))))
	}
	if m := c.Missing; m != nil {
		gx := w - 26.0
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, w-right+6, y(yHi), w-right+6, y(yLo))
		fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="4" fill="#fff" stroke="%s" stroke-width="2"><title>%s</title></circle>`, gx, y(m.Contribution), colorCandidate,
			template.HTMLEscapeString(c.Signal+" missing: "+signedContrib(m.Contribution)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#57606a" text-anchor="middle">missing</text>`, gx, y(yLo)+13)
	}
	legend(&b, []chartSeries{{Name: "candidate model", Color: colorCandidate}}, left, h-10)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped text only
}

func contribBars(c model.ContribCurve) template.HTML {
	type bar struct {
		label string
		v     float64
	}
	var bars []bar
	for _, cb := range c.Bars {
		if len(bars) == maxContribBars {
			break
		}
		if cb.Other && cb.Share != nil && *cb.Share == 0 && cb.Contribution == 0 {
			// A bucket no chat fell in and the model learned nothing
			// for: the table still lists it.
			continue
		}
		bars = append(bars, bar{contribLabel(cb), cb.Contribution})
	}
	if c.Kind == model.ContribCategory {
		// Highest first, so the chart reads as a ranking; the other
		// bucket keeps its place at the end.
		n := len(bars)
		if n > 0 && bars[n-1].label == contribLabel(model.ContribBar{Other: true}) {
			n--
		}
		slices.SortStableFunc(bars[:n], func(a, b bar) int { return cmp.Compare(b.v, a.v) })
	}
	if c.Missing != nil {
		bars = append(bars, bar{"missing", c.Missing.Contribution})
	}
	if len(bars) == 0 {
		return ""
	}
	// pad leaves room for the value written beside a bar at either end.
	const w, left, right, pad, top, bottom, rowH = 340.0, 100.0, 40.0, 36.0, 8.0, 58.0, 24.0
	h := top + rowH*float64(len(bars)) + bottom
	lo, hi := 0.0, 0.0
	for _, br := range bars {
		lo, hi = min(lo, br.v), max(hi, br.v)
	}
	xt := niceTicks(lo, hi, 4)
	lo, hi = xt[0], xt[len(xt)-1]
	l := left
	if lo < 0 {
		l += pad
	}
	x := func(v float64) float64 { return l + (v-lo)/(hi-lo)*(w-l-right) }
	plotBottom := top + rowH*float64(len(bars))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h,
		template.HTMLEscapeString("Contribution of "+c.Signal+" to the score for each value"))
	for _, v := range xt {
		stroke := "#e5e7eb"
		if v == 0 {
			stroke = colorZero
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x(v), top, x(v), plotBottom, stroke)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#57606a" text-anchor="middle">%s</text>`, x(v), plotBottom+13, signedTick(v))
	}
	for i, br := range bars {
		cy := top + rowH*(float64(i)+0.5)
		x0, x1 := x(0), x(br.v)
		color := colorUp
		if br.v < 0 {
			color, x0, x1 = colorDown, x1, x0
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" fill="#24292f" text-anchor="end">%s</text>`, left-6, cy+4, template.HTMLEscapeString(shorten(br.label, 16)))
		fmt.Fprintf(&b, `<rect class="pt" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
			x0, cy-rowH*0.32, max(x1-x0, 1), rowH*0.64, color, template.HTMLEscapeString(fmt.Sprintf("%s %s: %s", c.Signal, br.label, signedContrib(br.v))))
		tx, anchor := x(br.v)+4, "start"
		if br.v < 0 {
			tx, anchor = x(br.v)-4, "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#24292f" text-anchor="%s">%s</text>`, tx, cy+3.5, anchor, signedContrib(br.v))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" fill="#24292f" text-anchor="middle">contribution to the score (log-odds)</text>`,
		(l+w-right)/2, plotBottom+27)
	legend(&b, []chartSeries{{Name: "raises the score", Color: colorUp}, {Name: "lowers it", Color: colorDown}}, 12, h-10)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped text only
}

// contribLabel names a bar as a lead reads it.
func contribLabel(b model.ContribBar) string {
	if b.Other {
		return "any other value"
	}
	return b.Category
}

// niceTicks are about n+1 round values from at or below lo to at or above
// hi, 1, 2 or 5 times a power of ten apart.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		lo, hi = lo-0.5, hi+0.5
	}
	step := niceCeil((hi - lo) / float64(n))
	var out []float64
	for k := math.Floor(lo / step); k <= math.Ceil(hi/step); k++ {
		v := k * step
		if v == 0 {
			v = 0 // no -0
		}
		out = append(out, v)
	}
	return out
}

// valueTicks are round values within [lo, hi] for a number's axis: powers
// of ten (and 0) on a log scale, round steps otherwise.
func valueTicks(lo, hi float64, logScale bool) []float64 {
	var out []float64
	if logScale && lo >= 0 {
		if lo == 0 {
			out = append(out, 0)
		}
		for p := 1.0; p <= hi; p *= 10 {
			if p >= lo {
				out = append(out, p)
			}
		}
		if len(out) <= 2 {
			for p := 3.0; p <= hi; p *= 10 {
				if p >= lo {
					out = append(out, p)
				}
			}
			slices.Sort(out)
		}
		return out
	}
	for _, v := range niceTicks(lo, hi, 4) {
		if v >= lo-1e-9*math.Abs(hi-lo) && v <= hi+1e-9*math.Abs(hi-lo) {
			out = append(out, v)
		}
	}
	return out
}

// fmtNum writes a signal's value for people: thousands grouped, a few
// significant digits for small values.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		s := strconv.FormatFloat(math.Round(a), 'f', 0, 64)
		var g strings.Builder
		if v < 0 {
			g.WriteByte('-')
		}
		for i, r := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				g.WriteByte(',')
			}
			g.WriteRune(r)
		}
		return g.String()
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	case a >= 1:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// signedContrib writes a contribution to the logit with its sign and two
// decimals.
func signedContrib(v float64) string {
	if math.Abs(v) < 0.005 {
		return "0.00"
	}
	return fmt.Sprintf("%+.2f", v)
}

// signedTick writes an axis value of the logit: +1, 0, -0.5.
func signedTick(v float64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%+.3g", v)
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
