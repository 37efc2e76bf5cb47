package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

// tunePolicy has one rule that matters (big-deal, under-weighted by hand)
// and one that does not (returning, over-weighted by hand).
const tunePolicy = `{
  "base": -2,
  "rules": [
    {"name": "big-deal", "expression": "deal_size >= 5000", "points": 0.5},
    {"name": "returning", "expression": "returning == true", "points": 2}
  ],
  "thresholds": {"default": {"urgent": 0.9, "high": 0.7, "medium": 0.4}}
}`

var asOf = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

func openTuneStore(t *testing.T, engine string) *store.Store {
	t.Helper()
	return openTuneStoreWith(t, func() string { return storetest.DSN(t, engine) })
}

// openTuneStoreWith opens and migrates the database dsn names and
// publishes tunePolicy.
func openTuneStoreWith(t *testing.T, dsn func() string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dsn(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := model.ParsePolicy([]byte(tunePolicy))
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := doc.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishPolicy(ctx, canonical, tunePolicy, "test", ""); err != nil {
		t.Fatal(err)
	}
	return s
}

// seedHistory imports n conversations spread over the three weeks before
// asOf whose outcome follows a known model: a big deal and a pro plan make
// a conversion likely, returning visitors are no different.
func seedHistory(t *testing.T, s *store.Store, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	pv, err := s.LivePolicy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := model.ParsePolicy(pv.Document)
	pol, err := model.CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	scorer := model.NewScorer(pol, nil)
	rows := make([]feedback.ImportedConversation, n)
	for i := range rows {
		deal := math.Exp(rng.NormFloat64()*1.5 + 8)
		plan := []string{"free", "pro", "team"}[rng.IntN(3)]
		returning := rng.IntN(2) == 0
		logit := -1.5 + 2.5*b2f(deal >= 5000) + 1.2*b2f(plan == "pro")
		converted := rng.Float64() < 1/(1+math.Exp(-logit))
		signals := map[string]any{"deal_size": deal, "plan": plan, "returning": returning}
		d := scorer.Score(model.Input{Channel: "web", Signals: signals})
		sig, _ := json.Marshal(signals)
		reasons, _ := json.Marshal(d.Reasons)
		outcome := feedback.EventLost
		if converted {
			outcome = feedback.EventConverted
		}
		at := asOf.Add(-time.Duration(float64(21*24*time.Hour) * float64(i+1) / float64(n+1)))
		rows[i] = feedback.ImportedConversation{
			Decision: feedback.Decision{ID: fmt.Sprintf("d-%d", i), ConversationID: fmt.Sprintf("c-%d", i), Channel: "web",
				Signals: sig, Score: d.Score, Tier: d.Tier, Reasons: reasons, PolicyVersion: pv.Version, OccurredAt: at},
			Outcome: outcome, EventID: fmt.Sprintf("e-%d", i),
		}
	}
	res, err := s.ImportHistory(context.Background(), rows)
	if err != nil || res.Added != n {
		t.Fatalf("import: %+v, %v", res, err)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestTuneTrainsReportsAndPromotes(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			s := openTuneStore(t, engine)
			seedHistory(t, s, 1500, 7)
			tuner := &jobs.Tuner{Store: s}
			res, err := tuner.RunNow(ctx, feedback.TuneRequest{AsOf: asOf, Trigger: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Run.Status != feedback.RunSucceeded || res.Run.FinishedAt == nil || res.Run.Trigger != "test" {
				t.Fatalf("run = %+v", res.Run)
			}
			rep := res.Report
			if rep.Data.Conversations != 1500 || rep.Data.Labelled != 1500 || rep.Data.Holdout == 0 || rep.Data.Train == 0 {
				t.Fatalf("data = %+v", rep.Data)
			}
			if !rep.Window.HoldoutStart.Equal(asOf.Add(-7 * 24 * time.Hour)) {
				t.Errorf("holdout starts %v", rep.Window.HoldoutStart)
			}
			if rep.Live == nil || rep.Candidate == nil {
				t.Fatal("no holdout metrics")
			}
			// The candidate learns the plan, which no rule knows: it must
			// beat the rules on the holdout, and be promoted for it.
			if !(rep.Candidate.ROCAUC > rep.Live.ROCAUC+0.03) {
				t.Errorf("candidate ROC-AUC %.3f, live %.3f", rep.Candidate.ROCAUC, rep.Live.ROCAUC)
			}
			if !rep.Promotion.Promoted || rep.CandidateModelVersion == 0 {
				t.Fatalf("promotion = %+v, candidate %d", rep.Promotion, rep.CandidateModelVersion)
			}
			active, err := s.ActiveModel(ctx)
			if err != nil || active.Version != rep.CandidateModelVersion {
				t.Fatalf("active model %d (%v), want %d", active.Version, err, rep.CandidateModelVersion)
			}
			if active.Trainer != model.DefaultTrainer || active.ReportID != rep.ID || active.WindowEnd == nil || !active.WindowEnd.Equal(asOf) {
				t.Errorf("registry meta = trainer %q report %q window end %v", active.Trainer, active.ReportID, active.WindowEnd)
			}
			var m model.Metrics
			if err := json.Unmarshal(active.Metrics, &m); err != nil || m.Rows != rep.Data.Holdout {
				t.Errorf("stored metrics %s (%v)", active.Metrics, err)
			}

			rules := map[string]model.RuleRow{}
			for _, r := range rep.Rules {
				rules[r.Name] = r
			}
			big, ret := rules["big-deal"], rules["returning"]
			if big.TunedWeight == nil || *big.TunedWeight < 1.5 || big.Verdict != model.VerdictReweight {
				t.Errorf("big-deal = %+v (tuned %v)", big, fmtW(big.TunedWeight))
			}
			if ret.TunedWeight == nil || math.Abs(*ret.TunedWeight) > 0.4 || ret.Verdict != model.VerdictRetire {
				t.Errorf("returning = %+v (tuned %v)", ret, fmtW(ret.TunedWeight))
			}
			if big.Hits == 0 || big.LabelledHits != big.Hits || big.HandSetWeight != 0.5 {
				t.Errorf("big-deal counts = %+v", big)
			}
			if len(rep.Thresholds) != 2 || rep.Thresholds[0].Channel != "default" || rep.Thresholds[1].Channel != "web" {
				t.Fatalf("thresholds = %+v", rep.Thresholds)
			}
			if len(rep.KPIs) != 4 {
				t.Errorf("kpi weeks = %d", len(rep.KPIs))
			}

			stored, err := s.LatestReport(ctx)
			if err != nil || stored.ID != rep.ID || stored.CandidateModel != rep.CandidateModelVersion || !stored.Promoted {
				t.Fatalf("latest report = %+v, %v", stored, err)
			}
			runs, err := s.JobRuns(ctx, jobs.TuneJob, 10)
			if err != nil || len(runs) != 1 || !strings.Contains(string(runs[0].Detail), rep.ID) {
				t.Fatalf("runs = %+v, %v", runs, err)
			}

			// Applying the report publishes the tuned weights and the
			// proposed thresholds as a new ruleset version.
			pv, err := jobs.ApplyReport(ctx, s, rep.ID, "lead")
			if err != nil {
				t.Fatal(err)
			}
			doc, err := model.ParsePolicy(pv.Document)
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.Rules[0].Points; math.Abs(got-*big.TunedWeight) > 1e-4 {
				t.Errorf("big-deal points %v, tuned %v", got, *big.TunedWeight)
			}
			if got, want := doc.Thresholds["web"].High, rep.Thresholds[1].Proposal.Thresholds.High; math.Abs(got-want) > 1e-4 {
				t.Errorf("web high threshold %v, proposed %v", got, want)
			}
			if again, _ := s.Report(ctx, rep.ID); again.AppliedPolicy != pv.Version {
				t.Errorf("report applied as %d, want %d", again.AppliedPolicy, pv.Version)
			}
			if _, err := jobs.ApplyReport(ctx, s, rep.ID, "lead"); !errors.Is(err, feedback.ErrApplied) {
				t.Errorf("second apply: %v", err)
			}
		})
	}
}

func fmtW(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%.3f", *p)
}

func TestTuneManualPromotionWaits(t *testing.T) {
	ctx := context.Background()
	s := openTuneStore(t, "sqlite")
	seedHistory(t, s, 600, 3)
	res, err := (&jobs.Tuner{Store: s, Promotion: jobs.PromoteManual}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Promotion.Promoted || res.Report.CandidateModelVersion == 0 || !strings.Contains(res.Report.Promotion.Reason, "manual") {
		t.Fatalf("promotion = %+v", res.Report.Promotion)
	}
	if _, err := s.ActiveModel(ctx); !errors.Is(err, feedback.ErrNotFound) {
		t.Fatalf("a model is active: %v", err)
	}
	m, err := s.Model(ctx, res.Report.CandidateModelVersion)
	if err != nil || m.Status != feedback.ModelCandidate {
		t.Fatalf("candidate = %+v, %v", m, err)
	}
	// Its thresholds were tuned on the candidate's scores: they wait for
	// its promotion, and a ruleset published since makes them stale.
	if _, err := jobs.ApplyReport(ctx, s, res.Report.ID, "lead"); !errors.Is(err, feedback.ErrNotPromoted) {
		t.Fatalf("apply before promotion: %v", err)
	}
	if _, err := s.ActivateModel(ctx, m.Version); err != nil {
		t.Fatal(err)
	}
	live, _ := s.LivePolicy(ctx)
	if _, err := s.PublishPolicy(ctx, live.Document, "", "lead", "an edit"); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.ApplyReport(ctx, s, res.Report.ID, "lead"); !errors.Is(err, feedback.ErrStaleReport) {
		t.Fatalf("apply over a newer ruleset: %v", err)
	}
}

func TestTuneWithTooFewLabelsReportsWhy(t *testing.T) {
	ctx := context.Background()
	s := openTuneStore(t, "sqlite")
	seedHistory(t, s, 20, 5)
	res, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if rep.CandidateModelVersion != 0 || rep.Promotion.Promoted || !strings.Contains(rep.Promotion.Reason, "at least 50 needed") {
		t.Fatalf("report = %+v", rep.Promotion)
	}
	if list, _ := s.ListModels(ctx); len(list) != 0 {
		t.Fatalf("models stored: %d", len(list))
	}
	if _, err := jobs.ApplyReport(ctx, s, rep.ID, "lead"); !errors.Is(err, feedback.ErrNothingToApply) {
		t.Fatalf("apply = %v", err)
	}
}

// TestTuneWithTooLittleDataJudgesNothing runs the job on windows too
// small to judge by: a tiny history (no candidate can be trained), and a
// history whose last week holds a handful of conversations (a candidate
// is trained, on a holdout too small to measure it on). Either way the
// report says "too little data" with the counts and the minimums, holds no
// metrics, proposes no thresholds, claims no recall, and nothing is
// promoted, even with automatic promotion and no guard.
func TestTuneWithTooLittleDataJudgesNothing(t *testing.T) {
	tests := []struct {
		name      string
		history   int
		asOf      time.Time // the holdout is the week before
		candidate bool
		applyErr  error
	}{
		{"tiny history", 20, asOf, false, feedback.ErrNothingToApply},
		// The history ends at asOf; six and a half days later the last
		// week holds its last half day: about 5 of 240 conversations.
		{"tiny holdout", 240, asOf.Add(6*24*time.Hour + 12*time.Hour), true, feedback.ErrNotPromoted},
	}
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := context.Background()
					s := openTuneStore(t, engine)
					seedHistory(t, s, tt.history, 5)
					res, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: tt.asOf})
					if err != nil {
						t.Fatal(err)
					}
					rep := res.Report
					ev := rep.Evidence
					if ev == nil || ev.Judged || rep.Judged() || !strings.HasPrefix(ev.Reason, "too little data: ") {
						t.Fatalf("evidence = %+v, want too little data", ev)
					}
					if ev.HoldoutPositives+ev.HoldoutNegatives != rep.Data.Holdout || ev.HoldoutPositives != rep.Data.HoldoutPositives {
						t.Errorf("evidence counts %d+%d, data %+v", ev.HoldoutPositives, ev.HoldoutNegatives, rep.Data)
					}
					if ev.Needed != model.DefaultMinimums {
						t.Errorf("needed %+v, want %+v", ev.Needed, model.DefaultMinimums)
					}
					if want := fmt.Sprintf("(%d positive, %d negative), at least 20 positive and 20 negative needed", ev.HoldoutPositives, ev.HoldoutNegatives); !strings.Contains(ev.Reason, want) {
						t.Errorf("reason %q lacks %q", ev.Reason, want)
					}
					if rep.Live != nil || rep.Candidate != nil || len(rep.Thresholds) != 0 || rep.Recall.Estimated != nil || rep.Recall.AmongLabelled != nil {
						t.Errorf("judged anyway: live %v, candidate %v, thresholds %v, recall %+v", rep.Live, rep.Candidate, rep.Thresholds, rep.Recall)
					}
					if rep.Promotion.Promoted || !strings.Contains(rep.Promotion.Reason, "too little data") {
						t.Errorf("promotion = %+v", rep.Promotion)
					}
					if got := rep.CandidateModelVersion != 0; got != tt.candidate {
						t.Errorf("candidate model %d, want one: %v", rep.CandidateModelVersion, tt.candidate)
					}
					if _, err := s.ActiveModel(ctx); !errors.Is(err, feedback.ErrNotFound) {
						t.Errorf("a model is active: %v", err)
					}

					// The report as stored and served says the same.
					stored, err := s.LatestReport(ctx)
					if err != nil || stored.Promoted {
						t.Fatalf("stored = %+v, %v", stored, err)
					}
					body := string(stored.Body)
					for _, want := range []string{`"judged":false`, `"reason":"too little data: `, `"live":null`, `"candidate":null`, `"thresholds":null`} {
						if !strings.Contains(body, want) {
							t.Errorf("stored report lacks %s: %s", want, body)
						}
					}
					if strings.Contains(body, `"met":true`) {
						t.Errorf("stored report says a target is met: %s", body)
					}
					if _, err := jobs.ApplyReport(ctx, s, rep.ID, "lead"); !errors.Is(err, tt.applyErr) {
						t.Errorf("apply = %v, want %v", err, tt.applyErr)
					}
				})
			}
		})
	}
}

