package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// TestObserveChatwoot: a visitor message counts once however often it is
// seen, and a contact's second conversation is a returning visit.
func TestObserveChatwoot(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		obs := func(display, contact, msg int64) feedback.ChatwootState {
			t.Helper()
			text := "hi"
			st, _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: feedback.ChatwootConversationID(1, display),
				AccountID: 1, DisplayID: display, ContactID: contact, MessageID: msg, Message: &text, At: at})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		if st := obs(10, 42, 0); st.Messages != 0 || st.Returning {
			t.Errorf("first sight: %+v", st)
		}
		hi := "hi"
		for i, msg := range []int64{100, 100, 99, 101, 101} {
			_, fresh, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: "chatwoot-1-10",
				AccountID: 1, DisplayID: 10, ContactID: 42, MessageID: msg, Message: &hi, At: at})
			if err != nil || fresh != (i == 0 || i == 3) {
				t.Errorf("message %d (#%d): new %v, %v", msg, i, fresh, err)
			}
		}
		st := obs(10, 42, 0)
		if st.Messages != 2 || st.LastMessageID != 101 || st.LastMessage == nil || *st.LastMessage != "hi" {
			t.Errorf("after messages 100, 100, 99, 101, 101: %+v, want 2 counted, last 101", st)
		}
		if st := obs(11, 42, 200); !st.Returning || st.Messages != 1 {
			t.Errorf("the contact's second conversation: %+v, want returning with 1 message", st)
		}
		if st := obs(12, 43, 0); st.Returning {
			t.Errorf("another contact: returning")
		}
		if _, err := s.ChatwootConversation(ctx, "chatwoot-1-99"); err == nil {
			t.Error("an unseen conversation was found")
		}
	})
}

