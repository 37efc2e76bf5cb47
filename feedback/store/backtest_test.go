package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func compileTestPolicy(t *testing.T, src string) *model.Policy {
	t.Helper()
	doc, err := model.ParsePolicy([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Rules only, base -3: one rule of 4 points gives sigmoid(1) = 0.73, high;
// both give sigmoid(5) = 0.993, urgent; none gives low.
const (
	backtestLive = `
base: -3
rules:
  - {name: big, expression: "deal_size >= 10000", points: 4}
thresholds:
  default: {urgent: 0.95, high: 0.7, medium: 0.5}
`
	backtestDraft = `
base: -3
rules:
  - {name: big, expression: "deal_size >= 10000", points: 4}
  - {name: pricing, expression: "pricing_page_views >= 3", points: 4}
thresholds:
  default: {urgent: 0.95, high: 0.7, medium: 0.5}
`
)

// TestBacktestKnownHistory replays a history whose answers are worked out
// by hand in the comments, on both engines.
func TestBacktestKnownHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
		to := from.AddDate(0, 0, 14)
		decide := func(conv string, at time.Time, signals string) {
			t.Helper()
			d := newDecision(conv, "low")
			d.Signals, d.OccurredAt, d.Reasons = []byte(signals), at, []byte(`[]`)
			if _, err := s.RecordDecision(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		event := func(conv, typ string, at time.Time, tier model.Tier) {
			t.Helper()
			if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: conv, Type: typ, At: at, Tier: tier, Agent: "ana"}, feedback.Idempotency{}); err != nil {
				t.Fatal(err)
			}
		}
		w1, w2 := from.Add(26*time.Hour), from.AddDate(0, 0, 8)
		// c1: big deal. Live high, draft high. Converted: positive.
		decide("c1", w1, `{"deal_size":20000,"pricing_page_views":0}`)
		event("c1", feedback.EventConverted, w1.Add(time.Hour), model.TierNone)
		// c2: pricing only. Live low, draft high. Converted: positive.
		decide("c2", w1, `{"deal_size":0,"pricing_page_views":5}`)
		event("c2", feedback.EventConverted, w1.Add(time.Hour), model.TierNone)
		// c3: pricing at its second decision. Live low, draft high. An
		// agent says low: negative.
		decide("c3", w1, `{"pricing_page_views":1}`)
		decide("c3", w1.Add(time.Minute), `{"pricing_page_views":4}`)
		event("c3", feedback.EventTierFeedback, w1.Add(time.Hour), model.TierLow)
		// c4: both, in week 2. Live high, draft urgent. Unlabelled.
		decide("c4", w2, `{"deal_size":50000,"pricing_page_views":9}`)
		// c5: neither, in week 2. Low under both. Converted: a positive
		// both miss.
		decide("c5", w2, `{"plan":"free"}`)
		event("c5", feedback.EventConverted, w2.Add(time.Hour), model.TierNone)
		// c6 is before the window.
		decide("c6", from.Add(-time.Hour), `{"deal_size":20000}`)
		event("c6", feedback.EventConverted, from, model.TierNone)

		rep, err := feedback.Backtest(ctx, s, feedback.BacktestRequest{
			Draft: compileTestPolicy(t, backtestDraft), DraftVersion: 2,
			Live: compileTestPolicy(t, backtestLive), LiveVersion: 1, From: from, To: to, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		f := func(p *float64) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf("%.3f", *p)
		}
		got := fmt.Sprintf("conv %d dec %d labelled %d pos %d", rep.Conversations, rep.Decisions, rep.Labelled, rep.Positives)
		if want := "conv 5 dec 6 labelled 4 pos 3"; got != want {
			t.Errorf("counts = %s; want %s", got, want)
		}
		side := func(s feedback.BacktestSide) string {
			return fmt.Sprintf("alerted %d useful %d noise %d p %s r %s tiers u%d h%d l%d perweek u%g h%g",
				s.Alerted, s.Useful, s.Noise, f(s.Precision), f(s.Recall), s.Tiers["urgent"], s.Tiers["high"], s.Tiers["low"],
				s.AlertsPerWeek["urgent"], s.AlertsPerWeek["high"])
		}
		// Draft: c1, c2, c3, c4 alert; c1 and c2 useful, c3 noise; recall
		// 2 of the 3 positives.
		if got, want := side(rep.Draft), "alerted 4 useful 2 noise 1 p 0.667 r 0.667 tiers u1 h3 l1 perweek u0.5 h1.5"; got != want {
			t.Errorf("draft = %s\nwant    %s", got, want)
		}
		// Live: c1 and c4 alert; c1 useful; recall 1 of 3.
		if got, want := side(rep.Live), "alerted 2 useful 1 noise 0 p 1.000 r 0.333 tiers u0 h2 l3 perweek u0 h1"; got != want {
			t.Errorf("live = %s\nwant    %s", got, want)
		}
		stats := func(r *feedback.RuleStats) string {
			if r == nil {
				return "nil"
			}
			return fmt.Sprintf("%d/%d/%d p %s r %s", r.Hits, r.Useful, r.Noise, f(r.Precision), f(r.Recall))
		}
		var rules []string
		for _, r := range rep.Rules {
			rules = append(rules, fmt.Sprintf("%s %s draft %s live %s", r.Name, r.Change, stats(r.Draft), stats(r.Live)))
		}
		want := []string{
			"big same draft 2/1/0 p 1.000 r 0.333 live 2/1/0 p 1.000 r 0.333",
			"pricing new draft 3/1/1 p 0.500 r 0.333 live nil",
		}
		if fmt.Sprint(rules) != fmt.Sprint(want) {
			t.Errorf("rules =\n%v\nwant\n%v", rules, want)
		}
		var weeks []string
		for _, w := range rep.ByWeek {
			weeks = append(weeks, fmt.Sprintf("%s draft u%d h%d live u%d h%d", w.Week, w.Draft["urgent"], w.Draft["high"], w.Live["urgent"], w.Live["high"]))
		}
		if want := "[2026-W45 draft u0 h3 live u0 h1 2026-W46 draft u1 h0 live u0 h1]"; fmt.Sprint(weeks) != want {
			t.Errorf("weeks = %v; want %s", weeks, want)
		}
	})
}
