package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }

func TestROCAUC(t *testing.T) {
	tests := []struct {
		name                   string
		scores, labels, weight []float64
		want                   float64
	}{
		{"perfect", []float64{0.9, 0.1}, []float64{1, 0}, nil, 1},
		{"reversed", []float64{0.1, 0.9}, []float64{1, 0}, nil, 0},
		// Pairs: 1 + 1 + 0.5 (the tie at 0.8) + 1 out of 4.
		{"tie", []float64{0.9, 0.8, 0.8, 0.3}, []float64{1, 1, 0, 0}, nil, 3.5 / 4},
		// The tied positive weighs 2: (1 + 1 + 2*0.5 + 2*1) / (3*2).
		{"weighted tie", []float64{0.9, 0.8, 0.8, 0.3}, []float64{1, 1, 0, 0}, []float64{1, 2, 1, 1}, 5.0 / 6},
		{"zero weight ignored", []float64{0.9, 0.1, 0.95}, []float64{1, 0, 0}, []float64{1, 1, 0}, 1},
		{"all tied", []float64{0.5, 0.5, 0.5}, []float64{1, 0, 1}, nil, 0.5},
		{"one class", []float64{0.2, 0.7}, []float64{1, 1}, nil, 0.5},
		{"empty", nil, nil, nil, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ROCAUC(tt.scores, tt.labels, tt.weight); !near(got, tt.want) {
				t.Errorf("ROCAUC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPRAUC(t *testing.T) {
	tests := []struct {
		name                   string
		scores, labels, weight []float64
		want                   float64
	}{
		{"perfect", []float64{0.9, 0.8, 0.1}, []float64{1, 1, 0}, nil, 1},
		// 0.9: P 1, recall +1/2; 0.8 (a tie): P 2/3, recall +1/2.
		{"tie", []float64{0.9, 0.8, 0.8, 0.3}, []float64{1, 1, 0, 0}, nil, 0.5 + 1.0/3},
		// 0.7: P 1/2, +1/2; 0.3: P 2/4, +1/2.
		{"interleaved", []float64{0.9, 0.7, 0.5, 0.3}, []float64{0, 1, 0, 1}, nil, 0.5},
		// 0.9: P 1, recall +1/3; 0.8: P 3/4, recall +2/3.
		{"weighted", []float64{0.9, 0.8, 0.8, 0.3}, []float64{1, 1, 0, 0}, []float64{1, 2, 1, 1}, 1.0/3 + 0.75*2/3},
		{"no positives", []float64{0.9, 0.1}, []float64{0, 0}, nil, 0},
		{"only positives", []float64{0.9, 0.1}, []float64{1, 1}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PRAUC(tt.scores, tt.labels, tt.weight); !near(got, tt.want) {
				t.Errorf("PRAUC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLogLossAndBrier(t *testing.T) {
	s, y := []float64{0.8, 0.4}, []float64{1, 0}
	if got, want := LogLoss(s, y, nil), -(math.Log(0.8)+math.Log(0.6))/2; !near(got, want) {
		t.Errorf("LogLoss = %v, want %v", got, want)
	}
	if got, want := LogLoss(s, y, []float64{3, 1}), -(3*math.Log(0.8)+math.Log(0.6))/4; !near(got, want) {
		t.Errorf("weighted LogLoss = %v, want %v", got, want)
	}
	if got, want := LogLoss([]float64{0}, []float64{1}, nil), -math.Log(1e-15); !near(got, want) {
		t.Errorf("clamped LogLoss = %v, want %v", got, want)
	}
	if got := LogLoss(nil, nil, nil); got != 0 {
		t.Errorf("empty LogLoss = %v, want 0", got)
	}
	if got := Brier(s, y, nil); !near(got, 0.1) {
		t.Errorf("Brier = %v, want 0.1", got)
	}
	if got, want := Brier(s, y, []float64{3, 1}), (3*0.04+0.16)/4; !near(got, want) {
		t.Errorf("weighted Brier = %v, want %v", got, want)
	}
}

func TestCalibration(t *testing.T) {
	bins, ece := Calibration([]float64{0.1, 0.2, 0.6, 1.0}, []float64{0, 1, 1, 1}, nil, 2)
	if len(bins) != 2 {
		t.Fatalf("%d bins, want 2", len(bins))
	}
	b0, b1 := bins[0], bins[1]
	if b0.Count != 2 || !near(b0.MeanPredicted, 0.15) || !near(b0.ObservedRate, 0.5) || b0.Lo != 0 || b0.Hi != 0.5 {
		t.Errorf("bin 0 = %+v, want 2 rows, mean 0.15, rate 0.5", b0)
	}
	// A score of 1 belongs to the last bin.
	if b1.Count != 2 || !near(b1.MeanPredicted, 0.8) || !near(b1.ObservedRate, 1) {
		t.Errorf("bin 1 = %+v, want 2 rows, mean 0.8, rate 1", b1)
	}
	if want := 0.5*0.35 + 0.5*0.2; !near(ece, want) {
		t.Errorf("ECE = %v, want %v", ece, want)
	}
	// Weights: the row at 0.2 (a positive) weighs 3.
	bins, _ = Calibration([]float64{0.1, 0.2}, []float64{0, 1}, []float64{1, 3}, 10)
	if len(bins) != 10 || bins[1].Weight != 1 || bins[2].Weight != 3 || bins[2].ObservedRate != 1 || bins[5].Count != 0 {
		t.Errorf("weighted bins = %+v", bins)
	}
}

func TestPrecisionRecallAt(t *testing.T) {
	s, y := []float64{0.9, 0.8, 0.8, 0.3}, []float64{1, 1, 0, 0}
	p, r, v := PrecisionRecallAt(s, y, nil, 0.8)
	if !near(p, 2.0/3) || r != 1 || v != 3 {
		t.Errorf("at 0.8: %v, %v, %v; want 2/3, 1, 3", p, r, v)
	}
	p, r, v = PrecisionRecallAt(s, y, []float64{1, 2, 1, 1}, 0.85)
	if p != 1 || !near(r, 1.0/3) || v != 1 {
		t.Errorf("weighted at 0.85: %v, %v, %v; want 1, 1/3, 1", p, r, v)
	}
	p, r, v = PrecisionRecallAt(s, y, nil, 0.95)
	if p != 0 || r != 0 || v != 0 {
		t.Errorf("above every score: %v, %v, %v; want 0, 0, 0", p, r, v)
	}
}

func TestEvaluateJSON(t *testing.T) {
	m := Evaluate([]float64{0.9, 0.8, 0.8, 0.3}, []float64{1, 1, 0, 0}, nil, 4)
	if m.Rows != 4 || m.Positives != 2 || !near(m.ROCAUC, 0.875) || len(m.Calibration) != 4 {
		t.Errorf("Evaluate = %+v", m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"roc_auc"`, `"pr_auc"`, `"log_loss"`, `"brier"`, `"ece"`, `"rows"`, `"positives"`, `"calibration"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	// One class: every metric is a number, none NaN.
	m = Evaluate([]float64{0.2, 0.4}, []float64{0, 0}, nil, 0)
	for name, v := range map[string]float64{"roc": m.ROCAUC, "pr": m.PRAUC, "logloss": m.LogLoss, "brier": m.Brier, "ece": m.ECE} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("one class: %s = %v", name, v)
		}
	}
}

func TestPRCurve(t *testing.T) {
	scores := []float64{0.9, 0.8, 0.8, 0.3}
	labels := []float64{1, 0, 1, 0}
	got := fmt.Sprint(PRCurve(scores, labels, nil, 0))
	if want := "[{0.9 1 0.5} {0.8 0.6666666666666666 1} {0.3 0.5 1}]"; got != want {
		t.Errorf("PRCurve = %s; want %s", got, want)
	}
	if got := fmt.Sprint(PRCurve(scores, labels, nil, 2)); got != "[{0.9 1 0.5} {0.3 0.5 1}]" {
		t.Errorf("thinned to 2 = %s", got)
	}
	// Weights count: the noise row at 0.8 weighs 3.
	if got := fmt.Sprint(PRCurve(scores, labels, []float64{1, 3, 1, 1}, 0)[1]); got != "{0.8 0.4 1}" {
		t.Errorf("weighted = %s", got)
	}
	if PRCurve(scores, []float64{0, 0, 0, 0}, nil, 0) != nil {
		t.Error("a curve without positives")
	}
}
