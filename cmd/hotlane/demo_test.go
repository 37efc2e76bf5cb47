package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/model"
)

// seedDemoAt seeds the demo's ruleset and history into a fresh database
// of engine as serve --demo would at now, and returns the store and what
// the seeding printed.
func seedDemoAt(t *testing.T, engine string, now time.Time) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, storetest.DSN(t, engine), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, compiled, canonical, err := compilePolicy(demoPolicy)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := st.PublishPolicy(ctx, canonical, string(demoPolicy), "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	began := time.Now()
	if err := seedDemoHistory(ctx, st, compiled, pv.Version, now, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeding the history took %v", time.Since(began).Round(time.Millisecond))
	return st, out.String()
}

// demoEngines are the engines the demo's tests seed: SQLite, the demo's
// default. (On PostgreSQL the tuning lock is an advisory lock of the whole
// database, which the schemas of tests running in parallel packages
// share: a demo seeded there would contend with their tuning runs.)
var demoEngines = []string{"sqlite"}

// demoNows are moments of last week the demo may have started at: just
// after Monday midnight (the week has no history yet), mid-week, and late
// on Sunday. They are in the past, as the store asks of a decision's time.
var demoNows = func() []struct {
	name string
	now  time.Time
} {
	monday := feedback.ISOWeekStart(time.Now()).AddDate(0, 0, -7)
	return []struct {
		name string
		now  time.Time
	}{
		{"monday", monday.Add(30 * time.Minute)},
		{"thursday", monday.Add(3*24*time.Hour + 13*time.Hour + 40*time.Minute)},
		{"sunday", monday.Add(6*24*time.Hour + 23*time.Hour + 30*time.Minute)},
	}
}()

// TestDemoSeeded seeds the demo as serve --demo would, once per moment of
// the week, and checks what a new user then sees:
//   - kpis: each seeded week has all four KPIs, with their counts, on the
//     KPI page's query;
//   - settled (mid-week): the history holds nothing that has not happened
//     yet: this week's conversations end before now;
//   - tune: the tuning job run as hotlane tune would, right after: the
//     demo's own run left the last week unseen, so this run has a holdout
//     well above the minimums, measures both models with AUCs that are
//     neither chance nor perfect, and proposes a distinct threshold for
//     each tier.
func TestDemoSeeded(t *testing.T) {
	for _, engine := range demoEngines {
		t.Run(engine, func(t *testing.T) {
			for _, at := range demoNows {
				t.Run(at.name, func(t *testing.T) {
					st, out := seedDemoAt(t, engine, at.now)
					t.Run("kpis", func(t *testing.T) {
						kpis, err := st.KPIs(context.Background(), feedback.KPIQuery{Weeks: demoHistoryWeeks + 2, Now: at.now})
						if err != nil {
							t.Fatal(err)
						}
						weeks := kpis.Weeks
						if got, want := weeks[0].Overall.Conversion.Conversations, 0; got != want {
							t.Errorf("%s, before the history: %d priority conversations, want %d", weeks[0].Week, got, want)
						}
						seeded := weeks[1 : 1+demoHistoryWeeks]
						if this := weeks[len(weeks)-1]; at.now.Sub(this.Start) > 48*time.Hour {
							seeded = append(seeded, this) // this week's so far
						}
						for _, w := range seeded {
							o := w.Overall
							if o.Accuracy.Reviewed == 0 || o.Accuracy.Rate == nil {
								t.Errorf("%s: classification accuracy empty: %+v", w.Week, o.Accuracy)
							}
							if o.ResponseTime.Responded == 0 || o.ResponseTime.MedianSeconds == nil || o.ResponseTime.P90Seconds == nil {
								t.Errorf("%s: response time empty: %+v", w.Week, o.ResponseTime)
							}
							if o.TruePositive.Useful == 0 || o.TruePositive.Noise == 0 || o.TruePositive.Fired == 0 || o.TruePositive.Rate == nil {
								t.Errorf("%s: alert true-positive rate empty: %+v", w.Week, o.TruePositive)
							}
							if o.Conversion.Converted == 0 || o.Conversion.Conversations == 0 || o.Conversion.ValueRate == nil {
								t.Errorf("%s: priority conversion empty: %+v", w.Week, o.Conversion)
							}
						}
					})
					if at.name == "thursday" {
						t.Run("settled", func(t *testing.T) {
							now := at.now
							if !strings.Contains(out, "and this one so far") {
								t.Errorf("seeding output:\n%s", out)
							}
							var latest time.Time
							err := st.TrainingRows(context.Background(), now.AddDate(0, 0, -35), now.AddDate(1, 0, 0), func(r feedback.TrainingRow) error {
								if r.At.After(latest) {
									latest = r.At
								}
								return nil
							})
							if err != nil {
								t.Fatal(err)
							}
							if latest.IsZero() || !latest.Before(now) || now.Sub(latest) > 12*time.Hour {
								t.Errorf("the newest past conversation is at %v, want within the hours before %v", latest, now)
							}
						})
					}
					t.Run("tune", func(t *testing.T) {
						seeded, err := st.LatestReport(context.Background())
						if err != nil || !seeded.Promoted || seeded.CandidateModel != 1 {
							t.Fatalf("the demo's own run: %+v, %v\n%s", seeded, err, out)
						}

						// The tuning job with the flags' defaults, a minute later.
						var tf tuneFlags
						tf.register(flag.NewFlagSet("tune", flag.ContinueOnError))
						res, err := tf.tuner(st, nil, slog.New(slog.DiscardHandler)).RunNow(context.Background(),
							feedback.TuneRequest{Trigger: feedback.TriggerCLI, AsOf: at.now.Add(time.Minute)})
						if err != nil {
							t.Fatal(err)
						}
						rep := res.Report
						if !rep.Judged() || rep.Live == nil || rep.Candidate == nil {
							t.Fatalf("not judged: %+v", rep.Evidence)
						}
						ev := rep.Evidence
						t.Logf("holdout %d (%d positive), ROC-AUC %.3f live, %.3f candidate; default thresholds %+v",
							rep.Data.Holdout, ev.HoldoutPositives, rep.Live.ROCAUC, rep.Candidate.ROCAUC, rep.Thresholds[0].Proposal.Thresholds)
						if len(rep.Thresholds) == 0 {
							t.Fatal("no thresholds proposed")
						}
						if rep.Data.Holdout < 500 || ev.HoldoutPositives < 5*model.MinHoldoutPositives || ev.HoldoutNegatives < 5*model.MinHoldoutNegatives {
							t.Errorf("holdout of %d (%d positive, %d negative), want at least 500 and five times the minimums",
								rep.Data.Holdout, ev.HoldoutPositives, ev.HoldoutNegatives)
						}
						for name, m := range map[string]*model.ModelEval{"live": rep.Live, "candidate": rep.Candidate} {
							if m.ROCAUC < 0.7 || m.ROCAUC > 0.95 || m.PRAUC < 0.5 || m.PRAUC > 0.95 {
								t.Errorf("%s: ROC-AUC %.3f, PR-AUC %.3f, want a model's, not chance or perfection", name, m.ROCAUC, m.PRAUC)
							}
						}
						for _, tr := range rep.Thresholds {
							th := tr.Proposal.Thresholds
							if !(th.Urgent > th.High && th.High > th.Medium) {
								t.Errorf("%s: thresholds %+v, want urgent > high > medium", tr.Channel, th)
							}
							for _, tp := range tr.Proposal.Tiers {
								if tp.Met && tp.Labelled < model.MinTierLabelled {
									t.Errorf("%s %s: met on %d labelled conversations", tr.Channel, tp.Tier, tp.Labelled)
								}
							}
						}
						if rep.Recall.AmongLabelled == nil {
							t.Error("no recall among labelled conversations")
						}
					})
				})
			}
		})
	}
}
