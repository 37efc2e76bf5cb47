package model

import (
	"math"
	"reflect"
	"testing"
)

// encoderRows are 20 hand-built rows covering every kind of signal.
func encoderRows() []map[string]any {
	deal := []float64{0, 0, 0, 1, 1, 2, 2, 3, 5, 8, 10, 20, 50, 100, 300, 1000, 3000, 10000, 50000, 200000}
	plans := []any{"pro", "pro", "pro", "pro", "pro", "pro", "pro", "pro", "free", "free", "free", "free", "free", "free", "team", "team", "team", nil, nil, nil}
	rows := make([]map[string]any, 20)
	for i := range rows {
		r := map[string]any{
			"deal_size":  deal[i],
			"score":      float64(i) - 9.5,
			"returning":  i%2 == 0,
			"const":      5.0,
			"never":      nil,
			"flag_const": true,
		}
		if plans[i] != nil {
			r["plan"] = plans[i]
		}
		rows[i] = r
	}
	return rows
}

func featureNames(e Encoder) []string {
	var out []string
	for _, f := range e.Features {
		out = append(out, f.Name)
	}
	return out
}

func TestFitEncoderLayout(t *testing.T) {
	enc := FitEncoder(encoderRows(), EncoderOptions{})
	want := []string{"deal_size", "plan=pro", "plan=free", "plan=other", "plan:missing", "returning", "score"}
	if got := featureNames(enc); !reflect.DeepEqual(got, want) {
		t.Fatalf("features = %v, want %v", got, want)
	}
	kinds := map[string]string{"deal_size": KindLog, "plan=pro": KindCategory, "plan=other": KindOther, "plan:missing": KindMissing, "returning": KindBool, "score": KindNumber}
	for _, f := range enc.Features {
		if k, ok := kinds[f.Name]; ok && f.Kind != k {
			t.Errorf("%s: kind %q, want %q", f.Name, f.Kind, k)
		}
	}
	score := enc.Features[6]
	// Median of -9.5..9.5 is 0; the quartiles are -4.75 and 4.75; the
	// clip bounds are the 0.5/99.5 percentiles, +-(9.5 - 0.095).
	if score.Center != 0 || math.Abs(score.Scale-9.5/1.349) > 1e-12 {
		t.Errorf("score center, scale = %v, %v; want 0, %v", score.Center, score.Scale, 9.5/1.349)
	}
	if math.Abs(score.Min+9.405) > 1e-12 || math.Abs(score.Max-9.405) > 1e-12 {
		t.Errorf("score clip = [%v, %v], want [-9.405, 9.405]", score.Min, score.Max)
	}
	deal := enc.Features[0]
	if deal.Max > math.Log1p(200000)+1e-12 || deal.Min < 0 || !(deal.Scale > 0) {
		t.Errorf("deal_size = %+v, want log-space bounds and a positive scale", deal)
	}
}

func TestFitEncoderMinCountAndCap(t *testing.T) {
	rows := encoderRows()
	enc := FitEncoder(rows, EncoderOptions{MinCount: 3})
	want := []string{"deal_size", "plan=pro", "plan=free", "plan=team", "plan=other", "plan:missing", "returning", "score"}
	if got := featureNames(enc); !reflect.DeepEqual(got, want) {
		t.Errorf("MinCount 3: features = %v, want %v", got, want)
	}
	enc = FitEncoder(rows, EncoderOptions{MinCount: 3, MaxCategories: 1})
	want = []string{"deal_size", "plan=pro", "plan=other", "plan:missing", "returning", "score"}
	if got := featureNames(enc); !reflect.DeepEqual(got, want) {
		t.Errorf("MaxCategories 1: features = %v, want %v", got, want)
	}
}

func TestFitEncoderScaleNeverZero(t *testing.T) {
	// 90% zeros: the IQR is 0, so the scale falls back to the std.
	var rows []map[string]any
	for i := range 100 {
		x := 0.0
		if i >= 90 {
			x = -1 // negative: no log transform
		}
		rows = append(rows, map[string]any{"x": x})
	}
	enc := FitEncoder(rows, EncoderOptions{})
	if len(enc.Features) != 1 {
		t.Fatalf("features = %v, want one", featureNames(enc))
	}
	f := enc.Features[0]
	if f.Kind != KindNumber || !(f.Scale > 0) {
		t.Errorf("x = %+v, want a number feature with a positive scale", f)
	}
	if want := math.Sqrt(0.09); math.Abs(f.Scale-want) > 1e-12 {
		t.Errorf("scale = %v, want the std %v", f.Scale, want)
	}
}

func TestFitEncoderMajorityType(t *testing.T) {
	rows := []map[string]any{
		{"v": 1.0}, {"v": 2.0}, {"v": 3.0}, {"v": "n/a"},
	}
	enc := FitEncoder(rows, EncoderOptions{})
	if len(enc.Features) != 1 || enc.Features[0].Kind != KindNumber {
		t.Errorf("features = %+v, want one number feature", enc.Features)
	}
}

func TestFitEncoderOtherNameClash(t *testing.T) {
	var rows []map[string]any
	for i := range 20 {
		v := "other"
		if i%2 == 0 {
			v = "pro"
		}
		rows = append(rows, map[string]any{"plan": v})
	}
	enc := FitEncoder(rows, EncoderOptions{})
	want := []string{"plan=other", "plan=pro", "plan=other#2"}
	if got := featureNames(enc); !reflect.DeepEqual(got, want) {
		t.Errorf("features = %v, want %v", got, want)
	}
}

func TestFitEncoderRoundTripAndDeterminism(t *testing.T) {
	enc := FitEncoder(encoderRows(), EncoderOptions{})
	if again := FitEncoder(encoderRows(), EncoderOptions{}); !reflect.DeepEqual(enc, again) {
		t.Fatal("FitEncoder is not deterministic")
	}
	m := &Model{Intercept: -1, Encoder: enc, Beta: make([]float64, len(enc.Features))}
	for i := range m.Beta {
		m.Beta[i] = float64(i) / 10
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseModel(data)
	if err != nil {
		t.Fatalf("ParseModel: %v\n%s", err, data)
	}
	for _, r := range encoderRows() {
		a := enc.Encode(r, nil)
		b := back.Encoder.Encode(r, nil)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("encoding after round trip %v, want %v", b, a)
		}
	}
}

func TestFitEncoderEncodesTrainingRows(t *testing.T) {
	enc := FitEncoder(encoderRows(), EncoderOptions{})
	// Row 14: deal_size 300, plan "team" (rare: other), returning, score 4.5.
	got := enc.Encode(encoderRows()[14], nil)
	if got[1] != 0 || got[2] != 0 || got[3] != 1 || got[4] != 0 || got[5] != 1 {
		t.Errorf("plan and returning features = %v, want [0 0 1 0 1]", got[1:6])
	}
	// Row 19: plan missing.
	got = enc.Encode(encoderRows()[19], nil)
	if got[3] != 0 || got[4] != 1 {
		t.Errorf("missing plan: other, missing = %v, %v; want 0, 1", got[3], got[4])
	}
}
