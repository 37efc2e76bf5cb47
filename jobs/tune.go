package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// TuneJob is the tuning job's name in job runs and its lock.
const TuneJob = "tune"

// Promotion policies of the tuning job (see model.DecidePromotion).
const (
	PromoteAuto   = model.PromoteAuto
	PromoteManual = model.PromoteManual
)

// Defaults of the tuning job.
const (
	DefaultTuneWindow  = 12 * 7 * 24 * time.Hour
	DefaultHoldout     = 7 * 24 * time.Hour
	DefaultMinLabelled = model.MinLabelled
	// DefaultTuneMaxRows is how many labelled conversations a run holds
	// by default (see Tuner.MaxRows). A kept row costs about 250 bytes in
	// gather with four signals (BenchmarkGatherKeptRow: the TuningRow's
	// 144, its signals' JSON, hits and slice slack), and a whole run 600
	// to 800 bytes per labelled row at its peak: the kept rows, whose
	// JSON stays until the refit has read it, and the data set laid out
	// for the trainer, which grows with the encoder's stored features
	// (BENCHMARKS.md: 576 to 820 MB of Go heap over 1M decisions, 614 MB
	// with shapes), so a million rows peak near 0.8 GB of live heap
	// whatever the window holds, where 10 million unsampled would need
	// about 8.
	DefaultTuneMaxRows = 1_000_000
	// tuneGCPercent is the garbage collector's pace while a run goes on.
	tuneGCPercent = 50
)

// ErrTuneRunning is returned when another run of the tuning job, in this
// process or another, holds its lock; it is feedback.ErrLocked too.
var ErrTuneRunning = feedback.ErrTuneRunning

// TuneStore is what the tuning job needs from the store: its lock and run
// records, the window's conversations, the model registry, reports and
// KPIs, and (for ApplyReport) rulesets. It reads the live ruleset and
// model through a feedback.Live over the same store.
type TuneStore interface {
	feedback.LiveSource
	ApplyStore
	TryJobLock(ctx context.Context, job string) (release func(), ok bool, err error)
	ClaimJobTick(ctx context.Context, job string, tick time.Time) (bool, error)
	StartJobRun(ctx context.Context, job, trigger string) (feedback.JobRun, error)
	FinishJobRun(ctx context.Context, id, status, errMsg string, detail []byte) (feedback.JobRun, error)
	TrainingRows(ctx context.Context, from, to time.Time, fn func(feedback.TrainingRow) error) error
	CreateTrainedModel(ctx context.Context, body []byte, meta feedback.ModelMeta) (feedback.ModelVersion, error)
	ActivateModel(ctx context.Context, version int) (feedback.ModelVersion, error)
	SaveReport(ctx context.Context, r feedback.StoredReport) (feedback.StoredReport, error)
	KPIs(ctx context.Context, q feedback.KPIQuery) (feedback.KPIReport, error)
}

// Tuner is the weekly tuning job of PRODUCT.md §5: gather the labelled
// conversations of a window, fit a candidate model (rule hits and encoded
// signals together), measure it and the live model on the most recent
// week, judge each rule, propose thresholds, write a report, and promote
// the candidate when the policy allows and it wins. The maths is model's;
// the Tuner gathers, computes with it, and saves.
type Tuner struct {
	Store TuneStore
	// Live holds the live ruleset and model the run starts from; it is
	// refreshed at the start of each run. Nil means a holder of the
	// Tuner's own over Store.
	Live *feedback.Live
	// Trainer fits the model; nil means the default trainer.
	Trainer model.Trainer
	// L2 is the penalty strength; 0 means chosen by inner
	// cross-validation on the window (model.FitModel).
	L2 float64
	// Interactions caps the pairwise interactions of signals the
	// candidate keeps, each only when it improves the inner
	// cross-validated log loss; 0 means model.DefaultInteractions, a
	// negative number none.
	Interactions int
	// Window is how far back labelled conversations are gathered; 0 means
	// DefaultTuneWindow. Holdout is the most recent part of it the models
	// are measured on; 0 means DefaultHoldout.
	Window, Holdout time.Duration
	// MinLabelled is the fewest labelled conversations a candidate is
	// trained on; 0 means DefaultMinLabelled.
	MinLabelled int
	// Minimums are the evidence a run needs before it measures the
	// models, proposes thresholds and promotes (its Labelled is
	// MinLabelled); a zero field means model.DefaultMinimums'.
	Minimums model.Minimums
	// MaxRows bounds the labelled conversations a run holds in memory; 0
	// means DefaultTuneMaxRows. Past it, every agent-labelled and every
	// positive conversation is kept, and a uniform sample of the rest
	// (outcome negatives) weighted up to stand for all of them.
	MaxRows int
	// Promotion is PromoteAuto or PromoteManual; "" means PromoteAuto.
	Promotion string
	// Guard is what automatic promotion asks beyond beating the live model
	// (model.DefaultPromotionGuard in the product); the zero value asks
	// nothing more.
	Guard model.PromotionGuard
	// Targets are the precision targets per tier for proposed thresholds;
	// zero means model.DefaultTargetPrecision.
	Targets model.TargetPrecision
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives a line per run.
	Log *slog.Logger
	// Step, when set, is told as each of a run's steps begins: n of of,
	// named ("reading decisions", "training", ...); while decisions are
	// read it is told again, with the same n, how many were. hotlane tune
	// draws it on a terminal; it must be quick.
	Step func(n, of int, name string)

	liveOnce sync.Once
	live     *feedback.Live
}

