package model

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Defaults of the alerts section, used for every knob the policy leaves out.
const (
	// DefaultAlertCooldown is the least time between two fired alerts of a
	// conversation.
	DefaultAlertCooldown = 10 * time.Minute
	// DefaultHourlyBudget is the most alerts fired per team per hour.
	DefaultHourlyBudget = 30
	// DefaultExplorationRate is the share of non-alerting conversations
	// sampled for review.
	DefaultExplorationRate = 0.02
	// DefaultSLAUrgent and DefaultSLAHigh are the times to first human
	// response before an urgent or high conversation escalates.
	DefaultSLAUrgent = 60 * time.Second
	DefaultSLAHigh   = 180 * time.Second
)

// defaultAlertTiers are the tiers that alert on channels the policy does
// not list.
var defaultAlertTiers = []Tier{TierUrgent, TierHigh}

// AlertsSpec is the alerts section of a policy document. Every field is
// optional; a missing one takes its default (see the Default constants).
//
//	alerts:
//	  tiers: {default: [urgent, high], whatsapp: [urgent, high, medium]}
//	  cooldown: 10m
//	  hourly_budget: {default: 30, enterprise-sales: 100}
//	  exploration_rate: 0.02
//	  sla: {urgent: 60s, high: 180s}
type AlertsSpec struct {
	// Tiers maps a channel, or "default", to the tiers that alert on it.
	// An empty list means the channel never alerts.
	Tiers map[string][]string `json:"tiers,omitempty" yaml:"tiers,omitempty"`
	// Cooldown is the least time between two fired alerts of one
	// conversation, as a Go duration ("10m", "90s").
	Cooldown string `json:"cooldown,omitempty" yaml:"cooldown,omitempty"`
	// HourlyBudget maps a team, or "default", to the most alerts fired for
	// it in any hour.
	HourlyBudget map[string]int `json:"hourly_budget,omitempty" yaml:"hourly_budget,omitempty"`
	// ExplorationRate is the probability, in [0, 1], that a conversation
	// that does not alert is sampled for review; nil means the default and
	// 0 turns sampling off.
	ExplorationRate *float64 `json:"exploration_rate,omitempty" yaml:"exploration_rate,omitempty"`
	// SLA maps a tier to its time to first human response, as a Go
	// duration. Tiers not listed have no SLA, unless none is listed (the
	// map is absent or empty), in which case urgent and high get the
	// defaults: the canonical JSON a policy is stored as omits an empty
	// map, so an empty one must compile as an absent one does.
	SLA map[string]string `json:"sla,omitempty" yaml:"sla,omitempty"`
}

func (a *AlertsSpec) clone() *AlertsSpec {
	if a == nil {
		return nil
	}
	c := *a
	if a.Tiers != nil {
		c.Tiers = make(map[string][]string, len(a.Tiers))
		for k, v := range a.Tiers {
			c.Tiers[k] = slices.Clone(v)
		}
	}
	c.HourlyBudget = maps.Clone(a.HourlyBudget)
	c.SLA = maps.Clone(a.SLA)
	if a.ExplorationRate != nil {
		r := *a.ExplorationRate
		c.ExplorationRate = &r
	}
	return &c
}

// AlertPolicy is the compiled alerts section of a policy: which tiers alert
// on which channel, the cooldown, the hourly budgets, the exploration rate
// and the SLAs. It is immutable and safe for concurrent use.
type AlertPolicy struct {
	tiers       map[string][]Tier // channel or "default"
	cooldown    time.Duration
	budgets     map[string]int // team or "default"
	exploration float64
	sla         [TierUrgent + 1]time.Duration
}

// DefaultAlertPolicy returns the alert policy of a document without an
// alerts section.
func DefaultAlertPolicy() *AlertPolicy {
	a, probs := compileAlerts(nil)
	if len(probs) > 0 {
		panic("model: default alert policy is invalid")
	}
	return a
}

// Alerts reports whether a decision of tier t on channel alerts.
func (a *AlertPolicy) Alerts(channel string, t Tier) bool {
	tiers, ok := a.tiers[channel]
	if !ok || channel == defaultThresholds {
		tiers = a.tiers[defaultThresholds]
	}
	return slices.Contains(tiers, t)
}

