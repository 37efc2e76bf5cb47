package server

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
	"github.com/hotlane/hotlane/templates"
)

type kpiChart struct {
	Title, Definition string
	SVG               template.HTML
}

type kpisPage struct {
	pageBase
	Verdict, Tier, Channel string
	Weeks                  int
	WeekOptions            []int
	TierOptions, Channels  []string
	Charts                 []kpiChart
	Rows                   []kpiWeekView
	// Baseline is the row of the baseline period, nil without one;
	// BaselineText says what period it is, Baseline the date picked.
	BaselineRow          *kpiWeekView
	BaselineText, BaseOn string
}

// kpiSeries gathers the points of the KPI charts and the table's rows.
type kpiSeries struct {
	precision, response, conversion, valueConversion, accuracy []point
}

// kpiRow renders one set of KPIs as a table row and adds its points.
func (ks *kpiSeries) add(label string, set feedback.KPISet) kpiWeekView {
	kv := kpiWeekView{Week: label, Precision: "–", Response: "–", Conversion: "–", ValueConversion: "–", Accuracy: "–",
		Fired: strconv.Itoa(set.TruePositive.Fired)}
	tp := set.TruePositive
	if tp.Rate != nil {
		kv.Precision = fmt.Sprintf("%.2f, %d of %d", *tp.Rate, tp.Useful, tp.Useful+tp.Noise)
	}
	ks.precision = append(ks.precision, point{label, tp.Rate})
	rt := set.ResponseTime
	var med *float64
	if rt.MedianSeconds != nil {
		m := *rt.MedianSeconds
		med = &m
		kv.Response = fmt.Sprintf("median %s, p90 %s, %d of %d answered", templates.Duration(secs(*rt.MedianSeconds)),
			templates.Duration(secs(*rt.P90Seconds)), rt.Responded, rt.Conversations)
	}
	ks.response = append(ks.response, point{label, med})
	cv := set.Conversion
	if cv.Rate != nil {
		kv.Conversion = fmt.Sprintf("%.2f, %d of %d", *cv.Rate, cv.Converted, cv.Conversations)
	}
	ks.conversion = append(ks.conversion, point{label, cv.Rate})
	if cv.ValueRate != nil {
		kv.ValueConversion = fmt.Sprintf("%.2f, %s of %s", *cv.ValueRate, money(cv.ConvertedValue), money(cv.Value))
	}
	ks.valueConversion = append(ks.valueConversion, point{label, cv.ValueRate})
	ac := set.Accuracy
	if ac.Rate != nil {
		kv.Accuracy = fmt.Sprintf("%.2f, %d of %d", *ac.Rate, ac.Confirmed, ac.Reviewed)
	}
	ks.accuracy = append(ks.accuracy, point{label, ac.Rate})
	return kv
}

// charts draws the five trend charts, each with the baseline's value (nil
// without one) as a dashed line.
func (ks *kpiSeries) charts(base *kpiSeries) []kpiChart {
	at := func(pts []point) *float64 {
		if base == nil || len(pts) == 0 {
			return nil
		}
		return pts[0].value
	}
	var b kpiSeries
	if base != nil {
		b = *base
	}
	return []kpiChart{
		{"Alert precision", "Of the tier alerts agents labelled, the share labelled useful.", lineChart(ks.precision, "share useful", true, at(b.precision))},
		{"Response to priority chats", "Median time from the first urgent or high decision to the first human response.", lineChart(ks.response, "seconds", false, at(b.response))},
		{"Priority conversion", "Of the conversations that reached urgent or high, the share that converted.", lineChart(ks.conversion, "share converted", true, at(b.conversion))},
		{"Priority conversion by deal value", "The same, each conversation weighted by its deal value (the conversion's value, else the deal_size signal): the share of the pipeline won.", lineChart(ks.valueConversion, "share of value converted", true, at(b.valueConversion))},
		{"Classification accuracy", "Of the conversations agents reviewed, the share whose tier they confirmed.", lineChart(ks.accuracy, "share confirmed", true, at(b.accuracy))},
	}
}

