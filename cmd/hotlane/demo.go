package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

//go:embed demo.yaml
var demoPolicy []byte

// demoStore is what seeding needs from the store.
type demoStore interface {
	LivePolicy(ctx context.Context) (feedback.PolicyVersion, error)
	PublishPolicy(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error)
	ListAPIKeys(ctx context.Context) ([]feedback.APIKey, error)
	CreateAPIKey(ctx context.Context, name string, scopes []string) (feedback.APIKey, string, error)
	ImportHistory(ctx context.Context, rows []feedback.ImportedConversation) (feedback.ImportResult, error)
	jobs.TuneStore
	demoLiveStore
}

// Demo history: three ISO weeks of past conversations from the synthetic
// world of hotlane simulate, and this week's so far, each with what agents
// and the platform said of it.
const (
	demoHistoryWeeks = 3
	demoHistoryWeek  = 800
	demoHistorySeed  = 7
	// demoSettled is how long ago a conversation of this week started for
	// the history to hold it: its outcome, labels and review (at most
	// two and a half hours after it started) are then past.
	demoSettled = 4 * time.Hour
)

// seedDemo publishes the demo ruleset and creates an all-scopes API key,
// each only when the database has none, and prints what it created. With
// history, a new ruleset also gets past conversations and a first tuning
// run. A second start seeds nothing and says so.
func seedDemo(ctx context.Context, store demoStore, stdout io.Writer, log *slog.Logger, addr string, history bool) error {
	_, err := store.LivePolicy(ctx)
	switch {
	case errors.Is(err, feedback.ErrNotFound):
		doc, compiled, canonical, err := compilePolicy(demoPolicy)
		if err != nil {
			return fmt.Errorf("demo policy: %w", err)
		}
		pv, err := store.PublishPolicy(ctx, canonical, string(demoPolicy), "demo", "demo policy seeded by serve --demo")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "demo: published ruleset version %d with %d rules:\n", pv.Version, len(doc.Rules))
		for _, r := range compiled.Doc().Rules {
			floor := ""
			if r.TierFloor != "" {
				floor = ", at least " + r.TierFloor
			}
			fmt.Fprintf(stdout, "  %-20s %+5.1f points%s\n", r.Name, r.Points, floor)
		}
		fmt.Fprintf(stdout, "demo: thresholds for channels %v (others use default), %d routes\n",
			compiled.Channels(), len(doc.Routes))
		if history {
			if err := seedDemoHistory(ctx, store, compiled, pv.Version, time.Now(), stdout, log); err != nil {
				return fmt.Errorf("history: %w", err)
			}
			if err := seedDemoLive(ctx, store, stdout); err != nil {
				return fmt.Errorf("live queue: %w", err)
			}
		}
	case err != nil:
		return err
	default:
		log.Info("demo: a ruleset is already live; not seeding one")
	}

	if err := seedDemoUsers(ctx, store, stdout, addr); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	keys, err := store.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		fmt.Fprintln(stdout, "demo: API keys already exist (hotlane apikey list shows them); not creating one. A key is shown only when it is made: make another with")
		fmt.Fprintln(stdout, "  hotlane apikey create --db DB --name demo --scopes score,feedback,admin")
		return nil
	}
	_, secret, err := store.CreateAPIKey(ctx, "demo", []string{feedback.ScopeScore, feedback.ScopeFeedback, feedback.ScopeAdmin})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: created API key %q with scopes score,feedback,admin (shown once):\n  %s\n", "demo", secret)
	fmt.Fprintf(stdout, "demo: try it:\n  curl -s -X POST %s/v1/score -H 'Authorization: Bearer %s' \\\n"+
		"    -H 'Content-Type: application/json' \\\n"+
		"    -d '{\"conversation_id\":\"chat-42\",\"channel\":\"whatsapp\",\"message\":\"pricing for 50 seats?\",\"signals\":{\"deal_size\":25000,\"lifecycle_stage\":\"opportunity\"}}'\n", baseURL(addr), secret)
	return nil
}

