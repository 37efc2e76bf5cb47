package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// TuneJob is the tuning job's name in job runs and its lock.
const TuneJob = "tune"

// Promotion policies of the tuning job.
const (
	// PromoteAuto promotes a candidate that beats the live model on the
	// holdout's PR-AUC without worse calibration.
	PromoteAuto = "auto"
	// PromoteManual never promotes: a lead promotes from the report.
	PromoteManual = "manual"
)

// Defaults of the tuning job.
const (
	DefaultTuneWindow  = 12 * 7 * 24 * time.Hour
	DefaultHoldout     = 7 * 24 * time.Hour
	DefaultMinLabelled = 50
	// calibrationSlack is how much worse (expected calibration error) a
	// candidate may be calibrated than the live model and still be
	// promoted automatically: differences below it are noise on a week's
	// holdout.
	calibrationSlack = 0.01
	// minRuleLabels is the number of labelled hits below which a rule's
	// verdict is "keep": too few to judge.
	minRuleLabels = 20
	// minChannelRows is the number of labelled holdout conversations a
	// channel needs for thresholds of its own to be proposed.
	minChannelRows = 50
)

// ErrTuneRunning is returned when another run of the tuning job, in this
// process or another, holds its lock.
var ErrTuneRunning = errors.New("a tuning run is already in progress")

// TuneStore is what the tuning job needs from the store.
type TuneStore interface {
	TryJobLock(ctx context.Context, job string) (release func(), ok bool, err error)
	StartJobRun(ctx context.Context, job, trigger string) (feedback.JobRun, error)
	FinishJobRun(ctx context.Context, id, status, errMsg string, detail []byte) (feedback.JobRun, error)
	TrainingRows(ctx context.Context, from, to time.Time, fn func(feedback.TrainingRow) error) error
	LivePolicy(ctx context.Context) (feedback.PolicyVersion, error)
	ActiveModel(ctx context.Context) (feedback.ModelVersion, error)
	CreateTrainedModel(ctx context.Context, body []byte, meta feedback.ModelMeta) (feedback.ModelVersion, error)
	ActivateModel(ctx context.Context, version int) (feedback.ModelVersion, error)
	SaveReport(ctx context.Context, r feedback.StoredReport) (feedback.StoredReport, error)
	KPIs(ctx context.Context, q feedback.KPIQuery) (feedback.KPIReport, error)
}

// Tuner is the weekly tuning job of PRODUCT.md §5: gather the labelled
// conversations of a window, fit a candidate model (rule hits and encoded
// signals together), measure it and the live model on the most recent
// week, judge each rule, propose thresholds, write a report, and promote
// the candidate when the policy allows and it wins.
type Tuner struct {
	Store TuneStore
	// Trainer fits the model; nil means the default trainer.
	Trainer model.Trainer
	// L2 is the penalty strength; 0 means model.DefaultL2.
	L2 float64
	// Window is how far back labelled conversations are gathered; 0 means
	// DefaultTuneWindow. Holdout is the most recent part of it the models
	// are measured on; 0 means DefaultHoldout.
	Window, Holdout time.Duration
	// MinLabelled is the fewest labelled conversations a candidate is
	// trained on; 0 means DefaultMinLabelled.
	MinLabelled int
	// Promotion is PromoteAuto or PromoteManual; "" means PromoteAuto.
	Promotion string
	// Targets are the precision targets per tier for proposed thresholds;
	// zero means model.DefaultTargetPrecision.
	Targets model.TargetPrecision
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives a line per run.
	Log *slog.Logger
}

// TuneRequest asks for one run.
type TuneRequest struct {
	// AsOf ends the training window; zero means now.
	AsOf time.Time
	// Trigger records what started the run: schedule, api or cli.
	Trigger string
}

// TuneResult is a finished run: the run as recorded and, unless it failed
// before writing one, its report.
type TuneResult struct {
	Run    feedback.JobRun
	Report *Report
}

