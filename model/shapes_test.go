package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// shapeModel is benchModel with hinges on every number and products of a
// few pairs: a model as FitModel makes them.
func shapeModel(signals map[string]any) *Model {
	m := benchModel(signals)
	m.Encoder.Version = EncoderVersion
	n := len(m.Encoder.Features)
	var numbers []int
	for j := range n {
		f := m.Encoder.Features[j]
		if f.Kind != KindLog && f.Kind != KindNumber {
			continue
		}
		numbers = append(numbers, j)
		for k, knot := range []float64{-1, -0.25, 0.5, 1.5} {
			h := f
			h.Kind = KindLogHinge
			if f.Kind == KindNumber {
				h.Kind = KindHinge
			}
			h.Name = fmt.Sprintf("%s:hinge%d", f.Name, k+1)
			h.Knot = knot
			m.Encoder.Features = append(m.Encoder.Features, h)
			m.Beta = append(m.Beta, 0.1*float64(k+1)-0.2)
		}
	}
	for k := range 10 {
		a, b := numbers[k%len(numbers)], (k*7+3)%n
		fa, fb := m.Encoder.Features[a], m.Encoder.Features[b]
		m.Encoder.Features = append(m.Encoder.Features, Feature{Name: fa.Name + "×" + fb.Name, Signal: fa.Signal,
			Kind: KindProduct, Of: []int{a, b}})
		m.Beta = append(m.Beta, 0.05)
	}
	return m
}

func TestEncodeShapes(t *testing.T) {
	base := Feature{Name: "x", Signal: "x", Kind: KindNumber, Center: 10, Scale: 5, Min: 0, Max: 100}
	hingeAt := func(kind string, knot float64) Feature {
		f := base
		f.Name, f.Kind, f.Knot = "x:hinge", kind, knot
		return f
	}
	tests := []struct {
		name    string
		feature Feature
		value   any
		absent  bool
		want    float64
	}{
		{name: "hinge above knot", feature: hingeAt(KindHinge, 1), value: 30.0, want: 3},
		{name: "hinge below knot", feature: hingeAt(KindHinge, 1), value: 12.0, want: 0},
		{name: "hinge below centre", feature: hingeAt(KindHinge, -1), value: 0.0, want: -1},
		{name: "hinge at centre is 0", feature: hingeAt(KindHinge, -1), value: 10.0, want: 0},
		{name: "hinge clipped", feature: hingeAt(KindHinge, 1), value: 1e9, want: 17},
		{name: "hinge missing is the centre", feature: hingeAt(KindHinge, -1), absent: true, want: 0},
		{name: "hinge NaN", feature: hingeAt(KindHinge, -1), value: math.NaN(), want: 0},
		{name: "hinge wrong type", feature: hingeAt(KindHinge, -1), value: "12", want: 0},
		{name: "log hinge", feature: Feature{Signal: "x", Kind: KindLogHinge, Scale: 1, Knot: 1}, value: math.E*math.E - 1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Encoder{Version: EncoderVersion, Features: []Feature{base, tt.feature}}
			signals := map[string]any{}
			if !tt.absent {
				signals["x"] = tt.value
			}
			got := e.Encode(signals, nil)
			if math.Abs(got[1]-tt.want) > 1e-12 {
				t.Errorf("Encode(%v) = %v, want %v", tt.value, got[1], tt.want)
			}
		})
	}
}

