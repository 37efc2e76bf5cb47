package model

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func budgetPolicy(t *testing.T) *Policy {
	t.Helper()
	doc, err := ParsePolicy([]byte(`
base: 0
rules:
  - {name: vip, expression: "vip == true", points: 0, tier_floor: urgent}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
routes:
  - {team: sales}
alerts:
  hourly_budget: {default: 30, sales: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func defaultProposal() []ThresholdRow {
	th := Thresholds{Urgent: 0.9, High: 0.7, Medium: 0.4}
	return []ThresholdRow{{Channel: "default", Proposal: ThresholdProposal{Thresholds: th, Tiers: []TierProposal{
		{Tier: TierUrgent, Threshold: th.Urgent}, {Tier: TierHigh, Threshold: th.High}, {Tier: TierMedium, Threshold: th.Medium}}}}}
}

func TestFitBudgetsRaisesTheAlertingThreshold(t *testing.T) {
	pol := budgetPolicy(t)
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var rows []VolumeRow
	// One hour of five alerts (one urgent, four high) for a team whose
	// budget is 2, and a quiet hour of one.
	for _, s := range []float64{0.95, 0.85, 0.8, 0.75, 0.72} {
		rows = append(rows, VolumeRow{Channel: "web", At: at.Add(time.Duration(s*1000) * time.Second), Score: s, Weight: 1})
	}
	rows = append(rows, VolumeRow{Channel: "web", At: at.Add(5 * time.Hour), Score: 0.75, Weight: 1})
	props := defaultProposal()
	notes := FitBudgets(pol, props, rows, 1)
	th := props[0].Proposal.Thresholds
	// The third alert of the hour scores 0.8: high must go just above it.
	if th.Urgent != 0.9 || th.High <= 0.8 || th.High > 0.8+1e-6 || th.Medium != 0.4 {
		t.Errorf("thresholds = %+v, want high just above 0.8", th)
	}
	var got []string
	for _, tp := range props[0].Proposal.Tiers {
		got = append(got, fmt.Sprintf("%s %.0f/wk", tp.Tier, tp.AlertsPerWeek))
	}
	if fmt.Sprint(got) != "[urgent 1/wk high 1/wk medium 4/wk]" {
		t.Errorf("alerts per week = %v", got)
	}
	if props[0].Proposal.Tiers[1].Threshold != th.High || props[0].Proposal.Tiers[1].Note == "" {
		t.Errorf("the high tier's figures do not follow the raise: %+v", props[0].Proposal.Tiers[1])
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "team sales gets at most its hourly budget of 2") {
		t.Errorf("notes = %q", notes)
	}

	// Within the budget nothing moves.
	props = defaultProposal()
	if notes := FitBudgets(pol, props, rows[3:], 1); len(notes) != 0 || props[0].Proposal.Thresholds.High != 0.7 {
		t.Errorf("within budget: notes %q, thresholds %+v", notes, props[0].Proposal.Thresholds)
	}
}

func TestFitBudgetsTierFloorsCannotBeHeldBack(t *testing.T) {
	pol := budgetPolicy(t)
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var rows []VolumeRow
	for i := range 4 {
		rows = append(rows, VolumeRow{Channel: "web", At: at.Add(time.Duration(i) * time.Minute), Hits: []string{"vip"}, Score: 0.1, Weight: 1})
	}
	props := defaultProposal()
	notes := FitBudgets(pol, props, rows, 2)
	if len(notes) != 1 || !strings.Contains(notes[0], "tier floor") || props[0].Proposal.Thresholds.High != 0.7 {
		t.Errorf("notes %q, thresholds %+v", notes, props[0].Proposal.Thresholds)
	}
	if got := props[0].Proposal.Tiers[0].AlertsPerWeek; got != 2 {
		t.Errorf("urgent alerts per week = %v, want 4 over 2 weeks", got)
	}
}

func TestFitBudgetsLowTierAndOwnThresholds(t *testing.T) {
	doc, err := ParsePolicy([]byte(`
base: 0
rules: []
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
  email: {urgent: 0.95, high: 0.9, medium: 0.8}
routes:
  - {team: sales}
alerts:
  tiers: {default: [urgent, high], chat: [urgent, high, medium, low]}
  hourly_budget: {default: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	// Four low chats on a channel whose low tier alerts: no threshold
	// holds them back.
	var rows []VolumeRow
	for i := range 4 {
		rows = append(rows, VolumeRow{Channel: "chat", At: at.Add(time.Duration(i) * time.Minute), Score: 0.1, Weight: 1})
	}
	props := defaultProposal()
	notes := FitBudgets(pol, props, rows, 1)
	if props[0].Proposal.Thresholds != (Thresholds{Urgent: 0.9, High: 0.7, Medium: 0.4}) || len(notes) != 1 || !strings.Contains(notes[0], "no threshold holds back") {
		t.Errorf("low tier: thresholds %+v, notes %q", props[0].Proposal.Thresholds, notes)
	}
	// Email keeps thresholds of its own when a default proposal is
	// applied: its alerts are counted under them and do not raise the
	// default. Under email's 0.9 high, only the 0.99 chats alert: 3,
	// over the budget of 2, so email has nothing proposed to raise.
	rows = rows[:0]
	for _, s := range []float64{0.99, 0.99, 0.99, 0.85, 0.85} {
		rows = append(rows, VolumeRow{Channel: "email", At: at, Score: s, Weight: 1})
	}
	props = defaultProposal()
	FitBudgets(pol, props, rows, 1)
	if props[0].Proposal.Thresholds.High != 0.7 {
		t.Errorf("email's alerts raised the default: %+v", props[0].Proposal.Thresholds)
	}
	// A cut above the highest score stays below 1.
	rows = rows[:0]
	for range 3 {
		rows = append(rows, VolumeRow{Channel: "web", At: at, Score: 1, Weight: 1})
	}
	props = defaultProposal()
	FitBudgets(pol, props, rows, 1)
	if th := props[0].Proposal.Thresholds; th.Urgent >= 1 || th.High >= 1 {
		t.Errorf("thresholds reach 1: %+v", th)
	}
}
