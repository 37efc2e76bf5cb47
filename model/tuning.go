package model

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// The tuning maths: what the weekly tuning job computes from a window of
// labelled conversations once it has gathered them. Every function here is
// pure; the job (package jobs) reads the window, calls these, and stores
// what they return.

// TuningRow is one labelled conversation of a tuning window: its latest
// decision's channel and rule hits, its training label and weight, and
// what the alerting did with it.
type TuningRow struct {
	// Example holds the channel, hits, label and weight; its Signals stay
	// nil until the row is laid out (BuildTuningDataset decodes Raw).
	Example
	// Raw is the decision's signals as stored, a JSON object.
	Raw json.RawMessage
	// At is when the conversation's latest decision in the window
	// occurred.
	At time.Time
	// Alerted is set when the conversation fired a tier alert.
	Alerted bool
	// SampleRate is the probability it was drawn with for the review
	// sample, 0 when it was not sampled.
	SampleRate float64
	// Source is where its label came from (an agent, a conversion, a loss).
	Source string
}

// weight is the row's weight in metrics: 0 or less counts as 1.
func (r *TuningRow) weight() float64 {
	if r.Weight <= 0 {
		return 1
	}
	return r.Weight
}

// Thresholds of judgement.
const (
	// CalibrationSlack is how much worse (expected calibration error) a
	// candidate may be calibrated than the live model and still be
	// promoted automatically: differences below it are noise on a week's
	// holdout.
	CalibrationSlack = 0.01
	// MinRuleLabels is the number of labelled hits below which a rule's
	// verdict is "keep": too few to judge.
	MinRuleLabels = 20
	// MinChannelRows is the number of labelled holdout conversations a
	// channel needs for thresholds of its own to be proposed.
	MinChannelRows = 50
	// MinLabelled is the default fewest labelled conversations a candidate
	// is trained on (the tuning job's --min-labelled).
	MinLabelled = 50
	// MinHoldoutPositives and MinHoldoutNegatives are the fewest positive
	// and negative labelled holdout conversations (counted, not weighted)
	// a tuning run measures models on. Below them ranking and calibration
	// are chance, not evidence: one conversation gives ROC-AUC 0.5 and
	// PR-AUC 1 whatever the model. With 20 of each, the standard error of
	// a ROC-AUC near 0.8 is about 0.07 (Hanley and McNeil).
	MinHoldoutPositives = 20
	MinHoldoutNegatives = 20
	// MinTierLabelled is the fewest labelled holdout conversations at or
	// above a proposed tier threshold that its precision is claimed on:
	// two conversations at the top of the scores, both useful, do not
	// make an urgent tier with precision 1.
	MinTierLabelled = 10
)

// Minimums is how much labelled data a tuning run needs before it judges,
// gathered in one place so that the job, its report and its readers hold
// the same figures: the constants above, by default.
type Minimums struct {
	// Labelled is the fewest labelled conversations a candidate is
	// trained on (before the holdout).
	Labelled int `json:"labelled"`
	// HoldoutPositives and HoldoutNegatives are the fewest of each class
	// in the holdout for the models to be measured, thresholds proposed
	// and the candidate promoted.
	HoldoutPositives int `json:"holdout_positives"`
	HoldoutNegatives int `json:"holdout_negatives"`
	// TierLabelled is the fewest labelled holdout conversations at or
	// above a proposed threshold for it to meet its target.
	TierLabelled int `json:"tier_labelled"`
}

// DefaultMinimums are the tuning job's minimums.
var DefaultMinimums = Minimums{Labelled: MinLabelled, HoldoutPositives: MinHoldoutPositives,
	HoldoutNegatives: MinHoldoutNegatives, TierLabelled: MinTierLabelled}

// OrDefault fills m's zero (or negative) fields from DefaultMinimums.
func (m Minimums) OrDefault() Minimums {
	fill := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	fill(&m.Labelled, DefaultMinimums.Labelled)
	fill(&m.HoldoutPositives, DefaultMinimums.HoldoutPositives)
	fill(&m.HoldoutNegatives, DefaultMinimums.HoldoutNegatives)
	fill(&m.TierLabelled, DefaultMinimums.TierLabelled)
	return m
}