// Run runs the job once, for the cron schedule: a run already in progress
// elsewhere is not an error.
//
// tick is the scheduled time the run is for: of several processes whose
// schedules fire at it, only the first to claim it runs the job. A zero
// tick claims nothing.
func (t *Tuner) Run(ctx context.Context, tick time.Time) error {
	_, err := t.RunNow(ctx, feedback.TuneRequest{Trigger: feedback.TriggerSchedule, Tick: tick})
	switch {
	case errors.Is(err, ErrTuneRunning):
		t.log().Info("tuning skipped: another run holds the lock")
		return nil
	case errors.Is(err, feedback.ErrTickTaken):
		t.log().Info("tuning skipped: another process ran this tick", slog.Time("tick", tick))
		return nil
	}
	return err
}

// RunNow runs the job once now, unless another run holds the lock
// (ErrTuneRunning). The run is recorded as succeeded or failed with its
// error; the returned error is the run's.
func (t *Tuner) RunNow(ctx context.Context, req feedback.TuneRequest) (feedback.TuneResult, error) {
	if !req.Tick.IsZero() {
		claimed, err := t.Store.ClaimJobTick(ctx, TuneJob, req.Tick)
		if err != nil {
			return feedback.TuneResult{}, fmt.Errorf("tune: %w", err)
		}
		if !claimed {
			return feedback.TuneResult{}, feedback.ErrTickTaken
		}
	}
	release, ok, err := t.Store.TryJobLock(ctx, TuneJob)
	if err != nil {
		return feedback.TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	if !ok {
		return feedback.TuneResult{}, ErrTuneRunning
	}
	defer release()
	run, err := t.Store.StartJobRun(ctx, TuneJob, req.Trigger)
	if err != nil {
		return feedback.TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	started := time.Now()
	// The server runs with GOGC=400 for the score path's sake; the run's
	// heap is hundreds of MB that it builds once, and would grow to five
	// times what it holds before a collection (4.2 GB resident over 10M
	// stored decisions, 2.4 GB at GOGC=100). It collects when the heap has
	// grown by half while it runs instead (lower settings stay).
	if prev := debug.SetGCPercent(tuneGCPercent); prev < tuneGCPercent {
		debug.SetGCPercent(prev)
	} else {
		defer debug.SetGCPercent(prev)
	}
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
		return feedback.TuneResult{Run: run, Report: report}, errors.Join(runErr, fmt.Errorf("tune: %w", err))
	}
	attrs := []any{slog.String("run", run.ID), slog.String("status", status), slog.Int64("took_ms", time.Since(started).Milliseconds())}
	if report != nil {
		attrs = append(attrs, slog.String("report", report.ID), slog.Int("candidate", report.CandidateModelVersion),
			slog.Bool("promoted", report.Promotion.Promoted), slog.String("reason", report.Promotion.Reason))
	}
	if runErr != nil {
		t.log().Error("tuning failed", append(attrs, slog.Any("err", runErr))...)
	} else {
		t.log().Info("tuning finished", attrs...)
	}
	return feedback.TuneResult{Run: finished, Report: report}, runErr
}

// ApplyReport publishes the proposal of report id as a new ruleset
// version (see the function ApplyReport).
func (t *Tuner) ApplyReport(ctx context.Context, id, author string) (feedback.PolicyVersion, error) {
	return ApplyReport(ctx, t.Store, id, author)
}

func (t *Tuner) log() *slog.Logger { return orDiscard(t.Log) }

func (t *Tuner) now() time.Time { return orNow(t.Now)().UTC() }

// holder is the live holder the runs read.
func (t *Tuner) holder() *feedback.Live {
	if t.Live != nil {
		return t.Live
	}
	t.liveOnce.Do(func() { t.live = feedback.NewLive(t.Store, feedback.LiveOptions{Log: t.Log}) })
	return t.live
}

// tuneSettings are a run's settings with the defaults filled in.
type tuneSettings struct {
	window, holdout time.Duration
	minLabelled     int
	maxRows         int
	trainer         model.Trainer
	l2              float64
	interactions    int
	promotion       string
	guard           model.PromotionGuard
	targets         model.TargetPrecision
	minimums        model.Minimums
	step            func(n, of int, name string) // Tuner.Step
}

// tuneSteps is how many steps a run tells Tuner.Step of, and
// tuneStepRows how many decisions are read between two tellings of how
// many were.
const tuneSteps, tuneStepRows = 5, 50_000

// stepped tells Tuner.Step, if set, that step n begins.
func (s tuneSettings) stepped(n int, name string) {
	if s.step != nil {
		s.step(n, tuneSteps, name)
	}
}

func (t *Tuner) settings() (tuneSettings, error) {
	s := tuneSettings{window: t.Window, holdout: t.Holdout, minLabelled: t.MinLabelled, maxRows: t.MaxRows, trainer: t.Trainer,
		l2: t.L2, interactions: t.Interactions, promotion: t.Promotion, guard: t.Guard, targets: t.Targets}
	s.step = t.Step
	if s.window <= 0 {
		s.window = DefaultTuneWindow
	}
	if s.holdout <= 0 {
		s.holdout = DefaultHoldout
	}
	if s.minLabelled <= 0 {
		s.minLabelled = DefaultMinLabelled
	}
	s.minimums = t.Minimums.OrDefault()
	s.minimums.Labelled = s.minLabelled
	if s.maxRows <= 0 {
		s.maxRows = DefaultTuneMaxRows
	}
	if s.trainer == nil {
		var err error
		if s.trainer, err = model.TrainerByName(""); err != nil {
			return s, err
		}
	}
	if s.l2 < 0 {
		s.l2 = 0
	}
	if s.promotion == "" {
		s.promotion = PromoteAuto
	}
	if s.targets == (model.TargetPrecision{}) {
		s.targets = model.DefaultTargetPrecision
	}
	return s, nil
}

// tune is one run: gather the window, compute the report and candidate,
// save them.
func (t *Tuner) tune(ctx context.Context, runID string, req feedback.TuneRequest) (*feedback.Report, error) {
	set, err := t.settings()
	if err != nil {
		return nil, err
	}
	asOf := req.AsOf.UTC()
	if asOf.IsZero() {
		asOf = t.now()
	}
	live := t.holder()
	if err := live.Refresh(ctx); err != nil {
		return nil, err
	}
	sc := live.Current()
	if sc == nil {
		return nil, fmt.Errorf("%w: no ruleset is live yet, publish one first", feedback.ErrNotFound)
	}
	from := asOf.Add(-set.window)
	set.stepped(1, "reading decisions")
	g, err := t.gather(ctx, from, asOf, asOf.Add(-set.holdout), set.maxRows)
	if err != nil {
		return nil, err
	}
	kpis, err := t.Store.KPIs(ctx, feedback.KPIQuery{Weeks: 4, Now: asOf.Add(-time.Nanosecond)})
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	rep := &feedback.Report{
		ID: uuid.Must(uuid.NewV7()).String(), RunID: runID, AsOf: asOf, CreatedAt: t.now(),
		Trainer: set.trainer.Name(), PolicyVersion: sc.PolicyVersion, LiveModelVersion: sc.ModelVersion,
		Window:    feedback.ReportWindow{Start: from, End: asOf, HoldoutStart: asOf.Add(-set.holdout)},
		Promotion: feedback.Promotion{Policy: set.promotion},
		KPIs:      feedback.ReportKPIs(kpis),
	}
	candidate, err := compute(ctx, set, sc, g, rep)
	if err != nil {
		return nil, err
	}
	set.stepped(5, "saving the report")
	saved, err := t.save(ctx, runID, rep, candidate)
	if !saved {
		return nil, err
	}
	return rep, err
}

// gathered is the window's data: every conversation counts towards rule
// hits, the labelled ones are examples, in time order.
type gathered struct {
	conversations int
	ruleHits      map[string]int
	// labelled holds the labelled conversations kept: all of them, or
	// past maxRows every mandatory one (see mandatory) and a uniform
	// sample of the others. The sampled rows' weights are not yet scaled:
	// weighSample does that, after model.ReweightReviewSample.
	labelled []model.TuningRow
	// maxRows is the cap labelled was gathered under; labelledSeen counts
	// every labelled conversation of the window, mandatory those kept as
	// mandatory, and otherSeen and otherKept the others seen and kept.
	maxRows, labelledSeen, mandatory, otherSeen, otherKept int
	// unsampled and unsampledLabelled count the conversations that
	// neither alerted nor were sampled for review, and those of them with
	// a label (from an outcome or tier feedback).
	unsampled, unsampledLabelled int
	// volume holds the conversations of the holdout period, labelled or
	// not (a uniform sample of at most maxVolumeRows when there are more:
	// volumeSeen counts them all), for the alert volume of threshold
	// proposals; volumeFrom is where the period starts.
	volume     []volumeRow
	volumeSeen int
	volumeFrom time.Time
}

// volumeRow is a holdout-period conversation as read, before scoring.
type volumeRow struct {
	channel string
	at      time.Time
	hits    []string
	raw     json.RawMessage
}

// maxVolumeRows bounds the holdout-period conversations kept for alert
// volume: a sample this size counts a week's alerts per hour closely.
const maxVolumeRows = 100_000

// gather reads the window [from, to) from the store, keeping at most
// maxRows labelled conversations unless the mandatory ones alone are more
// (see labelSample).
func (t *Tuner) gather(ctx context.Context, from, to, holdoutFrom time.Time, maxRows int) (*gathered, error) {
	g := &gathered{ruleHits: map[string]int{}, volumeFrom: holdoutFrom, maxRows: maxRows}
	rng := rand.New(rand.NewPCG(uint64(to.Unix()), 7))
	// The labelled sample draws from a stream of its own, so the volume
	// sample is the same whether or not the labels are sampled.
	labels := labelSample{max: maxRows, rng: rand.New(rand.NewPCG(uint64(to.Unix()), 8))}
	err := t.Store.TrainingRows(ctx, from, to, func(r feedback.TrainingRow) error {
		g.conversations++
		if t.Step != nil && g.conversations%tuneStepRows == 0 {
			t.Step(1, tuneSteps, fmt.Sprintf("reading decisions: %d read", g.conversations))
		}
		for _, h := range r.Hits {
			g.ruleHits[h]++
		}
		if !r.At.Before(holdoutFrom) {
			// Reservoir sampling keeps a uniform sample of the period.
			g.volumeSeen++
			v := volumeRow{channel: r.Channel, at: r.At, hits: r.Hits, raw: r.Signals}
			switch {
			case len(g.volume) < maxVolumeRows:
				g.volume = append(g.volume, v)
			default:
				if k := rng.IntN(g.volumeSeen); k < maxVolumeRows {
					g.volume[k] = v
				}
			}
		}
		alerted := r.AlertTier != model.TierNone
		if !alerted && r.SampleRate == 0 {
			g.unsampled++
			if r.Label.Label != "" {
				g.unsampledLabelled++
			}
		}
		if r.Label.Label == "" {
			return nil
		}
		labels.add(model.TuningRow{
			Example: model.Example{Channel: r.Channel, Hits: r.Hits,
				Label: r.Label.Label == feedback.TrainingPositive, Weight: r.Label.Weight},
			Raw: r.Signals, At: r.At, Alerted: alerted, SampleRate: r.SampleRate, Source: r.Label.Source,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	g.labelled, g.mandatory, g.otherSeen, g.otherKept = labels.rows, labels.mandatory, labels.seen, len(labels.others)
	g.labelledSeen = g.mandatory + g.otherSeen
	slices.SortStableFunc(g.labelled, func(a, b model.TuningRow) int { return a.At.Compare(b.At) })
	return g, nil
}

// mandatory reports whether a labelled conversation is kept however many
// the window holds: agents' labels are few and costly, positives are the
// rare class. The others are the negatives outcomes (lost) gave.
func mandatory(r *model.TuningRow) bool {
	return r.Source == feedback.SourceAgent || r.Label
}

// labelSample keeps a window's labelled conversations in one pass within
// max rows: every mandatory one, and a uniform sample of the others
// (reservoir sampling, Algorithm R) in the room the mandatory ones leave.
// When a mandatory row arrives with the sample full, a uniformly chosen
// sampled row makes room for it; a uniform sample less one uniform element
// is a uniform sample, so at the end each of the others seen was kept with
// the same probability len(others)/seen. Mandatory rows past max are kept
// all the same.
type labelSample struct {
	max int
	rng *rand.Rand
	// rows holds the kept rows of both kinds, in one array that the
	// evictions reuse; others indexes the sampled ones in it.
	rows      []model.TuningRow
	others    []int
	mandatory int // mandatory rows kept
	seen      int // others seen
}

func (s *labelSample) add(r model.TuningRow) {
	if mandatory(&r) {
		s.mandatory++
		n := len(s.others)
		if n == 0 || s.mandatory+n <= s.max {
			s.rows = append(s.rows, r)
			return
		}
		// The row takes the place of a uniformly chosen sampled one.
		j := s.rng.IntN(n)
		s.rows[s.others[j]] = r
		s.others[j] = s.others[n-1]
		s.others = s.others[:n-1]
		return
	}
	s.seen++
	room := s.max - s.mandatory
	switch {
	case room <= 0:
	case len(s.others) < room:
		// Not full yet, so every other seen so far is kept.
		s.others = append(s.others, len(s.rows))
		s.rows = append(s.rows, r)
	default:
		if j := s.rng.IntN(s.seen); j < len(s.others) {
			s.rows[s.others[j]] = r
		}
	}
}

// weighSample makes the sampled rows of g stand for all the others seen:
// each was kept with probability otherKept/otherSeen, so its weight is
// multiplied by the inverse, and the weighted examples of training and of
// the holdout metrics add up as the whole window's would. It must run
// after model.ReweightReviewSample, which sets review-sampled rows'
// weights to 1 and would undo the factor of a sampled one. It returns the
// factor, 1 when nothing was sampled.
func (g *gathered) weighSample() float64 {
	if g.otherKept == 0 || g.otherKept == g.otherSeen {
		return 1
	}
	f := float64(g.otherSeen) / float64(g.otherKept)
	for i := range g.labelled {
		if r := &g.labelled[i]; !mandatory(r) {
			w := r.Weight
			if w <= 0 {
				w = 1 // as model weighs a row
			}
			r.Weight = w * f
		}
	}
	return f
}

// sampleNote records in d whether the window's labelled conversations
// were sampled (weight is the sampled rows' factor) and returns a note
// saying how, or "" when every one was kept within the cap.
func sampleNote(g *gathered, weight float64, d *feedback.ReportData) string {
	if g.otherKept == g.otherSeen && g.mandatory <= g.maxRows {
		return ""
	}
	if g.otherKept < g.otherSeen {
		d.Sampled, d.SampledFrom, d.SampledKept = true, g.labelledSeen, g.mandatory+g.otherKept
		if g.otherKept > 0 {
			d.SampleWeight = weight
		}
	}
	switch {
	case g.otherKept > 0:
		return fmt.Sprintf("the window held %d labelled conversations, more than --tune-max-rows %d: every agent-labelled and positive conversation (%d) was kept, and a uniform sample of %d of the other %d, each weighing %.4g times as much, so that training and the holdout metrics stand for all of them (the counts of labelled conversations in this report are of those kept)",
			g.labelledSeen, g.maxRows, g.mandatory, g.otherKept, g.otherSeen, weight)
	case g.otherSeen > 0:
		return fmt.Sprintf("the window's %d agent-labelled and positive conversations alone exceed --tune-max-rows %d: all were kept and none of the other %d (negatives from outcomes), so the candidate learns negatives from agents' labels only; raise --tune-max-rows",
			g.mandatory, g.maxRows, g.otherSeen)
	default:
		return fmt.Sprintf("the window's %d agent-labelled and positive conversations exceed --tune-max-rows %d: all were kept, as they always are",
			g.mandatory, g.maxRows)
	}
}

// candidate is what compute made to be stored: the model refitted on the
// whole window, its fit and its holdout measurements.
type candidate struct {
	model   *model.Model
	fit     model.Fit
	metrics *model.ModelEval
}

// compute fills rep from the gathered window with model's tuning maths
// and returns the candidate to store, nil when none could be trained.
func compute(ctx context.Context, set tuneSettings, sc *feedback.Scoring, g *gathered, rep *feedback.Report) (*candidate, error) {
	rep.Data.Conversations = g.conversations
	if note := model.ReweightReviewSample(g.labelled, g.unsampled, g.unsampledLabelled); note != "" {
		rep.Notes = append(rep.Notes, note)
	}
	if note := sampleNote(g, g.weighSample(), &rep.Data); note != "" {
		rep.Notes = append(rep.Notes, note)
	}

	// Split by time: the most recent week is the holdout, but never
	// anything the live model was trained on, or the comparison would
	// favour it. When too little labelled data comes before it (the first
	// weeks of a deployment), the most recent quarter of the labelled
	// conversations is held out instead.
	asOf := rep.Window.End
	if end := sc.ModelWindowEnd; end != nil && end.After(rep.Window.HoldoutStart) && end.Before(asOf) {
		rep.Window.HoldoutStart = *end
		rep.Notes = append(rep.Notes, fmt.Sprintf("the holdout starts at %s, where model %d's training window ended, so the live model is not measured on what it learned from",
			end.Format(time.RFC3339), sc.ModelVersion))
	}
	rows := g.labelled
	cut := sort.Search(len(rows), func(i int) bool { return !rows[i].At.Before(rep.Window.HoldoutStart) })
	if cut < set.minLabelled && len(rows) >= set.minLabelled && len(rows) >= 4 {
		cut = len(rows) - len(rows)/4
		rep.Window.HoldoutStart = rows[cut].At
		rep.Notes = append(rep.Notes, fmt.Sprintf("fewer than %d labelled conversations before the last %s: the most recent quarter of the labelled conversations (from %s) is the holdout instead",
			set.minLabelled, set.holdout, rep.Window.HoldoutStart.Format(time.RFC3339)))
	}
	train, hold := rows[:cut], rows[cut:]
	rep.Data.Count(train, hold)
	ev := model.JudgeEvidence(train, hold, set.minimums)
	rep.Evidence = &ev
	if ev.Judged {
		rep.Recall = model.EstimateRecall(hold)
	}

	if reason := model.Untrainable(train, set.minLabelled); reason != "" {
		rep.Promotion.Reason = "no candidate: " + ev.Reason
		rep.Rules = model.JudgeRules(sc.Policy, sc.Model, nil, g.ruleHits, rows)
		return nil, nil
	}

	// The candidate measured on the holdout is fitted on the data before
	// it: model.FitModel learns the encoder, chooses the penalty (unless
	// --l2 fixes it) and the interactions by inner cross-validation, and
	// fits. The model stored is then chosen and fitted the same way on
	// the whole window, so the newest week is not thrown away: the holdout
	// measures the procedure that made it.
	set.stepped(2, "training")
	rules := sc.Policy.RuleNames()
	opt := model.FitOptions{L2: set.l2, Interactions: set.interactions, Seed: 1}
	all := &tuningExamples{rows: rows, bad: &decodeErr{}}
	design, fit, sel, err := model.FitModel(ctx, set.trainer, rules, all.prefix(cut), opt)
	if err == nil {
		err = all.bad.get()
	}
	if err != nil {
		return nil, fmt.Errorf("fit: %w", err)
	}
	liveScores, candScores, err := scoreHoldout(sc, design.Model(fit), hold)
	if err != nil {
		return nil, err
	}
	final, finalFit, finalSel := design.Model(fit), fit, sel
	if len(hold) > 0 {
		set.stepped(2, "training: refitting on the whole window")
		d, f, s, err := model.FitModel(ctx, set.trainer, rules, all, opt)
		if err == nil {
			err = all.bad.get()
		}
		if err != nil {
			return nil, fmt.Errorf("refit: %w", err)
		}
		final, finalFit, finalSel = d.Model(f), f, s
		if note := selectionNote(sel, finalSel); note != "" {
			rep.Notes = append(rep.Notes, note)
		}
	}
	rep.L2, rep.L2FromCV, rep.Interactions = finalSel.L2, finalSel.L2FromCV, append([]string{}, finalSel.Interactions...)
	if set.l2 == 0 && !finalSel.L2FromCV {
		rep.Notes = append(rep.Notes, fmt.Sprintf("too few labelled conversations of a class for inner cross-validation: the candidate has the default L2 %g and no interactions", finalSel.L2))
	}
	rep.Fit = feedback.FitSummary{Features: len(final.Encoder.Features), Rules: len(rules), Iterations: finalFit.Iterations,
		Converged: finalFit.Converged, Rows: len(rows)}
	contrib, err := contribRows(final, all, cut)
	if err != nil {
		return nil, err
	}
	rep.Contributions = model.ContribCurves(final, contrib, feedback.ReportContributions)
	// The stored signals are not read again: a window of millions lets
	// them go before the rest of the run.
	for i := range rows {
		rows[i].Raw = nil
	}

	if !ev.Judged {
		// Too little data to judge it: the candidate is stored with its
		// tuned weights, unmeasured, and waits.
		rep.Rules = model.JudgeRules(sc.Policy, sc.Model, final, g.ruleHits, rows)
		rep.Promotion.Reason = "not promoted: " + ev.Reason + ": waiting for more labelled conversations, or a lead"
		return &candidate{model: final, fit: finalFit}, nil
	}
	set.stepped(3, "measuring on the holdout")
	rep.Live = model.EvaluateHoldout(sc.Policy, hold, liveScores)
	rep.Candidate = model.EvaluateHoldout(sc.Policy, hold, candScores)
	rep.Rules = model.JudgeRules(sc.Policy, sc.Model, final, g.ruleHits, rows)
	set.stepped(4, "proposing thresholds")
	rep.Thresholds = model.ProposeHoldoutThresholds(sc.Policy, hold, candScores, set.targets, set.minimums.TierLabelled)
	if err := fitBudgets(sc.Policy, final, g, rep, hold, candScores); err != nil {
		return nil, err
	}
	model.CountTierSupport(rep.Thresholds, hold, candScores, set.minimums.TierLabelled)
	rep.Promotion.Promoted, rep.Promotion.Reason = model.DecidePromotion(set.promotion, rep.Live, rep.Candidate, sc.ModelVersion, set.guard)
	if sc.Model != nil && sameScores(liveScores, candScores) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the candidate measured on the holdout scores it as model %d does: both were fitted on the same labelled conversations, those before %s, as happens while the history is shorter than the window; the candidate stored, refitted with the holdout's conversations too, differs but is not measured here",
			sc.ModelVersion, rep.Window.HoldoutStart.Format(time.RFC3339)))
	}
	return &candidate{model: final, fit: finalFit, metrics: rep.Candidate}, nil
}

// sameScores reports whether two models gave every holdout conversation
// the same score, to within rounding.
func sameScores(a, b []float64) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}

// save stores the candidate (if any), promotes it when the report says so,
// and stores the report; saved reports whether the report was stored. The
// report is saved after the promotion, so that it never claims one that
// did not happen; a failed promotion is an error with the report saved.
func (t *Tuner) save(ctx context.Context, runID string, rep *feedback.Report, cand *candidate) (saved bool, err error) {
	if cand == nil {
		err := t.saveReport(ctx, rep)
		return err == nil, err
	}
	body, err := cand.model.Marshal()
	if err != nil {
		return false, err
	}
	metrics, err := json.Marshal(cand.metrics)
	if err != nil {
		return false, fmt.Errorf("encode metrics: %w", err)
	}
	if cand.metrics == nil {
		metrics = nil // too little data measured it: stored as {}
	}
	ws, we := rep.Window.Start, rep.Window.End
	mv, err := t.Store.CreateTrainedModel(ctx, body, feedback.ModelMeta{
		Note:    fmt.Sprintf("tuning run %s", runID),
		Trainer: rep.Trainer, WindowStart: &ws, WindowEnd: &we, Metrics: metrics, ReportID: rep.ID,
	})
	if err != nil {
		return false, fmt.Errorf("store candidate: %w", err)
	}
	rep.CandidateModelVersion = mv.Version
	var promoteErr error
	if rep.Promotion.Promoted {
		if _, promoteErr = t.Store.ActivateModel(ctx, mv.Version); promoteErr != nil {
			rep.Promotion.Promoted = false
			rep.Promotion.Reason = fmt.Sprintf("promotion failed (%v); %s", promoteErr, rep.Promotion.Reason)
		}
	}
	if err := t.saveReport(context.WithoutCancel(ctx), rep); err != nil {
		return false, errors.Join(promoteErr, err)
	}
	if promoteErr != nil {
		return true, fmt.Errorf("promote model %d: %w", mv.Version, promoteErr)
	}
	return true, nil
}

func (t *Tuner) saveReport(ctx context.Context, rep *feedback.Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if _, err := t.Store.SaveReport(ctx, feedback.StoredReport{ID: rep.ID, RunID: rep.RunID, AsOf: rep.AsOf,
		CandidateModel: rep.CandidateModelVersion, Promoted: rep.Promotion.Promoted, Body: body}); err != nil {
		return fmt.Errorf("store report: %w", err)
	}
	return nil
}

// fitBudgets scores the holdout period's conversations with the candidate,
// raises the proposed alerting thresholds until each team's busiest hour
// fits its hourly budget, counts the expected alerts per week at each
// proposed tier, and refigures the proposals' precision and recall.
func fitBudgets(pol *model.Policy, cand *model.Model, g *gathered, rep *feedback.Report, hold []model.TuningRow, scores []float64) error {
	weeks := rep.Window.End.Sub(g.volumeFrom).Hours() / (24 * 7)
	if len(g.volume) == 0 || len(rep.Thresholds) == 0 || weeks <= 0 {
		return nil
	}
	weight := float64(g.volumeSeen) / float64(len(g.volume))
	rows := make([]model.VolumeRow, 0, len(g.volume))
	for _, v := range g.volume {
		var signals map[string]any
		if err := json.Unmarshal(v.raw, &signals); err != nil {
			return fmt.Errorf("alert volume: conversation at %s: signals: %w", v.at.Format(time.RFC3339), err)
		}
		rows = append(rows, model.VolumeRow{Channel: v.channel, At: v.at, Hits: v.hits, Weight: weight,
			Score: model.PredictProb(pol, cand, v.hits, v.channel, signals)})
	}
	g.volume = nil
	rep.Notes = append(rep.Notes, model.FitBudgets(pol, rep.Thresholds, rows, weeks)...)
	model.Remeasure(rep.Thresholds, hold, scores)
	if weight > 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("alert volumes are counted on a sample of %d of the holdout period's %d conversations", len(rows), g.volumeSeen))
	}
	return nil
}