// TestChatwootWriteQueue: writes of one conversation go out one at a
// time in order, a newer write of a kind supersedes a pending one, and
// only the claim holder finishes a write.
func TestChatwootWriteQueue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		queue := func(display int64, kinds ...string) {
			t.Helper()
			id := feedback.ChatwootConversationID(1, display)
			if _, _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: display, At: at}); err != nil {
				t.Fatal(err)
			}
			queued, err := s.UpdateChatwoot(ctx, id, at, func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
				st.Priority, st.NotedTier = "high", model.TierHigh
				var ws []feedback.ChatwootWrite
				for _, k := range kinds {
					ws = append(ws, feedback.ChatwootWrite{Kind: k, Body: []byte(`{"k":"` + k + `"}`)})
				}
				return ws
			})
			if err != nil || len(queued) != len(kinds) || queued[0].DisplayID != display || queued[0].Status != feedback.DeliveryPending {
				t.Fatalf("queued %+v, %v", queued, err)
			}
			at = at.Add(time.Millisecond)
		}
		queue(1, "priority", "note")
		queue(1, "priority", "attributes") // supersedes the first priority
		queue(2, "priority")
		st, err := s.ChatwootConversation(ctx, "chatwoot-1-1")
		if err != nil || st.Priority != "high" || st.NotedTier != model.TierHigh {
			t.Errorf("state %+v (%v), want what was written recorded", st, err)
		}
		var order []string
		for round := 0; round < 5; round++ {
			got, err := s.ClaimChatwootWrites(ctx, at, time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			convs := map[string]bool{}
			for _, w := range got {
				if convs[w.ConversationID] {
					t.Errorf("round %d: two writes of %s claimed at once", round, w.ConversationID)
				}
				convs[w.ConversationID] = true
				if w.ConversationID == "chatwoot-1-1" {
					order = append(order, w.Kind)
				}
				if round == 0 {
					// A stale claim changes nothing.
					if err := s.FinishChatwootWrite(ctx, feedback.ChatwootOutcome{ID: w.ID, Claim: "other", At: at, Delivered: true}); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.FinishChatwootWrite(ctx, feedback.ChatwootOutcome{ID: w.ID, Claim: w.Claim, At: at, StatusCode: 200, Delivered: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if want := []string{"note", "priority", "attributes"}; !slices.Equal(order, want) {
			t.Errorf("conversation 1 went out as %v, want %v", order, want)
		}
		ws, err := s.ChatwootWrites(ctx, "chatwoot-1-1")
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, w := range ws {
			statuses = append(statuses, w.Kind+":"+w.Status)
			if w.Status == feedback.DeliveryDelivered && w.Attempts != 1 {
				t.Errorf("%s: %d attempts, want 1", w.Kind, w.Attempts)
			}
		}
		if want := []string{"priority:superseded", "note:delivered", "priority:delivered", "attributes:delivered"}; !slices.Equal(statuses, want) {
			t.Errorf("writes %v, want %v", statuses, want)
		}
		counts, err := s.ChatwootWriteCounts(ctx)
		if err != nil || counts[feedback.DeliveryDelivered] != 4 || counts[feedback.ChatwootSuperseded] != 1 {
			t.Errorf("counts %v (%v)", counts, err)
		}

		// Receipts: a delivery id is taken once, released, then taken again.
		for i, want := range []bool{true, false} {
			if fresh, err := s.ClaimChatwootReceipt(ctx, "d-1", at); err != nil || fresh != want {
				t.Errorf("claim %d: %v, %v; want %v", i, fresh, err, want)
			}
		}
		if err := s.ReleaseChatwootReceipt(ctx, "d-1"); err != nil {
			t.Fatal(err)
		}
		if fresh, _ := s.ClaimChatwootReceipt(ctx, "d-1", at); !fresh {
			t.Error("a released delivery id is not taken again")
		}
		if err := s.PurgeChatwootReceipts(ctx, at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if fresh, _ := s.ClaimChatwootReceipt(ctx, "d-1", at); !fresh {
			t.Error("a purged delivery id is not taken again")
		}
	})
}

// TestChatwootWriteOrderAcrossRetries: a write waiting for its retry
// holds the conversation's later writes; other conversations go on.
func TestChatwootWriteOrderAcrossRetries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		for _, display := range []int64{1, 2} {
			id := feedback.ChatwootConversationID(1, display)
			if _, _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: display, At: at}); err != nil {
				t.Fatal(err)
			}
			_, err := s.UpdateChatwoot(ctx, id, at, func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
				return []feedback.ChatwootWrite{{Kind: feedback.ChatwootTeam, Body: []byte(`{}`)}, {Kind: feedback.ChatwootAssignee, Body: []byte(`{}`)}}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		claim := func(at time.Time) []string {
			t.Helper()
			got, err := s.ClaimChatwootWrites(ctx, at, time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, w := range got {
				out = append(out, w.ConversationID+" "+w.Kind)
				o := feedback.ChatwootOutcome{ID: w.ID, Claim: w.Claim, At: at, Delivered: true}
				if w.ConversationID == "chatwoot-1-1" && w.Kind == feedback.ChatwootTeam && w.Attempts == 0 {
					retry := at.Add(30 * time.Second)
					o.Delivered, o.StatusCode, o.Error, o.RetryAt = false, 503, "chatwoot answered 503", &retry
				}
				if err := s.FinishChatwootWrite(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			slices.Sort(out)
			return out
		}
		if got, want := claim(at), []string{"chatwoot-1-1 team", "chatwoot-1-2 team"}; !slices.Equal(got, want) {
			t.Errorf("first round %v, want %v", got, want)
		}
		// Conversation 1's team waits for its retry; its agent waits too.
		if got, want := claim(at.Add(time.Second)), []string{"chatwoot-1-2 assignee"}; !slices.Equal(got, want) {
			t.Errorf("while the team waits %v, want %v", got, want)
		}
		if got, want := claim(at.Add(31*time.Second)), []string{"chatwoot-1-1 team"}; !slices.Equal(got, want) {
			t.Errorf("at the retry %v, want %v", got, want)
		}
		if got, want := claim(at.Add(32*time.Second)), []string{"chatwoot-1-1 assignee"}; !slices.Equal(got, want) {
			t.Errorf("after the retry %v, want %v", got, want)
		}
	})
}

// TestChatwootClaimsDoNotOverlap: workers claiming at once never get the
// same write, so none is sent twice.
func TestChatwootClaimsDoNotOverlap(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		const convs = 60
		for d := int64(1); d <= convs; d++ {
			id := feedback.ChatwootConversationID(1, d)
			if _, _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: d, At: at}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpdateChatwoot(ctx, id, at, func(*feedback.ChatwootState) []feedback.ChatwootWrite {
				return []feedback.ChatwootWrite{{Kind: feedback.ChatwootNote, Body: []byte(`{}`)}}
			}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				for {
					got, err := s.ClaimChatwootWrites(ctx, at, time.Minute, 4)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, w := range got {
						seen[w.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != convs {
			t.Errorf("%d writes claimed, want %d", len(seen), convs)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("write %s claimed %d times", id, n)
			}
		}
	})
}
