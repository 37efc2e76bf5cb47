package model

import (
	"strings"
	"testing"
)

// TestDecidePromotion covers the promotion policy: only a candidate that
// beats the live model's holdout PR-AUC, without calibration worse by more
// than CalibrationSlack, is promoted automatically.
func TestDecidePromotion(t *testing.T) {
	eval := func(prauc, ece float64) *ModelEval {
		return &ModelEval{Metrics: Metrics{PRAUC: prauc, ECE: ece}, WeightedPositives: 10, WeightTotal: 100}
	}
	oneClass := &ModelEval{Metrics: Metrics{PRAUC: 0.9}, WeightedPositives: 0, WeightTotal: 100}
	tests := []struct {
		name       string
		policy     string
		live, cand *ModelEval
		promote    bool
		reason     string
	}{
		{"better and as calibrated", PromoteAuto, eval(0.5, 0.05), eval(0.6, 0.05), true, "beats"},
		{"better, calibration worse within the slack", PromoteAuto, eval(0.5, 0.05), eval(0.6, 0.05+CalibrationSlack/2), true, "within"},
		{"better but calibration worse", PromoteAuto, eval(0.5, 0.05), eval(0.6, 0.05+2*CalibrationSlack), false, "calibration is worse"},
		{"a tie is not a win", PromoteAuto, eval(0.5, 0.05), eval(0.5, 0.01), false, "does not beat"},
		{"worse", PromoteAuto, eval(0.6, 0.05), eval(0.5, 0.01), false, "does not beat"},
		{"manual waits however good", PromoteManual, eval(0.1, 0.3), eval(0.9, 0.01), false, "manual"},
		{"no holdout", PromoteAuto, nil, nil, false, "no labelled conversations"},
		{"one-class holdout", PromoteAuto, oneClass, oneClass, false, "one class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := DecidePromotion(tt.policy, tt.live, tt.cand, 3, PromotionGuard{})
			if got != tt.promote || !strings.Contains(reason, tt.reason) {
				t.Errorf("DecidePromotion = %v %q, want %v and a reason with %q", got, reason, tt.promote, tt.reason)
			}
		})
	}
}

// The guard of automatic promotion: a margin of PR-AUC and a holdout big
// enough to judge by.
func TestDecidePromotionGuard(t *testing.T) {
	eval := func(prauc float64, rows, pos int) *ModelEval {
		return &ModelEval{Metrics: Metrics{PRAUC: prauc, ECE: 0.05, Rows: rows, Positives: pos}, WeightedPositives: float64(pos), WeightTotal: float64(rows)}
	}
	g := PromotionGuard{Margin: 0.005, MinRows: 200, MinPositives: 20}
	for _, tt := range []struct {
		name       string
		live, cand *ModelEval
		promote    bool
		reason     string
	}{
		{"clear gain on a big holdout", eval(0.60, 500, 100), eval(0.62, 500, 100), true, "beats"},
		{"gain below the margin", eval(0.600, 500, 100), eval(0.603, 500, 100), false, "less than the margin"},
		{"too few conversations", eval(0.60, 150, 40), eval(0.70, 150, 40), false, "too small to judge"},
		{"too few positives", eval(0.60, 500, 10), eval(0.70, 500, 10), false, "too small to judge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := DecidePromotion(PromoteAuto, tt.live, tt.cand, 1, g)
			if got != tt.promote || !strings.Contains(reason, tt.reason) {
				t.Errorf("DecidePromotion = %v %q, want %v and %q", got, reason, tt.promote, tt.reason)
			}
		})
	}
	// The zero guard asks nothing more.
	if got, _ := DecidePromotion(PromoteAuto, eval(0.600, 10, 2), eval(0.601, 10, 2), 1, PromotionGuard{}); !got {
		t.Error("the zero guard held back a better candidate")
	}
}