// Run runs the job once, for the cron schedule: a run already in progress
// elsewhere is not an error.
func (t *Tuner) Run(ctx context.Context) error {
	_, err := t.RunNow(ctx, TuneRequest{Trigger: "schedule"})
	if errors.Is(err, ErrTuneRunning) {
		t.log().Info("tuning skipped: another run holds the lock")
		return nil
	}
	return err
}

// RunNow runs the job once now, unless another run holds the lock
// (ErrTuneRunning). The run is recorded as succeeded or failed with its
// error; the returned error is the run's.
func (t *Tuner) RunNow(ctx context.Context, req TuneRequest) (TuneResult, error) {
	release, ok, err := t.Store.TryJobLock(ctx, TuneJob)
	if err != nil {
		return TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	if !ok {
		return TuneResult{}, ErrTuneRunning
	}
	defer release()
	run, err := t.Store.StartJobRun(ctx, TuneJob, req.Trigger)
	if err != nil {
		return TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	started := time.Now()
	report, runErr := t.tune(ctx, run.ID, req)
	status, msg := feedback.RunSucceeded, ""
	if runErr != nil {
		status, msg = feedback.RunFailed, runErr.Error()
	}
	var detail []byte
	if report != nil {
		detail, _ = json.Marshal(map[string]any{"report_id": report.ID, "candidate_model_version": report.CandidateModelVersion,
			"promoted": report.Promotion.Promoted})
	}
	// The run's outcome is recorded even when the caller has gone away.
	finished, err := t.Store.FinishJobRun(context.WithoutCancel(ctx), run.ID, status, msg, detail)
	if err != nil {
		return TuneResult{Run: run, Report: report}, errors.Join(runErr, fmt.Errorf("tune: %w", err))
	}
	attrs := []any{slog.String("run", run.ID), slog.String("status", status), slog.Duration("took", time.Since(started))}
	if report != nil {
		attrs = append(attrs, slog.String("report", report.ID), slog.Int("candidate", report.CandidateModelVersion),
			slog.Bool("promoted", report.Promotion.Promoted), slog.String("reason", report.Promotion.Reason))
	}
	if runErr != nil {
		t.log().Error("tuning failed", append(attrs, slog.Any("err", runErr))...)
	} else {
		t.log().Info("tuning finished", attrs...)
	}
	return TuneResult{Run: finished, Report: report}, runErr
}

func (t *Tuner) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

func (t *Tuner) now() time.Time {
	if t.Now == nil {
		return time.Now().UTC()
	}
	return t.Now().UTC()
}

// gathered is the window's data: every conversation counts towards rule
// hits, the labelled ones are examples.
type gathered struct {
	conversations int
	ruleHits      map[string]int
	labelled      []labelledRow
	// unsampled and unsampledLabelled count the conversations that
	// neither alerted nor were sampled for review, and those of them with
	// a label (from an outcome or tier feedback).
	unsampled, unsampledLabelled int
}

type labelledRow struct {
	// ex holds everything but the signals, which stay in raw until the
	// data set is built.
	ex         model.Example
	raw        json.RawMessage
	at         time.Time
	alertTier  string
	sampleRate float64
	source     string
}

func (t *Tuner) tune(ctx context.Context, runID string, req TuneRequest) (*Report, error) {
	asOf := req.AsOf.UTC()
	if asOf.IsZero() {
		asOf = t.now()
	}
	window, holdout, minLabelled := t.Window, t.Holdout, t.MinLabelled
	if window <= 0 {
		window = DefaultTuneWindow
	}
	if holdout <= 0 {
		holdout = DefaultHoldout
	}
	if minLabelled <= 0 {
		minLabelled = DefaultMinLabelled
	}
	trainer := t.Trainer
	if trainer == nil {
		var err error
		if trainer, err = model.TrainerByName(""); err != nil {
			return nil, err
		}
	}
	promotion := t.Promotion
	if promotion == "" {
		promotion = PromoteAuto
	}

	pv, err := t.Store.LivePolicy(ctx)
	if err != nil {
		return nil, fmt.Errorf("live ruleset: %w", err)
	}
	doc, err := model.ParsePolicy(pv.Document)
	if err != nil {
		return nil, fmt.Errorf("ruleset %d: %w", pv.Version, err)
	}
	pol, err := model.CompilePolicy(doc)
	if err != nil {
		return nil, fmt.Errorf("ruleset %d: %w", pv.Version, err)
	}
	var live *model.Model
	var liveEnd *time.Time // the end of the live model's training window
	liveVersion := 0
	switch mv, err := t.Store.ActiveModel(ctx); {
	case errors.Is(err, feedback.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("active model: %w", err)
	default:
		if live, err = model.ParseModel(mv.Body); err != nil {
			return nil, fmt.Errorf("active model %d: %w", mv.Version, err)
		}
		liveVersion, liveEnd = mv.Version, mv.WindowEnd
	}

	from := asOf.Add(-window)
	g := gathered{ruleHits: map[string]int{}}
	err = t.Store.TrainingRows(ctx, from, asOf, func(r feedback.TrainingRow) error {
		g.conversations++
		for _, h := range r.Hits {
			g.ruleHits[h]++
		}
		if r.AlertTier == "" && r.SampleRate == 0 {
			g.unsampled++
			if r.Label.Label != "" {
				g.unsampledLabelled++
			}
		}
		if r.Label.Label == "" {
			return nil
		}
		g.labelled = append(g.labelled, labelledRow{
			ex: model.Example{Channel: r.Channel, Hits: r.Hits,
				Label: r.Label.Label == feedback.TrainingPositive, Weight: r.Label.Weight},
			raw: r.Signals, at: r.At, alertTier: r.AlertTier, sampleRate: r.SampleRate, source: r.Label.Source,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	slices.SortStableFunc(g.labelled, func(a, b labelledRow) int { return a.at.Compare(b.at) })
	note := reweightSample(&g)

	rep := &Report{
		ID: uuid.Must(uuid.NewV7()).String(), RunID: runID, AsOf: asOf, CreatedAt: t.now(),
		Trainer: trainer.Name(), L2: t.l2(), PolicyVersion: pv.Version, LiveModelVersion: liveVersion,
		Window:    ReportWindow{Start: from, End: asOf, HoldoutStart: asOf.Add(-holdout)},
		Promotion: Promotion{Policy: promotion},
	}
	rep.Data.Conversations = g.conversations
	if note != "" {
		rep.Notes = append(rep.Notes, note)
	}

	// Split by time: the most recent week is the holdout, but never
	// anything the live model was trained on, or the comparison would
	// favour it. When too little labelled data comes before it (the first
	// weeks of a deployment), the most recent quarter of the labelled
	// conversations is held out instead.
	if liveEnd != nil && liveEnd.After(rep.Window.HoldoutStart) && liveEnd.Before(asOf) {
		rep.Window.HoldoutStart = *liveEnd
		rep.Notes = append(rep.Notes, fmt.Sprintf("the holdout starts at %s, where model %d's training window ended, so the live model is not measured on what it learned from",
			liveEnd.Format(time.RFC3339), liveVersion))
	}
	cut := sort.Search(len(g.labelled), func(i int) bool { return !g.labelled[i].at.Before(rep.Window.HoldoutStart) })
	if cut < minLabelled && len(g.labelled) >= minLabelled && len(g.labelled) >= 4 {
		cut = len(g.labelled) - len(g.labelled)/4
		rep.Window.HoldoutStart = g.labelled[cut].at
		rep.Notes = append(rep.Notes, fmt.Sprintf("fewer than %d labelled conversations before the last %s: the most recent quarter of the labelled conversations (from %s) is the holdout instead",
			minLabelled, holdout, rep.Window.HoldoutStart.Format(time.RFC3339)))
	}
	train, hold := g.labelled[:cut], g.labelled[cut:]
	rep.Data.fill(train, hold)

	kpis, err := t.Store.KPIs(ctx, feedback.KPIQuery{Weeks: 4, Now: asOf.Add(-time.Nanosecond)})
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	rep.KPIs = kpiWeeks(kpis)
	rep.Recall = estimateRecall(hold)

	if reason := trainable(train, minLabelled); reason != "" {
		rep.Promotion.Reason = "no candidate: " + reason
		rep.Rules = ruleTable(pol, live, nil, g.ruleHits, g.labelled)
		if err := t.save(ctx, rep, 0); err != nil {
			return nil, err
		}
		return rep, nil
	}

	// The encoder is learned from the data before the holdout; every
	// labelled conversation is then laid out once, in time order, so the
	// candidate measured on the holdout is fitted on a prefix of the data
	// set, and the model stored is refitted on all of it with the same
	// design, so the newest week is not thrown away.
	design := &model.Design{Rules: pol.RuleNames(), Encoder: model.FitEncoder(sampleSignals(train), model.EncoderOptions{})}
	ds, liveScores, err := buildDataset(design, pol, live, g.labelled, cut)
	if err != nil {
		return nil, err
	}
	opts := model.TrainOptions{L2: t.l2()}
	fit, err := trainer.Train(ctx, prefix(ds, cut), opts)
	if err != nil {
		return nil, fmt.Errorf("fit: %w", err)
	}
	measured := design.Model(fit)
	final, finalFit := measured, fit
	if len(hold) > 0 {
		if finalFit, err = trainer.Train(ctx, ds, opts); err != nil {
			return nil, fmt.Errorf("refit: %w", err)
		}
		final = design.Model(finalFit)
	}
	rep.Fit = FitSummary{Features: len(final.Encoder.Features), Rules: len(design.Rules), Iterations: finalFit.Iterations,
		Converged: finalFit.Converged, Rows: len(g.labelled)}

	candScores := make([]float64, len(hold))
	for k := range hold {
		candScores[k] = fit.Prob(ds.Row(cut + k))
	}
	liveEval := evaluate(pol, hold, liveScores)
	candEval := evaluate(pol, hold, candScores)
	rep.Live, rep.Candidate = liveEval, candEval
	rep.Rules = ruleTable(pol, live, final, g.ruleHits, g.labelled)
	rep.Thresholds = proposeThresholds(pol, hold, candScores, t.targets())
	rep.Promotion.Promoted, rep.Promotion.Reason = decide(promotion, liveEval, candEval, liveVersion)

	body, err := final.Marshal()
	if err != nil {
		return nil, err
	}
	metrics, err := json.Marshal(candEval)
	if err != nil {
		return nil, fmt.Errorf("encode metrics: %w", err)
	}
	ws, we := rep.Window.Start, rep.Window.End
	mv, err := t.Store.CreateTrainedModel(ctx, body, feedback.ModelMeta{
		Note:    fmt.Sprintf("tuning run %s", runID),
		Trainer: trainer.Name(), WindowStart: &ws, WindowEnd: &we, Metrics: metrics, ReportID: rep.ID,
	})
	if err != nil {
		return nil, fmt.Errorf("store candidate: %w", err)
	}
	rep.CandidateModelVersion = mv.Version
	// The report is saved after the promotion, so that it never claims
	// one that did not happen.
	var promoteErr error
	if rep.Promotion.Promoted {
		if _, promoteErr = t.Store.ActivateModel(ctx, mv.Version); promoteErr != nil {
			rep.Promotion.Promoted = false
			rep.Promotion.Reason = fmt.Sprintf("promotion failed (%v); %s", promoteErr, rep.Promotion.Reason)
		}
	}
	if err := t.save(context.WithoutCancel(ctx), rep, mv.Version); err != nil {
		return nil, errors.Join(promoteErr, err)
	}
	if promoteErr != nil {
		return rep, fmt.Errorf("promote model %d: %w", mv.Version, promoteErr)
	}
	return rep, nil
}

func (t *Tuner) l2() float64 {
	if t.L2 > 0 {
		return t.L2
	}
	return model.DefaultL2
}

func (t *Tuner) targets() model.TargetPrecision {
	if t.Targets == (model.TargetPrecision{}) {
		return model.DefaultTargetPrecision
	}
	return t.Targets
}

// maxEncoderSample bounds the rows the encoder is learned from: its
// quantiles and category counts are settled long before that.
const maxEncoderSample = 200_000

// sampleSignals decodes the signals of rows, or of an evenly spaced sample
// of them when there are many.
func sampleSignals(rows []labelledRow) []map[string]any {
	step := 1
	if len(rows) > maxEncoderSample {
		step = (len(rows) + maxEncoderSample - 1) / maxEncoderSample
	}
	out := make([]map[string]any, 0, len(rows)/step+1)
	for i := 0; i < len(rows); i += step {
		var m map[string]any
		if json.Unmarshal(rows[i].raw, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// buildDataset lays every row out in the design, decoding each row's
// signals once and dropping them after, and scores the rows from hold on
// (the holdout) with the live policy and model.
func buildDataset(design *model.Design, pol *model.Policy, live *model.Model, rows []labelledRow, hold int) (*model.Dataset, []float64, error) {
	ds := &model.Dataset{P: design.Width(), X: make([]float64, 0, len(rows)*design.Width()), Y: make([]float64, 0, len(rows))}
	liveScores := make([]float64, 0, len(rows)-hold)
	for i := range rows {
		r := &rows[i]
		var signals map[string]any
		if err := json.Unmarshal(r.raw, &signals); err != nil {
			return nil, nil, fmt.Errorf("conversation at %s: signals: %w", r.at.Format(time.RFC3339), err)
		}
		r.raw = nil
		ex := r.ex
		ex.Signals = signals
		design.Append(ds, ex)
		if i >= hold {
			liveScores = append(liveScores, model.PredictProb(pol, live, r.ex.Hits, signals))
		}
	}
	return ds, liveScores, nil
}

// prefix is the first n rows of ds, sharing its memory.
func prefix(ds *model.Dataset, n int) *model.Dataset {
	out := &model.Dataset{X: ds.X[:n*ds.P], Y: ds.Y[:n], P: ds.P}
	if ds.W != nil {
		out.W = ds.W[:n]
	}
	return out
}

func (t *Tuner) save(ctx context.Context, rep *Report, candidate int) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if _, err := t.Store.SaveReport(ctx, feedback.StoredReport{ID: rep.ID, RunID: rep.RunID, AsOf: rep.AsOf,
		CandidateModel: candidate, Promoted: rep.Promotion.Promoted, Body: body}); err != nil {
		return fmt.Errorf("store report: %w", err)
	}
	return nil
}

// reweightSample decides what a review-sampled conversation stands for.
// Agents' labels on the review sample weigh 1/sampling probability so
// that the sample stands for the non-alerting conversations nobody
// labelled. When outcome events already label most of those (at least
// half), the sample stands only for itself: it weighs 1, like the
// outcome-labelled conversations it would otherwise be counted over. It
// returns a note for the report when it changes the weights.
func reweightSample(g *gathered) string {
	if g.unsampled == 0 || 2*g.unsampledLabelled < g.unsampled {
		return ""
	}
	n := 0
	for i := range g.labelled {
		if g.labelled[i].sampleRate > 0 && g.labelled[i].ex.Weight != 1 {
			g.labelled[i].ex.Weight = 1
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("outcome events label %d of the %d conversations that neither alerted nor were sampled for review, so the %d review-sampled conversations count once instead of by their inverse sampling probability",
		g.unsampledLabelled, g.unsampled, n)
}

// trainable says why rows cannot train a candidate, or "" when they can.
func trainable(rows []labelledRow, minLabelled int) string {
	if len(rows) < minLabelled {
		return fmt.Sprintf("%d labelled conversations to train on, at least %d needed", len(rows), minLabelled)
	}
	var pos int
	for _, r := range rows {
		if r.ex.Label {
			pos++
		}
	}
	if pos == 0 || pos == len(rows) {
		return "the labelled conversations to train on are all of one class"
	}
	return ""
}

// decide applies the promotion policy.
func decide(policy string, live, cand *ModelEval, liveVersion int) (bool, string) {
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
	case !(cand.PRAUC > live.PRAUC):
		return false, fmt.Sprintf("holdout PR-AUC %.5f does not beat %s's %.5f: waiting for a lead", cand.PRAUC, liveName, live.PRAUC)
	case cand.ECE > live.ECE+calibrationSlack:
		return false, fmt.Sprintf("holdout PR-AUC %.5f beats %s's %.5f but calibration is worse (ECE %.4f against %.4f, more than %.2f apart): waiting for a lead",
			cand.PRAUC, liveName, live.PRAUC, cand.ECE, live.ECE, calibrationSlack)
	}
	return true, fmt.Sprintf("holdout PR-AUC %.5f beats %s's %.5f with calibration no worse (ECE %.4f against %.4f, within %.2f)",
		cand.PRAUC, liveName, live.PRAUC, cand.ECE, live.ECE, calibrationSlack)
}

// evaluate measures scores given to rows; nil without rows.
func evaluate(pol *model.Policy, rows []labelledRow, scores []float64) *ModelEval {
	if len(rows) == 0 {
		return nil
	}
	labels, weights := labelsOf(rows)
	ev := &ModelEval{Metrics: model.Evaluate(scores, labels, weights, 10)}
	for _, w := range weights {
		ev.WeightTotal += w
	}
	for i, y := range labels {
		ev.WeightedPositives += y * weights[i]
	}
	// Precision and recall of the tiers the policy's thresholds give these
	// scores, overall and per channel.
	ev.Tiers = map[string]map[string]TierEval{}
	channels := map[string][]int{"all": nil}
	for i, r := range rows {
		channels["all"] = append(channels["all"], i)
		channels[r.ex.Channel] = append(channels[r.ex.Channel], i)
	}
	for ch, idx := range channels {
		per := map[string]TierEval{}
		for _, tier := range []model.Tier{model.TierUrgent, model.TierHigh} {
			var te TierEval
			var tp, pos float64
			for _, i := range idx {
				w := weights[i]
				at := pol.TierFor(rows[i].ex.Channel, scores[i], rows[i].ex.Hits) >= tier
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
	// The alert true-positive rate: of the holdout conversations that fired
	// a tier alert, the share labelled positive.
	var alerted, useful float64
	for i, r := range rows {
		if r.alertTier != "" {
			alerted += weights[i]
			useful += labels[i] * weights[i]
		}
	}
	ev.AlertTruePositiveRate = ratioOrNil(useful, alerted)
	return ev
}

// labelsOf returns the rows' labels (0 or 1) and weights.
func labelsOf(rows []labelledRow) (labels, weights []float64) {
	labels = make([]float64, len(rows))
	weights = make([]float64, len(rows))
	for i, r := range rows {
		if r.ex.Label {
			labels[i] = 1
		}
		weights[i] = r.ex.Weight
		if weights[i] <= 0 {
			weights[i] = 1
		}
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

// ruleTable judges each rule of the policy: how often it fired in the
// window, how often on labelled conversations and how precisely, its
// hand-set, live and tuned weights, and a verdict.
func ruleTable(pol *model.Policy, live, tuned *model.Model, hits map[string]int, rows []labelledRow) []RuleRow {
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
		for _, r := range rows {
			if slices.Contains(r.ex.Hits, rs.Name) {
				rr.LabelledHits++
				w := r.ex.Weight
				if w <= 0 {
					w = 1
				}
				all += w
				if r.ex.Label {
					pos += w
				}
			}
		}
		rr.Precision = ratioOrNil(pos, all)
		if tuned != nil {
			if w, ok := tuned.RuleWeights[rs.Name]; ok {
				rr.TunedWeight = &w
			}
		}
		rr.Verdict, rr.Why = verdict(rr)
		out = append(out, rr)
	}
	return out
}

// Rule verdicts.
const (
	VerdictKeep     = "keep"
	VerdictReweight = "reweight"
	VerdictRetire   = "retire"
)

func verdict(r RuleRow) (string, string) {
	switch {
	case r.TunedWeight == nil:
		return VerdictKeep, "no tuned weight this week"
	case r.LabelledHits < minRuleLabels:
		return VerdictKeep, fmt.Sprintf("%d labelled hits, too few to judge (at least %d)", r.LabelledHits, minRuleLabels)
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

// proposeThresholds proposes, from a model's holdout scores, thresholds
// meeting the precision targets: one set over every channel (for
// "default") and one per channel with labelled holdout conversations. A
// tier whose target cannot be met keeps the channel's current threshold.
func proposeThresholds(pol *model.Policy, rows []labelledRow, scores []float64, targets model.TargetPrecision) []ThresholdRow {
	if len(rows) == 0 {
		return nil
	}
	labels, weights := labelsOf(rows)
	groups := map[string][]int{"default": nil}
	for i, r := range rows {
		groups["default"] = append(groups["default"], i)
		if r.ex.Channel != "default" {
			groups[r.ex.Channel] = append(groups[r.ex.Channel], i)
		}
	}
	// A channel with few holdout rows gets no thresholds of its own: a
	// handful of conversations would set them by chance. It keeps its own
	// or falls back to the default ones.
	for ch, idx := range groups {
		if ch != "default" && len(idx) < minChannelRows {
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
			Proposal: model.ProposeThresholds(s, l, w, model.ThresholdOptions{Targets: targets, Current: &current})})
	}
	return out
}

// estimateRecall estimates, from the holdout, the share of positive
// conversations that alerted. Conversations sampled for review stand for
// the non-alerting ones by the inverse of their sampling probability; the
// plain share among outcome-labelled conversations is given beside it.
func estimateRecall(rows []labelledRow) RecallEstimate {
	var est RecallEstimate
	var alertedPos, sampledPos, pos, posAlerted float64
	sampled := 0
	for _, r := range rows {
		if r.alertTier == "" && r.sampleRate > 0 {
			sampled++
		}
		if !r.ex.Label {
			continue
		}
		pos++
		if r.alertTier != "" {
			alertedPos++
			posAlerted++
			continue
		}
		if r.sampleRate > 0 {
			est.SampledPositives++
			sampledPos += 1 / r.sampleRate
		}
	}
	est.AlertedPositives = int(alertedPos)
	// Without a review sample nothing stands for the non-alerting
	// conversations, and no estimate is given.
	if sampled > 0 {
		est.Estimated = ratioOrNil(alertedPos, alertedPos+sampledPos)
	}
	est.AmongLabelled = ratioOrNil(posAlerted, pos)
	return est
}

func kpiWeeks(r feedback.KPIReport) []KPIWeek {
	out := make([]KPIWeek, 0, len(r.Weeks))
	for _, w := range r.Weeks {
		o := w.Overall
		out = append(out, KPIWeek{Week: w.Week, Accuracy: o.Accuracy.Rate, Reviewed: o.Accuracy.Reviewed,
			ResponseMedianSeconds: o.ResponseTime.MedianSeconds, ResponseP90Seconds: o.ResponseTime.P90Seconds,
			TruePositiveRate: o.TruePositive.Rate, LabelledAlerts: o.TruePositive.Useful + o.TruePositive.Noise,
			Conversion: o.Conversion.Rate, TopConversations: o.Conversion.Conversations})
	}
	return out
}
