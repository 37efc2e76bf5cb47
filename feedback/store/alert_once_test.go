package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// twoStores opens two stores on one fresh database of engine e, as two
// server processes would.
func twoStores(t *testing.T, e engine) (*Store, *Store) {
	t.Helper()
	dsn := e.dsn(t)
	return openStore(t, dsn, Options{}), openStore(t, dsn, Options{})
}

// recordBoth records a and b at the same time, a on one store and b on the
// other, and returns what each was told.
func recordBoth(t *testing.T, sa, sb *Store, a, b feedback.Decision) (feedback.Recorded, feedback.Recorded) {
	t.Helper()
	ctx := context.Background()
	var ra, rb feedback.Recorded
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		var err error
		if ra, err = sa.Record(ctx, a); err != nil {
			t.Errorf("store A: Record(%s): %v", a.ConversationID, err)
		}
	})
	wg.Go(func() {
		<-start
		var err error
		if rb, err = sb.Record(ctx, b); err != nil {
			t.Errorf("store B: Record(%s): %v", b.ConversationID, err)
		}
	})
	close(start)
	wg.Wait()
	return ra, rb
}

// TestTwoStoresOneDatabaseAlertOnce has two processes score the first
// decision of the same new conversation at the same time: exactly one may
// fire (or request a review), the other must see the first's alert state,
// and the conversation must count both decisions.
func TestTwoStoresOneDatabaseAlertOnce(t *testing.T) {
	const rounds = 30
	cases := []struct {
		name     string
		decision func(conv string, at time.Duration) feedback.Decision
		kind     string
		// wantOther is the outcome of the decision that came second.
		wantOther string
	}{
		{
			name:      "tier",
			decision:  func(conv string, at time.Duration) feedback.Decision { return alertingDecision(conv, "high", at) },
			kind:      feedback.AlertKindTier,
			wantOther: "tier/deduplicated/duplicate",
		},
		{
			name: "review",
			decision: func(conv string, at time.Duration) feedback.Decision {
				d := alertingDecision(conv, "low", at)
				d.Alert.ExplorationRate = 1 // every conversation is in the sample
				return d
			},
			kind:      feedback.AlertKindReview,
			wantOther: "-",
		},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					sa, sb := twoStores(t, e)
					ctx := context.Background()
					for i := range rounds {
						conv := fmt.Sprintf("conv-%d", i)
						// Rounds two hours apart: each has the team's whole budget.
						at := time.Duration(i) * 2 * time.Hour
						da, db := tc.decision(conv, at), tc.decision(conv, at)
						ra, rb := recordBoth(t, sa, sb, da, db)

						first, second := ra, rb
						if ra.PreviousTier.String() != "" {
							first, second = rb, ra
						}
						if got, want := []model.Tier{first.PreviousTier, second.PreviousTier}, []model.Tier{model.TierNone, da.Tier}; !slices.Equal(got, want) {
							t.Errorf("%s: previous tiers = %q, want %q (one new, one after it)", conv, got, want)
						}
						if got, want := alertString(first.Alert), tc.kind+"/fired/"; got != want {
							t.Errorf("%s: first alert = %s, want %s", conv, got, want)
						}
						if got := alertString(second.Alert); got != tc.wantOther {
							t.Errorf("%s: second alert = %s, want %s", conv, got, tc.wantOther)
						}

						var fired int64
						if err := sa.db.Table("alerts").Where("conversation_id = ? AND kind = ? AND status = ?", conv, tc.kind, feedback.AlertStatusFired).
							Count(&fired).Error; err != nil {
							t.Fatal(err)
						}
						if fired != 1 {
							t.Errorf("%s: %d fired %s alerts, want 1", conv, fired, tc.kind)
						}
						c, err := sa.Conversation(ctx, conv)
						if err != nil {
							t.Fatal(err)
						}
						if c.Decisions != 2 || c.Tier != da.Tier || !c.FirstSeenAt.Equal(da.CreatedAt) {
							t.Errorf("%s: decisions %d, tier %q, first seen %v; want 2, %q, %v",
								conv, c.Decisions, c.Tier, c.FirstSeenAt, da.Tier, da.CreatedAt)
						}
					}
				})
			}
		})
	}
}

// TestTwoStoresMixedBatchesPostgres has one process commit a batch that
// cannot alert (flushPostgres: lock the rows that exist, then insert the new
// ones) while another commits an alerting batch (flushPostgresAlerts, with
// its placeholders) of the same two conversations, a new one and an
// existing one that sorts after it. Were the alerting batch to insert its
// placeholder before locking the existing row, the two would deadlock; the
// batches are flushed directly so that each holds both conversations.
func TestTwoStoresMixedBatchesPostgres(t *testing.T) {
	const rounds = 40
	e := engines[slices.IndexFunc(engines, func(e engine) bool { return e.name == DialectPostgres })]
	sa, sb := twoStores(t, e)
	ctx := context.Background()
	batch := func(tier string, at time.Duration, convs ...string) []*writeReq {
		var b []*writeReq
		for _, c := range convs {
			d := alertingDecision(c, tier, at)
			b = append(b, &writeReq{ctx: ctx, d: d, done: make(chan writeResult, 1)})
		}
		return b
	}
	for i := range rounds {
		newConv, oldConv := fmt.Sprintf("r%02d-a", i), fmt.Sprintf("r%02d-b", i)
		at := time.Duration(i) * 2 * time.Hour
		recordAlerting(t, sa, alertingDecision(oldConv, "low", at))
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			if err := sa.flushPostgres(ctx, batch("low", at+time.Second, newConv, oldConv)); err != nil {
				t.Errorf("round %d: batch without alerts: %v", i, err)
			}
		})
		wg.Go(func() {
			<-start
			if err := sb.flushPostgres(ctx, batch("high", at+time.Second, newConv, oldConv)); err != nil {
				t.Errorf("round %d: alerting batch: %v", i, err)
			}
		})
		close(start)
		wg.Wait()
		for conv, want := range map[string]int64{newConv: 2, oldConv: 3} {
			c, err := sa.Conversation(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if c.Decisions != want {
				t.Errorf("%s: %d decisions, want %d", conv, c.Decisions, want)
			}
		}
	}
}