// seedDemoHistory imports past conversations of the synthetic world,
// scored by the demo ruleset, each with its outcome, and runs the tuning
// job once, so the demo starts with a trained model and a report.
//
// The history is the three ISO weeks before now's and now's week up to
// demoSettled ago, so every week of the KPIs has data and the last seven
// days always hold a week of conversations. The first tuning run is as of
// a week ago (the weekly run before this one), so that the model it
// trains has not seen the last week: a hotlane tune now measures it, and
// its successor, on that week.
func seedDemoHistory(ctx context.Context, store demoStore, pol *model.Policy, policyVersion int, now time.Time, stdout io.Writer, log *slog.Logger) error {
	world, err := newSimWorld(demoHistorySeed)
	if err != nil {
		return err
	}
	scorer := model.NewScorer(pol, nil)
	now = now.UTC()
	start := simStart(now, demoHistoryWeeks)
	rng := mrand.New(mrand.NewPCG(demoHistorySeed, 2))
	var rows []feedback.ImportedConversation
	var alerts, labels, reviews int
	for k := 1; k <= demoHistoryWeeks+1; k++ {
		for _, c := range world.Week(k, demoHistoryWeek, start.AddDate(0, 0, 7*(k-1))) {
			if c.Start.After(now.Add(-demoSettled)) {
				continue // this week's, not over yet
			}
			call := c.Calls[len(c.Calls)-1]
			d := scorer.Score(model.Input{Channel: c.Channel, Message: call.Message, Signals: call.Signals})
			signals, err := json.Marshal(call.Signals)
			if err != nil {
				return err
			}
			reasons, _ := json.Marshal(d.Reasons)
			route, _ := json.Marshal(d.Route)
			outcome := feedback.EventLost
			if c.Positive {
				outcome = feedback.EventConverted
			}
			id := "demo-" + c.ID
			row := feedback.ImportedConversation{
				Decision: feedback.Decision{ID: id + "-d", ConversationID: id, Channel: c.Channel, Signals: signals,
					Score: d.Score, Tier: d.Tier, Reasons: reasons, Route: route, PolicyVersion: policyVersion,
					OccurredAt: call.At},
				Outcome: outcome, EventID: id + "-e",
			}
			demoPast(&row, c.Positive, call.Signals, pol.Alerts().Alerts(c.Channel, d.Tier), k, rng)
			if row.Alert != nil {
				alerts++
				labels += len(row.Labels)
			}
			for _, e := range row.Events {
				if e.Type == feedback.EventTierFeedback {
					reviews++
				}
			}
			rows = append(rows, row)
		}
	}
	res, err := store.ImportHistory(ctx, rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: imported %d past conversations with their outcomes, %d alerts (%d labelled by agents) and %d tier reviews (the %d weeks from %s and this one so far)\n",
		res.Added, alerts, labels, reviews, demoHistoryWeeks, start.Format("2006-01-02"))
	asOf := now.Add(-jobs.DefaultHoldout)
	run, err := (&jobs.Tuner{Store: store, Log: log, Guard: model.DefaultPromotionGuard}).RunNow(ctx, feedback.TuneRequest{Trigger: "demo", AsOf: asOf})
	if err != nil {
		return fmt.Errorf("tuning: %w", err)
	}
	r := run.Report
	if r.Live != nil && r.Candidate != nil {
		fmt.Fprintf(stdout, "demo: last week's tuning run (as of %s) trained model %d: holdout ROC-AUC %.3f against %.3f for the rules alone; %s\n",
			asOf.Format("2006-01-02 15:04"), r.CandidateModelVersion, r.Candidate.ROCAUC, r.Live.ROCAUC, r.Promotion.Reason)
	} else {
		fmt.Fprintf(stdout, "demo: last week's tuning run (as of %s): %s\n", asOf.Format("2006-01-02 15:04"), r.Promotion.Reason)
	}
	fmt.Fprintf(stdout, "demo: its report is at /v1/reports/latest; hotlane tune runs this week's, judged on the week its model has not seen\n")
	return nil
}

// compilePolicy parses and compiles a policy document and returns its
// canonical JSON, refusing anything that would not compile.
func compilePolicy(src []byte) (model.PolicyDoc, *model.Policy, []byte, error) {
	doc, err := model.ParsePolicy(src)
	if err != nil {
		return doc, nil, nil, err
	}
	compiled, err := model.CompilePolicy(doc)
	if err != nil {
		return doc, nil, nil, err
	}
	canonical, err := doc.Canonical()
	if err != nil {
		return doc, nil, nil, err
	}
	return doc, compiled, canonical, nil
}

// baseURL turns a listen address into the URL a local client would use.
func baseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// demoAgents label the demo's past alerts and review its tiers.
var demoAgents = []string{"agent@demo.hotlane.dev", "sam@demo.hotlane.dev", "lee@demo.hotlane.dev"}

// demoPast gives a past demo conversation what agents did with it: the
// deal value of a conversion; when it alerted, the alert and, for nearly
// all (agents label as they go, so the feed is not a backlog of the
// past), an agent's label (right nine times in ten); a first response to urgent
// and high chats, a little faster each week; and for some chats an
// agent's review of the tier.
func demoPast(row *feedback.ImportedConversation, positive bool, signals map[string]any, alerted bool, week int, rng *mrand.Rand) {
	d := &row.Decision
	at, id := d.OccurredAt, d.ConversationID
	if v, ok := signals["deal_size"].(float64); ok && positive && v > 0 {
		row.Value = &v
	}
	agent := func() string { return demoAgents[rng.IntN(len(demoAgents))] }
	if alerted {
		row.Alert = &feedback.Alert{ID: id + "-a", Tier: d.Tier}
		if rng.Float64() < 0.92 {
			label := feedback.LabelNoise
			if positive != (rng.Float64() < 0.1) {
				label = feedback.LabelUseful
			}
			row.Labels = []feedback.AlertLabel{{Agent: agent(), Label: label, UpdatedAt: at.Add(time.Duration(2+rng.IntN(20)) * time.Minute)}}
		}
	}
	if feedback.IsTopTier(d.Tier) && rng.Float64() < 0.9 {
		wait := time.Duration(30+rng.IntN(max(60, 300-60*week))) * time.Second
		if d.Tier == model.TierUrgent {
			wait /= 2
		}
		row.Events = append(row.Events, feedback.Event{ID: id + "-r", Type: feedback.EventFirstResponse, At: at.Add(wait)})
	}
	if rng.Float64() < 0.1 {
		right := d.Tier
		switch {
		case positive && !feedback.IsTopTier(d.Tier):
			right = model.TierHigh
		case !positive && feedback.IsTopTier(d.Tier):
			right = model.TierMedium
		}
		if rng.Float64() < 0.1 {
			right = d.Tier
		}
		row.Events = append(row.Events, feedback.Event{ID: id + "-f", Type: feedback.EventTierFeedback, At: at.Add(10 * time.Minute),
			Tier: right, Agent: agent()})
	}
}
