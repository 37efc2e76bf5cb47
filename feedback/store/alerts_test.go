package store

import (
	"context"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// alertT0 is the fake clock's start; every decision of these tests carries its
// own CreatedAt, so nothing depends on the wall clock.
var alertT0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func alertSalesPlan(alerts bool) feedback.AlertPlan {
	return feedback.AlertPlan{Alerts: alerts, Team: "sales", Owner: "ana", Cooldown: 10 * time.Minute, HourlyBudget: 30}
}

// alertingDecision is a decision at alertT0+at whose tier alerts when it is
// urgent or high, as the default policy says.
func alertingDecision(conv, tier string, at time.Duration) feedback.Decision {
	d := newDecision(conv, tier)
	d.CreatedAt = alertT0.Add(at)
	d.Alert = alertSalesPlan(tier == "urgent" || tier == "high")
	return d
}

func recordAlerting(t *testing.T, s *Store, d feedback.Decision) feedback.Recorded {
	t.Helper()
	rec, err := s.Record(context.Background(), d)
	if err != nil {
		t.Fatalf("Record(%s %s): %v", d.ConversationID, d.Tier, err)
	}
	return rec
}

// alertString renders an alert outcome as "kind/status/reason", "-" for none.
func alertString(a *feedback.AlertOutcome) string {
	if a == nil {
		return "-"
	}
	return a.Kind + "/" + a.Status + "/" + a.Reason
}

func storedScoreAlert(t *testing.T, s *Store, id string) alertRow {
	t.Helper()
	var row alertRow
	if err := s.db.Where("id = ?", id).Take(&row).Error; err != nil {
		t.Fatalf("alert %s: %v", id, err)
	}
	return row
}

// TestAlertDedupCooldownEscalation walks one conversation through the
// tiers on a fake clock.
func TestAlertDedupCooldownEscalation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		steps := []struct {
			tier string
			at   time.Duration
			want string
		}{
			{"low", 0, "-"},                                          // low does not alert
			{"high", time.Minute, "tier/fired/"},                     // enters an alerting tier
			{"high", 2 * time.Minute, "tier/deduplicated/duplicate"}, // same tier again
			{"medium", 3 * time.Minute, "-"},                         // drops out
			{"high", 4 * time.Minute, "tier/deduplicated/duplicate"}, // back: still one alert per tier
			{"urgent", 5 * time.Minute, "tier/suppressed/cooldown"},  // escalates within the cooldown
			{"urgent", 10*time.Minute + time.Second, "tier/suppressed/cooldown"},
			{"urgent", 11 * time.Minute, "tier/fired/"},                 // cooldown over: escalation fires
			{"urgent", 30 * time.Minute, "tier/deduplicated/duplicate"}, // nothing higher than urgent
		}
		var fired []string
		for i, st := range steps {
			d := alertingDecision("conv-1", st.tier, st.at)
			rec := recordAlerting(t, s, d)
			if got := alertString(rec.Alert); got != st.want {
				t.Errorf("step %d (%s at %v): alert %s, want %s", i, st.tier, st.at, got, st.want)
			}
			if rec.Alert == nil {
				continue
			}
			row := storedScoreAlert(t, s, rec.Alert.ID)
			if row.DecisionID != d.ID || row.Status != rec.Alert.Status || row.Reason != rec.Alert.Reason ||
				row.Tier != st.tier || row.Team != "sales" || row.Owner != "ana" || !row.CreatedAt.Equal(d.CreatedAt) ||
				row.SampleRate != nil {
				t.Errorf("step %d: stored alert %+v", i, row)
			}
			if rec.Alert.Status == feedback.AlertStatusFired {
				fired = append(fired, rec.Alert.ID)
			}
		}
		if len(fired) != 2 {
			t.Errorf("fired %d alerts, want 2 (high, then urgent)", len(fired))
		}
		c, err := s.Conversation(context.Background(), "conv-1")
		if err != nil {
			t.Fatal(err)
		}
		if c.AlertedTier.String() != "urgent" || c.LastAlertAt == nil || !c.LastAlertAt.Equal(alertT0.Add(11*time.Minute)) {
			t.Errorf("conversation alert state = %q %v, want urgent at alertT0+11m", c.AlertedTier, c.LastAlertAt)
		}
		if c.FirstTopAt == nil || !c.FirstTopAt.Equal(alertT0.Add(time.Minute)) {
			t.Errorf("first_top_at = %v, want alertT0+1m (the first high decision)", c.FirstTopAt)
		}
	})
}

