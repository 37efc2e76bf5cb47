package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// kpiString renders a KPI set compactly for hand-computed expectations:
// accuracy confirmed/reviewed, response conversations/responded with median
// and p90 seconds, true positives useful/noise/tied, conversion
// converted/conversations. "-" is a nil rate or percentile.
func kpiString(s feedback.KPISet) string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.4g", *p)
	}
	return fmt.Sprintf("acc %d/%d=%s rt %d/%d med %s p90 %s tp %d/%d/%d=%s conv %d/%d=%s",
		s.Accuracy.Confirmed, s.Accuracy.Reviewed, f(s.Accuracy.Rate),
		s.ResponseTime.Conversations, s.ResponseTime.Responded, f(s.ResponseTime.MedianSeconds), f(s.ResponseTime.P90Seconds),
		s.TruePositive.Useful, s.TruePositive.Noise, s.TruePositive.Tied, f(s.TruePositive.Rate),
		s.Conversion.Converted, s.Conversion.Conversations, f(s.Conversion.Rate))
}

func tpString(k feedback.TruePositiveKPI) string {
	r := "-"
	if k.Rate != nil {
		r = fmt.Sprintf("%.4g", *k.Rate)
	}
	return fmt.Sprintf("%d/%d/%d=%s", k.Useful, k.Noise, k.Tied, r)
}

