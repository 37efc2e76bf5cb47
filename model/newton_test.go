package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// synthDataset draws n rows of p standard normal features with labels from
// a known logistic model, seeded.
func synthDataset(n, p int, seed uint64) (*Dataset, []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	beta := make([]float64, p)
	for j := range beta {
		beta[j] = rng.NormFloat64() / math.Sqrt(float64(p))
	}
	d := &Dataset{X: make([]float64, n*p), Y: make([]float64, n), P: p}
	for i := range n {
		row := d.Row(i)
		z := -1.0
		for j := range row {
			row[j] = rng.NormFloat64()
			z += beta[j] * row[j]
		}
		if rng.Float64() < sigmoid(z) {
			d.Y[i] = 1
		}
	}
	return d, beta
}

// objectiveGrad is the gradient of the penalised objective, computed
// directly, to check a fit is a stationary point.
func objectiveGrad(d *Dataset, f Fit, l2 float64) []float64 {
	g := make([]float64, d.P+1)
	for i := range d.Rows() {
		r := d.Weight(i) * (f.Prob(d.Row(i)) - d.Y[i])
		g[0] += r
		for j, x := range d.Row(i) {
			g[j+1] += r * x
		}
	}
	for j := range f.Coef {
		g[j+1] += l2 * f.Coef[j]
	}
	return g
}

func TestNewtonStationary(t *testing.T) {
	d, _ := synthDataset(2000, 5, 1)
	for _, l2 := range []float64{0.01, 1, 100} {
		fit, err := Newton{}.Train(context.Background(), d, TrainOptions{L2: l2})
		if err != nil {
			t.Fatal(err)
		}
		if !fit.Converged {
			t.Errorf("l2=%v: not converged after %d iterations", l2, fit.Iterations)
		}
		for j, g := range objectiveGrad(d, fit, l2) {
			if math.Abs(g) > 1e-6 {
				t.Errorf("l2=%v: gradient[%d] = %g at the fit, want ~0", l2, j, g)
			}
		}
	}
}

