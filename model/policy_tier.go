package model

// TierFor is the tier a decision with this score and these fired rules gets
// on channel: the highest tier whose threshold (the channel's, else the
// default) the score reaches, raised to the highest tier floor among the
// fired rules. It is what a Scorer does, for callers that score in bulk
// from stored hits, such as the tuning job.
func (p *Policy) TierFor(channel string, score float64, hits []string) Tier {
	return p.tierWith(p.thresholdsFor(channel), score, hits)
}

// tierWith is TierFor under thresholds th instead of the channel's: what
// proposed thresholds would do.
func (p *Policy) tierWith(th Thresholds, score float64, hits []string) Tier {
	floor := TierNone
	for _, h := range hits {
		for i := range p.rules {
			if p.rules[i].name == h {
				floor = max(floor, p.rules[i].floor)
			}
		}
	}
	return max(tierFor(th, score), floor)
}

// ThresholdsFor returns the thresholds that apply on channel.
func (p *Policy) ThresholdsFor(channel string) Thresholds { return p.thresholdsFor(channel) }

// RuleNames lists the policy's rules in order.
func (p *Policy) RuleNames() []string {
	out := make([]string, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.name
	}
	return out
}
