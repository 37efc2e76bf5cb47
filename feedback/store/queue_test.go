package store

import (
	"context"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func TestOpenConversations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		record := func(conv, tier, channel, team, owner string, score float64, at time.Time) {
			t.Helper()
			d := newDecision(conv, tier)
			d.Channel, d.Score, d.CreatedAt = channel, score, at
			d.Route = []byte(`{"team":"` + team + `","owner":"` + owner + `","via":"route"}`)
			if _, err := s.RecordDecision(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		record("u-late", "urgent", "web", "sales", "", 0.95, start.Add(20*time.Minute))
		record("u-early", "urgent", "whatsapp", "sales", "", 0.91, start.Add(5*time.Minute))
		record("h1", "high", "web", "support", "ana@example.com", 0.8, start.Add(time.Minute))
		record("m1", "medium", "web", "support", "", 0.5, start)
		record("closed", "urgent", "web", "sales", "", 0.99, start)
		record("old", "urgent", "web", "sales", "", 0.99, start.Add(-feedback.QueueWindow))
		// closed ends the conversation; a later decision would reopen it.
		if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: "closed", Type: feedback.EventClosed, At: start.Add(time.Minute)}, feedback.Idempotency{}); err != nil {
			t.Fatal(err)
		}
		// h1 was answered.
		if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: "h1", Type: feedback.EventFirstResponse, At: start.Add(2 * time.Minute)}, feedback.Idempotency{}); err != nil {
			t.Fatal(err)
		}
		now := start.Add(time.Hour)
		sla := func(t model.Tier) time.Duration {
			switch t {
			case model.TierUrgent:
				return time.Minute
			case model.TierHigh:
				return 3 * time.Minute
			}
			return 0
		}
		ids := func(p feedback.QueuePage) []string {
			var out []string
			for _, it := range p.Items {
				out = append(out, it.ID)
			}
			return out
		}
		page, err := s.OpenConversations(ctx, feedback.QueueQuery{Now: now, SLA: sla})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(page), []string{"u-early", "u-late", "h1", "m1"}; !equalStrings(got, want) {
			t.Errorf("queue = %v, want %v (tier, then longest waiting)", got, want)
		}
		if page.Total != 4 || page.ByTier[model.TierUrgent] != 2 || page.ByTier[model.TierHigh] != 1 || page.PastSLA != 2 {
			t.Errorf("counts = total %d, by tier %v, past SLA %d; want 4, 2 urgent 1 high, 2 past SLA (h1 was answered)", page.Total, page.ByTier, page.PastSLA)
		}
		first := page.Items[0]
		if first.Team != "sales" || first.Waiting != 55*time.Minute || !first.PastSLA() || len(first.Reasons) != 1 || first.Reasons[0].Name != "big-deal" {
			t.Errorf("first item = %+v", first)
		}
		if h := page.Items[2]; h.Waiting != 0 || h.HasSLA || h.Owner != "ana@example.com" {
			t.Errorf("answered item = %+v", h)
		}
		for _, tt := range []struct {
			name string
			q    feedback.QueueQuery
			want []string
		}{
			{"tier", feedback.QueueQuery{Tier: model.TierUrgent}, []string{"u-early", "u-late"}},
			{"channel", feedback.QueueQuery{Channel: "whatsapp"}, []string{"u-early"}},
			{"team", feedback.QueueQuery{Team: "support"}, []string{"h1", "m1"}},
			{"mine as owner", feedback.QueueQuery{Mine: true, Team: "nobody", Owner: "ana@example.com"}, []string{"h1"}},
			{"mine as team", feedback.QueueQuery{Mine: true, Team: "sales", Owner: "bo@example.com"}, []string{"u-early", "u-late"}},
			{"page", feedback.QueueQuery{Limit: 2, Offset: 1}, []string{"u-late", "h1"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tt.q.Now = now
				p, err := s.OpenConversations(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(p); !equalStrings(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
		// A decision after the close reopens the conversation.
		record("closed", "urgent", "web", "sales", "", 0.99, start.Add(30*time.Minute))
		if p, _ := s.OpenConversations(ctx, feedback.QueueQuery{Now: now}); p.Total != 5 {
			t.Errorf("after a new decision the closed conversation is not back: total %d", p.Total)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
