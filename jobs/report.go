package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// Report is a tuning report (PRODUCT.md §5 steps 3 to 5), stored as JSON
// and served by the API as is.
type Report struct {
	ID        string       `json:"id"`
	RunID     string       `json:"run_id"`
	AsOf      time.Time    `json:"as_of"`
	CreatedAt time.Time    `json:"created_at"`
	Window    ReportWindow `json:"window"`
	Trainer   string       `json:"trainer"`
	L2        float64      `json:"l2"`
	// PolicyVersion is the live ruleset the run read its rules from.
	PolicyVersion int `json:"policy_version"`
	// LiveModelVersion is the model active during the run; 0 is the
	// rules-only policy.
	LiveModelVersion int `json:"live_model_version"`
	// CandidateModelVersion is the model the run stored; 0 when it trained
	// none.
	CandidateModelVersion int        `json:"candidate_model_version"`
	Data                  ReportData `json:"data"`
	Fit                   FitSummary `json:"fit"`
	// Live and Candidate are measured on the holdout; nil without one.
	Live       *ModelEval     `json:"live"`
	Candidate  *ModelEval     `json:"candidate"`
	Rules      []RuleRow      `json:"rules"`
	Thresholds []ThresholdRow `json:"thresholds"`
	KPIs       []KPIWeek      `json:"kpis"`
	Recall     RecallEstimate `json:"recall"`
	Promotion  Promotion      `json:"promotion"`
	Notes      []string       `json:"notes,omitempty"`
}

// ReportWindow is the training window and its holdout.
type ReportWindow struct {
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	HoldoutStart time.Time `json:"holdout_start"`
}

// ReportData counts what the run learned from.
type ReportData struct {
	Conversations     int            `json:"conversations"`
	Labelled          int            `json:"labelled"`
	Train             int            `json:"train"`
	TrainPositives    int            `json:"train_positives"`
	Holdout           int            `json:"holdout"`
	HoldoutPositives  int            `json:"holdout_positives"`
	LabelsBySource    map[string]int `json:"labels_by_source"`
	ReviewSampleCount int            `json:"review_sample"`
}

func (d *ReportData) fill(train, hold []labelledRow) {
	d.Train, d.Holdout = len(train), len(hold)
	d.Labelled = len(train) + len(hold)
	d.LabelsBySource = map[string]int{}
	for _, part := range [][]labelledRow{train, hold} {
		for _, r := range part {
			d.LabelsBySource[r.source]++
			if r.sampleRate > 0 {
				d.ReviewSampleCount++
			}
		}
	}
	for _, r := range train {
		if r.ex.Label {
			d.TrainPositives++
		}
	}
	for _, r := range hold {
		if r.ex.Label {
			d.HoldoutPositives++
		}
	}
}

// FitSummary describes the stored candidate's fit.
type FitSummary struct {
	Rows       int  `json:"rows"`
	Rules      int  `json:"rules"`
	Features   int  `json:"features"`
	Iterations int  `json:"iterations"`
	Converged  bool `json:"converged"`
}

// ModelEval is a model measured on the holdout.
type ModelEval struct {
	model.Metrics
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
}

// TierEval is precision and recall at a tier or above.
type TierEval struct {
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
	Volume    float64  `json:"volume"`
}

// RuleRow is one rule's line in the report.
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

// ThresholdRow is the proposed thresholds of one channel ("default" for
// every channel) beside the current ones.
type ThresholdRow struct {
	Channel  string                  `json:"channel"`
	Rows     int                     `json:"rows"`
	Current  model.Thresholds        `json:"current"`
	Proposal model.ThresholdProposal `json:"proposal"`
}

// KPIWeek is one week of the KPIs of PRODUCT.md §6, overall.
type KPIWeek struct {
	Week                  string   `json:"week"`
	Accuracy              *float64 `json:"accuracy"`
	Reviewed              int      `json:"reviewed"`
	ResponseMedianSeconds *float64 `json:"response_median_seconds"`
	ResponseP90Seconds    *float64 `json:"response_p90_seconds"`
	TruePositiveRate      *float64 `json:"alert_true_positive_rate"`
	LabelledAlerts        int      `json:"labelled_alerts"`
	Conversion            *float64 `json:"conversion"`
	TopConversations      int      `json:"top_conversations"`
}