func TestNewtonRecoversCoefficients(t *testing.T) {
	d, beta := synthDataset(50000, 4, 2)
	fit, err := Newton{}.Train(context.Background(), d, TrainOptions{L2: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(fit.Intercept+1) > 0.05 {
		t.Errorf("intercept = %v, want about -1", fit.Intercept)
	}
	for j := range beta {
		if math.Abs(fit.Coef[j]-beta[j]) > 0.05 {
			t.Errorf("coef[%d] = %v, want about %v", j, fit.Coef[j], beta[j])
		}
	}
}

func TestNewtonSeparable(t *testing.T) {
	// x < 0 is always 0, x > 0 always 1: without L2 the weight would grow
	// without bound.
	d := &Dataset{X: []float64{-2, -1, -0.5, 0.5, 1, 2}, Y: []float64{0, 0, 0, 1, 1, 1}, P: 1}
	fit, err := Newton{}.Train(context.Background(), d, TrainOptions{L2: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if !fit.Converged || !finite(fit.Coef[0]) || fit.Coef[0] <= 0 {
		t.Fatalf("fit = %+v, want converged with a finite positive weight", fit)
	}
	for j, g := range objectiveGrad(d, fit, 0.1) {
		if math.Abs(g) > 1e-8 {
			t.Errorf("gradient[%d] = %g, want ~0", j, g)
		}
	}
	// Symmetric data: the unpenalised intercept is 0.
	if math.Abs(fit.Intercept) > 1e-9 {
		t.Errorf("intercept = %v, want 0", fit.Intercept)
	}
}

func TestNewtonInterceptNotPenalised(t *testing.T) {
	// No features, 9 positives in 10: the intercept must be logit(0.9)
	// whatever the penalty.
	y := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 0}
	fit, err := Newton{}.Train(context.Background(), &Dataset{Y: y}, TrainOptions{L2: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(9); math.Abs(fit.Intercept-want) > 1e-9 {
		t.Errorf("intercept = %v, want %v", fit.Intercept, want)
	}
}

func TestNewtonWeightsEqualDuplicates(t *testing.T) {
	x := []float64{0.1, 0.5, -0.3, 1.2, -1, 0.7}
	y := []float64{0, 1, 0, 1, 1, 0}
	w := []float64{1, 2, 1, 3, 1, 1}
	var dx, dy []float64
	for i := range y {
		for range int(w[i]) {
			dx = append(dx, x[i])
			dy = append(dy, y[i])
		}
	}
	a, err := Newton{}.Train(context.Background(), &Dataset{X: x, Y: y, W: w, P: 1}, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Newton{}.Train(context.Background(), &Dataset{X: dx, Y: dy, P: 1}, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(a.Intercept-b.Intercept) > 1e-9 || math.Abs(a.Coef[0]-b.Coef[0]) > 1e-9 {
		t.Errorf("weighted fit %+v != duplicated fit %+v", a, b)
	}
}

func TestNewtonDeterministicAcrossProcs(t *testing.T) {
	d, _ := synthDataset(30000, 6, 3)
	old := runtime.GOMAXPROCS(1)
	a, err := Newton{}.Train(context.Background(), d, TrainOptions{})
	runtime.GOMAXPROCS(4)
	b, err2 := Newton{}.Train(context.Background(), d, TrainOptions{})
	runtime.GOMAXPROCS(old)
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	if a.Intercept != b.Intercept {
		t.Errorf("intercept %v with 1 proc, %v with 4", a.Intercept, b.Intercept)
	}
	for j := range a.Coef {
		if a.Coef[j] != b.Coef[j] {
			t.Errorf("coef[%d] %v with 1 proc, %v with 4", j, a.Coef[j], b.Coef[j])
		}
	}
}

func TestNewtonErrors(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
		opt  TrainOptions
		want string
	}{
		{"no rows", &Dataset{P: 1}, TrainOptions{}, "no rows"},
		{"X length", &Dataset{X: []float64{1}, Y: []float64{0, 1}, P: 1}, TrainOptions{}, "len(X)"},
		{"W length", &Dataset{X: []float64{1, 2}, Y: []float64{0, 1}, W: []float64{1}, P: 1}, TrainOptions{}, "len(W)"},
		{"NaN", &Dataset{X: []float64{1, math.NaN()}, Y: []float64{0, 1}, P: 1}, TrainOptions{}, "not finite"},
		{"Inf", &Dataset{X: []float64{math.Inf(1), 1}, Y: []float64{0, 1}, P: 1}, TrainOptions{}, "not finite"},
		{"label", &Dataset{X: []float64{1, 2}, Y: []float64{0, 2}, P: 1}, TrainOptions{}, "not 0 or 1"},
		{"negative weight", &Dataset{X: []float64{1, 2}, Y: []float64{0, 1}, W: []float64{1, -1}, P: 1}, TrainOptions{}, "weight"},
		{"one class", &Dataset{X: []float64{1, 2}, Y: []float64{1, 1}, P: 1}, TrainOptions{}, "one class"},
		{"one weighted class", &Dataset{X: []float64{1, 2}, Y: []float64{0, 1}, W: []float64{1, 0}, P: 1}, TrainOptions{}, "one class"},
		{"negative L2", &Dataset{X: []float64{1, 2}, Y: []float64{0, 1}, P: 1}, TrainOptions{L2: -1}, "L2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Newton{}.Train(context.Background(), tt.d, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := Newton{}.Train(context.Background(), &Dataset{Y: []float64{0}}, TrainOptions{})
	if !errors.Is(err, ErrOneClass) {
		t.Errorf("err = %v, want ErrOneClass", err)
	}
}

func TestNewtonCancelled(t *testing.T) {
	d, _ := synthDataset(100, 2, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Newton{}).Train(ctx, d, TrainOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestNewtonRegistered(t *testing.T) {
	tr, err := TrainerByName("")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name() != "newton" {
		t.Errorf("default trainer = %q, want newton", tr.Name())
	}
}

// penalisedLoss is the objective Newton minimises, computed directly.
func penalisedLoss(d *Dataset, f Fit, l2 float64) float64 {
	s := 0.0
	for i := range d.Rows() {
		s += d.Weight(i) * logLoss1(f.Logit(d.Row(i)), d.Y[i])
	}
	for _, c := range f.Coef {
		s += l2 / 2 * c * c
	}
	return s
}

// The chord method and the loss tolerance, which FitModel's final fit
// uses on millions of rows, reach the optimum a plain Newton fit finds:
// the chord to the coefficients' tolerance, from a warm start and from
// zero; the loss tolerance to within its share of the objective, in fewer
// iterations.
func TestNewtonChordAndLossTol(t *testing.T) {
	const l2 = 0.5
	d, _ := synthDataset(120_000, 8, 5) // above newtonHessRows: a sampled Hessian
	ctx := context.Background()
	ref, err := Newton{}.Train(ctx, d, TrainOptions{L2: l2, Tol: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	small := &Dataset{X: d.X[:10_000*d.P], Y: d.Y[:10_000], P: d.P}
	warm, err := Newton{}.Train(ctx, small, TrainOptions{L2: l2})
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, f Fit, tol float64) {
		t.Helper()
		if !f.Converged {
			t.Errorf("%s: not converged after %d iterations", name, f.Iterations)
		}
		if d := math.Abs(f.Intercept - ref.Intercept); d > tol {
			t.Errorf("%s: intercept %v, want %v (off by %g)", name, f.Intercept, ref.Intercept, d)
		}
		for j := range f.Coef {
			if d := math.Abs(f.Coef[j] - ref.Coef[j]); d > tol {
				t.Errorf("%s: coef[%d] %v, want %v (off by %g)", name, j, f.Coef[j], ref.Coef[j], d)
			}
		}
	}
	for _, start := range []*Fit{&warm, nil} {
		name := "chord from the warm start"
		if start == nil {
			name = "chord from zero"
		}
		f, err := Newton{}.Train(ctx, d, TrainOptions{L2: l2, Tol: 1e-10, Chord: true, Init: start})
		if err != nil {
			t.Fatal(err)
		}
		near(name, f, 1e-7)
	}

	full, err := Newton{}.Train(ctx, d, TrainOptions{L2: l2, Tol: 1e-10, Init: &warm})
	if err != nil {
		t.Fatal(err)
	}
	const lossTol = 1e-7
	quick, err := Newton{}.Train(ctx, d, TrainOptions{L2: l2, Tol: 1e-10, LossTol: lossTol, Init: &warm})
	if err != nil {
		t.Fatal(err)
	}
	if quick.Iterations >= full.Iterations {
		t.Errorf("with LossTol %d iterations, without %d: want fewer", quick.Iterations, full.Iterations)
	}
	best, got := penalisedLoss(d, ref, l2), penalisedLoss(d, quick, l2)
	if got-best > lossTol*best {
		t.Errorf("objective %v with LossTol, %v at the optimum: more than %g of it above", got, best, lossTol)
	}
	near("LossTol", quick, 1e-3)
}