// money renders an amount compactly: 12.3k, 4.5M.
func money(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// baselineWeeks is the length of a baseline period.
const baselineWeeks = 4

// kpiBaseline reads the baseline period: the baselineWeeks weeks before
// raw (a date, YYYY-MM-DD), or before the first promotion of a model when
// raw is empty; nil for "none", or when no model was ever promoted.
func (s *Server) kpiBaseline(ctx context.Context, raw, channel string) (*feedback.KPIWeek, string, error) {
	var end time.Time
	var why string
	switch raw {
	case "none":
		return nil, "", nil
	case "":
		first, err := s.fb.kpis.FirstPromotion(ctx)
		if err != nil || first == nil {
			return nil, "", err
		}
		end, why = *first, "before the first model was promoted"
	default:
		t, err := time.Parse("2006-01-02", raw)
		if err != nil {
			return nil, "", unprocessable("baseline", "must be a date, YYYY-MM-DD, or none")
		}
		end, why = t, "before "+raw
	}
	start := end.AddDate(0, 0, -7*baselineWeeks)
	w, err := s.fb.kpis.KPIBaseline(ctx, start, end, channel)
	if err != nil {
		return nil, "", err
	}
	return &w, fmt.Sprintf("the %d weeks %s (%s to %s)", baselineWeeks, why, start.Format("2006-01-02"), end.Format("2006-01-02")), nil
}

// handleKPIsPage shows the KPIs of the seed per ISO week, with a trend
// chart each, a baseline and the numbers behind them, for a tier and a
// channel.
func (s *Server) handleKPIsPage(c *gin.Context) {
	weeks, _ := strconv.Atoi(c.DefaultQuery("weeks", "8"))
	if weeks < 1 || weeks > feedback.MaxKPIWeeks {
		weeks = 8
	}
	tier, ok := parseTierParam(c.Query("tier"))
	if !ok {
		tier = model.TierNone
	}
	channel := c.Query("channel")
	if channel != "" && !validChannel(channel) {
		channel = ""
	}
	ctx := c.Request.Context()
	rep, err := s.fb.kpis.KPIs(ctx, feedback.KPIQuery{Weeks: weeks, Now: s.now().UTC(), Channel: channel})
	if err != nil {
		s.pageError(c, err)
		return
	}
	baseOn := c.Query("baseline")
	if baseOn != "" && baseOn != "none" {
		if _, err := time.Parse("2006-01-02", baseOn); err != nil {
			baseOn = ""
		}
	}
	baseline, baseText, err := s.kpiBaseline(ctx, baseOn, channel)
	if err != nil {
		s.pageError(c, err)
		return
	}
	pv := s.policyView("")
	p := kpisPage{pageBase: s.base(c, "KPIs", "kpis"), Weeks: weeks, WeekOptions: []int{4, 8, 12, 26}, TierOptions: tierNames,
		Channels: pv.channels, Channel: channel, BaseOn: baseOn}
	if tier != model.TierNone {
		p.Tier = tier.String()
	}
	pick := func(w feedback.KPIWeek) feedback.KPISet {
		if tier != model.TierNone {
			return w.ByTier[tier]
		}
		return w.Overall
	}
	var ks kpiSeries
	for _, w := range rep.Weeks {
		p.Rows = append(p.Rows, ks.add(w.Week, pick(w)))
	}
	var base *kpiSeries
	if baseline != nil {
		base = &kpiSeries{}
		row := base.add("Baseline", pick(*baseline))
		p.BaselineRow, p.BaselineText = &row, baseText
	}
	p.Charts = ks.charts(base)
	scope := "every tier"
	if p.Tier != "" {
		scope = p.Tier + " conversations"
	}
	if channel != "" {
		scope += " on " + channel
	}
	p.Verdict = fmt.Sprintf("The four KPIs of the last %d weeks, %s.", weeks, scope)
	if n := len(rep.Weeks); n > 0 {
		last := rep.Weeks[n-1].Overall.TruePositive
		if tier != model.TierNone {
			last = rep.Weeks[n-1].ByTier[tier].TruePositive
		}
		if last.Rate != nil {
			p.Verdict = fmt.Sprintf("This week %.0f %% of labelled alerts were useful (%d of %d); the four KPIs of the last %d weeks, %s.",
				*last.Rate*100, last.Useful, last.Useful+last.Noise, weeks, scope)
		}
	}
	s.render(c, http.StatusOK, "kpis", p)
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

type point struct {
	label string
	value *float64
}

// lineChart draws points as an SVG line with labelled axes; a rate is
// drawn on 0-1, a time from 0 to its largest value. Weeks without a value
// leave a gap, and each point carries its value in a title.
func lineChart(pts []point, unit string, rate bool, baseline *float64) template.HTML {
	const w, h, left, bottom, top = 320.0, 150.0, 40.0, 26.0, 10.0
	hi := 1.0
	if !rate {
		hi = 0
		for _, p := range pts {
			if p.value != nil {
				hi = math.Max(hi, *p.value)
			}
		}
		if baseline != nil {
			hi = math.Max(hi, *baseline)
		}
		if hi == 0 {
			hi = 1
		}
	}
	x := func(i int) float64 {
		if len(pts) < 2 {
			return left + (w-left-10)/2
		}
		return left + float64(i)*(w-left-10)/float64(len(pts)-1)
	}
	y := func(v float64) float64 { return top + (1-v/hi)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s by week">`, w, h, template.HTMLEscapeString(unit))
	for _, f := range []float64{0, 0.5, 1} {
		label := fmt.Sprintf("%.1f", f*hi)
		if !rate {
			label = templates.Duration(secs(f * hi))
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#d8dee4"/><text x="2" y="%.1f" font-size="10" fill="#57606a">%s</text>`,
			left, y(f*hi), w-10, y(f*hi), y(f*hi)+3, template.HTMLEscapeString(label))
	}
	if baseline != nil {
		label := fmt.Sprintf("baseline %.2f", *baseline)
		if !rate {
			label = "baseline " + templates.Duration(secs(*baseline))
		}
		fmt.Fprintf(&b, `<line class="baseline" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#b45309" stroke-width="1.5" stroke-dasharray="5 4"><title>%s</title></line>`,
			left, y(*baseline), w-10, y(*baseline), template.HTMLEscapeString(label))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" fill="#b45309" text-anchor="end">%s</text>`, w-12, y(*baseline)-3, template.HTMLEscapeString(label))
	}
	var seg []string
	flush := func() {
		if len(seg) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#0b5cad" stroke-width="2"/>`, strings.Join(seg, " "))
		}
		seg = seg[:0]
	}
	for i, p := range pts {
		if p.value == nil {
			flush()
			continue
		}
		seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(i), y(*p.value)))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#0b5cad"><title>%s: %.2f</title></circle>`, x(i), y(*p.value),
			template.HTMLEscapeString(p.label), *p.value)
	}
	flush()
	if n := len(pts); n > 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="#57606a">%s</text><text x="%.0f" y="%.0f" font-size="10" fill="#57606a" text-anchor="end">%s</text>`,
			left, h-6, template.HTMLEscapeString(pts[0].label), w-10, h-6, template.HTMLEscapeString(pts[n-1].label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped labels only
}
