package model

import (
	"fmt"
	"math"
	"sort"
)

// TargetPrecision is the least precision each tier should reach: among
// conversations at or above a tier's threshold, the weighted share that
// turn out useful.
type TargetPrecision struct {
	Urgent float64 `json:"urgent"`
	High   float64 `json:"high"`
	Medium float64 `json:"medium"`
}

// DefaultTargetPrecision is the target when none is configured.
var DefaultTargetPrecision = TargetPrecision{Urgent: 0.9, High: 0.75, Medium: 0.5}

// ThresholdOptions control ProposeThresholds.
type ThresholdOptions struct {
	// Targets are the precisions to meet; zero takes
	// DefaultTargetPrecision.
	Targets TargetPrecision
	// Budget is the largest weighted volume allowed at or above the
	// threshold of AlertTier (0: unlimited). Higher tiers, whose
	// thresholds are no lower, are then within it too.
	Budget float64
	// AlertTier is the lowest tier that alerts; TierNone takes TierHigh.
	AlertTier Tier
	// Current, when set, are the thresholds in use: a tier whose target
	// cannot be met keeps its current threshold.
	Current *Thresholds
	// MinLabelled is the fewest rows at or above a threshold for it to
	// meet its target (MinTierLabelled in tuning); 0 asks for one.
	MinLabelled int
}

