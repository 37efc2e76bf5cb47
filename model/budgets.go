package model

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Alert budgets in threshold proposals. The holdout's labelled
// conversations say how precise a threshold is; every conversation of the
// holdout period, labelled or not, says how many alerts it would fire and
// for which team. A proposal that would send a team more alerts in its
// busiest hour than the team's hourly budget has its alerting thresholds
// raised until it fits: alerts over the budget would be held back
// anyway, so the proposal says what will really reach people.

// VolumeRow is one conversation of the holdout period for alert volume:
// its channel, when it was decided, its fired rules, its score under the
// proposed model, and how many conversations it stands for (1 unless the
// period was sampled).
type VolumeRow struct {
	Channel string
	At      time.Time
	Hits    []string
	Score   float64
	Weight  float64
}

// TeamFor is the team the policy's routing table sends a conversation of
// tier on channel to, with these fired rules; "" when no route matches.
// Owners are people, not teams, and budgets are per team, so the owner
// signal plays no part.
func (p *Policy) TeamFor(channel string, tier Tier, hits []string) string {
	for _, rt := range p.routes {
		if (rt.tier == TierNone || rt.tier == tier) && (rt.channel == "" || rt.channel == channel) &&
			(rt.rule < 0 || slices.Contains(hits, p.rules[rt.rule].name)) {
			return rt.team
		}
	}
	return ""
}

// maxBudgetRounds bounds the raising of thresholds; each round fits one
// team's busiest hour.
const maxBudgetRounds = 50

// FitBudgets raises the alerting thresholds of proposals, in place, until
// no team's busiest hour of the holdout period (rows, spanning weeks
// weeks) holds more alerts than the team's hourly budget, then fills each
// proposed tier's expected alerts per week. It returns notes for the
// report: what was raised for which team, and what no threshold can hold
// back (tier floors).
func FitBudgets(pol *Policy, proposals []ThresholdRow, rows []VolumeRow, weeks float64) []string {
	if len(proposals) == 0 || len(rows) == 0 || weeks <= 0 {
		return nil
	}
	index := map[string]int{}
	for i, p := range proposals {
		index[p.Channel] = i
	}
	// which proposal row sets a channel's thresholds: its own, else
	// "default" unless the policy gives the channel thresholds of its own,
	// which it keeps when applied; -1 when none is proposed (the policy's
	// then apply).
	own := pol.Channels()
	rowOf := func(channel string) int {
		if i, ok := index[channel]; ok {
			return i
		}
		if slices.Contains(own, channel) {
			return -1
		}
		if i, ok := index[defaultThresholds]; ok {
			return i
		}
		return -1
	}
	thresholds := func(channel string) Thresholds {
		if i := rowOf(channel); i >= 0 {
			return proposals[i].Proposal.Thresholds
		}
		return pol.ThresholdsFor(channel)
	}
	alerts := pol.Alerts()
	type hit struct{ row int }
	var notes []string
	before := make([]Thresholds, len(proposals))
	for i := range proposals {
		before[i] = proposals[i].Proposal.Thresholds
	}
	for round := 0; round < maxBudgetRounds; round++ {
		// Alerts per team and hour under the current proposals.
		perHour := map[string]map[int64][]hit{}
		for i := range rows {
			r := &rows[i]
			tier := pol.tierWith(thresholds(r.Channel), r.Score, r.Hits)
			if !alerts.Alerts(r.Channel, tier) {
				continue
			}
			team := pol.TeamFor(r.Channel, tier, r.Hits)
			h := r.At.Unix() / 3600
			if perHour[team] == nil {
				perHour[team] = map[int64][]hit{}
			}
			perHour[team][h] = append(perHour[team][h], hit{i})
		}
		// The team most over its budget in its busiest hour.
		worst, worstOver := "", 0.0
		var worstHour []hit
		for _, team := range sortedKeys(perHour) {
			budget := float64(alerts.HourlyBudget(team))
			for _, hs := range perHour[team] {
				var n float64
				for _, x := range hs {
					n += rows[x.row].Weight
				}
				if over := n - budget; over > worstOver {
					worst, worstOver, worstHour = team, over, hs
				}
			}
		}
		if worstOver <= 0 {
			break
		}
		// The score the hour's alerts must reach to fit the budget; the
		// channels they came by get their alerting threshold raised to it.
		budget := float64(alerts.HourlyBudget(worst))
		sort.Slice(worstHour, func(a, b int) bool { return rows[worstHour[a].row].Score > rows[worstHour[b].row].Score })
		var kept float64
		cut := -1.0
		for _, x := range worstHour {
			kept += rows[x.row].Weight
			if kept > budget {
				// Just above the first score over the budget; thresholds
				// stay below 1.
				cut = math.Min(math.Nextafter(rows[x.row].Score, 2), math.Nextafter(1, 0))
				break
			}
		}
		raised := false
		for _, x := range worstHour {
			r := &rows[x.row]
			i := rowOf(r.Channel)
			low := lowestAlerting(alerts, r.Channel)
			// A channel whose low tier alerts has no threshold to raise.
			if i < 0 || r.Score >= cut || low == TierNone || low == TierLow {
				continue
			}
			if th := &proposals[i].Proposal.Thresholds; th.get(low) < cut {
				th.raise(low, cut)
				raised = true
			}
		}
		if !raised {
			// What is left over the budget alerts by a rule's tier floor,
			// which no threshold holds back.
			notes = append(notes, fmt.Sprintf("team %s's busiest hour holds %.0f alerts over its hourly budget of %.0f that no threshold holds back (rules with a tier floor, or a channel whose low tier alerts); the budget holds them back when they fire",
				displayTeam(worst), worstOver, budget))
			break
		}
		notes = appendOnce(notes, fmt.Sprintf("thresholds raised so that team %s gets at most its hourly budget of %.0f alerts in its busiest hour", displayTeam(worst), budget))
	}
	// Expected alerts per week at each proposed tier.
	for i := range proposals {
		for k := range proposals[i].Proposal.Tiers {
			proposals[i].Proposal.Tiers[k].AlertsPerWeek = 0
		}
	}
	for i := range rows {
		r := &rows[i]
		p := rowOf(r.Channel)
		if p < 0 {
			continue
		}
		tier := pol.tierWith(thresholds(r.Channel), r.Score, r.Hits)
		for k := range proposals[p].Proposal.Tiers {
			tp := &proposals[p].Proposal.Tiers[k]
			if tp.Tier == tier {
				tp.AlertsPerWeek += r.Weight / weeks
			}
		}
	}
	// Tier figures follow raised thresholds.
	for i := range proposals {
		pr := &proposals[i].Proposal
		for k := range pr.Tiers {
			tp := &pr.Tiers[k]
			tp.Threshold = pr.Thresholds.get(tp.Tier)
			if tp.Threshold != before[i].get(tp.Tier) {
				tp.Note = "raised to keep a team within its hourly alert budget"
			}
		}
	}
	return notes
}