// TestAlertFirstTopAtWithoutAlerting: first_top_at starts the SLA clock
// even on a channel where high does not alert.
func TestAlertFirstTopAtWithoutAlerting(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		d := newDecision("quiet", "high")
		d.CreatedAt = alertT0
		if rec := recordAlerting(t, s, d); rec.Alert != nil {
			t.Errorf("alert = %+v, want none", rec.Alert)
		}
		d = newDecision("quiet", "urgent")
		d.CreatedAt = alertT0.Add(time.Minute)
		recordAlerting(t, s, d)
		c, err := s.Conversation(context.Background(), "quiet")
		if err != nil {
			t.Fatal(err)
		}
		if c.FirstTopAt == nil || !c.FirstTopAt.Equal(alertT0) || c.AlertedTier.String() != "" || c.LastAlertAt != nil {
			t.Errorf("conversation = %+v, want first_top_at alertT0 and no alert state", c)
		}
	})
}

// TestAlertHourlyBudget: a team's fired alerts in the past hour count
// against its budget; other teams are not affected; the budget frees up as
// the hour slides.
func TestAlertHourlyBudget(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		at := func(conv string, team string, offset time.Duration) string {
			d := alertingDecision(conv, "urgent", offset)
			d.Alert.Team, d.Alert.HourlyBudget = team, 2
			return alertString(recordAlerting(t, s, d).Alert)
		}
		// The window is (now-1h, now].
		steps := []struct {
			conv, team string
			at         time.Duration
			want       string
		}{
			{"c1", "sales", 0, "tier/fired/"},
			{"c2", "sales", 10 * time.Minute, "tier/fired/"},
			{"c3", "sales", 20 * time.Minute, "tier/suppressed/budget"},
			{"c4", "support", 20 * time.Minute, "tier/fired/"},                   // another team's budget
			{"c3", "sales", time.Hour, "tier/fired/"},                            // c1's alert has left the window
			{"c5", "sales", time.Hour + 5*time.Minute, "tier/suppressed/budget"}, // c2 and c3 in it
			// A budget-suppressed conversation is not marked alerted: it
			// fires once the budget allows.
			{"c5", "sales", 2*time.Hour + 30*time.Minute, "tier/fired/"},
		}
		for i, st := range steps {
			if got := at(st.conv, st.team, st.at); got != st.want {
				t.Errorf("step %d (%s/%s at %v): alert %s, want %s", i, st.conv, st.team, st.at, got, st.want)
			}
		}
	})
}

// TestAlertBudgetRanksBatchByScore: when one batch holds more candidates
// than the budget has left, the higher scores fire.
func TestAlertBudgetRanksBatchByScore(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		mk := func(conv string, score float64) feedback.Decision {
			d := alertingDecision(conv, "high", 0)
			d.Score, d.Alert.HourlyBudget = score, 2
			return d
		}
		prior := mk("p", 0.99)
		recordAlerting(t, s, prior) // spends 1 of 2
		batch := []*writeReq{newReq(mk("a", 0.71)), newReq(mk("b", 0.93)), newReq(mk("c", 0.80))}
		// b's second decision in the same batch escalates within the
		// cooldown of its first.
		second := mk("b", 0.95)
		second.Tier = model.TierUrgent
		second.CreatedAt = second.CreatedAt.Add(time.Second)
		batch = append(batch, newReq(second))
		s.w.shards[0].commit(batch)
		want := []string{"tier/suppressed/budget", "tier/fired/", "tier/suppressed/budget", "tier/suppressed/cooldown"}
		for i, r := range batch {
			res := <-r.done
			if res.err != nil {
				t.Fatalf("request %d: %v", i, res.err)
			}
			if got := alertString(res.rec.Alert); got != want[i] {
				t.Errorf("request %d (%s %.2f): alert %s, want %s", i, r.d.ConversationID, r.d.Score, got, want[i])
			}
		}
		for conv, tier := range map[string]string{"a": "", "b": "high", "c": ""} {
			c, err := s.Conversation(context.Background(), conv)
			if err != nil {
				t.Fatal(err)
			}
			if c.AlertedTier.String() != tier {
				t.Errorf("conversation %s alerted tier %q, want %q", conv, c.AlertedTier, tier)
			}
		}
	})
}