// Evidence is what a tuning run had to judge by and whether it was
// enough. When it was not, the run measures nothing, proposes no
// thresholds and promotes nothing, and Reason says so plainly.
type Evidence struct {
	// Judged is set when the data met every minimum.
	Judged bool `json:"judged"`
	// Reason, when not judged, starts "too little data:" and gives the
	// counts against what is needed.
	Reason string `json:"reason,omitempty"`
	// HoldoutPositives and HoldoutNegatives count the labelled holdout
	// conversations of each class (the report's data counts the rest).
	HoldoutPositives int `json:"holdout_positives"`
	HoldoutNegatives int `json:"holdout_negatives"`
	// Needed are the minimums the run was held to.
	Needed Minimums `json:"needed"`
}

// TooLittleData is how a reason for not judging starts.
const TooLittleData = "too little data"

// JudgeEvidence says whether train (the labelled conversations before the
// holdout) and hold (the holdout) meet need.
func JudgeEvidence(train, hold []TuningRow, need Minimums) Evidence {
	ev := Evidence{Needed: need}
	for i := range hold {
		if hold[i].Label {
			ev.HoldoutPositives++
		} else {
			ev.HoldoutNegatives++
		}
	}
	var missing []string
	if reason := Untrainable(train, need.Labelled); reason != "" {
		missing = append(missing, reason)
	}
	if ev.HoldoutPositives < need.HoldoutPositives || ev.HoldoutNegatives < need.HoldoutNegatives {
		noun := "conversations"
		if len(hold) == 1 {
			noun = "conversation"
		}
		missing = append(missing, fmt.Sprintf("the holdout holds %d labelled %s (%d positive, %d negative), at least %d positive and %d negative needed to measure the models",
			len(hold), noun, ev.HoldoutPositives, ev.HoldoutNegatives, need.HoldoutPositives, need.HoldoutNegatives))
	}
	ev.Judged = len(missing) == 0
	if !ev.Judged {
		ev.Reason = TooLittleData + ": " + strings.Join(missing, "; ")
	}
	return ev
}

// ModelEval is a model measured on the holdout.
type ModelEval struct {
	Metrics
	// WeightedPositives and WeightTotal are the holdout's weighted
	// positives and rows.
	WeightedPositives float64 `json:"weighted_positives"`
	WeightTotal       float64 `json:"weighted_rows"`
	// Tiers holds, per channel ("all" for every channel) and tier, the
	// precision and recall of conversations the policy's thresholds put at
	// that tier or above.
	Tiers map[string]map[string]TierEval `json:"tiers"`
	// AlertTruePositiveRate is, of the holdout conversations that fired a
	// tier alert, the share labelled positive.
	AlertTruePositiveRate *float64 `json:"alert_true_positive_rate"`
	// PRCurve is the precision-recall curve on the holdout, at most
	// PRCurvePoints points; nil in reports made before it was kept.
	PRCurve []PRPoint `json:"pr_curve,omitempty"`
}

// PRCurvePoints bounds the points of a report's precision-recall curve.
const PRCurvePoints = 101

// TierEval is precision and recall at a tier or above.
type TierEval struct {
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
	Volume    float64  `json:"volume"`
}

// EvaluateHoldout measures scores given to rows (the holdout): the ranking
// and calibration metrics, precision and recall of the tiers the policy's
// thresholds give these scores (urgent and high, overall and per channel),
// and the alert true-positive rate. Nil without rows.
func EvaluateHoldout(pol *Policy, rows []TuningRow, scores []float64) *ModelEval {
	if len(rows) == 0 {
		return nil
	}
	labels, weights := labelsOf(rows)
	ev := &ModelEval{Metrics: Evaluate(scores, labels, weights, 10), PRCurve: PRCurve(scores, labels, weights, PRCurvePoints)}
	for _, w := range weights {
		ev.WeightTotal += w
	}
	for i, y := range labels {
		ev.WeightedPositives += y * weights[i]
	}
	ev.Tiers = map[string]map[string]TierEval{}
	channels := map[string][]int{"all": nil}
	for i, r := range rows {
		channels["all"] = append(channels["all"], i)
		channels[r.Channel] = append(channels[r.Channel], i)
	}
	for ch, idx := range channels {
		per := map[string]TierEval{}
		for _, tier := range []Tier{TierUrgent, TierHigh} {
			var te TierEval
			var tp, pos float64
			for _, i := range idx {
				w := weights[i]
				at := pol.TierFor(rows[i].Channel, scores[i], rows[i].Hits) >= tier
				if labels[i] == 1 {
					pos += w
				}
				if at {
					te.Volume += w
					if labels[i] == 1 {
						tp += w
					}
				}
			}
			te.Precision, te.Recall = ratioOrNil(tp, te.Volume), ratioOrNil(tp, pos)
			per[tier.String()] = te
		}
		ev.Tiers[ch] = per
	}
	var alerted, useful float64
	for i, r := range rows {
		if r.Alerted {
			alerted += weights[i]
			useful += labels[i] * weights[i]
		}
	}
	ev.AlertTruePositiveRate = ratioOrNil(useful, alerted)
	return ev
}

