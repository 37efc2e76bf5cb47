package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func mustDestination(t *testing.T, s *Store, nd feedback.NewDestination) (feedback.Destination, string) {
	t.Helper()
	d, secret, err := s.CreateDestination(context.Background(), nd)
	if err != nil {
		t.Fatalf("CreateDestination(%+v): %v", nd, err)
	}
	return d, secret
}

func TestDestinations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		hook, secret := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://crm.example.com/h"})
		if !strings.HasPrefix(secret, webhookSecretPfx) || len(secret) != len(webhookSecretPfx)+64 {
			t.Errorf("webhook secret = %q, want whsec_ and 64 hex digits", secret)
		}
		_, slackSecret := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationSlack, URL: "https://hooks.slack.com/services/T/B/x", Lead: true})
		if slackSecret != "" {
			t.Errorf("slack destination got secret %q, want none", slackSecret)
		}
		mustDestination(t, s, feedback.NewDestination{Team: "support", Kind: feedback.DestinationFeed})

		bad := []feedback.NewDestination{
			{Team: "", Kind: feedback.DestinationFeed},
			{Team: " sales", Kind: feedback.DestinationFeed},
			{Team: "sales", Kind: "email", URL: "https://x"},
			{Team: "sales", Kind: feedback.DestinationFeed, URL: "https://x"},
			{Team: "sales", Kind: feedback.DestinationWebhook},
			{Team: "sales", Kind: feedback.DestinationWebhook, URL: "ftp://x/y"},
			{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://user:pw@x/y"},
			{Team: strings.Repeat("t", 129), Kind: feedback.DestinationFeed},
		}
		for _, nd := range bad {
			if _, _, err := s.CreateDestination(ctx, nd); !errors.Is(err, feedback.ErrInvalid) {
				t.Errorf("CreateDestination(%+v) = %v, want ErrInvalid", nd, err)
			}
		}

		all, err := s.ListDestinations(ctx, "")
		if err != nil || len(all) != 3 {
			t.Fatalf("ListDestinations = %d, %v; want 3", len(all), err)
		}
		sales, _ := s.ListDestinations(ctx, "sales")
		if len(sales) != 2 || sales[0].ID != hook.ID || !sales[1].Lead {
			t.Errorf("sales destinations = %+v", sales)
		}

		d, newSecret, err := s.RotateDestinationSecret(ctx, hook.ID, time.Hour)
		if err != nil || newSecret == secret || !d.HasPreviousSecret || d.PreviousSecretExpiresAt == nil {
			t.Fatalf("rotate = %+v, %q, %v", d, newSecret, err)
		}
		if _, _, err := s.RotateDestinationSecret(ctx, sales[1].ID, time.Hour); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("rotating a slack destination = %v, want ErrInvalid", err)
		}
		if _, _, err := s.RotateDestinationSecret(ctx, "nope", time.Hour); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("rotating an unknown destination = %v, want ErrNotFound", err)
		}
		d, _, err = s.RotateDestinationSecret(ctx, hook.ID, 0)
		if err != nil || d.HasPreviousSecret {
			t.Errorf("rotate with no grace = %+v, %v; want no previous secret", d, err)
		}

		if err := s.DeleteDestination(ctx, hook.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDestination(ctx, hook.ID); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("second delete = %v, want ErrNotFound", err)
		}
		if _, err := s.Destination(ctx, hook.ID); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("deleted destination = %v, want ErrNotFound", err)
		}
	})
}

