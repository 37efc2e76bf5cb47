package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
)

// kpiStore is what the KPI endpoint needs from the store.
type kpiStore interface {
	KPIs(ctx context.Context, q feedback.KPIQuery) (feedback.KPIReport, error)
	KPIBaseline(ctx context.Context, start, end time.Time, channel string) (feedback.KPIWeek, error)
	FirstPromotion(ctx context.Context) (*time.Time, error)
}

// JSON shapes of GET /v1/kpis. Rates, medians and percentiles are null
// when there is nothing to compute them from.
type (
	kpiReportJSON struct {
		Weeks []kpiWeekJSON `json:"weeks"`
		// Baseline is the KPIs of the period the weeks are compared
		// with, null without one; BaselineNote says what period it is.
		Baseline     *kpiWeekJSON `json:"baseline"`
		BaselineNote string       `json:"baseline_note,omitempty"`
	}
	kpiWeekJSON struct {
		Week      string                 `json:"week"`
		Start     time.Time              `json:"start"`
		End       time.Time              `json:"end"`
		Overall   kpiSetJSON             `json:"overall"`
		ByTier    map[string]kpiSetJSON  `json:"by_tier"`
		ByChannel map[string]kpiSetJSON  `json:"by_channel"`
		ByRule    map[string]truePosJSON `json:"by_rule"`
	}
	kpiSetJSON struct {
		Accuracy     accuracyJSON   `json:"classification_accuracy"`
		ResponseTime responseJSON   `json:"top_tier_response_time"`
		TruePositive truePosJSON    `json:"alert_true_positive_rate"`
		Conversion   conversionJSON `json:"priority_conversion"`
	}
	accuracyJSON struct {
		Confirmed int      `json:"confirmed"`
		Reviewed  int      `json:"reviewed"`
		Rate      *float64 `json:"rate"`
	}
	responseJSON struct {
		Conversations int      `json:"conversations"`
		Responded     int      `json:"responded"`
		MedianSeconds *float64 `json:"median_seconds"`
		P90Seconds    *float64 `json:"p90_seconds"`
	}
	truePosJSON struct {
		Useful int      `json:"useful"`
		Noise  int      `json:"noise"`
		Tied   int      `json:"tied"`
		Rate   *float64 `json:"rate"`
		// Fired is every tier alert fired (0 per rule, where it is not
		// counted).
		Fired int `json:"fired"`
	}
	conversionJSON struct {
		Converted      int      `json:"converted"`
		Conversations  int      `json:"conversations"`
		Rate           *float64 `json:"rate"`
		Value          float64  `json:"value"`
		ConvertedValue float64  `json:"converted_value"`
		ValueRate      *float64 `json:"value_rate"`
	}
)

func toTruePosJSON(k feedback.TruePositiveKPI) truePosJSON {
	return truePosJSON{Useful: k.Useful, Noise: k.Noise, Tied: k.Tied, Rate: k.Rate, Fired: k.Fired}
}

func toKPISetJSON(s feedback.KPISet) kpiSetJSON {
	return kpiSetJSON{
		Accuracy: accuracyJSON{Confirmed: s.Accuracy.Confirmed, Reviewed: s.Accuracy.Reviewed, Rate: s.Accuracy.Rate},
		ResponseTime: responseJSON{Conversations: s.ResponseTime.Conversations, Responded: s.ResponseTime.Responded,
			MedianSeconds: s.ResponseTime.MedianSeconds, P90Seconds: s.ResponseTime.P90Seconds},
		TruePositive: toTruePosJSON(s.TruePositive),
		Conversion: conversionJSON{Converted: s.Conversion.Converted, Conversations: s.Conversion.Conversations,
			Rate: s.Conversion.Rate, Value: s.Conversion.Value, ConvertedValue: s.Conversion.ConvertedValue, ValueRate: s.Conversion.ValueRate},
	}
}

// handleKPIs reports the KPIs of PRODUCT.md §6 for the last `weeks` ISO
// weeks (default 4), the current one included, optionally for one channel.
func (s *Server) handleKPIs(c *gin.Context) {
	q := feedback.KPIQuery{Weeks: 4, Now: s.now().UTC(), Channel: c.Query("channel")}
	if v := c.Query("weeks"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > feedback.MaxKPIWeeks {
			writeError(c, s.log, unprocessable("weeks", fmt.Sprintf("must be an integer from 1 to %d", feedback.MaxKPIWeeks)))
			return
		}
		q.Weeks = n
	}
	if q.Channel != "" && !validChannel(q.Channel) {
		writeError(c, s.log, unprocessable("channel", "must be a lower-case token of letters, digits, - and _ (at most 32)"))
		return
	}
	rep, err := s.fb.kpis.KPIs(c.Request.Context(), q)
	if err != nil {
		writeError(c, s.log, fromInvalid(fmt.Errorf("kpis: %w", err)))
		return
	}
	baseline, note, err := s.kpiBaseline(c.Request.Context(), c.Query("baseline"), q.Channel)
	if err != nil {
		writeError(c, s.log, fromInvalid(fmt.Errorf("kpi baseline: %w", err)))
		return
	}
	out := kpiReportJSON{Weeks: make([]kpiWeekJSON, 0, len(rep.Weeks)), BaselineNote: note}
	for _, w := range rep.Weeks {
		out.Weeks = append(out.Weeks, toKPIWeekJSON(w))
	}
	if baseline != nil {
		b := toKPIWeekJSON(*baseline)
		out.Baseline = &b
	}
	c.JSON(http.StatusOK, out)
}

func toKPIWeekJSON(w feedback.KPIWeek) kpiWeekJSON {
	wj := kpiWeekJSON{Week: w.Week, Start: w.Start, End: w.End, Overall: toKPISetJSON(w.Overall),
		ByTier: map[string]kpiSetJSON{}, ByChannel: map[string]kpiSetJSON{}, ByRule: map[string]truePosJSON{}}
	for k, v := range w.ByTier {
		wj.ByTier[k.String()] = toKPISetJSON(v)
	}
	for k, v := range w.ByChannel {
		wj.ByChannel[k] = toKPISetJSON(v)
	}
	for k, v := range w.ByRule {
		wj.ByRule[k] = toTruePosJSON(v)
	}
	return wj
}