func TestTuneRunsOnceAtATime(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			s := openTuneStore(t, engine)
			release, ok, err := s.TryJobLock(ctx, jobs.TuneJob)
			if err != nil || !ok {
				t.Fatalf("lock: %v %v", ok, err)
			}
			if _, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf}); !errors.Is(err, jobs.ErrTuneRunning) {
				t.Fatalf("second run: %v", err)
			}
			// The scheduled entry point treats a held lock as nothing to do.
			if err := (&jobs.Tuner{Store: s}).Run(ctx, time.Time{}); err != nil {
				t.Fatalf("scheduled run: %v", err)
			}
			release()
			if _, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf}); err != nil {
				t.Fatalf("after release: %v", err)
			}
		})
	}
}

// Of several processes whose schedules fire at the same tick, the first
// to claim it runs the job and the others skip it, whenever they come;
// the next tick runs again, and a run on demand claims no tick.
func TestTuneRunsOncePerTick(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			s := openTuneStore(t, engine)
			tick := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
			runs := func() int {
				t.Helper()
				list, err := s.JobRuns(ctx, jobs.TuneJob, 100)
				if err != nil {
					t.Fatal(err)
				}
				return len(list)
			}
			for i := range 3 { // three replicas, one after the other
				tuner := &jobs.Tuner{Store: s, Now: func() time.Time { return asOf }}
				if err := tuner.Run(ctx, tick); err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			if n := runs(); n != 1 {
				t.Fatalf("%d runs for one tick, want 1", n)
			}
			_, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf, Trigger: feedback.TriggerSchedule, Tick: tick})
			if !errors.Is(err, feedback.ErrTickTaken) {
				t.Fatalf("a claimed tick again: %v, want ErrTickTaken", err)
			}
			if err := (&jobs.Tuner{Store: s, Now: func() time.Time { return asOf }}).Run(ctx, tick.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf}); err != nil {
				t.Fatal(err)
			}
			if n := runs(); n != 3 {
				t.Fatalf("%d runs after the next tick and a run on demand, want 3", n)
			}
			// The same tick written with another zone's clock is the same tick.
			claimed, err := s.ClaimJobTick(ctx, jobs.TuneJob, tick.In(time.FixedZone("CET", 3600)))
			if err != nil || claimed {
				t.Fatalf("the tick in another zone: claimed %v, %v", claimed, err)
			}
		})
	}
}