// RecallEstimate is the share of positive holdout conversations that
// alerted.
type RecallEstimate struct {
	// Estimated weights the review sample by the inverse of its sampling
	// probability; nil without alerted or sampled positives.
	Estimated        *float64 `json:"estimated"`
	AlertedPositives int      `json:"alerted_positives"`
	SampledPositives int      `json:"sampled_positives"`
	// AmongLabelled is the plain share among labelled positives, which
	// outcome events make broader than the alerts but not random.
	AmongLabelled *float64 `json:"among_labelled"`
}

// Promotion is the run's decision on its candidate.
type Promotion struct {
	Policy   string `json:"policy"`
	Promoted bool   `json:"promoted"`
	Reason   string `json:"reason"`
}

// ApplyStore is what ApplyReport needs from the store.
type ApplyStore interface {
	Report(ctx context.Context, id string) (feedback.StoredReport, error)
	Policy(ctx context.Context, version int) (feedback.PolicyVersion, error)
	PublishPolicy(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error)
	MarkReportApplied(ctx context.Context, id string, policyVersion int) error
	LiveVersions(ctx context.Context) (policy, model int, err error)
}

// Reasons ApplyReport refuses a report; each is a conflict with the
// current state, not a failure.
var (
	ErrNothingToApply = errors.New("the report proposes no weights or thresholds")
	ErrApplied        = errors.New("the report has already been applied")
	ErrStaleReport    = errors.New("the live ruleset changed since the report was made: run the tuning again")
	ErrNotPromoted    = errors.New("the report's candidate model is not active: promote it first, the proposed thresholds are for its scores")
)

// ApplyReport publishes a new policy version from the ruleset a report was
// made with: each rule's points become its tuned weight and the
// thresholds the proposed ones (per channel, "default" for all), so the
// rules-only scorer and the thresholds follow the tuning. The rules and
// everything else stay as they were. It refuses a report applied before,
// one made with a ruleset that is no longer live (applying it would undo
// the newer one), and one whose candidate is not the active model (the
// thresholds were tuned on its scores).
func ApplyReport(ctx context.Context, store ApplyStore, id, author string) (feedback.PolicyVersion, error) {
	sr, err := store.Report(ctx, id)
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	var rep Report
	if err := json.Unmarshal(sr.Body, &rep); err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("report %s: %w", id, err)
	}
	if rep.CandidateModelVersion == 0 {
		return feedback.PolicyVersion{}, ErrNothingToApply
	}
	if sr.AppliedPolicy > 0 {
		return feedback.PolicyVersion{}, fmt.Errorf("%w as ruleset version %d", ErrApplied, sr.AppliedPolicy)
	}
	livePolicy, liveModel, err := store.LiveVersions(ctx)
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	if livePolicy != rep.PolicyVersion {
		return feedback.PolicyVersion{}, fmt.Errorf("%w (report made with version %d, live is %d)", ErrStaleReport, rep.PolicyVersion, livePolicy)
	}
	if liveModel != rep.CandidateModelVersion {
		return feedback.PolicyVersion{}, fmt.Errorf("%w (model %d)", ErrNotPromoted, rep.CandidateModelVersion)
	}
	pv, err := store.Policy(ctx, rep.PolicyVersion)
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("ruleset %d: %w", rep.PolicyVersion, err)
	}
	doc, err := model.ParsePolicy(pv.Document)
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("ruleset %d: %w", rep.PolicyVersion, err)
	}
	tuned := map[string]float64{}
	for _, r := range rep.Rules {
		if r.TunedWeight != nil {
			tuned[r.Name] = *r.TunedWeight
		}
	}
	for i := range doc.Rules {
		if w, ok := tuned[doc.Rules[i].Name]; ok {
			doc.Rules[i].Points = round4(w)
		}
	}
	if doc.Thresholds == nil {
		doc.Thresholds = map[string]model.Thresholds{}
	}
	for _, t := range rep.Thresholds {
		th := t.Proposal.Thresholds
		doc.Thresholds[t.Channel] = model.Thresholds{Urgent: round4(th.Urgent), High: round4(th.High), Medium: round4(th.Medium)}
	}
	if _, err := model.CompilePolicy(doc); err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("the proposal does not make a valid ruleset: %w", err)
	}
	canonical, err := doc.Canonical()
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	published, err := store.PublishPolicy(ctx, canonical, string(canonical), author,
		fmt.Sprintf("tuned weights and thresholds of report %s", id))
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	if err := store.MarkReportApplied(ctx, id, published.Version); err != nil {
		return published, err
	}
	return published, nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
