package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// History imported with its alert, labels and events counts in the KPIs
// and the training labels like live history, and nothing is delivered.
func TestImportHistoryWithAlertsAndEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		value := 12000.0
		d := newDecision("h1", "high")
		d.ID, d.OccurredAt = "h1-d", at
		rows := []feedback.ImportedConversation{{
			Decision: d, Outcome: feedback.EventConverted, EventID: "h1-e", Value: &value,
			Alert:  &feedback.Alert{ID: "h1-a"},
			Labels: []feedback.AlertLabel{{Agent: "ana", Label: feedback.LabelNoise, UpdatedAt: at.Add(time.Minute)}},
			Events: []feedback.Event{
				{ID: "h1-r", Type: feedback.EventFirstResponse, At: at.Add(90 * time.Second)},
				{ID: "h1-f", Type: feedback.EventTierFeedback, At: at.Add(2 * time.Minute), Tier: model.TierHigh, Agent: "bo"},
			},
		}}
		res, err := s.ImportHistory(ctx, rows)
		if err != nil || res.Added != 1 {
			t.Fatalf("import = %+v, %v", res, err)
		}
		if res, err := s.ImportHistory(ctx, rows); err != nil || res.Skipped != 1 {
			t.Fatalf("second import = %+v, %v", res, err)
		}
		// A past alert is never delivered.
		if n, err := s.DispatchAlerts(ctx, at.Add(time.Hour), 100); err != nil || n != 0 {
			t.Errorf("DispatchAlerts = %d, %v; want nothing to dispatch", n, err)
		}
		rep, err := s.KPIs(ctx, feedback.KPIQuery{Weeks: 1, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		o := rep.Weeks[0].Overall
		got := fmt.Sprintf("%s fired %d", kpiString(o), o.TruePositive.Fired)
		if want := "acc 1/1=1 rt 1/1 med 90 p90 90 tp 0/1/0=0 conv 1/1=1 fired 1"; got != want {
			t.Errorf("KPIs = %s\nwant   %s", got, want)
		}
		// Agents disagree (ana: noise, bo: high is right): the outcome
		// decides, converted.
		var labels []string
		err = s.TrainingRows(ctx, at.Add(-time.Hour), at.Add(time.Hour), func(r feedback.TrainingRow) error {
			labels = append(labels, r.Label.Label+"/"+r.Label.Source+"/"+r.AlertTier.String())
			return nil
		})
		if err != nil || fmt.Sprint(labels) != "[positive/converted/high]" {
			t.Errorf("training labels = %v, %v", labels, err)
		}

		bad := rows[0]
		bad.Decision.ID, bad.Decision.ConversationID, bad.EventID = "h2-d", "h2", "h2-e"
		bad.Alert, bad.Labels = nil, nil
		bad.Events = []feedback.Event{{ID: "h2-x", Type: "teleported", At: at}}
		if _, err := s.ImportHistory(ctx, []feedback.ImportedConversation{bad}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("unknown event type = %v, want ErrInvalid", err)
		}
		if _, err := s.Conversation(ctx, "h2"); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("a refused conversation was stored: %v", err)
		}
	})
}

// Conversion weighted by deal value, and a baseline period.
func TestKPIValueAndBaseline(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)
		conv := func(id, tier, outcome, signals string, value *float64, when time.Time) feedback.ImportedConversation {
			d := newDecision(id, tier)
			d.ID, d.OccurredAt, d.Signals = id+"-d", when, []byte(signals)
			return feedback.ImportedConversation{Decision: d, Outcome: outcome, EventID: id + "-e", Value: value}
		}
		won := 30000.0
		rows := []feedback.ImportedConversation{
			// Converted with a value of 30k (its deal_size says 10k: the
			// conversion's value wins).
			conv("v1", "high", feedback.EventConverted, `{"deal_size":10000}`, &won, at),
			// Lost: 60k of pipeline.
			conv("v2", "urgent", feedback.EventLost, `{"deal_size":60000}`, nil, at),
			// Converted without any value: counts in the plain rate only.
			conv("v3", "high", feedback.EventConverted, `{"plan":"pro"}`, nil, at),
			// Low: not a priority conversation.
			conv("v4", "low", feedback.EventConverted, `{"deal_size":5000}`, nil, at),
			// A week later, outside the baseline below.
			conv("v5", "high", feedback.EventLost, `{"deal_size":1000}`, nil, at.AddDate(0, 0, 7)),
		}
		if _, err := s.ImportHistory(ctx, rows); err != nil {
			t.Fatal(err)
		}
		b, err := s.KPIBaseline(ctx, at.AddDate(0, 0, -3), at.AddDate(0, 0, 3), "")
		if err != nil {
			t.Fatal(err)
		}
		cv := b.Overall.Conversion
		got := fmt.Sprintf("%d/%d value %.0f/%.0f rate %.2f %s", cv.Converted, cv.Conversations, cv.ConvertedValue, cv.Value, *cv.ValueRate, b.Week)
		if want := "2/3 value 30000/90000 rate 0.33 2026-11-07 to 2026-11-13"; got != want {
			t.Errorf("baseline conversion = %s\nwant                  %s", got, want)
		}
		if _, err := s.KPIBaseline(ctx, at, at, ""); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("empty baseline period = %v", err)
		}
		if first, err := s.FirstPromotion(ctx); err != nil || first != nil {
			t.Errorf("FirstPromotion before any = %v, %v", first, err)
		}
		m, err := s.CreateModel(ctx, []byte(`{"intercept":0,"encoder":{},"beta":[]}`), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActivateModel(ctx, m.Version); err != nil {
			t.Fatal(err)
		}
		first, err := s.FirstPromotion(ctx)
		if err != nil || first == nil || time.Since(*first) > time.Minute {
			t.Fatalf("FirstPromotion = %v, %v", first, err)
		}
		// Rolling back and promoting again moves activated_at, not the
		// first promotion.
		time.Sleep(10 * time.Millisecond)
		if _, err := s.RollbackModel(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActivateModel(ctx, m.Version); err != nil {
			t.Fatal(err)
		}
		if again, err := s.FirstPromotion(ctx); err != nil || again == nil || !again.Equal(*first) {
			t.Errorf("FirstPromotion after a rollback = %v, %v; want %v", again, err, first)
		}
	})
}
