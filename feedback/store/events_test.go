package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func TestAddEvent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.RecordDecision(ctx, newDecision("c1", "high")); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		none := feedback.Idempotency{}

		// first_response keeps the earliest.
		for _, at := range []time.Time{t0.Add(time.Minute), t0, t0.Add(2 * time.Minute)} {
			if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: "c1", Type: feedback.EventFirstResponse, At: at}, none); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.FirstResponseAt(ctx, "c1")
		if err != nil || got == nil || !got.Equal(t0) {
			t.Errorf("first_response_at = %v, %v; want %v", got, err, t0)
		}

		v := 1200.5
		ev, replayed, err := s.AddEvent(ctx, feedback.Event{ConversationID: "c1", Type: feedback.EventConverted, Value: &v, Agent: "ana"}, none)
		if err != nil || replayed || ev.ID == "" || ev.At.IsZero() || *ev.Value != v {
			t.Fatalf("converted = %+v, %v, %v", ev, replayed, err)
		}
		events, err := s.ConversationEvents(ctx, "c1")
		if err != nil || len(events) != 4 {
			t.Fatalf("events = %d, %v; want 4", len(events), err)
		}

		tests := []struct {
			name string
			e    feedback.Event
			want error
		}{
			{"unknown conversation", feedback.Event{ConversationID: "nope", Type: feedback.EventLost}, feedback.ErrNotFound},
			{"unknown type", feedback.Event{ConversationID: "c1", Type: "won"}, feedback.ErrInvalid},
			{"tier_feedback without tier", feedback.Event{ConversationID: "c1", Type: feedback.EventTierFeedback}, feedback.ErrInvalid},
			{"tier on another type", feedback.Event{ConversationID: "c1", Type: feedback.EventLost, Tier: model.TierHigh}, feedback.ErrInvalid},
			{"bad tier", feedback.Event{ConversationID: "c1", Type: feedback.EventTierFeedback, Tier: feedback.ParseEventTier("hot")}, feedback.ErrInvalid},
			{"value on lost", feedback.Event{ConversationID: "c1", Type: feedback.EventLost, Value: &v}, feedback.ErrInvalid},
		}
		for _, tt := range tests {
			if _, _, err := s.AddEvent(ctx, tt.e, none); !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
		}
	})
}

func TestAddEventIdempotency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.RecordDecision(ctx, newDecision("c1", "high")); err != nil {
			t.Fatal(err)
		}
		key := feedback.Idempotency{APIKeyID: 1, Key: "k-1"}
		e := feedback.Event{ConversationID: "c1", Type: feedback.EventLost, Agent: "ana"}
		first, replayed, err := s.AddEvent(ctx, e, key)
		if err != nil || replayed {
			t.Fatalf("first: %v, replayed %v", err, replayed)
		}
		again, replayed, err := s.AddEvent(ctx, e, key)
		if err != nil || !replayed || again != first {
			t.Fatalf("retry = %+v, replayed %v, %v; want %+v replayed", again, replayed, err, first)
		}
		// Same key, other body: an idempotency conflict, which is also a
		// conflict.
		other := e
		other.Type = feedback.EventClosed
		if _, _, err := s.AddEvent(ctx, other, key); !errors.Is(err, feedback.ErrIdempotencyConflict) || !errors.Is(err, feedback.ErrConflict) {
			t.Errorf("other body: err = %v, want ErrIdempotencyConflict and ErrConflict", err)
		}
		// The key is scoped by API key.
		if _, replayed, err := s.AddEvent(ctx, e, feedback.Idempotency{APIKeyID: 2, Key: "k-1"}); err != nil || replayed {
			t.Errorf("other API key: replayed %v, %v; want a new write", replayed, err)
		}
		// A failed request does not take the key.
		bad := feedback.Idempotency{APIKeyID: 1, Key: "k-2"}
		if _, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: "nope", Type: feedback.EventLost}, bad); !errors.Is(err, feedback.ErrNotFound) {
			t.Fatalf("unknown conversation: %v", err)
		}
		if _, replayed, err := s.AddEvent(ctx, e, bad); err != nil || replayed {
			t.Errorf("key after a failed request: replayed %v, %v; want a new write", replayed, err)
		}

		// Concurrent retries write once.
		conc := feedback.Idempotency{APIKeyID: 1, Key: "k-3"}
		var wg sync.WaitGroup
		ids := make([]string, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Go(func() {
				ev, _, err := s.AddEvent(ctx, feedback.Event{ConversationID: "c1", Type: feedback.EventClosed}, conc)
				ids[i], errs[i] = ev.ID, err
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Errorf("concurrent retry %d: id %q, %v; want %q", i, ids[i], errs[i], ids[0])
			}
		}
		events, err := s.ConversationEvents(ctx, "c1")
		if err != nil || len(events) != 4 {
			t.Errorf("events = %d, %v; want 4 (lost, lost by key 2, lost by k-2, closed)", len(events), err)
		}

		// A key older than a day is free again.
		if err := s.db.Exec("UPDATE idempotency_keys SET created_at = ? WHERE key = ?",
			now().Add(-feedback.IdempotencyTTL-time.Minute), "k-1").Error; err != nil {
			t.Fatal(err)
		}
		if _, replayed, err := s.AddEvent(ctx, other, key); err != nil || replayed {
			t.Errorf("expired key with another body: replayed %v, %v; want a new write", replayed, err)
		}
	})
}