// labelsOf returns the rows' labels (0 or 1) and weights.
func labelsOf(rows []TuningRow) (labels, weights []float64) {
	labels = make([]float64, len(rows))
	weights = make([]float64, len(rows))
	for i := range rows {
		if rows[i].Label {
			labels[i] = 1
		}
		weights[i] = rows[i].weight()
	}
	return labels, weights
}

func ratioOrNil(num, den float64) *float64 {
	if den <= 0 {
		return nil
	}
	r := num / den
	return &r
}

// Rule verdicts.
const (
	VerdictKeep     = "keep"
	VerdictReweight = "reweight"
	VerdictRetire   = "retire"
)

// RuleRow is one rule's line in a tuning report.
type RuleRow struct {
	Name          string   `json:"name"`
	Hits          int      `json:"hits"`
	LabelledHits  int      `json:"labelled_hits"`
	Precision     *float64 `json:"precision"`
	HandSetWeight float64  `json:"hand_set_weight"`
	LiveWeight    float64  `json:"live_weight"`
	TunedWeight   *float64 `json:"tuned_weight"`
	Verdict       string   `json:"verdict"`
	Why           string   `json:"why"`
}

// JudgeRules judges each rule of the policy: how often it fired in the
// window (hits counts every conversation), how often on labelled
// conversations and how precisely, its hand-set, live and tuned weights
// (live and tuned may be nil), and a verdict.
func JudgeRules(pol *Policy, live, tuned *Model, hits map[string]int, rows []TuningRow) []RuleRow {
	doc := pol.Doc()
	out := make([]RuleRow, 0, len(doc.Rules))
	for _, rs := range doc.Rules {
		rr := RuleRow{Name: rs.Name, Hits: hits[rs.Name], HandSetWeight: rs.Points, LiveWeight: rs.Points}
		if live != nil {
			if w, ok := live.RuleWeights[rs.Name]; ok {
				rr.LiveWeight = w
			}
		}
		var pos, all float64
		for i := range rows {
			r := &rows[i]
			if slices.Contains(r.Hits, rs.Name) {
				rr.LabelledHits++
				all += r.weight()
				if r.Label {
					pos += r.weight()
				}
			}
		}
		rr.Precision = ratioOrNil(pos, all)
		if tuned != nil {
			if w, ok := tuned.RuleWeights[rs.Name]; ok {
				rr.TunedWeight = &w
			}
		}
		rr.Verdict, rr.Why = RuleVerdict(rr)
		if rr.Verdict == VerdictRetire && tuned != nil {
			if read := modelReads(pol, rs.Name, tuned); len(read) > 0 {
				rr.Why = fmt.Sprintf("tuned weight %.2f: the model reads %s itself, which covers what the rule adds; with the model rolled back to rules only, the rule would count again",
					*rr.TunedWeight, strings.Join(read, ", "))
			}
		}
		out = append(out, rr)
	}
	return out
}

// modelReads lists the signals rule name reads that m's encoder reads
// too, in the rule's order.
func modelReads(pol *Policy, name string, m *Model) []string {
	var out []string
	for _, r := range pol.rules {
		if r.name != name {
			continue
		}
		for _, s := range r.reads {
			for _, f := range m.Encoder.Features {
				if f.Signal == s && f.Kind != KindMissing {
					out = append(out, s)
					break
				}
			}
		}
	}
	return out
}