func TestKPIs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := func(d, h, m, sec int) time.Time { return time.Date(2026, 11, d, h, m, sec, 0, time.UTC) }
		decide := func(conv, channel, tier string, at time.Time, rules ...string) string {
			t.Helper()
			d := newDecision(conv, tier)
			d.Channel, d.CreatedAt = channel, at
			reasons := "["
			for i, r := range rules {
				if i > 0 {
					reasons += ","
				}
				reasons += fmt.Sprintf(`{"kind":"rule","name":%q,"contribution":1}`, r)
			}
			d.Reasons = []byte(reasons + `,{"kind":"feature","name":"x","contribution":0.1}]`)
			if len(rules) == 0 {
				d.Reasons = []byte(`[]`)
			}
			if _, err := s.RecordDecision(ctx, d); err != nil {
				t.Fatal(err)
			}
			return d.ID
		}
		firstTop := func(conv string, at time.Time) {
			t.Helper()
			if err := s.db.Exec("UPDATE conversations SET first_top_at = ? WHERE id = ?", at, conv).Error; err != nil {
				t.Fatal(err)
			}
		}
		event := func(conv, typ, tier, agent string, at time.Time) {
			t.Helper()
			if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: conv, Type: typ, Tier: feedback.ParseEventTier(tier), Agent: agent, At: at}, feedback.Idempotency{}); err != nil {
				t.Fatal(err)
			}
		}
		alert := func(id, kind, status, conv, decision, channel, tier string, at time.Time, labels ...string) {
			t.Helper()
			a := feedback.Alert{ID: id, Kind: kind, Status: status, ConversationID: conv, DecisionID: decision,
				Channel: channel, Tier: parseTier(tier), CreatedAt: at}
			if err := s.InsertAlertRow(ctx, a); err != nil {
				t.Fatal(err)
			}
			for i, l := range labels {
				if _, err := s.LabelAlert(ctx, id, fmt.Sprintf("agent-%d", i), l, ""); err != nil {
					t.Fatal(err)
				}
			}
		}

		// Week 2026-W48 (Mon 23 Nov to Mon 30 Nov).
		// c1 web: high, then urgent; answered after 60s; converted.
		d1 := decide("c1", "web", "high", day(23, 10, 0, 0), "big-deal")
		d2 := decide("c1", "web", "urgent", day(23, 10, 5, 0), "big-deal", "pricing")
		firstTop("c1", day(23, 10, 0, 0))
		event("c1", feedback.EventFirstResponse, "", "ana", day(23, 10, 1, 0))
		event("c1", feedback.EventTierFeedback, "high", "ana", day(23, 10, 2, 0)) // tier then: high, confirmed
		event("c1", feedback.EventConverted, "", "", day(23, 15, 0, 0))
		alert("a1", "tier", "fired", "c1", d1, "web", "high", day(23, 10, 0, 0), feedback.LabelUseful, feedback.LabelUseful)
		alert("a2", "tier", "fired", "c1", d2, "web", "urgent", day(23, 10, 5, 0), feedback.LabelNoise)
		// c2 web: high; answered after 180s; lost. Reviewed twice: the
		// latest review corrects high to medium.
		d3 := decide("c2", "web", "high", day(24, 9, 0, 0), "pricing")
		firstTop("c2", day(24, 9, 0, 0))
		event("c2", feedback.EventFirstResponse, "", "bo", day(24, 9, 3, 0))
		event("c2", feedback.EventTierFeedback, "high", "ana", day(24, 9, 10, 0))
		event("c2", feedback.EventTierFeedback, "medium", "bo", day(24, 9, 20, 0))
		event("c2", feedback.EventLost, "", "", day(24, 18, 0, 0))
		alert("a3", "tier", "fired", "c2", d3, "web", "high", day(24, 9, 0, 0), feedback.LabelUseful, feedback.LabelNoise) // tied
		// c3 whatsapp: high, never answered. Its suppressed and review
		// alerts do not count towards the true-positive rate.
		d4 := decide("c3", "whatsapp", "high", day(24, 12, 0, 0), "big-deal")
		firstTop("c3", day(24, 12, 0, 0))
		alert("a4", "tier", "suppressed", "c3", d4, "whatsapp", "high", day(24, 12, 0, 0), feedback.LabelUseful)
		alert("a5", "review", "fired", "c3", d4, "whatsapp", "high", day(24, 12, 0, 0), feedback.LabelUseful)
		// c5 web: low, never top; the agent confirms low.
		decide("c5", "web", "low", day(25, 8, 0, 0))
		event("c5", feedback.EventTierFeedback, "low", "cy", day(25, 9, 0, 0))

		// Week 2026-W47: c4 whatsapp urgent, answered after 30s, converted,
		// its alert labelled noise.
		d6 := decide("c4", "whatsapp", "urgent", day(17, 8, 0, 0), "big-deal")
		firstTop("c4", day(17, 8, 0, 0))
		event("c4", feedback.EventFirstResponse, "", "", day(17, 8, 0, 30))
		event("c4", feedback.EventConverted, "", "", day(18, 8, 0, 0))
		alert("a6", "tier", "fired", "c4", d6, "whatsapp", "urgent", day(17, 8, 0, 0), feedback.LabelNoise)
		// Week 2026-W46, outside a two-week report.
		decide("c9", "web", "urgent", day(10, 8, 0, 0))
		firstTop("c9", day(10, 8, 0, 0))

		now := day(25, 12, 0, 0)
		rep, err := s.KPIs(ctx, feedback.KPIQuery{Weeks: 2, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Weeks) != 2 || rep.Weeks[0].Week != "2026-W47" || rep.Weeks[1].Week != "2026-W48" ||
			!rep.Weeks[1].Start.Equal(day(23, 0, 0, 0)) || !rep.Weeks[1].End.Equal(day(30, 0, 0, 0)) {
			t.Fatalf("weeks = %+v", rep.Weeks)
		}
		w47, w48 := rep.Weeks[0], rep.Weeks[1]
		checks := []struct {
			name string
			got  string
			want string
		}{
			// Response times 60 and 180: median 120, p90 60+0.9*120 = 168.
			{"W48 overall", kpiString(w48.Overall), "acc 2/3=0.6667 rt 3/2 med 120 p90 168 tp 1/1/1=0.5 conv 1/3=0.3333"},
			{"W48 urgent", kpiString(w48.ByTier[model.TierUrgent]), "acc 0/0=- rt 1/1 med 60 p90 60 tp 0/1/0=0 conv 1/1=1"},
			{"W48 high", kpiString(w48.ByTier[model.TierHigh]), "acc 1/2=0.5 rt 2/1 med 180 p90 180 tp 1/0/1=1 conv 0/2=0"},
			{"W48 low", kpiString(w48.ByTier[model.TierLow]), "acc 1/1=1 rt 0/0 med - p90 - tp 0/0/0=- conv 0/0=-"},
			{"W48 web", kpiString(w48.ByChannel["web"]), "acc 2/3=0.6667 rt 2/2 med 120 p90 168 tp 1/1/1=0.5 conv 1/2=0.5"},
			{"W48 whatsapp", kpiString(w48.ByChannel["whatsapp"]), "acc 0/0=- rt 1/0 med - p90 - tp 0/0/0=- conv 0/1=0"},
			{"W48 rule big-deal", tpString(w48.ByRule["big-deal"]), "1/1/0=0.5"},
			{"W48 rule pricing", tpString(w48.ByRule["pricing"]), "0/1/1=0"},
			{"W48 rules", fmt.Sprint(len(w48.ByRule)), "2"},
			{"W47 overall", kpiString(w47.Overall), "acc 0/0=- rt 1/1 med 30 p90 30 tp 0/1/0=0 conv 1/1=1"},
			{"W47 tiers", fmt.Sprint(len(w47.ByTier), len(w47.ByChannel)), "1 1"},
			// Fired tier alerts, labelled or not; not the suppressed a4
			// nor the review a5.
			{"fired", fmt.Sprint(w48.Overall.TruePositive.Fired, w48.ByTier[model.TierUrgent].TruePositive.Fired,
				w48.ByTier[model.TierHigh].TruePositive.Fired, w48.ByChannel["whatsapp"].TruePositive.Fired, w47.Overall.TruePositive.Fired), "3 1 2 0 1"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s:\n got  %s\n want %s", c.name, c.got, c.want)
			}
		}

		rep, err = s.KPIs(ctx, feedback.KPIQuery{Weeks: 1, Now: now, Channel: "whatsapp"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kpiString(rep.Weeks[0].Overall), "acc 0/0=- rt 1/0 med - p90 - tp 0/0/0=- conv 0/1=0"; got != want {
			t.Errorf("whatsapp only:\n got  %s\n want %s", got, want)
		}
		if _, err := s.KPIs(ctx, feedback.KPIQuery{Weeks: 0, Now: now}); err == nil {
			t.Error("weeks 0 accepted")
		}
	})
}

func TestISOWeek(t *testing.T) {
	tests := []struct {
		at    time.Time
		start string
		name  string
	}{
		{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "2026-11-23", "2026-W48"},
		{time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "2026-11-23", "2026-W48"},
		{time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC), "2026-11-16", "2026-W47"},
		{time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC), "2026-12-28", "2026-W53"},
		{time.Date(2026, 1, 1, 9, 0, 0, 0, time.FixedZone("x", -5*3600)), "2025-12-29", "2026-W01"},
	}
	for _, tt := range tests {
		if got := feedback.ISOWeekStart(tt.at).Format("2006-01-02"); got != tt.start {
			t.Errorf("ISOWeekStart(%v) = %s, want %s", tt.at, got, tt.start)
		}
		if got := feedback.ISOWeekName(tt.at); got != tt.name {
			t.Errorf("ISOWeekName(%v) = %s, want %s", tt.at, got, tt.name)
		}
	}
}
