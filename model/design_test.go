package model

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
)

const designPolicy = `
base: -2
rules:
  - {name: big, expression: "deal_size >= 1000", points: 1.5}
  - {name: pro, expression: 'plan == "pro"', points: 0.5}
  - {name: late, expression: "wait_seconds > 60", points: -1}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`

func compileDesignPolicy(t *testing.T) *Policy {
	t.Helper()
	doc, err := ParsePolicy([]byte(designPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var designSignals = []map[string]any{
	{"deal_size": 5000.0, "plan": "pro", "wait_seconds": 10.0},
	{"deal_size": 20.0, "plan": "free", "wait_seconds": 120.0},
	{"deal_size": 1500.0, "plan": "team"},
	{"plan": "pro", "wait_seconds": 90.0},
	{"deal_size": 0.0, "plan": "free", "wait_seconds": 0.0},
	{"deal_size": 300.0, "plan": "pro", "wait_seconds": 30.0},
}

func TestDesignDataset(t *testing.T) {
	enc := Encoder{Features: []Feature{{Name: "deal_size", Signal: "deal_size", Kind: KindNumber, Center: 100, Scale: 100}}}
	d := Design{Rules: []string{"big", "pro"}, Encoder: enc}
	ds := d.Dataset([]Example{
		{Signals: map[string]any{"deal_size": 300.0}, Hits: []string{"pro", "unknown"}, Label: true},
		{Signals: map[string]any{}, Hits: []string{"big"}, Weight: 2},
	})
	if ds.P != 3 {
		t.Fatalf("P = %d, want 3", ds.P)
	}
	if want := []float64{0, 1, 2, 1, 0, 0}; !reflect.DeepEqual(ds.X, want) {
		t.Errorf("X = %v, want %v", ds.X, want)
	}
	if want := []float64{1, 0}; !reflect.DeepEqual(ds.Y, want) {
		t.Errorf("Y = %v, want %v", ds.Y, want)
	}
	if want := []float64{1, 2}; !reflect.DeepEqual(ds.W, want) {
		t.Errorf("W = %v, want %v", ds.W, want)
	}
	unweighted := d.Dataset([]Example{{Hits: []string{"big"}}})
	if unweighted.W != nil {
		t.Errorf("W = %v, want nil when every weight is 0 or 1", unweighted.W)
	}

	m := d.Model(Fit{Intercept: -1, Coef: []float64{0.5, -0.25, 2}})
	if m.Intercept != -1 || !reflect.DeepEqual(m.RuleWeights, map[string]float64{"big": 0.5, "pro": -0.25}) || !reflect.DeepEqual(m.Beta, []float64{2}) {
		t.Errorf("Model = %+v", m)
	}
	if _, err := m.Marshal(); err != nil {
		t.Errorf("Marshal: %v", err)
	}
}

// TestPredictLogitMatchesScorer checks the holdout arithmetic against the
// live scoring path, with and without a model.
func TestPredictLogitMatchesScorer(t *testing.T) {
	pol := compileDesignPolicy(t)
	enc := FitEncoder(designSignals, EncoderOptions{MinCount: 2})
	m := &Model{
		Intercept: -0.7,
		// "late" has no tuned weight: its points apply.
		RuleWeights: map[string]float64{"big": 2, "pro": -0.3},
		Encoder:     enc,
		Beta:        make([]float64, len(enc.Features)),
	}
	for j := range m.Beta {
		m.Beta[j] = 0.1 * float64(j+1) * math.Pow(-1, float64(j))
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if m, err = ParseModel(data); err != nil {
		t.Fatal(err)
	}
	for name, mm := range map[string]*Model{"rules only": nil, "model": m} {
		s := NewScorer(pol, mm)
		for i, sig := range designSignals {
			d := s.Score(Input{Channel: "web", Signals: sig})
			got := PredictLogit(pol, mm, d.Hits, "web", sig)
			if math.Abs(got-d.Logit) > 1e-12 {
				t.Errorf("%s, row %d: PredictLogit = %v, Scorer logit = %v (hits %v)", name, i, got, d.Logit, d.Hits)
			}
			if p := PredictProb(pol, mm, d.Hits, "web", sig); math.Abs(p-d.Score) > 1e-12 {
				t.Errorf("%s, row %d: PredictProb = %v, Scorer score = %v", name, i, p, d.Score)
			}
		}
	}
	if got := PredictLogit(pol, nil, []string{"big", "late"}, "", nil); got != -2+1.5-1 {
		t.Errorf("rules-only logit = %v, want %v", got, -2+1.5-1)
	}
}

// TestDesignTrainPredict fits a model through the design and checks its
// predictions equal the fit's on the training rows.
func TestDesignTrainPredict(t *testing.T) {
	pol := compileDesignPolicy(t)
	s := NewScorer(pol, nil)
	var examples []Example
	for i := range 60 {
		sig := designSignals[i%len(designSignals)]
		d := s.Score(Input{Channel: "web", Signals: sig})
		examples = append(examples, Example{Signals: sig, Hits: d.Hits, Label: i%3 == 0 || i%len(designSignals) == 0})
	}
	var rows []map[string]any
	for _, ex := range examples {
		rows = append(rows, ex.Signals)
	}
	d := Design{Rules: []string{"big", "pro", "late"}, Encoder: FitEncoder(rows, EncoderOptions{})}
	ds := d.Dataset(examples)
	fit, err := Newton{}.Train(context.Background(), ds, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := d.Model(fit)
	for i, ex := range examples {
		if got, want := PredictLogit(pol, m, ex.Hits, ex.Channel, ex.Signals), fit.Logit(ds.Row(i)); math.Abs(got-want) > 1e-9 {
			t.Fatalf("row %d: PredictLogit = %v, fit logit = %v", i, got, want)
		}
	}
}

func TestDesignAppendMatchesDataset(t *testing.T) {
	d := &Design{Rules: []string{"a", "b"}, Encoder: Encoder{Features: []Feature{
		{Name: "x", Signal: "x", Kind: KindNumber, Scale: 2},
		{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"},
	}}}
	examples := []Example{
		{Signals: map[string]any{"x": 4.0, "plan": "pro"}, Hits: []string{"b"}, Label: true},
		{Signals: map[string]any{"x": 1.0}, Hits: []string{"a", "zz"}},
		{Signals: map[string]any{"plan": "free"}, Weight: 3, Label: true},
	}
	want := d.Dataset(examples)
	got := &Dataset{P: d.Width()}
	for _, ex := range examples {
		d.Append(got, ex)
	}
	if !slices.Equal(got.X, want.X) || !slices.Equal(got.Y, want.Y) || !slices.Equal(got.W, want.W) {
		t.Fatalf("Append gave X %v Y %v W %v, Dataset X %v Y %v W %v", got.X, got.Y, got.W, want.X, want.Y, want.W)
	}
	// Unweighted examples leave W nil.
	plain := &Dataset{P: d.Width()}
	d.Append(plain, examples[0])
	if plain.W != nil {
		t.Errorf("W = %v for an unweighted example", plain.W)
	}
}