func TestEncodeProduct(t *testing.T) {
	e := Encoder{Version: EncoderVersion, Features: []Feature{
		{Name: "x", Signal: "x", Kind: KindNumber, Scale: 2},
		{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"},
		{Name: "x×plan=pro", Signal: "x", Kind: KindProduct, Of: []int{0, 1}},
	}}
	for _, tt := range []struct {
		signals map[string]any
		want    float64
	}{
		{map[string]any{"x": 6.0, "plan": "pro"}, 3},
		{map[string]any{"x": 6.0, "plan": "free"}, 0},
		{map[string]any{"plan": "pro"}, 0},
	} {
		if got := e.Encode(tt.signals, nil)[2]; got != tt.want {
			t.Errorf("Encode(%v) product = %v, want %v", tt.signals, got, tt.want)
		}
	}
}

// shapeRows are n rows of a skewed count with a mass at 0, a symmetric
// number, a sometimes-missing number and a category, seeded.
func shapeRows(n int, seed uint64) []map[string]any {
	rng := rand.New(rand.NewPCG(seed, 3))
	rows := make([]map[string]any, n)
	for i := range rows {
		r := map[string]any{"score": rng.NormFloat64(), "plan": []string{"free", "pro", "team"}[rng.IntN(3)]}
		if rng.IntN(3) > 0 {
			r["views"] = math.Floor(rng.ExpFloat64() * 20)
		} else {
			r["views"] = 0.0
		}
		if rng.IntN(5) > 0 {
			r["wait"] = float64(rng.IntN(600))
		}
		rows[i] = r
	}
	return rows
}

func TestFitEncoderShapes(t *testing.T) {
	rows := shapeRows(2000, 1)
	opt := EncoderOptions{Knots: DefaultKnots}
	enc := FitEncoder(rows, opt)
	if again := FitEncoder(rows, opt); !reflect.DeepEqual(enc, again) {
		t.Fatal("FitEncoder is not deterministic")
	}
	hinges := map[string][]float64{}
	for _, f := range enc.Features {
		if f.Kind == KindHinge || f.Kind == KindLogHinge {
			hinges[f.Signal] = append(hinges[f.Signal], f.Knot)
		}
	}
	for _, name := range []string{"score", "views", "wait"} {
		knots := hinges[name]
		if len(knots) == 0 || len(knots) > DefaultKnots {
			t.Errorf("%s: %d hinges, want 1 to %d", name, len(knots), DefaultKnots)
		}
		if !slices.IsSorted(knots) {
			t.Errorf("%s: knots %v not increasing", name, knots)
		}
	}
	if hinges["plan"] != nil {
		t.Errorf("a category got hinges: %v", hinges["plan"])
	}
	if got := FitEncoder(rows, EncoderOptions{}); len(got.Features) != len(enc.Features)-len(hinges["score"])-len(hinges["views"])-len(hinges["wait"]) {
		t.Errorf("Knots 0 made hinges: %v", featureNames(got))
	}

	m := &Model{Encoder: enc, Beta: make([]float64, len(enc.Features))}
	for i := range m.Beta {
		m.Beta[i] = float64(i%7) / 10
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseModel(data)
	if err != nil {
		t.Fatalf("ParseModel: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back.Encoder, enc) {
		t.Errorf("encoder after a JSON round trip differs")
	}
	for _, r := range rows[:50] {
		if a, b := enc.Encode(r, nil), back.Encoder.Encode(r, nil); !reflect.DeepEqual(a, b) {
			t.Fatalf("encoding after round trip %v, want %v", b, a)
		}
	}
}

func TestVersion1ModelStillScores(t *testing.T) {
	src := `{"intercept": -1, "rule_weights": {}, "encoder": {"version": 1, "features": [
		{"name": "deal_size", "signal": "deal_size", "kind": "log", "center": 1, "scale": 2, "min": 0, "max": 10}]},
		"beta": [0.5]}`
	m, err := ParseModel([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Encoder.Encode(map[string]any{"deal_size": math.E - 1}, nil)
	if len(got) != 1 || got[0] != 0 {
		t.Errorf("Encode = %v, want [0]", got)
	}
}

// interactionExamples draws n examples of three numbers and a category;
// with pair, the label depends on x1*x2 as well as on each alone.
func interactionExamples(n int, pair bool, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 9))
	out := make([]Example, n)
	for i := range out {
		x1, x2, x3 := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		plan := []string{"free", "pro", "team"}[rng.IntN(3)]
		z := -1 + 0.8*x1 + 0.5*x2 - 0.3*x3
		if plan == "pro" {
			z += 0.5
		}
		if pair {
			z += 1.2 * x1 * x2
		}
		out[i] = Example{Signals: map[string]any{"x1": x1, "x2": x2, "x3": x3, "plan": plan}, Label: rng.Float64() < sigmoid(z)}
	}
	return out
}

func TestFitModelInteractions(t *testing.T) {
	tests := []struct {
		name string
		pair bool
		want []string
	}{
		{name: "true interaction found", pair: true, want: []string{"x1×x2"}},
		{name: "no interaction kept", pair: false, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := interactionExamples(4000, tt.pair, 11)
			design, fit, sel, err := FitModel(context.Background(), Newton{}, nil, ExampleSlice(ex), FitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sel.Interactions, tt.want) {
				t.Errorf("interactions = %v, want %v", sel.Interactions, tt.want)
			}
			var products int
			for _, f := range design.Encoder.Features {
				if f.Kind == KindProduct {
					products++
					if !strings.HasPrefix(f.Name, "x1×x2") && !strings.HasPrefix(f.Name, "x2×x1") {
						t.Errorf("product %s is not of the pair kept", f.Name)
					}
				}
			}
			if tt.want != nil && products == 0 {
				t.Error("no product feature in the design")
			}
			if len(fit.Coef) != design.Width() {
				t.Errorf("%d coefficients for %d columns", len(fit.Coef), design.Width())
			}
		})
	}
}

func TestFitModelPenalty(t *testing.T) {
	ex := interactionExamples(3000, true, 5)
	_, fit1, sel1, err := FitModel(context.Background(), Newton{}, nil, ExampleSlice(ex), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, fit2, sel2, err := FitModel(context.Background(), Newton{}, nil, ExampleSlice(ex), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sel1.L2FromCV || !slices.Contains(L2Grid, sel1.L2) {
		t.Errorf("L2 = %v (from CV %v), want one of %v chosen by CV", sel1.L2, sel1.L2FromCV, L2Grid)
	}
	if !reflect.DeepEqual(sel1, sel2) || !reflect.DeepEqual(fit1, fit2) {
		t.Errorf("FitModel is not deterministic: %+v then %+v", sel1, sel2)
	}
	_, _, fixed, err := FitModel(context.Background(), Newton{}, nil, ExampleSlice(ex), FitOptions{L2: 7})
	if err != nil {
		t.Fatal(err)
	}
	if fixed.L2 != 7 || fixed.L2FromCV {
		t.Errorf("L2 given as 7: got %v (from CV %v)", fixed.L2, fixed.L2FromCV)
	}
}

// BenchmarkScoreModelShapes is BenchmarkScoreModel with a model of
// hinges and products as FitModel makes them (120 features).
func BenchmarkScoreModelShapes(b *testing.B) {
	in := benchInput()
	s := NewScorer(benchPolicy(b), shapeModel(in.Signals))
	if d := s.Score(in); len(d.Errors) > 0 || len(d.Hits) == 0 {
		b.Fatalf("bench decision: hits %v errors %v", d.Hits, d.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Score(in)
	}
}

func TestCompactDatasetMatchesDense(t *testing.T) {
	ex := interactionExamples(3000, true, 2)
	for i := range ex {
		if i%3 == 0 {
			ex[i].Hits = []string{"r1"}
		}
		if i%5 == 0 {
			ex[i].Weight = 2
		}
		if i%11 == 0 {
			delete(ex[i].Signals, "x2")
		}
	}
	rows := make([]map[string]any, len(ex))
	for i := range ex {
		rows[i] = ex[i].Signals
	}
	design := &Design{Rules: []string{"r1"}, Encoder: FitEncoder(rows, EncoderOptions{Knots: DefaultKnots})}
	n := len(design.Encoder.Features)
	design.Encoder.Features = append(design.Encoder.Features,
		Feature{Name: "p1", Signal: "x1", Kind: KindProduct, Of: []int{0, n - 1}},
		Feature{Name: "p2", Signal: "x1", Kind: KindProduct, Of: []int{1, n}})
	dense := design.Dataset(ex)
	compact := design.compactDataset(ExampleSlice(ex))
	if compact.derive.stride >= dense.P {
		t.Errorf("compact stores %d of %d columns", compact.derive.stride, dense.P)
	}
	buf := make([]float64, dense.P)
	for i := range ex {
		if got, want := compact.features(i, buf), dense.Row(i); !slices.Equal(got, want) {
			t.Fatalf("row %d: compact %v, dense %v", i, got, want)
		}
	}
	if !slices.Equal(compact.W, dense.W) || !slices.Equal(compact.Y, dense.Y) {
		t.Error("labels or weights differ")
	}
	a, err := Newton{}.Train(context.Background(), dense, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Newton{}.Train(context.Background(), compact, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("fits differ: dense %+v, compact %+v", a, b)
	}
}

// bigExamples are n examples of 50 number signals, made on demand from
// their index, with a label from shapes and two pairs.
type bigExamples struct {
	n int
}

func (b *bigExamples) Len() int { return b.n }

func (b *bigExamples) At(i int) Example {
	rng := rand.New(rand.NewPCG(uint64(i), 77))
	row := make(map[string]any, 50)
	z := -2.0
	var x [50]float64
	for j := range x {
		v := rng.NormFloat64()
		if j%2 == 1 {
			v = math.Floor(rng.ExpFloat64() * 30) // a skewed count
		}
		x[j] = v
		row[bigNames[j]] = v
	}
	for j := 0; j < 50; j += 2 {
		z += 0.15 * math.Tanh(x[j]*float64(j%3+1)) // saturating shapes
	}
	z += 0.4*math.Log1p(x[1]) - 0.2*math.Sqrt(x[3]) + 0.5*x[0]*x[2] - 0.4*x[4]*math.Log1p(x[5])
	return Example{Signals: row, Label: rng.Float64() < sigmoid(z)}
}

var bigNames = func() []string {
	out := make([]string, 50)
	for j := range out {
		out[j] = fmt.Sprintf("s%02d", j)
	}
	return out
}()

// BenchmarkFitModel1Mx50 fits encoder, shapes, penalty and interactions
// and the final model on 1M examples of 50 signals made on the fly, and
// reports the peak live heap.
//
//	go test ./model -run '^$' -bench FitModel1Mx50 -benchtime 1x -benchmem
func BenchmarkFitModel1Mx50(b *testing.B) {
	src := &bigExamples{n: 1_000_000}
	b.ReportAllocs()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	var design *Design
	var sel Selection
	var fit Fit
	for b.Loop() {
		var err error
		design, fit, sel, err = FitModel(context.Background(), Newton{}, nil, src, FitOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(<-peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(design.Width()), "features")
	b.ReportMetric(float64(len(sel.Interactions)), "interactions")
	b.ReportMetric(float64(fit.Iterations), "iterations")
	b.Logf("L2 %v, interactions %v, converged %v", sel.L2, sel.Interactions, fit.Converged)
}