// TestAlertBudgetHeldCandidateRejudged: a conversation whose first
// candidate in a batch loses the budget is judged again without it, so its
// next decision is not a duplicate of an alert that never fired.
func TestAlertBudgetHeldCandidateRejudged(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		mk := func(conv, tier string, score float64) feedback.Decision {
			d := alertingDecision(conv, tier, 0)
			d.Score, d.Alert.HourlyBudget, d.Alert.Cooldown = score, 1, 0
			return d
		}
		batch := []*writeReq{newReq(mk("a", "high", 0.70)), newReq(mk("b", "high", 0.90)), newReq(mk("a", "high", 0.72))}
		s.w.shards[0].commit(batch)
		want := []string{"tier/suppressed/budget", "tier/fired/", "tier/suppressed/budget"}
		for i, r := range batch {
			res := <-r.done
			if got := alertString(res.rec.Alert); res.err != nil || got != want[i] {
				t.Errorf("request %d: alert %s, %v; want %s", i, got, res.err, want[i])
			}
		}
	})
}

// TestAlertExploration: a conversation in the sample gets one review alert
// on its first non-alerting decision, with the sampling rate stored.
func TestAlertExploration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		plan := func(d feedback.Decision, rate float64) feedback.Decision {
			d.Alert.ExplorationRate = rate
			return d
		}
		d := plan(alertingDecision("sampled", "medium", 0), 1)
		rec := recordAlerting(t, s, d)
		if got := alertString(rec.Alert); got != "review/fired/" || rec.Alert.SampleRate != 1 {
			t.Fatalf("first decision: alert %s rate %v, want review/fired/ at 1", got, rec.Alert.SampleRate)
		}
		if row := storedScoreAlert(t, s, rec.Alert.ID); row.Kind != feedback.AlertKindReview || row.SampleRate == nil || *row.SampleRate != 1 {
			t.Errorf("stored review alert = %+v", row)
		}
		if rec := recordAlerting(t, s, plan(alertingDecision("sampled", "low", time.Minute), 1)); rec.Alert != nil {
			t.Errorf("second decision: alert %s, want none (sampled once)", alertString(rec.Alert))
		}
		// Review alerts do not start the cooldown nor mark the tier.
		if got := alertString(recordAlerting(t, s, plan(alertingDecision("sampled", "high", 2*time.Minute), 1)).Alert); got != "tier/fired/" {
			t.Errorf("alerting decision after review: %s, want tier/fired/", got)
		}
		// An alerted conversation is never sampled.
		recordAlerting(t, s, plan(alertingDecision("alerted", "urgent", 0), 0))
		if rec := recordAlerting(t, s, plan(alertingDecision("alerted", "low", time.Minute), 1)); rec.Alert != nil {
			t.Errorf("alerted conversation sampled: %s", alertString(rec.Alert))
		}
		// Rate 0 samples nothing.
		if rec := recordAlerting(t, s, plan(alertingDecision("never", "low", 0), 0)); rec.Alert != nil {
			t.Errorf("rate 0 sampled: %s", alertString(rec.Alert))
		}
	})
}