func TestDispatchRoutesAndClaims(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		hook, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://a.example/h"})
		slack, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationSlack, URL: "https://b.example/s"})
		mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationFeed})
		lead, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationSlack, URL: "https://c.example/l", Lead: true})
		mustDestination(t, s, feedback.NewDestination{Team: "support", Kind: feedback.DestinationWebhook, URL: "https://d.example/h"})

		d := newDecision("conv-1", "urgent")
		if _, err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{}
		for _, kind := range []string{feedback.AlertKindTier, feedback.AlertKindReview, feedback.AlertKindSLA} {
			a, err := s.RaiseAlert(ctx, feedback.Alert{Kind: kind, ConversationID: "conv-1", DecisionID: d.ID,
				Channel: "web", Tier: model.TierUrgent, Score: 0.95, Team: "sales", CreatedAt: at})
			if err != nil {
				t.Fatal(err)
			}
			switch kind {
			case feedback.AlertKindTier:
				want[a.ID] = []string{hook.ID, slack.ID}
			case feedback.AlertKindReview:
				want[a.ID] = []string{hook.ID}
			case feedback.AlertKindSLA:
				want[a.ID] = []string{lead.ID}
			}
		}
		if _, err := s.RaiseAlert(ctx, feedback.Alert{Kind: "page", ConversationID: "c"}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("RaiseAlert with kind page = %v, want ErrInvalid", err)
		}

		n, err := s.DispatchAlerts(ctx, at, 2)
		if err != nil || n != 2 {
			t.Fatalf("first DispatchAlerts = %d, %v; want 2 (the limit)", n, err)
		}
		if n, err = s.DispatchAlerts(ctx, at, 2); err != nil || n != 1 {
			t.Fatalf("second DispatchAlerts = %d, %v; want 1", n, err)
		}
		if n, err = s.DispatchAlerts(ctx, at, 2); err != nil || n != 0 {
			t.Fatalf("third DispatchAlerts = %d, %v; want 0", n, err)
		}
		total := 0
		for id, dests := range want {
			ds, err := s.AlertDeliveries(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ds {
				got = append(got, x.DestinationID)
				if x.Status != feedback.DeliveryPending || !x.NextAttemptAt.Equal(at) {
					t.Errorf("new delivery = %+v, want pending and due at %v", x, at)
				}
			}
			slices.Sort(got)
			slices.Sort(dests)
			if !slices.Equal(got, dests) {
				t.Errorf("alert %s went to %v, want %v", id, got, dests)
			}
			total += len(ds)
		}

		if due, err := s.ClaimDeliveries(ctx, at.Add(-time.Second), time.Minute, 10); err != nil || len(due) != 0 {
			t.Fatalf("claim before due = %d, %v; want none", len(due), err)
		}
		due, err := s.ClaimDeliveries(ctx, at, time.Minute, 10)
		if err != nil || len(due) != total {
			t.Fatalf("claim = %d, %v; want %d", len(due), err, total)
		}
		for _, p := range due {
			if p.Destination.Kind == feedback.DestinationWebhook && len(p.Secrets) != 1 {
				t.Errorf("webhook delivery has %d secrets, want 1", len(p.Secrets))
			}
			var got, want any
			_ = json.Unmarshal(p.Alert.Reasons, &got)
			_ = json.Unmarshal(d.Reasons, &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("reasons = %s, want the decision's %s", p.Alert.Reasons, d.Reasons)
			}
		}
		if again, _ := s.ClaimDeliveries(ctx, at.Add(59*time.Second), time.Minute, 10); len(again) != 0 {
			t.Errorf("claimed %d leased deliveries, want none", len(again))
		}
		again, err := s.ClaimDeliveries(ctx, at.Add(time.Minute), time.Minute, 10)
		if err != nil || len(again) != total {
			t.Fatalf("claim after the lease = %d, %v; want %d", len(again), err, total)
		}

		// The first claim's lease is gone: its outcome is recorded as an
		// attempt but does not move the delivery.
		stale := due[0]
		if err := s.FinishDelivery(ctx, feedback.DeliveryOutcome{DeliveryID: stale.ID, Claim: stale.Claim, Attempt: 1,
			At: at, Delivered: true, StatusCode: 200}); err != nil {
			t.Fatal(err)
		}
		var current feedback.PendingDelivery
		for _, p := range again {
			if p.ID == stale.ID {
				current = p
			}
		}
		ds, _ := s.AlertDeliveries(ctx, stale.Alert.ID)
		for _, x := range ds {
			if x.ID == stale.ID && x.Status != feedback.DeliveryPending {
				t.Errorf("stale claim moved the delivery to %s", x.Status)
			}
		}
		retry := at.Add(2 * time.Minute)
		if err := s.FinishDelivery(ctx, feedback.DeliveryOutcome{DeliveryID: current.ID, Claim: current.Claim, Attempt: 2,
			At: at.Add(time.Minute), StatusCode: 503, Error: "receiver answered 503", RetryAt: &retry}); err != nil {
			t.Fatal(err)
		}
		atts, err := s.DeliveryAttempts(ctx, stale.ID)
		if err != nil || len(atts) != 2 || atts[1].StatusCode != 503 || atts[1].Error == "" {
			t.Fatalf("attempts = %+v, %v", atts, err)
		}
		ds, _ = s.AlertDeliveries(ctx, stale.Alert.ID)
		for _, x := range ds {
			if x.ID == stale.ID && (x.Status != feedback.DeliveryPending || x.Attempts != 1 || !x.NextAttemptAt.Equal(retry) || x.LastStatus != 503) {
				t.Errorf("after a failed attempt delivery = %+v, want pending, 1 attempt counted (the stale one is only recorded), due %v", x, retry)
			}
		}

		// Deleting a destination cancels what is still pending for it.
		if err := s.DeleteDestination(ctx, hook.ID); err != nil {
			t.Fatal(err)
		}
		for id := range want {
			ds, _ := s.AlertDeliveries(ctx, id)
			for _, x := range ds {
				if x.DestinationID == hook.ID && x.Status != feedback.DeliveryCanceled {
					t.Errorf("delivery to a deleted destination is %s, want canceled", x.Status)
				}
			}
		}
	})
}

