package model

import (
	"strings"
	"testing"
	"time"
)

func TestAlertPolicyDefaults(t *testing.T) {
	for name, a := range map[string]*AlertPolicy{
		"no section":         mustPolicy(t, examplePolicy).Alerts(),
		"DefaultAlertPolicy": DefaultAlertPolicy(),
		"empty section":      mustPolicy(t, examplePolicy+"alerts: {}\n").Alerts(),
	} {
		t.Run(name, func(t *testing.T) {
			for _, tt := range []struct {
				channel string
				tier    Tier
				want    bool
			}{{"web", TierUrgent, true}, {"web", TierHigh, true}, {"whatsapp", TierMedium, false}, {"email", TierLow, false}} {
				if got := a.Alerts(tt.channel, tt.tier); got != tt.want {
					t.Errorf("Alerts(%s, %s) = %v, want %v", tt.channel, tt.tier, got, tt.want)
				}
			}
			if a.Cooldown() != 10*time.Minute || a.HourlyBudget("anyone") != 30 || a.ExplorationRate() != 0.02 ||
				a.SLA(TierUrgent) != 60*time.Second || a.SLA(TierHigh) != 180*time.Second || a.SLA(TierMedium) != 0 {
				t.Errorf("defaults: cooldown %v, budget %d, exploration %v, sla %v/%v/%v", a.Cooldown(), a.HourlyBudget("anyone"),
					a.ExplorationRate(), a.SLA(TierUrgent), a.SLA(TierHigh), a.SLA(TierMedium))
			}
		})
	}
}

func TestAlertPolicySection(t *testing.T) {
	p := mustPolicy(t, examplePolicy+`
alerts:
  tiers: {default: [urgent], whatsapp: [urgent, high, medium], email: []}
  cooldown: 90s
  hourly_budget: {default: 5, enterprise-sales: 100}
  exploration_rate: 0
  sla: {urgent: 30s}
`)
	a := p.Alerts()
	for _, tt := range []struct {
		channel string
		tier    Tier
		want    bool
	}{
		{"web", TierUrgent, true}, {"web", TierHigh, false}, {"whatsapp", TierMedium, true},
		{"whatsapp", TierLow, false}, {"email", TierUrgent, false}, {"sms", TierUrgent, true},
	} {
		if got := a.Alerts(tt.channel, tt.tier); got != tt.want {
			t.Errorf("Alerts(%s, %s) = %v, want %v", tt.channel, tt.tier, got, tt.want)
		}
	}
	if a.Cooldown() != 90*time.Second || a.HourlyBudget("enterprise-sales") != 100 || a.HourlyBudget("sales") != 5 ||
		a.ExplorationRate() != 0 || a.SLA(TierUrgent) != 30*time.Second || a.SLA(TierHigh) != 0 {
		t.Errorf("section not applied: cooldown %v, budgets %d/%d, exploration %v, sla %v/%v", a.Cooldown(),
			a.HourlyBudget("enterprise-sales"), a.HourlyBudget("sales"), a.ExplorationRate(), a.SLA(TierUrgent), a.SLA(TierHigh))
	}

	// The section survives the canonical form.
	canon, err := p.Doc().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(canon), `"alerts":{"tiers":{"default":["urgent"]`) || !strings.Contains(string(canon), `"exploration_rate":0`) {
		t.Errorf("canonical = %s", canon)
	}
	again := mustPolicy(t, string(canon)).Alerts()
	if again.ExplorationRate() != 0 || again.Cooldown() != 90*time.Second || again.Alerts("web", TierHigh) {
		t.Error("canonical form does not compile to the same alert policy")
	}
}

func TestAlertPolicyProblems(t *testing.T) {
	_, err := CompilePolicy(mustParse(t, examplePolicy+`
alerts:
  tiers: {default: [urgent, critical], "Bad Channel": [high]}
  cooldown: soon
  hourly_budget: {default: 0}
  exploration_rate: 1.5
  sla: {urgent: -1s, top: 10s, high: later}
`))
	pe, ok := err.(*PolicyError)
	if !ok {
		t.Fatalf("CompilePolicy error = %v, want *PolicyError", err)
	}
	want := []string{
		"alerts.tiers.Bad Channel", "alerts.tiers.default[1]", "alerts.cooldown", "alerts.hourly_budget.default",
		"alerts.exploration_rate", "alerts.sla.high", "alerts.sla.top", "alerts.sla.urgent",
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, p.Field)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("problem fields:\ngot  %v\nwant %v", got, want)
	}
}

func mustParse(t *testing.T, src string) PolicyDoc {
	t.Helper()
	doc, err := ParsePolicy([]byte(src))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	return doc
}
