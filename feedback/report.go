package feedback

import (
	"errors"
	"time"

	"github.com/hotlane/hotlane/model"
)

// Report is a tuning report (PRODUCT.md §5 steps 3 to 5): what one run of
// the tuning job learned and proposes. It is stored as JSON and served by
// the API as is; the measurements are model's tuning maths.
type Report struct {
	ID        string       `json:"id"`
	RunID     string       `json:"run_id"`
	AsOf      time.Time    `json:"as_of"`
	CreatedAt time.Time    `json:"created_at"`
	Window    ReportWindow `json:"window"`
	Trainer   string       `json:"trainer"`
	// L2 is the penalty of the stored candidate (0 without one): chosen
	// by inner cross-validation on the window when L2FromCV, else given
	// by --l2 (or the default, when the window was too small to choose
	// it).
	L2       float64 `json:"l2"`
	L2FromCV bool    `json:"l2_from_cv"`
	// Interactions are the pairs of signals the stored candidate kept as
	// product features, as "a×b", empty when it kept none; nil without a
	// candidate (absent in reports made before they were chosen).
	Interactions []string `json:"interactions"`
	// PolicyVersion is the live ruleset the run read its rules from.
	PolicyVersion int `json:"policy_version"`
	// LiveModelVersion is the model active during the run; 0 is the
	// rules-only policy.
	LiveModelVersion int `json:"live_model_version"`
	// CandidateModelVersion is the model the run stored; 0 when it trained
	// none.
	CandidateModelVersion int        `json:"candidate_model_version"`
	Data                  ReportData `json:"data"`
	// Evidence says whether the run had enough labelled data to judge
	// the models by, with the counts and the minimums; when it had not
	// (Judged false: "too little data"), Live and Candidate are nil, no
	// thresholds are proposed, Recall is empty and nothing is promoted.
	// Nil in reports made before it was kept.
	Evidence *model.Evidence `json:"evidence,omitempty"`
	Fit      FitSummary      `json:"fit"`
	// Live and Candidate are measured on the holdout; nil without one, or
	// with too little data to judge by.
	Live       *model.ModelEval     `json:"live"`
	Candidate  *model.ModelEval     `json:"candidate"`
	Rules      []model.RuleRow      `json:"rules"`
	Thresholds []model.ThresholdRow `json:"thresholds"`
	KPIs       []ReportKPIWeek      `json:"kpis"`
	Recall     model.RecallEstimate `json:"recall"`
	Promotion  Promotion            `json:"promotion"`
	// Contributions are the candidate's contribution curves (its shape per
	// signal) for its ReportContributions most important signals, by the
	// spread of their contribution on the holdout (on the whole window
	// without one), so a lead sees what it learned. Nil without a
	// candidate, and in reports made before they were kept.
	Contributions []model.ContribCurve `json:"contributions,omitempty"`
	Notes         []string             `json:"notes,omitempty"`
}

// ReportContributions is how many signals' contribution curves a report
// keeps: the few that move scores most, as small charts a lead can read
// at a glance.
const ReportContributions = 6

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
	// Sampled is set when the window held more labelled conversations
	// than the job keeps (--tune-max-rows): SampledFrom were seen and
	// SampledKept kept (every agent-labelled and positive one, and a
	// uniform sample of the others), the sampled ones weighing
	// SampleWeight times their own weight (0 when none was kept). The
	// counts above are of the kept ones.
	Sampled      bool    `json:"sampled,omitempty"`
	SampledFrom  int     `json:"sampled_from,omitempty"`
	SampledKept  int     `json:"sampled_kept,omitempty"`
	SampleWeight float64 `json:"sample_weight,omitempty"`
}

// Judged reports whether the run had the data to judge the models by:
// its evidence says so, or it is a report from before evidence was kept.
func (r *Report) Judged() bool { return r.Evidence == nil || r.Evidence.Judged }

