package feedback

import (
	"fmt"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

func TestInSample(t *testing.T) {
	const n = 20000
	for _, rate := range []float64{0.02, 0.5} {
		hits := 0
		for i := range n {
			id := fmt.Sprintf("conv-%d", i)
			if InSample(id, rate) {
				hits++
				if !InSample(id, rate) || !InSample(id, rate+0.1) {
					t.Fatalf("%s: sampled at %v but not again or not at a higher rate", id, rate)
				}
			}
		}
		if got := float64(hits) / n; got < rate*0.85 || got > rate*1.15 {
			t.Errorf("rate %v: sampled share %v", rate, got)
		}
	}
	if InSample("x", 0) {
		t.Error("rate 0 sampled")
	}
}

// outcomeString renders an alert outcome as kind/status/reason, "-" for
// none.
func outcomeString(o *AlertOutcome) string {
	if o == nil {
		return "-"
	}
	return o.Kind + "/" + o.Status + "/" + o.Reason
}

// sampledID and unsampledID are conversation ids in and out of the
// exploration sample at rate 0.5.
func sampleIDs(t *testing.T) (sampled, unsampled string) {
	t.Helper()
	for i := 0; sampled == "" || unsampled == ""; i++ {
		id := fmt.Sprintf("conv-%d", i)
		if InSample(id, 0.5) {
			sampled = id
		} else {
			unsampled = id
		}
	}
	return sampled, unsampled
}

// TestPlanAlerts walks the alert rules over batches of decisions and
// stored states, without a database.
func TestPlanAlerts(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	sampled, unsampled := sampleIDs(t)
	plan := AlertPlan{Alerts: true, Team: "sales", Cooldown: 10 * time.Minute, HourlyBudget: 2, ExplorationRate: 0.5}
	quiet := plan
	quiet.Alerts = false
	dec := func(conv string, tier model.Tier, score float64, at time.Duration, p AlertPlan) *Decision {
		return &Decision{ID: fmt.Sprintf("%s@%v", conv, at), ConversationID: conv, Tier: tier, Score: score,
			CreatedAt: t0.Add(at), Alert: p}
	}
	recent := t0.Add(-5 * time.Minute)
	old := t0.Add(-time.Hour)
	tests := []struct {
		name   string
		batch  []*Decision
		stored map[string]AlertState
		fired  map[string]int
		want   []string
		final  map[string]model.Tier // alerted tier after the batch
	}{
		{"a new conversation in an alerting tier fires",
			[]*Decision{dec("a", model.TierHigh, 0.8, 0, plan)}, nil, nil,
			[]string{"tier/fired/"}, map[string]model.Tier{"a": model.TierHigh}},
		{"the same tier again is a duplicate",
			[]*Decision{dec("a", model.TierHigh, 0.8, 0, plan)},
			map[string]AlertState{"a": {AlertedTier: model.TierHigh, LastAlertAt: &old}}, nil,
			[]string{"tier/deduplicated/duplicate"}, map[string]model.Tier{"a": model.TierHigh}},
		{"a lower tier than alerted is a duplicate",
			[]*Decision{dec("a", model.TierHigh, 0.8, 0, plan)},
			map[string]AlertState{"a": {AlertedTier: model.TierUrgent, LastAlertAt: &old}}, nil,
			[]string{"tier/deduplicated/duplicate"}, map[string]model.Tier{"a": model.TierUrgent}},
		{"escalating after the cooldown fires again",
			[]*Decision{dec("a", model.TierUrgent, 0.95, 0, plan)},
			map[string]AlertState{"a": {AlertedTier: model.TierHigh, LastAlertAt: &old}}, nil,
			[]string{"tier/fired/"}, map[string]model.Tier{"a": model.TierUrgent}},
		{"escalating within the cooldown is held back",
			[]*Decision{dec("a", model.TierUrgent, 0.95, 0, plan)},
			map[string]AlertState{"a": {AlertedTier: model.TierHigh, LastAlertAt: &recent}}, nil,
			[]string{"tier/suppressed/cooldown"}, map[string]model.Tier{"a": model.TierHigh}},
		{"a spent budget holds back",
			[]*Decision{dec("a", model.TierHigh, 0.8, 0, plan)}, nil, map[string]int{"sales": 2},
			[]string{"tier/suppressed/budget"}, map[string]model.Tier{"a": model.TierNone}},
		{"when candidates exceed the budget the higher scores fire",
			[]*Decision{dec("a", model.TierHigh, 0.70, 0, plan), dec("b", model.TierHigh, 0.90, 0, plan), dec("c", model.TierHigh, 0.80, 0, plan)},
			nil, map[string]int{"sales": 1},
			[]string{"tier/suppressed/budget", "tier/fired/", "tier/suppressed/budget"},
			map[string]model.Tier{"a": model.TierNone, "b": model.TierHigh, "c": model.TierNone}},
		{"a held-back candidate's later decision is judged again without it",
			[]*Decision{dec("a", model.TierHigh, 0.70, 0, plan), dec("b", model.TierHigh, 0.90, 0, plan), dec("a", model.TierUrgent, 0.95, time.Second, plan)},
			nil, map[string]int{"sales": 1},
			[]string{"tier/suppressed/budget", "tier/suppressed/budget", "tier/fired/"},
			map[string]model.Tier{"a": model.TierUrgent, "b": model.TierNone}},
		{"a second decision within the batch escalates within the cooldown",
			[]*Decision{dec("a", model.TierHigh, 0.8, 0, plan), dec("a", model.TierUrgent, 0.95, time.Minute, plan)}, nil, nil,
			[]string{"tier/fired/", "tier/suppressed/cooldown"}, map[string]model.Tier{"a": model.TierHigh}},
		{"no budget means no limit",
			[]*Decision{dec("a", model.TierHigh, 0.8, 0, AlertPlan{Alerts: true, Team: "sales"})}, nil, map[string]int{"sales": 1000},
			[]string{"tier/fired/"}, map[string]model.Tier{"a": model.TierHigh}},
		{"a tier that does not alert in the sample asks for a review once",
			[]*Decision{dec(sampled, model.TierLow, 0.1, 0, quiet), dec(sampled, model.TierMedium, 0.3, time.Minute, quiet)}, nil, nil,
			[]string{"review/fired/", "-"}, map[string]model.Tier{sampled: model.TierNone}},
		{"no review outside the sample",
			[]*Decision{dec(unsampled, model.TierLow, 0.1, 0, quiet)}, nil, nil,
			[]string{"-"}, map[string]model.Tier{unsampled: model.TierNone}},
		{"no review once reviewed",
			[]*Decision{dec(sampled, model.TierLow, 0.1, 0, quiet)}, map[string]AlertState{sampled: {Reviewed: true}}, nil,
			[]string{"-"}, map[string]model.Tier{sampled: model.TierNone}},
		{"no review after a tier alert",
			[]*Decision{dec(sampled, model.TierLow, 0.1, 0, quiet)}, map[string]AlertState{sampled: {AlertedTier: model.TierHigh, LastAlertAt: &old}}, nil,
			[]string{"-"}, map[string]model.Tier{sampled: model.TierHigh}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanAlerts(tt.batch, tt.stored, tt.fired)
			var outcomes []string
			for _, o := range got.Outcomes {
				outcomes = append(outcomes, outcomeString(o))
			}
			if fmt.Sprint(outcomes) != fmt.Sprint(tt.want) {
				t.Errorf("outcomes = %v, want %v", outcomes, tt.want)
			}
			for conv, tier := range tt.final {
				if st := got.Final[conv]; st.AlertedTier != tier {
					t.Errorf("conversation %s alerted tier after the batch = %q, want %q", conv, st.AlertedTier, tier)
				}
			}
			// One alert to write per outcome, carrying the decision's
			// facts and the outcome's id.
			n := 0
			for i, o := range got.Outcomes {
				if o == nil {
					continue
				}
				a := got.Alerts[n]
				n++
				d := tt.batch[i]
				if a.ID != o.ID || a.ID == "" || a.DecisionID != d.ID || a.Tier != d.Tier || a.Status != o.Status ||
					a.Kind != o.Kind || a.Team != d.Alert.Team || !a.CreatedAt.Equal(d.CreatedAt) {
					t.Errorf("alert %d = %+v for outcome %+v of decision %+v", n, a, o, d)
				}
				if (a.Kind == AlertKindReview) != (a.SampleRate > 0) {
					t.Errorf("alert %d: kind %s with sample rate %v", n, a.Kind, a.SampleRate)
				}
			}
			if n != len(got.Alerts) {
				t.Errorf("%d alerts for %d outcomes", len(got.Alerts), n)
			}
		})
	}
}

func TestAlertTeams(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	budget := func(team string) AlertPlan { return AlertPlan{Alerts: true, Team: team, HourlyBudget: 5} }
	batch := []*Decision{
		{Tier: model.TierHigh, CreatedAt: t0.Add(time.Minute), Alert: budget("support")},
		{Tier: model.TierUrgent, CreatedAt: t0, Alert: budget("sales")},
		{Tier: model.TierHigh, CreatedAt: t0, Alert: budget("sales")},
		{Tier: model.TierHigh, CreatedAt: t0.Add(-time.Minute), Alert: AlertPlan{Alerts: true, Team: "nolimit"}},
		{Tier: model.TierLow, CreatedAt: t0.Add(-time.Hour), Alert: AlertPlan{Team: "quiet", HourlyBudget: 5}},
	}
	teams, since := AlertTeams(batch)
	if fmt.Sprint(teams) != "[sales support]" || !since.Equal(t0.Add(-BudgetWindow)) {
		t.Errorf("AlertTeams = %v, %v; want [sales support] from an hour before the earliest budgeted decision", teams, since)
	}
}