func TestTuneClosesARunInterruptedByACrash(t *testing.T) {
	ctx := context.Background()
	s := openTuneStore(t, "sqlite")
	crashed, err := s.StartJobRun(ctx, jobs.TuneJob, "schedule")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf}); err != nil {
		t.Fatal(err)
	}
	runs, err := s.JobRuns(ctx, jobs.TuneJob, 10)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	for _, r := range runs {
		if r.ID == crashed.ID && (r.Status != feedback.RunFailed || !strings.Contains(r.Error, "interrupted") || r.FinishedAt == nil) {
			t.Errorf("crashed run = %+v", r)
		}
		if r.ID != crashed.ID && r.Status != feedback.RunSucceeded {
			t.Errorf("new run = %+v", r)
		}
	}
}

func TestTuneFailureIsRecorded(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, storetest.DSN(t, "sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// No ruleset: the run fails, and says why.
	res, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
	if !errors.Is(err, feedback.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if res.Run.Status != feedback.RunFailed || !strings.Contains(res.Run.Error, "no ruleset is live yet") || res.Report != nil {
		t.Fatalf("run = %+v", res.Run)
	}
}

func TestRollbackModel(t *testing.T) {
	ctx := context.Background()
	s := openTuneStore(t, "sqlite")
	body := []byte(`{"intercept":0,"rule_weights":{},"encoder":{"version":1,"features":[]},"beta":[]}`)
	var vs []int
	for i := range 3 {
		m, err := s.CreateModel(ctx, body, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, m.Version)
	}
	if _, err := s.RollbackModel(ctx); !errors.Is(err, feedback.ErrNotFound) {
		t.Fatalf("rollback without an active model: %v", err)
	}
	for _, v := range vs {
		if _, err := s.ActivateModel(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	// Rollbacks walk back through the promotions: 3 -> 2 -> 1 -> rules.
	for _, want := range []int{vs[1], vs[0], 0} {
		back, err := s.RollbackModel(ctx)
		if err != nil || back.Version != want {
			t.Fatalf("rollback = %d, %v; want %d", back.Version, err, want)
		}
	}
	if _, err := s.ActiveModel(ctx); !errors.Is(err, feedback.ErrNotFound) {
		t.Fatalf("a model is active after rolling back past the first: %v", err)
	}
	if got, _ := s.Model(ctx, vs[2]); got.Status != feedback.ModelRetired || got.RolledBackAt == nil {
		t.Errorf("model 3 = %s, rolled back at %v", got.Status, got.RolledBackAt)
	}
	// Promoting a rolled-back model again makes it a rollback target again.
	if _, err := s.ActivateModel(ctx, vs[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateModel(ctx, vs[0]); err != nil {
		t.Fatal(err)
	}
	if back, err := s.RollbackModel(ctx); err != nil || back.Version != vs[2] {
		t.Fatalf("rollback after re-promotion = %d, %v; want %d", back.Version, err, vs[2])
	}
}

// TestTuneReviewSampleWeights checks what a review-sampled conversation
// stands for: by its inverse sampling probability when the conversations
// around it have no labels, once when outcomes label them anyway.
func TestTuneReviewSampleWeights(t *testing.T) {
	for _, outcomes := range []bool{true, false} {
		t.Run(fmt.Sprintf("outcomes=%v", outcomes), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "h.db")
			s := openTuneStoreWith(t, func() string { return path })
			seedHistory(t, s, 400, 9)
			if !outcomes {
				// Without outcomes, only the review sample is labelled.
				db, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec("DELETE FROM conversation_events"); err != nil {
					t.Fatal(err)
				}
			}
			// Every fourth of the newest conversations was sampled for
			// review at rate 0.5 and labelled by an agent.
			sampled := 0
			for i := 0; i < 100; i += 4 {
				id := fmt.Sprintf("a-%d", i)
				if err := s.InsertAlertRow(ctx, feedback.Alert{ID: id, Kind: feedback.AlertKindReview, ConversationID: fmt.Sprintf("c-%d", i),
					DecisionID: fmt.Sprintf("d-%d", i), Channel: "web", Tier: model.TierLow, Status: feedback.AlertStatusFired, SampleRate: 0.5}); err != nil {
					t.Fatal(err)
				}
				label := feedback.LabelNoise
				if i%8 == 0 {
					label = feedback.LabelUseful
				}
				if _, err := s.LabelAlert(ctx, id, "ana", label, ""); err != nil {
					t.Fatal(err)
				}
				sampled++
			}
			// Without outcomes the holdout holds a handful of labels, below
			// the product's minimums: the weights are what is measured here.
			res, err := (&jobs.Tuner{Store: s, MinLabelled: 10, Minimums: model.Minimums{HoldoutPositives: 1, HoldoutNegatives: 1}}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
			if err != nil {
				t.Fatal(err)
			}
			rep := res.Report
			if rep.Data.ReviewSampleCount != sampled {
				t.Fatalf("review sample %d, want %d", rep.Data.ReviewSampleCount, sampled)
			}
			noted := len(rep.Notes) > 0 && strings.Contains(strings.Join(rep.Notes, " "), "count once")
			if noted != outcomes {
				t.Errorf("notes = %q", rep.Notes)
			}
			if rep.Candidate == nil {
				t.Fatalf("no holdout metrics: %+v", rep.Promotion)
			}
			// The holdout's weighted size tells the weights apart.
			want := float64(rep.Data.Holdout)
			if !outcomes {
				want = 2 * float64(rep.Data.Holdout)
			}
			if rep.Candidate.WeightTotal != want {
				t.Errorf("weighted holdout rows %v, want %v (holdout %d)", rep.Candidate.WeightTotal, want, rep.Data.Holdout)
			}
		})
	}
}

// TestJobLockAcrossProcesses opens two stores on one database, as two
// processes would, and checks that only one holds the tuning lock, that
// releasing it frees it, and (SQLite) that a dead holder's lease expires.
func TestJobLockAcrossProcesses(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, engine)
			a := openTuneStoreWith(t, func() string { return dsn })
			b, err := store.Open(ctx, dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			release, ok, err := a.TryJobLock(ctx, jobs.TuneJob)
			if err != nil || !ok {
				t.Fatalf("a: %v %v", ok, err)
			}
			if _, ok, err := b.TryJobLock(ctx, jobs.TuneJob); err != nil || ok {
				t.Fatalf("b took a held lock: %v %v", ok, err)
			}
			if _, err := (&jobs.Tuner{Store: b}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf}); !errors.Is(err, jobs.ErrTuneRunning) {
				t.Fatalf("b ran the job while a holds the lock: %v", err)
			}
			release()
			releaseB, ok, err := b.TryJobLock(ctx, jobs.TuneJob)
			if err != nil || !ok {
				t.Fatalf("b after release: %v %v", ok, err)
			}
			if engine != "sqlite" {
				releaseB()
				return
			}
			// b "dies" without releasing: once its lease has expired, a
			// takes the lock.
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("UPDATE job_locks SET expires_at = '2000-01-01 00:00:00+00:00'"); err != nil {
				t.Fatal(err)
			}
			releaseA, ok, err := a.TryJobLock(ctx, jobs.TuneJob)
			if err != nil || !ok {
				t.Fatalf("a after b's lease expired: %v %v", ok, err)
			}
			releaseA()
			releaseB() // releasing a lost lease touches nothing
			if _, ok, _ := b.TryJobLock(ctx, jobs.TuneJob); !ok {
				t.Fatal("the lock is not free after both released")
			}
		})
	}
}

// TestTuneWithAHandfulOfLabels covers the smallest windows the flags
// allow: the run reports, it does not fail.
func TestTuneWithAHandfulOfLabels(t *testing.T) {
	for n := 2; n <= 5; n++ {
		ctx := context.Background()
		s := openTuneStore(t, "sqlite")
		seedHistory(t, s, n, uint64(n))
		res, err := (&jobs.Tuner{Store: s, MinLabelled: 2}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
		if err != nil || res.Run.Status != feedback.RunSucceeded || res.Report == nil {
			t.Fatalf("%d labelled: %+v, %v", n, res.Run, err)
		}
	}
}

// A tight hourly budget raises the proposed alerting thresholds: the same
// history proposes fewer alerts a week than with the default budget, within
// the budget's hours, and the report says why.
func TestTuneProposalsHonourTeamBudgets(t *testing.T) {
	ctx := context.Background()
	proposals := func(budget string) (float64, []string, feedback.Report) {
		t.Helper()
		s := openTuneStore(t, "sqlite")
		if budget != "" {
			doc, err := model.ParsePolicy([]byte(strings.Replace(tunePolicy, `"thresholds"`, `"alerts": {"hourly_budget": {"default": `+budget+`}}, "thresholds"`, 1)))
			if err != nil {
				t.Fatal(err)
			}
			canonical, _ := doc.Canonical()
			if _, err := s.PublishPolicy(ctx, canonical, "", "test", "budget"); err != nil {
				t.Fatal(err)
			}
		}
		seedHistory(t, s, 1500, 7)
		res, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		var perWeek float64
		// Each conversation counts at the proposal of its channel (or
		// default), so the sum is every proposed alert.
		for _, tr := range res.Report.Thresholds {
			for _, tp := range tr.Proposal.Tiers {
				if tp.Tier >= model.TierHigh {
					perWeek += tp.AlertsPerWeek
				}
			}
		}
		return perWeek, res.Report.Notes, *res.Report
	}
	loose, looseNotes, _ := proposals("")
	tight, tightNotes, rep := proposals("1")
	if loose <= 0 {
		t.Fatalf("no alerts a week proposed without a tight budget (notes %q)", looseNotes)
	}
	t.Logf("alerts a week proposed: %.1f with a budget of 1 an hour, %.1f with the default of 30", tight, loose)
	if !(tight < loose) || tight > 168 {
		t.Errorf("alerts a week: %.1f with a budget of 1 an hour, %.1f with the default", tight, loose)
	}
	if !slices.ContainsFunc(tightNotes, func(n string) bool { return strings.Contains(n, "hourly budget of 1 alerts") }) {
		t.Errorf("notes = %q", tightNotes)
	}
	for _, tr := range rep.Thresholds {
		for _, tp := range tr.Proposal.Tiers {
			if tp.Threshold != tr.Proposal.Thresholds.Urgent && tp.Tier == model.TierUrgent || tp.Tier == model.TierHigh && tp.Threshold != tr.Proposal.Thresholds.High {
				t.Errorf("%s %s: tier threshold %v differs from the proposal %+v", tr.Channel, tp.Tier, tp.Threshold, tr.Proposal.Thresholds)
			}
		}
	}
}

// TestTuneMaxRowsSamplesTheWindow runs the job over a stored window with
// more labelled conversations than MaxRows: agents' labels and conversions
// are all kept, the losses sampled, and the report says so.
func TestTuneMaxRowsSamplesTheWindow(t *testing.T) {
	ctx := context.Background()
	s := openTuneStoreWith(t, func() string { return filepath.Join(t.TempDir(), "h.db") })
	seedHistory(t, s, 600, 5)
	for i := 0; i < 600; i += 60 {
		id := fmt.Sprintf("a-%d", i)
		if err := s.InsertAlertRow(ctx, feedback.Alert{ID: id, Kind: feedback.AlertKindTier, ConversationID: fmt.Sprintf("c-%d", i),
			DecisionID: fmt.Sprintf("d-%d", i), Channel: "web", Tier: model.TierHigh, Status: feedback.AlertStatusFired}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LabelAlert(ctx, id, "ana", feedback.LabelNoise, ""); err != nil {
			t.Fatal(err)
		}
	}
	run := func(maxRows int) *feedback.Report {
		t.Helper()
		res, err := (&jobs.Tuner{Store: s, MaxRows: maxRows, Promotion: jobs.PromoteManual}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		return res.Report
	}
	all := run(0)
	if all.Data.Sampled || all.Data.Labelled != 600 {
		t.Fatalf("uncapped run: data %+v", all.Data)
	}
	agents, converted := all.Data.LabelsBySource[feedback.SourceAgent], all.Data.LabelsBySource[feedback.SourceConverted]
	lost := 600 - agents - converted
	if agents != 10 || converted+agents >= 300 || lost <= 300-agents-converted {
		t.Fatalf("seeded %d agents' labels, %d conversions and %d losses; the test needs 10, and fewer than 300 with the losses more than the room left", agents, converted, lost)
	}

	rep := run(300)
	d := rep.Data
	if !d.Sampled || d.SampledFrom != 600 || d.SampledKept != 300 || d.Labelled != 300 {
		t.Errorf("report data %+v, want 300 of 600 kept", d)
	}
	if d.LabelsBySource[feedback.SourceAgent] != agents || d.LabelsBySource[feedback.SourceConverted] != converted {
		t.Errorf("kept %v, want every agent's label (%d) and conversion (%d)", d.LabelsBySource, agents, converted)
	}
	kept := 300 - agents - converted
	if want := float64(lost) / float64(kept); math.Abs(d.SampleWeight-want) > 1e-12 {
		t.Errorf("sample weight %v, want %d/%d", d.SampleWeight, lost, kept)
	}
	if notes := strings.Join(rep.Notes, "\n"); !strings.Contains(notes, fmt.Sprintf("a uniform sample of %d of the other %d", kept, lost)) {
		t.Errorf("notes %q do not say the window was sampled", notes)
	}
	body, _ := json.Marshal(rep)
	if !strings.Contains(string(body), `"sampled":true`) {
		t.Errorf("report JSON lacks sampled: %s", body)
	}
}

// TestTuneChoosesPenaltyAndInteractions: by default the candidate's L2 is
// chosen by inner cross-validation and the report says so, with the
// interactions kept; --l2 fixes the penalty and --interactions 0 (the
// tuner's -1) turns them off. The stored model is encoder version 1 when
// it has no hinges or products, so an older binary still loads it.
func TestTuneChoosesPenaltyAndInteractions(t *testing.T) {
	tests := []struct {
		name         string
		l2           float64
		interactions int
		wantL2       float64 // 0: any value of model.L2Grid
		wantFromCV   bool
		wantVersion  int
		someKept     bool // some interactions may be kept
	}{
		{name: "chosen by the data", wantFromCV: true, wantVersion: 2, someKept: true},
		{name: "fixed", l2: 2, interactions: -1, wantL2: 2, wantVersion: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openTuneStore(t, "sqlite")
			seedHistory(t, s, 1500, 7)
			tuner := &jobs.Tuner{Store: s, L2: tt.l2, Interactions: tt.interactions}
			res, err := tuner.RunNow(ctx, feedback.TuneRequest{AsOf: asOf, Trigger: "test"})
			if err != nil {
				t.Fatal(err)
			}
			rep := res.Report
			if rep.L2FromCV != tt.wantFromCV {
				t.Errorf("L2 from CV = %v, want %v", rep.L2FromCV, tt.wantFromCV)
			}
			if tt.wantL2 != 0 && rep.L2 != tt.wantL2 {
				t.Errorf("L2 = %v, want %v", rep.L2, tt.wantL2)
			}
			if tt.wantL2 == 0 && !slices.Contains(model.L2Grid, rep.L2) {
				t.Errorf("L2 = %v, want one of %v", rep.L2, model.L2Grid)
			}
			if rep.Interactions == nil || (!tt.someKept && len(rep.Interactions) > 0) {
				t.Errorf("interactions = %#v", rep.Interactions)
			}
			mv, err := s.Model(ctx, rep.CandidateModelVersion)
			if err != nil {
				t.Fatal(err)
			}
			m, err := model.ParseModel(mv.Body)
			if err != nil {
				t.Fatal(err)
			}
			var products int
			for _, f := range m.Encoder.Features {
				if f.Kind == model.KindProduct {
					products++
				}
			}
			if m.Encoder.Version != tt.wantVersion || m.Encoder.Version != m.Encoder.NeededVersion() {
				t.Errorf("stored encoder version %d, want %d", m.Encoder.Version, tt.wantVersion)
			}
			if (products > 0) != (len(rep.Interactions) > 0) {
				t.Errorf("%d product features for interactions %v", products, rep.Interactions)
			}
			if rep.Fit.Features != len(m.Encoder.Features) {
				t.Errorf("report says %d features, the model has %d", rep.Fit.Features, len(m.Encoder.Features))
			}
		})
	}
}

// While the history is shorter than the window, the candidate measured on
// the holdout is fitted on exactly the conversations the live model was:
// the report says why its two rows are the same.
func TestTuneSaysWhenTheCandidateIsTheLiveModelAgain(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			s := openTuneStore(t, engine)
			seedHistory(t, s, 1500, 7)
			tuner := &jobs.Tuner{Store: s}
			first, err := tuner.RunNow(ctx, feedback.TuneRequest{AsOf: asOf.Add(-7 * 24 * time.Hour), Trigger: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if !first.Report.Promotion.Promoted {
				t.Fatalf("first run did not promote: %+v", first.Report.Promotion)
			}
			const said = "scores it as model"
			for _, n := range first.Report.Notes {
				if strings.Contains(n, said) {
					t.Errorf("first run, against the rules alone: note %q", n)
				}
			}
			second, err := tuner.RunNow(ctx, feedback.TuneRequest{AsOf: asOf, Trigger: "test"})
			if err != nil {
				t.Fatal(err)
			}
			rep := second.Report
			if rep.Live == nil || rep.Candidate == nil || rep.Live.ROCAUC != rep.Candidate.ROCAUC {
				t.Fatalf("live %+v, candidate %+v: want the same model measured twice", rep.Live, rep.Candidate)
			}
			var found bool
			for _, n := range rep.Notes {
				found = found || strings.Contains(n, said+" "+strconv.Itoa(first.Report.CandidateModelVersion))
			}
			if !found {
				t.Errorf("no note on the candidate being the live model again in %q", rep.Notes)
			}
		})
	}
}