// Count fills the counts of labelled rows split into train and holdout.
func (d *ReportData) Count(train, hold []model.TuningRow) {
	d.Train, d.Holdout = len(train), len(hold)
	d.Labelled = len(train) + len(hold)
	d.LabelsBySource = map[string]int{}
	for _, part := range [][]model.TuningRow{train, hold} {
		for i := range part {
			d.LabelsBySource[part[i].Source]++
			if part[i].SampleRate > 0 {
				d.ReviewSampleCount++
			}
		}
	}
	for i := range train {
		if train[i].Label {
			d.TrainPositives++
		}
	}
	for i := range hold {
		if hold[i].Label {
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

// ReportKPIWeek is one week of the KPIs of PRODUCT.md §6, overall, as a
// report shows them.
type ReportKPIWeek struct {
	Week                  string   `json:"week"`
	Accuracy              *float64 `json:"accuracy"`
	Reviewed              int      `json:"reviewed"`
	ResponseMedianSeconds *float64 `json:"response_median_seconds"`
	ResponseP90Seconds    *float64 `json:"response_p90_seconds"`
	TruePositiveRate      *float64 `json:"alert_true_positive_rate"`
	LabelledAlerts        int      `json:"labelled_alerts"`
	FiredAlerts           int      `json:"fired_alerts"`
	Conversion            *float64 `json:"conversion"`
	TopConversations      int      `json:"top_conversations"`
}

// ReportKPIs summarises a KPI report's weeks for a tuning report.
func ReportKPIs(r KPIReport) []ReportKPIWeek {
	out := make([]ReportKPIWeek, 0, len(r.Weeks))
	for _, w := range r.Weeks {
		o := w.Overall
		out = append(out, ReportKPIWeek{Week: w.Week, Accuracy: o.Accuracy.Rate, Reviewed: o.Accuracy.Reviewed,
			ResponseMedianSeconds: o.ResponseTime.MedianSeconds, ResponseP90Seconds: o.ResponseTime.P90Seconds,
			TruePositiveRate: o.TruePositive.Rate, LabelledAlerts: o.TruePositive.Useful + o.TruePositive.Noise, FiredAlerts: o.TruePositive.Fired,
			Conversion: o.Conversion.Rate, TopConversations: o.Conversion.Conversations})
	}
	return out
}

// Promotion is a run's decision on its candidate.
type Promotion struct {
	Policy   string `json:"policy"` // model.PromoteAuto or model.PromoteManual
	Promoted bool   `json:"promoted"`
	Reason   string `json:"reason"`
}

// StoredReport is one stored tuning report; Body is the Report as JSON.
type StoredReport struct {
	ID             string
	RunID          string
	AsOf           time.Time
	CandidateModel int // 0 when the run trained no candidate
	Promoted       bool
	AppliedPolicy  int // 0 until its proposal is applied
	Body           []byte
	CreatedAt      time.Time
}

// TuneRequest asks for one run of the tuning job.
type TuneRequest struct {
	// AsOf ends the training window; zero means now.
	AsOf time.Time
	// Trigger records what started the run: TriggerSchedule, TriggerAPI or
	// TriggerCLI.
	Trigger string
	// Tick is the scheduled time a TriggerSchedule run is for; when set,
	// the run goes ahead only in the process that claims the tick first
	// (several processes share one schedule), and the others return
	// ErrTickTaken.
	Tick time.Time
}

// ErrTickTaken is returned for a scheduled run whose tick another process
// has claimed.
var ErrTickTaken = errors.New("this tick of the schedule was run by another process")

// TuneResult is a finished run of the tuning job: the run as recorded and,
// unless it failed before writing one, its report.
type TuneResult struct {
	Run    JobRun
	Report *Report
}

// ErrTuneRunning is returned when another run of the tuning job, in this
// process or another, holds its lock. It is also ErrLocked.
var ErrTuneRunning error = &kindError{"a tuning run is already in progress", ErrLocked}

// Reasons a report's proposal cannot be applied. Each is a conflict with
// the current state, not a failure, and is also ErrConflict.
var (
	ErrNothingToApply error = &kindError{"the report proposes no weights or thresholds", ErrConflict}
	ErrApplied        error = &kindError{"the report has already been applied", ErrConflict}
	ErrStaleReport    error = &kindError{"the live ruleset changed since the report was made: run the tuning again", ErrConflict}
	ErrNotPromoted    error = &kindError{"the report's candidate model is not active: promote it first, the proposed thresholds are for its scores", ErrConflict}
)