// RuleVerdict judges one rule from its labelled hits and its hand-set and
// tuned weights: keep it, reweight it, or retire it, and why.
func RuleVerdict(r RuleRow) (verdict, why string) {
	switch {
	case r.TunedWeight == nil:
		return VerdictKeep, "no tuned weight this week"
	case r.LabelledHits < MinRuleLabels:
		return VerdictKeep, fmt.Sprintf("%d labelled hits, too few to judge (at least %d)", r.LabelledHits, MinRuleLabels)
	}
	tuned := *r.TunedWeight
	switch {
	case r.HandSetWeight > 0 && tuned <= 0.1:
		return VerdictRetire, fmt.Sprintf("tuned weight %.2f: the rule adds nothing once the other signals are known", tuned)
	case r.HandSetWeight < 0 && tuned >= -0.1:
		return VerdictRetire, fmt.Sprintf("tuned weight %.2f: the penalty adds nothing once the other signals are known", tuned)
	case math.Abs(tuned-r.HandSetWeight) > math.Max(0.5, 0.25*math.Abs(r.HandSetWeight)):
		return VerdictReweight, fmt.Sprintf("tuned weight %.2f against hand-set %.2f", tuned, r.HandSetWeight)
	}
	return VerdictKeep, fmt.Sprintf("tuned weight %.2f is close to hand-set %.2f", tuned, r.HandSetWeight)
}

// ThresholdRow is the proposed thresholds of one channel ("default" for
// every channel) beside the current ones.
type ThresholdRow struct {
	Channel  string            `json:"channel"`
	Rows     int               `json:"rows"`
	Current  Thresholds        `json:"current"`
	Proposal ThresholdProposal `json:"proposal"`
}

// ProposeHoldoutThresholds proposes, from a model's holdout scores,
// thresholds meeting the precision targets: one set over every channel
// (for "default") and one per channel with at least MinChannelRows
// labelled holdout conversations. A tier whose target cannot be met, or
// is met only on fewer than minTier conversations (MinTierLabelled by
// default), keeps the channel's current threshold.
func ProposeHoldoutThresholds(pol *Policy, rows []TuningRow, scores []float64, targets TargetPrecision, minTier int) []ThresholdRow {
	if len(rows) == 0 {
		return nil
	}
	labels, weights := labelsOf(rows)
	groups := map[string][]int{"default": nil}
	for i, r := range rows {
		groups["default"] = append(groups["default"], i)
		if r.Channel != "default" {
			groups[r.Channel] = append(groups[r.Channel], i)
		}
	}
	// A channel with few holdout rows gets no thresholds of its own: a
	// handful of conversations would set them by chance. It keeps its own
	// or falls back to the default ones.
	for ch, idx := range groups {
		if ch != "default" && len(idx) < MinChannelRows {
			delete(groups, ch)
		}
	}
	names := make([]string, 0, len(groups))
	for ch := range groups {
		names = append(names, ch)
	}
	sort.Strings(names)
	out := make([]ThresholdRow, 0, len(names))
	for _, ch := range names {
		idx := groups[ch]
		s, l, w := make([]float64, len(idx)), make([]float64, len(idx)), make([]float64, len(idx))
		for k, i := range idx {
			s[k], l[k], w[k] = scores[i], labels[i], weights[i]
		}
		current := pol.ThresholdsFor(ch)
		out = append(out, ThresholdRow{Channel: ch, Current: current, Rows: len(idx),
			Proposal: ProposeThresholds(s, l, w, ThresholdOptions{Targets: targets, Current: &current, MinLabelled: minTier})})
	}
	return out
}

// CountTierSupport recounts, after Remeasure (the budgets may have raised
// thresholds), the labelled holdout conversations at or above each
// proposed threshold, and unmarks a tier met on fewer than minTier of
// them: its precision is not claimed.
func CountTierSupport(props []ThresholdRow, rows []TuningRow, scores []float64, minTier int) {
	for i := range props {
		pr := &props[i]
		var s []float64
		for k := range rows {
			if pr.Channel == defaultThresholds || rows[k].Channel == pr.Channel {
				s = append(s, scores[k])
			}
		}
		for k := range pr.Proposal.Tiers {
			tp := &pr.Proposal.Tiers[k]
			tp.Labelled = countAtOrAbove(s, tp.Threshold)
			supported(tp, minTier)
		}
	}
}

