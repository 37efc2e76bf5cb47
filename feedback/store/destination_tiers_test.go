package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// The seed's mapping: urgent to Slack and a webhook, high to the webhook,
// medium to the in-app feed only.
func TestDispatchByTier(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		slack, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationSlack, URL: "https://b.example/s",
			Tiers: []model.Tier{model.TierUrgent}})
		hook, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://a.example/h",
			Tiers: []model.Tier{model.TierUrgent, model.TierHigh}})
		if got, err := s.Destination(ctx, slack.ID); err != nil || fmt.Sprint(got.Tiers) != "[urgent]" {
			t.Fatalf("stored tiers = %v, %v", got.Tiers, err)
		}
		if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationFeed,
			Tiers: []model.Tier{model.TierHigh, model.TierHigh}}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("a tier twice = %v, want ErrInvalid", err)
		}
		d := newDecision("conv-1", "urgent")
		if _, err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{}
		for tier, dests := range map[model.Tier][]string{
			model.TierUrgent: {slack.ID, hook.ID},
			model.TierHigh:   {hook.ID},
			model.TierMedium: nil,
		} {
			a, err := s.RaiseAlert(ctx, feedback.Alert{Kind: feedback.AlertKindTier, ConversationID: "conv-1", DecisionID: d.ID,
				Channel: "web", Tier: tier, Team: "sales", CreatedAt: at})
			if err != nil {
				t.Fatal(err)
			}
			want[a.ID] = dests
		}
		// A review request (a conversation that did not alert, low) still
		// reaches the webhook: sampling must not stop.
		rv, err := s.RaiseAlert(ctx, feedback.Alert{Kind: feedback.AlertKindReview, ConversationID: "conv-1", DecisionID: d.ID,
			Channel: "web", Tier: model.TierLow, Team: "sales", SampleRate: 0.02, CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		want[rv.ID] = []string{hook.ID}
		if _, err := s.DispatchAlerts(ctx, at, 10); err != nil {
			t.Fatal(err)
		}
		for id, dests := range want {
			ds, err := s.AlertDeliveries(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ds {
				got = append(got, x.DestinationID)
			}
			slices.Sort(got)
			slices.Sort(dests)
			if !slices.Equal(got, dests) {
				t.Errorf("alert %s went to %v, want %v", id, got, dests)
			}
		}
	})
}
