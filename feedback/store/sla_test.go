package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func TestEscalateSLA(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		top := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		for _, c := range []struct{ id, tier string }{{"urgent-1", "urgent"}, {"high-1", "high"}, {"answered", "urgent"}, {"medium-1", "medium"}, {"closed-1", "urgent"}} {
			d := newDecision(c.id, c.tier)
			d.Route = []byte(`{"team":"sales","owner":"ana@example.com","via":"owner"}`)
			if _, err := s.RecordDecision(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Exec("UPDATE conversations SET first_top_at = ? WHERE id = ?", top, c.id).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := s.db.Exec("UPDATE conversations SET first_response_at = ? WHERE id = ?", top.Add(time.Second), "answered").Error; err != nil {
			t.Fatal(err)
		}
		// The visitor left and the chat was closed unanswered: past waiting.
		if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: "closed-1", Type: feedback.EventClosed, At: time.Now().Add(time.Minute)}, feedback.Idempotency{}); err != nil {
			t.Fatal(err)
		}
		now := top.Add(2 * time.Minute) // past urgent's 60 s, within high's 180 s
		deadlines := map[model.Tier]time.Time{model.TierUrgent: now.Add(-time.Minute), model.TierHigh: now.Add(-3 * time.Minute)}
		ids, err := s.SLABreaches(ctx, deadlines, 10)
		if err != nil || !slices.Equal(ids, []string{"urgent-1"}) {
			t.Fatalf("SLABreaches = %v, %v; want [urgent-1]", ids, err)
		}
		a, ok, err := s.EscalateSLA(ctx, "urgent-1", now)
		if err != nil || !ok {
			t.Fatalf("EscalateSLA = %v, %v", ok, err)
		}
		if a.Kind != feedback.AlertKindSLA || a.Team != "sales" || a.Owner != "ana@example.com" || a.Tier.String() != "urgent" || !a.CreatedAt.Equal(now) {
			t.Errorf("escalation = %+v", a)
		}
		if _, ok, err := s.EscalateSLA(ctx, "urgent-1", now); err != nil || ok {
			t.Errorf("second EscalateSLA = %v, %v; want false", ok, err)
		}
		if _, ok, err := s.EscalateSLA(ctx, "answered", now); err != nil || ok {
			t.Errorf("EscalateSLA of an answered conversation = %v, %v; want false", ok, err)
		}
		if _, ok, err := s.EscalateSLA(ctx, "closed-1", now); err != nil || ok {
			t.Errorf("EscalateSLA of a closed conversation = %v, %v; want false", ok, err)
		}
		if ids, _ := s.SLABreaches(ctx, deadlines, 10); len(ids) != 0 {
			t.Errorf("breaches after escalation = %v, want none", ids)
		}
		if n, err := s.DispatchAlerts(ctx, now, 10); err != nil || n != 1 {
			t.Errorf("DispatchAlerts after escalation = %d, %v; want 1", n, err)
		}
	})
}

// A conversation whose latest decision retention has dropped is still
// escalated, to the unnamed team, instead of failing on every pass.
func TestEscalateSLAWithoutItsDecision(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		top := time.Now().UTC().Add(-time.Hour)
		d := newDecision("gone-1", "urgent")
		if _, err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Exec("UPDATE conversations SET first_top_at = ? WHERE id = ?", top, d.ConversationID).Error; err != nil {
			t.Fatal(err)
		}
		if err := s.db.Exec("DELETE FROM decisions WHERE id = ?", d.ID).Error; err != nil {
			t.Fatal(err)
		}
		a, ok, err := s.EscalateSLA(ctx, d.ConversationID, top.Add(time.Minute))
		if err != nil || !ok {
			t.Fatalf("EscalateSLA = %v, %v; want an escalation", ok, err)
		}
		if a.Team != "" || a.Owner != "" || a.DecisionID != d.ID {
			t.Errorf("escalation = %+v, want no team or owner, decision %s", a, d.ID)
		}
	})
}