// RecallEstimate is the share of positive holdout conversations that
// alerted.
type RecallEstimate struct {
	// Estimated weights the review sample by the inverse of its sampling
	// probability; nil without a review sample or without positives.
	Estimated        *float64 `json:"estimated"`
	AlertedPositives int      `json:"alerted_positives"`
	SampledPositives int      `json:"sampled_positives"`
	// AmongLabelled is the plain share among labelled positives, which
	// outcome events make broader than the alerts but not random.
	AmongLabelled *float64 `json:"among_labelled"`
}

// EstimateRecall estimates, from the holdout, the share of positive
// conversations that alerted. Conversations sampled for review stand for
// the non-alerting ones by the inverse of their sampling probability; the
// plain share among outcome-labelled conversations is given beside it.
// Without a review sample nothing stands for the non-alerting
// conversations, and no estimate is given.
func EstimateRecall(rows []TuningRow) RecallEstimate {
	var est RecallEstimate
	var alertedPos, sampledPos, pos float64
	sampled := 0
	for _, r := range rows {
		if !r.Alerted && r.SampleRate > 0 {
			sampled++
		}
		if !r.Label {
			continue
		}
		pos++
		if r.Alerted {
			alertedPos++
			continue
		}
		if r.SampleRate > 0 {
			est.SampledPositives++
			sampledPos += 1 / r.SampleRate
		}
	}
	est.AlertedPositives = int(alertedPos)
	if sampled > 0 {
		est.Estimated = ratioOrNil(alertedPos, alertedPos+sampledPos)
	}
	est.AmongLabelled = ratioOrNil(alertedPos, pos)
	return est
}

// Promotion policies of the tuning job.
const (
	// PromoteAuto promotes a candidate that beats the live model on the
	// holdout's PR-AUC without worse calibration.
	PromoteAuto = "auto"
	// PromoteManual never promotes: a lead promotes from the report.
	PromoteManual = "manual"
)

// PromotionGuard is what automatic promotion asks beyond beating the live
// model: a PR-AUC gain of at least Margin, on a holdout of at least
// MinRows conversations and MinPositives positives. The zero value asks
// nothing more.
type PromotionGuard struct {
	Margin                float64
	MinRows, MinPositives int
}

// DefaultPromotionGuard is the tuning job's guard: half a point of PR-AUC
// on at least 200 conversations and 20 positives.
var DefaultPromotionGuard = PromotionGuard{Margin: 0.005, MinRows: 200, MinPositives: 20}

// DecidePromotion applies the promotion policy and its guard to the live
// model's and the candidate's holdout measurements (liveVersion 0 is the
// rules-only policy): promote, or wait for a lead, and why.
func DecidePromotion(policy string, live, cand *ModelEval, liveVersion int, g PromotionGuard) (promote bool, why string) {
	liveName := "the rules-only policy"
	if liveVersion > 0 {
		liveName = fmt.Sprintf("model %d", liveVersion)
	}
	switch {
	case policy == PromoteManual:
		return false, "promotion policy is manual: waiting for a lead to promote it"
	case cand == nil || live == nil:
		return false, "no labelled conversations in the holdout to compare on: waiting for a lead"
	case cand.WeightedPositives == 0 || cand.WeightedPositives == cand.WeightTotal:
		return false, "the holdout holds one class only, so the models cannot be compared: waiting for a lead"
	case cand.Rows < g.MinRows || cand.Positives < g.MinPositives:
		return false, fmt.Sprintf("the holdout of %d conversations (%d positive) is too small to judge by, at least %d and %d are needed: waiting for a lead",
			cand.Rows, cand.Positives, g.MinRows, g.MinPositives)
	case !(cand.PRAUC > live.PRAUC):
		return false, fmt.Sprintf("holdout PR-AUC %.5f does not beat %s's %.5f: waiting for a lead", cand.PRAUC, liveName, live.PRAUC)
	case !(cand.PRAUC >= live.PRAUC+g.Margin):
		return false, fmt.Sprintf("holdout PR-AUC %.5f beats %s's %.5f by less than the margin of %.4f: waiting for a lead",
			cand.PRAUC, liveName, live.PRAUC, g.Margin)
	case cand.ECE > live.ECE+CalibrationSlack:
		return false, fmt.Sprintf("holdout PR-AUC %.5f beats %s's %.5f but calibration is worse (ECE %.4f against %.4f, more than %.2f apart): waiting for a lead",
			cand.PRAUC, liveName, live.PRAUC, cand.ECE, live.ECE, CalibrationSlack)
	}
	return true, fmt.Sprintf("holdout PR-AUC %.5f beats %s's %.5f with calibration no worse (ECE %.4f against %.4f, within %.2f)",
		cand.PRAUC, liveName, live.PRAUC, cand.ECE, live.ECE, CalibrationSlack)
}