// Cooldown is the least time between two fired alerts of one conversation.
func (a *AlertPolicy) Cooldown() time.Duration { return a.cooldown }

// HourlyBudget is the most alerts fired for team in any hour.
func (a *AlertPolicy) HourlyBudget(team string) int {
	if n, ok := a.budgets[team]; ok {
		return n
	}
	return a.budgets[defaultThresholds]
}

// ExplorationRate is the probability that a conversation that does not
// alert is sampled for review.
func (a *AlertPolicy) ExplorationRate() float64 { return a.exploration }

// SLA is the time to first human response for a conversation in tier t; 0
// means the tier has none.
func (a *AlertPolicy) SLA(t Tier) time.Duration {
	if int(t) >= len(a.sla) {
		return 0
	}
	return a.sla[t]
}

// compileAlerts validates the alerts section; problems are reported with
// fields under "alerts.".
func compileAlerts(spec *AlertsSpec) (*AlertPolicy, []Problem) {
	var probs []Problem
	add := func(field, msg string) { probs = append(probs, Problem{Field: "alerts." + field, Message: msg}) }
	a := &AlertPolicy{
		tiers:       map[string][]Tier{defaultThresholds: defaultAlertTiers},
		cooldown:    DefaultAlertCooldown,
		budgets:     map[string]int{defaultThresholds: DefaultHourlyBudget},
		exploration: DefaultExplorationRate,
	}
	a.sla[TierUrgent], a.sla[TierHigh] = DefaultSLAUrgent, DefaultSLAHigh
	if spec == nil {
		return a, nil
	}

	for _, ch := range sortedKeys(spec.Tiers) {
		field := "tiers." + ch
		if ch != defaultThresholds && !channelRe.MatchString(ch) {
			add(field, fmt.Sprintf("key must be \"default\" or a channel matching %s", channelRe.String()))
			continue
		}
		list := []Tier{}
		for i, name := range spec.Tiers[ch] {
			t, err := ParseTier(name)
			if err != nil || t == TierNone {
				add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("unknown tier %q (want urgent, high, medium or low)", name))
				continue
			}
			if !slices.Contains(list, t) {
				list = append(list, t)
			}
		}
		a.tiers[ch] = list
	}

	if spec.Cooldown != "" {
		d, err := time.ParseDuration(spec.Cooldown)
		switch {
		case err != nil:
			add("cooldown", fmt.Sprintf("%q is not a duration such as 10m or 90s", spec.Cooldown))
		case d < 0:
			add("cooldown", "must not be negative")
		default:
			a.cooldown = d
		}
	}

	for _, team := range sortedKeys(spec.HourlyBudget) {
		n := spec.HourlyBudget[team]
		switch {
		case strings.TrimSpace(team) == "":
			add("hourly_budget", "team names must not be empty")
		case n < 1:
			add("hourly_budget."+team, fmt.Sprintf("must be at least 1, got %d", n))
		default:
			a.budgets[team] = n
		}
	}

	if r := spec.ExplorationRate; r != nil {
		if !finite(*r) || *r < 0 || *r > 1 {
			add("exploration_rate", fmt.Sprintf("must be between 0 and 1, got %v", *r))
		} else {
			a.exploration = *r
		}
	}

	if len(spec.SLA) > 0 {
		a.sla = [TierUrgent + 1]time.Duration{}
		for _, name := range sortedKeys(spec.SLA) {
			field := "sla." + name
			t, err := ParseTier(name)
			if err != nil || t == TierNone {
				add(field, fmt.Sprintf("unknown tier %q (want urgent, high, medium or low)", name))
				continue
			}
			d, err := time.ParseDuration(spec.SLA[name])
			switch {
			case err != nil:
				add(field, fmt.Sprintf("%q is not a duration such as 60s or 3m", spec.SLA[name]))
			case d <= 0:
				add(field, "must be positive")
			default:
				a.sla[t] = d
			}
		}
	}
	return a, probs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