// maxContribRows bounds the rows a report's contribution curves are
// ranked on: a sample of that size measures a spread well enough.
const maxContribRows = 50_000

// contribRows are the features m encodes for the labelled rows of ex from
// row hold on (the holdout; all rows without one), every k-th of them when
// there are more than maxContribRows.
func contribRows(m *model.Model, ex *tuningExamples, hold int) ([][]float64, error) {
	from, n := hold, ex.Len()
	if from >= n {
		from = 0
	}
	step := max(1, (n-from+maxContribRows-1)/maxContribRows)
	out := make([][]float64, 0, (n-from)/step+1)
	for i := from; i < n; i += step {
		signals, err := ex.signals(i)
		if err != nil {
			return nil, err
		}
		out = append(out, m.Encoder.EncodeFor(ex.rows[i].Channel, signals, nil))
	}
	return out, nil
}

// tuningExamples are a window's labelled conversations as model.Examples:
// a row's stored signals are decoded each time FitModel reads it, so a
// window of millions is never held as maps, only as its stored JSON. A
// row whose signals do not decode reads as one without signals, and bad
// keeps the first such error for the run to fail with.
type tuningExamples struct {
	rows []model.TuningRow
	bad  *decodeErr
}

// Len is the number of rows.
func (e *tuningExamples) Len() int { return len(e.rows) }