// Untrainable says why rows cannot train a candidate (fewer than
// minLabelled rows, or one class only), or "" when they can.
func Untrainable(rows []TuningRow, minLabelled int) string {
	if len(rows) < minLabelled {
		return fmt.Sprintf("%d labelled conversations to train on, at least %d needed", len(rows), minLabelled)
	}
	var pos int
	for i := range rows {
		if rows[i].Label {
			pos++
		}
	}
	if pos == 0 || pos == len(rows) {
		return "the labelled conversations to train on are all of one class"
	}
	return ""
}

// ReweightReviewSample decides what a review-sampled conversation stands
// for. Agents' labels on the review sample weigh 1/sampling probability so
// that the sample stands for the non-alerting conversations nobody
// labelled. When outcome events already label most of those (unsampled
// counts the window's conversations that neither alerted nor were sampled,
// unsampledLabelled those of them with a label; at least half), the
// sample stands only for itself: its rows weigh 1, like the
// outcome-labelled conversations they would otherwise be counted over. It
// returns a note for the report when it changes weights.
func ReweightReviewSample(rows []TuningRow, unsampled, unsampledLabelled int) string {
	if unsampled == 0 || 2*unsampledLabelled < unsampled {
		return ""
	}
	n := 0
	for i := range rows {
		if rows[i].SampleRate > 0 && rows[i].Weight != 1 {
			rows[i].Weight = 1
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("outcome events label %d of the %d conversations that neither alerted nor were sampled for review, so the %d review-sampled conversations count once instead of by their inverse sampling probability",
		unsampledLabelled, unsampled, n)
}

// MaxEncoderSample bounds the rows an encoder is learned from in tuning:
// its quantiles and category counts are settled long before that.
const MaxEncoderSample = 200_000

// SampleSignals decodes the signals of rows, or of an evenly spaced sample
// of MaxEncoderSample of them when there are more, for FitEncoder.
func SampleSignals(rows []TuningRow) []map[string]any {
	step := 1
	if len(rows) > MaxEncoderSample {
		step = (len(rows) + MaxEncoderSample - 1) / MaxEncoderSample
	}
	out := make([]map[string]any, 0, len(rows)/step+1)
	for i := 0; i < len(rows); i += step {
		var m map[string]any
		if json.Unmarshal(rows[i].Raw, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// BuildTuningDataset lays every row out in the design, decoding each row's
// Raw signals once and dropping them after (Raw is set to nil, so a window
// of millions does not keep its JSON and its data set together), and
// scores the rows from hold on (the holdout) with the live policy and model
// (nil for rules only).
func BuildTuningDataset(design *Design, pol *Policy, live *Model, rows []TuningRow, hold int) (*Dataset, []float64, error) {
	ds := &Dataset{P: design.Width(), X: make([]float64, 0, len(rows)*design.Width()), Y: make([]float64, 0, len(rows))}
	liveScores := make([]float64, 0, len(rows)-hold)
	for i := range rows {
		r := &rows[i]
		var signals map[string]any
		if err := json.Unmarshal(r.Raw, &signals); err != nil {
			return nil, nil, fmt.Errorf("conversation at %s: signals: %w", r.At.Format(time.RFC3339), err)
		}
		r.Raw = nil
		ex := r.Example
		ex.Signals = signals
		design.Append(ds, ex)
		if i >= hold {
			liveScores = append(liveScores, PredictProb(pol, live, r.Hits, r.Channel, signals))
		}
	}
	return ds, liveScores, nil
}

// Prefix is the first n rows of ds, sharing its memory.
func (d *Dataset) Prefix(n int) *Dataset {
	out := &Dataset{X: d.X[:n*d.P], Y: d.Y[:n], P: d.P}
	if d.W != nil {
		out.W = d.W[:n]
	}
	return out
}
