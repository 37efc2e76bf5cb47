package jobs_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

// The report carries the candidate's contribution curves of its most
// important signals, stored with it, and they are what the candidate's
// reasons say at the same values.
func TestTuneReportCarriesContributionCurves(t *testing.T) {
	ctx := context.Background()
	s := openTuneStore(t, "sqlite")
	seedHistory(t, s, 1500, 7)
	res, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if n := len(rep.Contributions); n == 0 || n > feedback.ReportContributions {
		t.Fatalf("%d contribution curves, want 1 to %d", n, feedback.ReportContributions)
	}
	by := map[string]model.ContribCurve{}
	for i, c := range rep.Contributions {
		by[c.Signal] = c
		if i > 0 && c.Spread > rep.Contributions[i-1].Spread {
			t.Errorf("curve %d (%s) spreads more than the one before it", i, c.Signal)
		}
	}
	plan, deal := by["plan"], by["deal_size"]
	if plan.Kind != model.ContribCategory || len(plan.Bars) < 3 {
		t.Fatalf("plan = %+v, want a bar per plan", plan)
	}
	bars := map[string]float64{}
	for _, b := range plan.Bars {
		bars[b.Category] = b.Contribution
		if !b.Other && (b.Share == nil || *b.Share <= 0) {
			t.Errorf("plan %q has share %v", b.Category, b.Share)
		}
	}
	// The history converts pro plans more: the candidate learns it.
	if !(bars["pro"] > bars["free"]+0.5 && bars["pro"] > bars["team"]+0.5) {
		t.Errorf("plan bars = %v, want pro well above free and team", bars)
	}
	if deal.Kind != model.ContribNumber || len(deal.Grid) < 10 {
		t.Fatalf("deal_size = %+v, want a grid", deal)
	}

	// Stored with the report, as the API serves it.
	sr, err := s.Report(ctx, rep.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored feedback.Report
	if err := json.Unmarshal(sr.Body, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Contributions) != len(rep.Contributions) || stored.Contributions[0].Signal != rep.Contributions[0].Signal {
		t.Errorf("stored report has %d curves, want %d", len(stored.Contributions), len(rep.Contributions))
	}

	// A decision of the candidate gives, per signal, the curve's value.
	mv, err := s.Model(ctx, rep.CandidateModelVersion)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ParseModel(mv.Body)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := model.CompilePolicy(model.PolicyDoc{Thresholds: map[string]model.Thresholds{"default": {Urgent: 0.9, High: 0.7, Medium: 0.4}}})
	if err != nil {
		t.Fatal(err)
	}
	scorer := model.NewScorer(pol, m)
	p := deal.Grid[len(deal.Grid)/2]
	d := scorer.Score(model.Input{Channel: "web", Signals: map[string]any{"deal_size": p.Value, "plan": "pro"}})
	got := map[string]float64{}
	for _, r := range d.Reasons {
		got[r.Name] = r.Contribution
	}
	if math.Abs(got["deal_size"]-p.Contribution) > 1e-9 || math.Abs(got["plan"]-bars["pro"]) > 1e-9 {
		t.Errorf("reasons = %v, want deal_size %v and plan %v as the curves say", got, p.Contribution, bars["pro"])
	}
}