// At is row i with its signals decoded.
func (e *tuningExamples) At(i int) model.Example {
	ex := e.rows[i].Example
	signals, err := e.signals(i)
	if err != nil {
		e.bad.set(err)
	}
	ex.Signals = signals
	return ex
}

// signals decodes row i's stored signals.
func (e *tuningExamples) signals(i int) (map[string]any, error) {
	r := &e.rows[i]
	var signals map[string]any
	if err := json.Unmarshal(r.Raw, &signals); err != nil {
		return nil, fmt.Errorf("conversation at %s: signals: %w", r.At.Format(time.RFC3339), err)
	}
	return signals, nil
}

// prefix is the first n rows.
func (e *tuningExamples) prefix(n int) *tuningExamples {
	return &tuningExamples{rows: e.rows[:n], bad: e.bad}
}

// decodeErr keeps the first error of rows read from several goroutines.
type decodeErr struct {
	mu  sync.Mutex
	err error
}

func (d *decodeErr) set(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

func (d *decodeErr) get() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// scoreHoldout scores the holdout rows with the live policy and model
// (nil for rules only) and with the candidate, as the scorer would:
// in parallel chunks, each row on its own.
func scoreHoldout(sc *feedback.Scoring, cand *model.Model, hold []model.TuningRow) (live, scores []float64, err error) {
	live, scores = make([]float64, len(hold)), make([]float64, len(hold))
	const chunk = 4096
	chunks := (len(hold) + chunk - 1) / chunk
	errs := make([]error, chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Go(func() {
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return
				}
				ex := &tuningExamples{rows: hold[c*chunk : min(len(hold), (c+1)*chunk)]}
				for k := range ex.rows {
					signals, err := ex.signals(k)
					if err != nil {
						errs[c] = err
						break
					}
					hits, channel := ex.rows[k].Hits, ex.rows[k].Channel
					live[c*chunk+k] = model.PredictProb(sc.Policy, sc.Model, hits, channel, signals)
					scores[c*chunk+k] = model.PredictProb(sc.Policy, cand, hits, channel, signals)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return live, scores, nil
}

// selectionNote says how the model stored, chosen and fitted on the
// whole window, differs from the candidate measured on the holdout, or ""
// when they chose the same.
func selectionNote(measured, stored model.Selection) string {
	if measured.L2 == stored.L2 && slices.Equal(measured.Interactions, stored.Interactions) {
		return ""
	}
	return fmt.Sprintf("the candidate measured on the holdout had L2 %g and interactions %s; refitted on the whole window, the model stored chose L2 %g and interactions %s",
		measured.L2, interactionList(measured.Interactions), stored.L2, interactionList(stored.Interactions))
}

func interactionList(in []string) string {
	if len(in) == 0 {
		return "none"
	}
	return strings.Join(in, ", ")
}
