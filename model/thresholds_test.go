package model

import (
	"math"
	"testing"
)

// Ten rows, best first. Precision at or above each score:
// 0.95: 1/1, 0.9: 2/2, 0.85: 3/3, 0.8: 3/4, 0.7: 4/5, 0.6: 5/6,
// 0.5: 5/7, 0.4: 5/8, 0.3: 6/9, 0.2: 6/10.
var (
	tuneScores = []float64{0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2}
	tuneLabels = []float64{1, 1, 1, 0, 1, 1, 0, 0, 1, 0}
)

func checkTier(t *testing.T, got TierProposal, threshold, precision, recall, volume float64, met bool) {
	t.Helper()
	if got.Threshold != threshold || !near(got.Precision, precision) || !near(got.Recall, recall) || got.Volume != volume || got.Met != met {
		t.Errorf("%v = %+v, want threshold %v precision %v recall %v volume %v met %v", got.Tier, got, threshold, precision, recall, volume, met)
	}
}

func TestProposeThresholdsDefaults(t *testing.T) {
	p := ProposeThresholds(tuneScores, tuneLabels, nil, ThresholdOptions{})
	checkTier(t, p.Tiers[0], 0.85, 1, 0.5, 3, true)
	checkTier(t, p.Tiers[1], 0.6, 5.0/6, 5.0/6, 6, true)
	checkTier(t, p.Tiers[2], 0.2, 0.6, 1, 10, true)
	if want := (Thresholds{Urgent: 0.85, High: 0.6, Medium: 0.2}); p.Thresholds != want {
		t.Errorf("thresholds = %+v, want %+v", p.Thresholds, want)
	}
}

func TestProposeThresholdsBudget(t *testing.T) {
	// At most 4 alerts from high up: 0.6 (6 rows) is out, 0.8 (4 rows,
	// precision 3/4) is the lowest that fits. Medium does not alert.
	p := ProposeThresholds(tuneScores, tuneLabels, nil, ThresholdOptions{Budget: 4})
	checkTier(t, p.Tiers[1], 0.8, 0.75, 0.5, 4, true)
	checkTier(t, p.Tiers[2], 0.2, 0.6, 1, 10, true)
	// With medium alerting too, medium is held to the budget: 0.8.
	p = ProposeThresholds(tuneScores, tuneLabels, nil, ThresholdOptions{Budget: 4, AlertTier: TierMedium})
	checkTier(t, p.Tiers[2], 0.8, 0.75, 0.5, 4, true)
	// Weights count in the budget: the top row weighs 5.
	w := []float64{5, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	p = ProposeThresholds(tuneScores, tuneLabels, w, ThresholdOptions{Budget: 4})
	if p.Tiers[0].Met || p.Tiers[0].Volume != 0 || p.Tiers[0].Threshold <= 0.95 {
		t.Errorf("urgent = %+v, want unmet with a threshold above every score", p.Tiers[0])
	}
}

func TestProposeThresholdsUnmet(t *testing.T) {
	// Precision: 0.9: 0, 0.8: 1/2, 0.7: 2/3, 0.6: 2/4.
	s, y := []float64{0.9, 0.8, 0.7, 0.6}, []float64{0, 1, 1, 0}
	p := ProposeThresholds(s, y, nil, ThresholdOptions{})
	checkTier(t, p.Tiers[0], 0.7, 2.0/3, 1, 3, false)
	checkTier(t, p.Tiers[1], 0.7, 2.0/3, 1, 3, false)
	checkTier(t, p.Tiers[2], 0.6, 0.5, 1, 4, true)
	if p.Tiers[0].Note == "" || p.Tiers[2].Note != "" {
		t.Errorf("notes = %q, %q; want one for the unmet tier only", p.Tiers[0].Note, p.Tiers[2].Note)
	}
	cur := Thresholds{Urgent: 0.95, High: 0.75, Medium: 0.3}
	p = ProposeThresholds(s, y, nil, ThresholdOptions{Current: &cur})
	checkTier(t, p.Tiers[0], 0.95, 0, 0, 0, false)
	checkTier(t, p.Tiers[1], 0.75, 0.5, 0.5, 2, false)
	checkTier(t, p.Tiers[2], 0.6, 0.5, 1, 4, true)
}

func TestProposeThresholdsOrdered(t *testing.T) {
	// High asks more than urgent: its threshold is lowered to urgent's.
	p := ProposeThresholds(tuneScores, tuneLabels, nil, ThresholdOptions{Targets: TargetPrecision{Urgent: 0.6, High: 0.9, Medium: 0.8}})
	th := p.Thresholds
	if !(th.Urgent >= th.High && th.High >= th.Medium) {
		t.Errorf("thresholds %+v are not ordered", th)
	}
	if th.Urgent != 0.2 || th.High != 0.2 || p.Tiers[1].Met {
		t.Errorf("proposal = %+v, want urgent 0.2, high lowered to 0.2 and unmet", p)
	}
}

func TestProposeChannelThresholds(t *testing.T) {
	ch := []string{"web", "web", "web", "whatsapp", "web", "web", "whatsapp", "whatsapp", "web", "whatsapp"}
	got := ProposeChannelThresholds(ch, tuneScores, tuneLabels, nil, ThresholdOptions{})
	if len(got) != 3 {
		t.Fatalf("channels = %v, want default, web, whatsapp", got)
	}
	// web holds only positives: its urgent threshold is its lowest score.
	if got["web"].Thresholds.Urgent != 0.3 {
		t.Errorf("web urgent = %v, want 0.3", got["web"].Thresholds.Urgent)
	}
	// whatsapp holds only negatives: nothing meets a target.
	if w := got["whatsapp"]; w.Tiers[2].Met || math.IsNaN(w.Tiers[2].Threshold) {
		t.Errorf("whatsapp = %+v, want unmet tiers", w)
	}
	if got["default"].Thresholds != ProposeThresholds(tuneScores, tuneLabels, nil, ThresholdOptions{}).Thresholds {
		t.Error("default differs from the proposal over every row")
	}
}
