package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// demoLiveStore is what seeding the live queue and the users needs.
type demoLiveStore interface {
	feedback.LiveSource
	Record(ctx context.Context, d feedback.Decision) (feedback.Recorded, error)
	AddEvent(ctx context.Context, e feedback.Event, idem feedback.Idempotency) (feedback.Event, bool, error)
	Users(ctx context.Context) ([]feedback.User, error)
	CreateUser(ctx context.Context, u feedback.NewUser) (feedback.User, error)
}

// demoQueue is how many open conversations of each tier the demo leaves
// in the queue, so the queue and the alert feed are full on the first
// visit.
var demoQueue = map[model.Tier]int{model.TierUrgent: 4, model.TierHigh: 8, model.TierMedium: 10, model.TierLow: 12}

// seedDemoLive scores conversations of the last 40 minutes with the live
// ruleset and model, as the score endpoint would, so the demo opens on a
// live queue: open conversations in every tier, alerts waiting for labels,
// some answered, some past their SLA.
func seedDemoLive(ctx context.Context, store demoLiveStore, stdout io.Writer) error {
	live := feedback.NewLive(store, feedback.LiveOptions{})
	if err := live.Refresh(ctx); err != nil {
		return err
	}
	sc := live.Current()
	if sc == nil {
		return fmt.Errorf("no live ruleset")
	}
	world, err := newSimWorld(demoHistorySeed + 1)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	rng := mrand.New(mrand.NewPCG(demoHistorySeed, 1))
	left := map[model.Tier]int{}
	for t, n := range demoQueue {
		left[t] = n
	}
	added := 0
	for _, c := range world.Week(1, 2000, now.Add(-7*24*time.Hour)) {
		call := c.Calls[len(c.Calls)-1]
		d := sc.Scorer.Score(model.Input{Channel: c.Channel, Message: call.Message, Signals: call.Signals})
		if left[d.Tier] == 0 {
			continue
		}
		left[d.Tier]--
		at := now.Add(-time.Duration(rng.IntN(40*60)) * time.Second)
		signals, _ := json.Marshal(call.Signals)
		reasons, _ := json.Marshal(d.Reasons)
		route, _ := json.Marshal(d.Route)
		id := "live-" + c.ID
		rec := feedback.Decision{ID: uuid.Must(uuid.NewV7()).String(), ConversationID: id, Channel: c.Channel, Signals: signals,
			Score: d.Score, Tier: d.Tier, Reasons: reasons, Route: route, PolicyVersion: sc.PolicyVersion, ModelVersion: sc.ModelVersion,
			OccurredAt: at, CreatedAt: at, Alert: feedback.PlanAlert(sc.Scorer.Policy().Alerts(), c.Channel, d)}
		if _, err := store.Record(ctx, rec); err != nil {
			return err
		}
		added++
		// About a third of the less urgent chats were answered already.
		if d.Tier <= model.TierHigh && rng.IntN(3) == 0 {
			ev := feedback.Event{ConversationID: id, Type: feedback.EventFirstResponse, At: at.Add(time.Duration(30+rng.IntN(120)) * time.Second)}
			if ev.At.After(now) {
				ev.At = now
			}
			if _, _, err := store.AddEvent(ctx, ev, feedback.Idempotency{}); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "demo: scored %d live conversations of the last 40 minutes: the queue and the alert feed have work\n", added)
	return nil
}

// seedDemoUsers creates one user of each role when there is none and
// prints their passwords once.
func seedDemoUsers(ctx context.Context, store demoLiveStore, stdout io.Writer, addr string) error {
	users, err := store.Users(ctx)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		fmt.Fprintln(stdout, "demo: users already exist (hotlane user list); not creating any")
		return nil
	}
	fmt.Fprintf(stdout, "demo: sign in at %s/login as (passwords shown once):\n", baseURL(addr))
	for _, u := range []struct {
		role feedback.Role
		team string
	}{{feedback.RoleAgent, "sales"}, {feedback.RoleLead, "sales"}, {feedback.RoleAdmin, ""}} {
		var b [12]byte
		_, _ = rand.Read(b[:])
		password := base64.RawURLEncoding.EncodeToString(b[:])
		hash, err := feedback.HashPassword(password, feedback.DefaultBcryptCost)
		if err != nil {
			return err
		}
		email := string(u.role) + "@demo.hotlane.dev"
		if _, err := store.CreateUser(ctx, feedback.NewUser{Email: email, Role: u.role, Team: u.team, PasswordHash: hash}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %-6s %-24s %s\n", u.role, email, password)
	}
	return nil
}
