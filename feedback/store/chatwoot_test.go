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
			st, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: feedback.ChatwootConversationID(1, display),
				AccountID: 1, DisplayID: display, ContactID: contact, MessageID: msg, Message: &text, At: at})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		if st := obs(10, 42, 0); st.Messages != 0 || st.Returning {
			t.Errorf("first sight: %+v", st)
		}
		for _, msg := range []int64{100, 100, 99, 101, 101} {
			obs(10, 42, msg)
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

// TestChatwootWriteQueue: writes of one lane of a conversation go out
// one at a time in order, a newer write of a kind supersedes a pending one, and
// only the claim holder finishes a write.
func TestChatwootWriteQueue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		queue := func(display int64, kinds ...string) {
			t.Helper()
			id := feedback.ChatwootConversationID(1, display)
			if _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: display, At: at}); err != nil {
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
			lanes := map[string]bool{}
			for _, w := range got {
				lane := w.ConversationID + " " + feedback.ChatwootLane(w.Kind)
				if lanes[lane] {
					t.Errorf("round %d: two writes of %s claimed at once", round, lane)
				}
				lanes[lane] = true
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
		if n, err := s.PurgeChatwootReceipts(ctx, at.Add(time.Second), 10); err != nil || n != 1 {
			t.Fatalf("purged %d, %v; want 1", n, err)
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
			if _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: display, At: at}); err != nil {
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
			if _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: d, At: at}); err != nil {
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

// TestChatwootAskedState: what Hotlane asked for is known while queued or
// delivered; a write that fails for good gives its request up; a field
// left to someone else cancels its queued write; a new team goes out
// before the agent write that waited.
func TestChatwootAskedState(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		id := "chatwoot-1-5"
		if _, err := s.ObserveChatwoot(ctx, feedback.ChatwootObservation{ConversationID: id, AccountID: 1, DisplayID: 5, At: at}); err != nil {
			t.Fatal(err)
		}
		var written map[string][]string
		update := func(fn func(st *feedback.ChatwootState) []feedback.ChatwootWrite) {
			t.Helper()
			if _, err := s.UpdateChatwoot(ctx, id, at, func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
				written = st.Written
				return fn(st)
			}); err != nil {
				t.Fatal(err)
			}
			at = at.Add(time.Second)
		}
		sendAll := func(fail map[string]bool) []string {
			t.Helper()
			var sent []string
			for range 10 {
				got, err := s.ClaimChatwootWrites(ctx, at, time.Minute, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					break
				}
				for _, w := range got {
					sent = append(sent, w.Kind+"="+w.Value)
					o := feedback.ChatwootOutcome{ID: w.ID, Claim: w.Claim, At: at, Delivered: !fail[w.Kind], StatusCode: 200}
					if fail[w.Kind] {
						o.StatusCode, o.Error = 403, "chatwoot answered 403"
					}
					if err := s.FinishChatwootWrite(ctx, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			return sent
		}
		ask := func(kind, value string) func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
			return func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
				switch kind {
				case feedback.ChatwootPriority:
					st.Priority = value
				case feedback.ChatwootTeam:
					st.TeamID = idOf(value)
				case feedback.ChatwootAssignee:
					st.AssigneeID = idOf(value)
				}
				return []feedback.ChatwootWrite{{Kind: kind, Value: value, Body: []byte(`{}`)}}
			}
		}
		update(ask(feedback.ChatwootPriority, "low"))
		sendAll(nil)
		update(ask(feedback.ChatwootPriority, "high"))
		update(func(*feedback.ChatwootState) []feedback.ChatwootWrite { return nil })
		if got := written[feedback.ChatwootPriority]; !slices.Equal(sortedCopy(got), []string{"high", "low"}) {
			t.Errorf("written priorities %v, want low (delivered) and high (queued)", got)
		}
		sendAll(map[string]bool{feedback.ChatwootPriority: true}) // high fails for good
		st, _ := s.ChatwootConversation(ctx, id)
		if st.Priority != "low" {
			t.Errorf("after high failed for good the asked priority is %q, want low (the last delivered)", st.Priority)
		}
		update(func(*feedback.ChatwootState) []feedback.ChatwootWrite { return nil })
		if got := written[feedback.ChatwootPriority]; !slices.Equal(got, []string{"low"}) {
			t.Errorf("written priorities %v, want low alone", got)
		}

		// Someone else takes the priority while Hotlane's urgent is queued.
		update(ask(feedback.ChatwootPriority, "urgent"))
		update(func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
			st.Priority = feedback.ChatwootLeftAlone
			return nil
		})
		if sent := sendAll(nil); len(sent) != 0 {
			t.Errorf("sent %v after the priority was left to someone else", sent)
		}

		// An agent write waits behind a failing team; a new team is sent
		// before it.
		update(ask(feedback.ChatwootTeam, "2"))
		update(ask(feedback.ChatwootAssignee, "7"))
		got, err := s.ClaimChatwootWrites(ctx, at, time.Minute, 10)
		if err != nil || len(got) != 1 || got[0].Kind != feedback.ChatwootTeam {
			t.Fatalf("claimed %+v, %v; want the team alone", got, err)
		}
		retry := at.Add(time.Minute)
		if err := s.FinishChatwootWrite(ctx, feedback.ChatwootOutcome{ID: got[0].ID, Claim: got[0].Claim, At: at, StatusCode: 503, RetryAt: &retry}); err != nil {
			t.Fatal(err)
		}
		update(ask(feedback.ChatwootTeam, "3"))
		at = at.Add(2 * time.Minute)
		if sent, want := sendAll(nil), []string{"team=3", "assignee=7"}; !slices.Equal(sent, want) {
			t.Errorf("sent %v, want %v", sent, want)
		}
	})
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
