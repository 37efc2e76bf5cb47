package server

import (
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
}

// handleKPIsPage shows the four KPIs of the seed per ISO week, with a
// trend chart each and the numbers behind them, for a tier and a channel.
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
	rep, err := s.fb.kpis.KPIs(c.Request.Context(), feedback.KPIQuery{Weeks: weeks, Now: s.now().UTC(), Channel: channel})
	if err != nil {
		s.pageError(c, err)
		return
	}
	pv := s.policyView("")
	p := kpisPage{pageBase: s.base(c, "KPIs", "kpis"), Weeks: weeks, WeekOptions: []int{4, 8, 12, 26}, TierOptions: tierNames,
		Channels: pv.channels, Channel: channel}
	if tier != model.TierNone {
		p.Tier = tier.String()
	}
	var precision, response, conversion, accuracy []point
	for _, w := range rep.Weeks {
		set := w.Overall
		if tier != model.TierNone {
			set = w.ByTier[tier]
		}
		kv := kpiWeekView{Week: w.Week, Precision: "–", Response: "–", Conversion: "–", Accuracy: "–"}
		tp := set.TruePositive
		if tp.Rate != nil {
			kv.Precision = fmt.Sprintf("%.2f, %d of %d", *tp.Rate, tp.Useful, tp.Useful+tp.Noise)
		}
		precision = append(precision, point{w.Week, tp.Rate})
		rt := set.ResponseTime
		var med *float64
		if rt.MedianSeconds != nil {
			m := *rt.MedianSeconds
			med = &m
			kv.Response = fmt.Sprintf("median %s, p90 %s, %d of %d answered", templates.Duration(secs(*rt.MedianSeconds)),
				templates.Duration(secs(*rt.P90Seconds)), rt.Responded, rt.Conversations)
		}
		response = append(response, point{w.Week, med})
		cv := set.Conversion
		if cv.Rate != nil {
			kv.Conversion = fmt.Sprintf("%.2f, %d of %d", *cv.Rate, cv.Converted, cv.Conversations)
		}
		conversion = append(conversion, point{w.Week, cv.Rate})
		ac := set.Accuracy
		if ac.Rate != nil {
			kv.Accuracy = fmt.Sprintf("%.2f, %d of %d", *ac.Rate, ac.Confirmed, ac.Reviewed)
		}
		accuracy = append(accuracy, point{w.Week, ac.Rate})
		p.Rows = append(p.Rows, kv)
	}
	p.Charts = []kpiChart{
		{"Alert precision", "Of the tier alerts agents labelled, the share labelled useful.", lineChart(precision, "share useful", true)},
		{"Response to priority chats", "Median time from the first urgent or high decision to the first human response.", lineChart(response, "seconds", false)},
		{"Priority conversion", "Of the conversations that reached urgent or high, the share that converted.", lineChart(conversion, "share converted", true)},
		{"Classification accuracy", "Of the conversations agents reviewed, the share whose tier they confirmed.", lineChart(accuracy, "share confirmed", true)},
	}
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
func lineChart(pts []point, unit string, rate bool) template.HTML {
	const w, h, left, bottom, top = 320.0, 150.0, 40.0, 26.0, 10.0
	hi := 1.0
	if !rate {
		hi = 0
		for _, p := range pts {
			if p.value != nil {
				hi = math.Max(hi, *p.value)
			}
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