// TestDeletedDestinationGetsNothing covers deliveries made for a
// destination that a concurrent DeleteDestination had just deleted: the
// delete's cancel did not see them, so the claim must cancel them rather
// than send them.
func TestDeletedDestinationGetsNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		gone, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://gone.example/h"})
		kept, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://kept.example/h"})
		d := newDecision("conv-1", "urgent")
		if _, err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		a, err := s.RaiseAlert(ctx, feedback.Alert{Kind: feedback.AlertKindTier, ConversationID: "conv-1", DecisionID: d.ID,
			Channel: "web", Tier: model.TierUrgent, Score: 0.95, Team: "sales", CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.DispatchAlerts(ctx, at, 10); err != nil || n != 1 {
			t.Fatalf("DispatchAlerts = %d, %v; want 1", n, err)
		}
		// The state the race left: the destination deleted, its delivery
		// still pending.
		if err := s.db.Exec("UPDATE destinations SET deleted_at = ? WHERE id = ?", at, gone.ID).Error; err != nil {
			t.Fatal(err)
		}

		due, err := s.ClaimDeliveries(ctx, at, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range due {
			got = append(got, p.Destination.ID)
		}
		if want := []string{kept.ID}; !slices.Equal(got, want) {
			t.Errorf("claimed deliveries to %v, want only the kept destination %v", got, want)
		}
		ds, err := s.AlertDeliveries(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ds {
			if x.DestinationID == gone.ID && x.Status != feedback.DeliveryCanceled {
				t.Errorf("delivery to the deleted destination is %s, want canceled", x.Status)
			}
		}
		if again, err := s.ClaimDeliveries(ctx, at.Add(time.Hour), time.Minute, 10); err != nil || len(again) != 1 || again[0].Destination.ID != kept.ID {
			t.Errorf("claim after the lease = %d deliveries, %v; want the kept one only", len(again), err)
		}
	})
}

// TestDispatchWaitsForDestinationDelete holds a destination deleted but
// not yet committed, as DeleteDestination does between its two statements,
// while DispatchAlerts runs: the dispatch must wait for the delete and then
// make no delivery for the deleted destination. PostgreSQL only: SQLite
// runs one write transaction at a time.
func TestDispatchWaitsForDestinationDelete(t *testing.T) {
	s := openStore(t, freshPostgres(t), Options{})
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	dest, _ := mustDestination(t, s, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: "https://gone.example/h"})
	d := newDecision("conv-1", "urgent")
	if _, err := s.RecordDecision(ctx, d); err != nil {
		t.Fatal(err)
	}
	a, err := s.RaiseAlert(ctx, feedback.Alert{Kind: feedback.AlertKindTier, ConversationID: "conv-1", DecisionID: d.ID,
		Channel: "web", Tier: model.TierUrgent, Team: "sales", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}

	del := s.db.Begin()
	// Ends the transaction if the test fails first (a no-op after Commit),
	// before the schema it locks is dropped.
	t.Cleanup(func() { del.Rollback() })
	if err := del.Exec("UPDATE destinations SET deleted_at = ? WHERE id = ?", at, dest.ID).Error; err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.DispatchAlerts(ctx, at, 10)
		done <- err
	}()
	// Wait until the dispatch blocks on the destination's row lock (or
	// give up after a while: committing early only weakens the test).
	for range 100 {
		var waiting int64
		err := s.db.Raw(`SELECT count(*) FROM pg_stat_activity
  WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%destinations%FOR SHARE%'`).Scan(&waiting).Error
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("DispatchAlerts returned (%v) while the delete was uncommitted; want it to wait", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// What DeleteDestination's cancel sees: nothing yet.
	if err := del.Exec("UPDATE deliveries SET status = 'canceled' WHERE destination_id = ? AND status = 'pending'", dest.ID).Error; err != nil {
		t.Fatal(err)
	}
	if err := del.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ds, err := s.AlertDeliveries(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Errorf("deliveries after dispatch = %+v, want none: the destination was deleted", ds)
	}
}