// TierProposal is the proposed threshold of one tier and what it is
// expected to give on the data it was tuned on.
type TierProposal struct {
	Tier      Tier    `json:"tier"`
	Target    float64 `json:"target"`
	Threshold float64 `json:"threshold"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	// Volume is the weighted number of rows at or above the threshold,
	// and Labelled their number: the evidence behind Precision.
	Volume   float64 `json:"volume"`
	Labelled int     `json:"labelled"`
	// Met says whether Precision reaches Target (within the budget) on at
	// least the options' MinLabelled rows.
	Met bool `json:"met"`
	// Note explains a threshold that does not meet its target.
	Note string `json:"note,omitempty"`
	// AlertsPerWeek is how many conversations a week of the holdout
	// period, labelled or not, the proposed thresholds put at this tier;
	// 0 when the job did not count them.
	AlertsPerWeek float64 `json:"alerts_per_week"`
}

// ThresholdProposal is the proposal for one channel.
type ThresholdProposal struct {
	Thresholds Thresholds `json:"thresholds"`
	// Tiers are urgent, high and medium, in that order.
	Tiers []TierProposal `json:"tiers"`
}

// ProposeThresholds picks each tier's threshold from holdout scores: the
// lowest score whose precision (over the rows at or above it, at least
// opt.MinLabelled of them) reaches the tier's target, so the tier catches
// as much as it can; AlertTier and the tiers above it must also keep their
// volume within the budget.
//
// When no threshold meets a target, the tier keeps opt.Current's threshold
// if given, and otherwise takes the threshold of best precision (the
// lowest such one) within the budget: an honest best effort, flagged with
// Met false and a Note, rather than a threshold that claims a precision
// the data does not support. Thresholds are then made ordered (urgent >=
// high >= medium) by lowering a lower tier's threshold to the one above
// it, and the reported figures are those of the final thresholds.
func ProposeThresholds(scores, labels, weights []float64, opt ThresholdOptions) ThresholdProposal {
	if opt.Targets == (TargetPrecision{}) {
		opt.Targets = DefaultTargetPrecision
	}
	if opt.AlertTier == TierNone {
		opt.AlertTier = TierHigh
	}
	opt.MinLabelled = max(opt.MinLabelled, 1)
	cands := thresholdCandidates(scores, labels, weights)
	tiers := []struct {
		tier   Tier
		target float64
		cur    float64
	}{
		{TierUrgent, opt.Targets.Urgent, 0},
		{TierHigh, opt.Targets.High, 0},
		{TierMedium, opt.Targets.Medium, 0},
	}
	if opt.Current != nil {
		tiers[0].cur, tiers[1].cur, tiers[2].cur = opt.Current.Urgent, opt.Current.High, opt.Current.Medium
	}
	out := ThresholdProposal{Tiers: make([]TierProposal, len(tiers))}
	ceiling := math.Inf(1)
	for k, t := range tiers {
		budget := math.Inf(1)
		if opt.Budget > 0 && t.tier >= opt.AlertTier {
			budget = opt.Budget
		}
		tp := TierProposal{Tier: t.tier, Target: t.target}
		best, bestPrec := -1, -1.0
		found := -1
		// unsupported: a threshold met the target on too few rows;
		// skipped: a threshold within the budget had too few.
		unsupported, skipped := false, false
		for i, c := range cands {
			if c.volume > budget {
				break
			}
			if c.count < opt.MinLabelled {
				unsupported = unsupported || c.precision >= t.target
				skipped = true
				continue // too few rows to claim a precision on
			}
			if c.precision >= t.target {
				found = i // candidates go down in score: the last is the lowest
			}
			if c.precision > bestPrec {
				best, bestPrec = i, c.precision
			}
		}
		switch {
		case found >= 0:
			tp.Threshold, tp.Met = cands[found].score, true
		case opt.Current != nil && unsupported:
			tp.Threshold = t.cur
			tp.Note = fmt.Sprintf("%s: the target is met only on fewer than %d labelled conversations; current threshold kept", TooLittleData, opt.MinLabelled)
		case opt.Current != nil:
			tp.Threshold = t.cur
			tp.Note = "target precision not reachable on this data; current threshold kept"
		case best >= 0:
			tp.Threshold = cands[best].score
			tp.Note = "target precision not reachable on this data; threshold of best precision proposed"
		case skipped:
			tp.Threshold = aboveAll(cands)
			tp.Note = fmt.Sprintf("%s: fewer than %d labelled conversations at any threshold; threshold above every score proposed", TooLittleData, opt.MinLabelled)
		default:
			// Not even the top score fits the budget (or there is no data):
			// a threshold above every score alerts on nothing.
			tp.Threshold = aboveAll(cands)
			tp.Note = "no threshold fits the budget; threshold above every score proposed"
		}
		if tp.Threshold > ceiling {
			tp.Threshold = ceiling
			tp.Note = "lowered to the threshold of the tier above"
		}
		ceiling = tp.Threshold
		tp.Precision, tp.Recall, tp.Volume = PrecisionRecallAt(scores, labels, weights, tp.Threshold)
		tp.Labelled = countAtOrAbove(scores, tp.Threshold)
		tp.Met = tp.Precision >= t.target && tp.Volume > 0 && tp.Volume <= budget
		supported(&tp, opt.MinLabelled)
		if tp.Met {
			tp.Note = ""
		}
		out.Tiers[k] = tp
	}
	out.Thresholds = Thresholds{Urgent: out.Tiers[0].Threshold, High: out.Tiers[1].Threshold, Medium: out.Tiers[2].Threshold}
	return out
}

// ProposeChannelThresholds proposes thresholds per channel, plus "default"
// over every row; channels[i] is row i's channel.
func ProposeChannelThresholds(channels []string, scores, labels, weights []float64, opt ThresholdOptions) map[string]ThresholdProposal {
	idx := map[string][]int{}
	for i, c := range channels {
		idx[c] = append(idx[c], i)
	}
	out := map[string]ThresholdProposal{defaultThresholds: ProposeThresholds(scores, labels, weights, opt)}
	for c, rows := range idx {
		if c == defaultThresholds || c == "" {
			continue
		}
		s := make([]float64, len(rows))
		l := make([]float64, len(rows))
		var w []float64
		if weights != nil {
			w = make([]float64, len(rows))
		}
		for k, i := range rows {
			s[k], l[k] = scores[i], labels[i]
			if w != nil {
				w[k] = weights[i]
			}
		}
		out[c] = ProposeThresholds(s, l, w, opt)
	}
	return out
}

// thresholdCandidate is one distinct score with the cumulative figures of
// the rows at or above it.
type thresholdCandidate struct {
	score, precision, volume float64
	count                    int
}

// countAtOrAbove counts the scores at or above threshold.
func countAtOrAbove(scores []float64, threshold float64) int {
	n := 0
	for _, s := range scores {
		if s >= threshold {
			n++
		}
	}
	return n
}

// supported unmarks a met tier whose precision rests on fewer than
// minLabelled rows, and says why.
func supported(tp *TierProposal, minLabelled int) {
	if tp.Met && tp.Labelled < minLabelled {
		tp.Met = false
		tp.Note = fmt.Sprintf("%s: precision measured on %d labelled conversations at or above the threshold, at least %d needed", TooLittleData, tp.Labelled, minLabelled)
	}
}

// thresholdCandidates lists the distinct scores, highest first.
func thresholdCandidates(scores, labels, weights []float64) []thresholdCandidate {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	var out []thresholdCandidate
	var tp, vol float64
	var count int
	for k := 0; k < len(order); {
		s := scores[order[k]]
		for k < len(order) && scores[order[k]] == s {
			i := order[k]
			w := weightAt(weights, i)
			vol += w
			if labels[i] == 1 {
				tp += w
			}
			count++
			k++
		}
		if vol > 0 {
			out = append(out, thresholdCandidate{score: s, precision: tp / vol, volume: vol, count: count})
		}
	}
	return out
}

func aboveAll(cands []thresholdCandidate) float64 {
	if len(cands) == 0 {
		return 1
	}
	return math.Nextafter(cands[0].score, math.Inf(1))
}