// lowestAlerting is the lowest tier that alerts on channel.
func lowestAlerting(a *AlertPolicy, channel string) Tier {
	low := TierNone
	for t := TierUrgent; t >= TierLow; t-- {
		if a.Alerts(channel, t) {
			low = t
		}
	}
	return low
}

func (t Thresholds) get(tier Tier) float64 {
	switch tier {
	case TierUrgent:
		return t.Urgent
	case TierHigh:
		return t.High
	case TierMedium:
		return t.Medium
	}
	return 0
}

// raise lifts tier's threshold to v, and the tiers above it with it so the
// thresholds stay ordered.
func (t *Thresholds) raise(tier Tier, v float64) {
	switch tier {
	case TierMedium:
		t.Medium = max(t.Medium, v)
		fallthrough
	case TierHigh:
		t.High = max(t.High, v)
		fallthrough
	case TierUrgent:
		t.Urgent = max(t.Urgent, v)
	}
}

func displayTeam(team string) string {
	if team == "" {
		return "(no team)"
	}
	return team
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Remeasure refigures each proposed tier's precision, recall and volume
// on the labelled holdout (rows and their scores) after its thresholds
// changed, grouping rows by proposal as ProposeHoldoutThresholds does.
func Remeasure(props []ThresholdRow, rows []TuningRow, scores []float64) {
	labels, weights := labelsOf(rows)
	for i := range props {
		pr := &props[i]
		var s, l, w []float64
		for k := range rows {
			if pr.Channel == defaultThresholds || rows[k].Channel == pr.Channel {
				s, l, w = append(s, scores[k]), append(l, labels[k]), append(w, weights[k])
			}
		}
		for k := range pr.Proposal.Tiers {
			tp := &pr.Proposal.Tiers[k]
			tp.Precision, tp.Recall, tp.Volume = PrecisionRecallAt(s, l, w, tp.Threshold)
			tp.Met = tp.Precision >= tp.Target && tp.Volume > 0
		}
	}
}
