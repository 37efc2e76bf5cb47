//go:build golearn

package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/sjwhitworth/golearn/linear_models"
)

// liblinearData is a seeded synthetic dataset shaped like the tuning data:
// standardised numbers, two of them strongly correlated, a skewed log-like
// feature, rule-hit indicators that are mostly 0, and a positive rate near
// 22%.
func liblinearData(seed uint64, n int) *Dataset {
	const p = 8
	rng := rand.New(rand.NewPCG(seed, 42))
	beta := [p]float64{0.8, -0.5, 0.3, 0.6, 1.2, -0.9, 0.4, 0}
	d := &Dataset{X: make([]float64, 0, n*p), Y: make([]float64, n), P: p}
	for i := range n {
		z0 := rng.NormFloat64()
		x := [p]float64{
			z0,
			0.8*z0 + 0.6*rng.NormFloat64(), // corr 0.8 with column 0
			rng.NormFloat64(),
			math.Log1p(rng.ExpFloat64()*3) - 1,
			bit(rng.Float64() < 0.15),
			bit(rng.Float64() < 0.3),
			bit(rng.Float64() < 0.05+0.1*bit(z0 > 0)),
			rng.NormFloat64(), // no effect
		}
		z := -1.5
		for j := range p {
			z += beta[j] * x[j]
		}
		d.X = append(d.X, x[:]...)
		d.Y[i] = bit(rng.Float64() < sigmoid(z))
	}
	return d
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// exactFit solves the trainers' objective by Newton's method on the dense
// (P+1)x(P+1) Hessian until the step is at rounding level, as a reference
// with no tolerance of its own to speak of.
func exactFit(t testing.TB, d *Dataset, l2 float64) Fit {
	t.Helper()
	p, n := d.P, d.Rows()
	k := p + 1 // coefficient j at j, intercept at p
	beta := make([]float64, k)
	g := make([]float64, k)
	h := make([]float64, k*k)
	xr := make([]float64, k)
	for iter := 0; iter < 100; iter++ {
		clear(g)
		clear(h)
		for j := range p {
			g[j] = l2 * beta[j]
			h[j*k+j] = l2
		}
		for i := range n {
			copy(xr, d.Row(i))
			xr[p] = 1
			z := 0.0
			for j := range k {
				z += beta[j] * xr[j]
			}
			pr := sigmoid(z)
			w := d.Weight(i)
			r := w * (pr - d.Y[i])
			s := w * pr * (1 - pr)
			for a := range k {
				g[a] += r * xr[a]
				for b := 0; b <= a; b++ {
					h[a*k+b] += s * xr[a] * xr[b]
				}
			}
		}
		for a := range k {
			for b := 0; b < a; b++ {
				h[b*k+a] = h[a*k+b]
			}
		}
		step := cholSolve(t, h, g, k)
		big := 0.0
		for j := range k {
			beta[j] -= step[j]
			big = max(big, math.Abs(step[j]))
		}
		if big < 1e-13 {
			return Fit{Intercept: beta[p], Coef: beta[:p], Iterations: iter + 1, Converged: true}
		}
	}
	t.Fatal("exact fit did not converge")
	return Fit{}
}

// cholSolve solves h*x = g for a symmetric positive definite h.
func cholSolve(t testing.TB, h, g []float64, k int) []float64 {
	l := make([]float64, k*k)
	for a := range k {
		for b := 0; b <= a; b++ {
			s := h[a*k+b]
			for c := range b {
				s -= l[a*k+c] * l[b*k+c]
			}
			if a == b {
				if s <= 0 {
					t.Fatal("Hessian not positive definite")
				}
				l[a*k+a] = math.Sqrt(s)
			} else {
				l[a*k+b] = s / l[b*k+b]
			}
		}
	}
	x := append([]float64(nil), g...)
	for a := range k {
		for c := range a {
			x[a] -= l[a*k+c] * x[c]
		}
		x[a] /= l[a*k+a]
	}
	for a := k - 1; a >= 0; a-- {
		for c := a + 1; c < k; c++ {
			x[a] -= l[c*k+a] * x[c]
		}
		x[a] /= l[a*k+a]
	}
	return x
}

// fitGap is how far apart two fits are: the largest absolute difference
// of intercepts, the largest difference of coefficients relative to
// max(1, |coefficient|), and the largest difference of probabilities over
// the dataset's rows.
type fitGap struct{ intercept, coef, prob float64 }

func gap(d *Dataset, a, b Fit) fitGap {
	var g fitGap
	g.intercept = math.Abs(a.Intercept - b.Intercept)
	for j := range a.Coef {
		g.coef = max(g.coef, math.Abs(a.Coef[j]-b.Coef[j])/max(1, math.Abs(b.Coef[j])))
	}
	for i := range d.Rows() {
		g.prob = max(g.prob, math.Abs(a.Prob(d.Row(i))-b.Prob(d.Row(i))))
	}
	return g
}

func trainBy(t testing.TB, name string, d *Dataset, opt TrainOptions) Fit {
	t.Helper()
	tr, err := TrainerByName(name)
	if err != nil {
		t.Fatalf("TrainerByName(%q): %v", name, err)
	}
	fit, err := tr.Train(context.Background(), d, opt)
	if err != nil {
		t.Fatalf("%s: Train: %v", name, err)
	}
	if len(fit.Coef) != d.P {
		t.Fatalf("%s: %d coefficients, want %d", name, len(fit.Coef), d.P)
	}
	return fit
}

// The tolerances bound liblinear's distance from the optimum, which has
// two sources (see liblinearConst): the intercept penalty L2/c^2 and TRON
// stalling on a stiff problem. Over 240 seeded fits the first reached
// 2.5e-5 on the intercept, 9.8e-6 on coefficients and 4.5e-6 on
// probabilities; a stall, never seen at c = 50 but seen at c = 70 and 100,
// reached 5e-5 on coefficients and 2.5e-5 on probabilities. newton and the
// exact fit agree to about 1e-15, so they add nothing.
const (
	liblinearTolIntercept = 1e-4
	liblinearTolCoef      = 1e-4
	liblinearTolProb      = 5e-5
)

func checkGap(t *testing.T, what string, g fitGap, tolIntercept, tolCoef, tolProb float64) {
	t.Helper()
	t.Logf("%s: intercept %.2g, coef %.2g (relative), prob %.2g", what, g.intercept, g.coef, g.prob)
	if g.intercept > tolIntercept {
		t.Errorf("%s: intercepts differ by %g, want <= %g", what, g.intercept, tolIntercept)
	}
	if g.coef > tolCoef {
		t.Errorf("%s: coefficients differ by %g (relative), want <= %g", what, g.coef, tolCoef)
	}
	if g.prob > tolProb {
		t.Errorf("%s: probabilities differ by %g, want <= %g", what, g.prob, tolProb)
	}
}

func TestLiblinearRegistered(t *testing.T) {
	tr, err := TrainerByName(LiblinearTrainer)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Name(); got != LiblinearTrainer {
		t.Errorf("Name() = %q, want %q", got, LiblinearTrainer)
	}
}

func TestLiblinearMatchesExact(t *testing.T) {
	d := liblinearData(1, 4000)
	for _, l2 := range []float64{0.1, 1, 10} {
		t.Run(fmt.Sprint("L2=", l2), func(t *testing.T) {
			got := trainBy(t, LiblinearTrainer, d, TrainOptions{L2: l2})
			if !got.Converged {
				t.Errorf("Converged = false after %d steps", got.Iterations)
			}
			want := exactFit(t, d, l2)
			checkGap(t, "liblinear vs exact", gap(d, got, want), liblinearTolIntercept, liblinearTolCoef, liblinearTolProb)
		})
	}
}

func TestLiblinearMatchesNewton(t *testing.T) {
	for seed := uint64(10); seed < 16; seed++ {
		d := liblinearData(seed, 2000+500*int(seed%4))
		for _, l2 := range []float64{0.1, 1, 10} {
			t.Run(fmt.Sprintf("seed=%d/L2=%g", seed, l2), func(t *testing.T) {
				opt := TrainOptions{L2: l2}
				got := trainBy(t, LiblinearTrainer, d, opt)
				want := trainBy(t, "newton", d, opt)
				checkGap(t, "liblinear vs newton", gap(d, got, want), liblinearTolIntercept, liblinearTolCoef, liblinearTolProb)
			})
		}
	}
}

// TestLiblinearDefaultL2 checks that L2 0 means DefaultL2.
func TestLiblinearDefaultL2(t *testing.T) {
	d := liblinearData(3, 2000)
	a := trainBy(t, LiblinearTrainer, d, TrainOptions{})
	b := trainBy(t, LiblinearTrainer, d, TrainOptions{L2: DefaultL2})
	checkGap(t, "L2 0 vs DefaultL2", gap(d, a, b), 0, 0, 0)
}

// TestLiblinearLabelOrientation trains on the same rows ordered so that
// the first row is a positive, then a negative: liblinear orients its
// weights by the first label it sees, and both fits must agree with each
// other (up to summation order) and with the exact optimum.
func TestLiblinearLabelOrientation(t *testing.T) {
	d := liblinearData(4, 3000)
	firstIs := func(label float64) *Dataset {
		k := 0
		for d.Y[k] != label {
			k++
		}
		out := &Dataset{X: append([]float64(nil), d.X...), Y: append([]float64(nil), d.Y...), P: d.P}
		out.Y[0], out.Y[k] = out.Y[k], out.Y[0]
		for j := range d.P {
			out.X[j], out.X[k*d.P+j] = out.X[k*d.P+j], out.X[j]
		}
		return out
	}
	pos, neg := firstIs(1), firstIs(0)
	if pos.Y[0] != 1 || neg.Y[0] != 0 {
		t.Fatal("reordering failed")
	}
	opt := TrainOptions{L2: 1}
	fp := trainBy(t, LiblinearTrainer, pos, opt)
	fn := trainBy(t, LiblinearTrainer, neg, opt)
	checkGap(t, "first positive vs first negative", gap(d, fp, fn), 1e-9, 1e-9, 1e-9)
	want := exactFit(t, d, 1)
	checkGap(t, "first positive vs exact", gap(d, fp, want), liblinearTolIntercept, liblinearTolCoef, liblinearTolProb)
	checkGap(t, "first negative vs exact", gap(d, fn, want), liblinearTolIntercept, liblinearTolCoef, liblinearTolProb)
	if fp.Intercept >= 0 || fp.Coef[4] <= 0 || fp.Coef[5] >= 0 {
		t.Errorf("signs wrong: intercept %g, coef %v", fp.Intercept, fp.Coef)
	}
}

func TestLiblinearRejects(t *testing.T) {
	good := liblinearData(5, 200)
	ones := make([]float64, good.Rows())
	for i := range ones {
		ones[i] = 1
	}
	weighted := *good
	weighted.W = append([]float64(nil), ones...)
	weighted.W[7] = 2
	zeroWeight := *good
	zeroWeight.W = append([]float64(nil), ones...)
	zeroWeight.W[3] = 0
	oneClass := *good
	oneClass.Y = make([]float64, good.Rows())
	badLabel := *good
	badLabel.Y = append([]float64(nil), good.Y...)
	badLabel.Y[0] = -1
	nan := *good
	nan.X = append([]float64(nil), good.X...)
	nan.X[5] = math.NaN()
	short := *good
	short.X = good.X[:len(good.X)-1]

	tr, err := TrainerByName(LiblinearTrainer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		d    *Dataset
		opt  TrainOptions
		want string
	}{
		{"row weight 2", &weighted, TrainOptions{}, "row 7 has weight 2"},
		{"row weight 0", &zeroWeight, TrainOptions{}, "row 3 has weight 0"},
		{"one class", &oneClass, TrainOptions{}, "both classes"},
		{"label -1", &badLabel, TrainOptions{}, "label -1"},
		{"NaN feature", &nan, TrainOptions{}, "not finite"},
		{"short X", &short, TrainOptions{}, "rows x"},
		{"negative L2", good, TrainOptions{L2: -1}, "L2"},
		{"empty", &Dataset{P: 3}, TrainOptions{}, "no rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.Train(context.Background(), tc.d, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}

	t.Run("unit weights", func(t *testing.T) {
		unit := *good
		unit.W = ones
		a := trainBy(t, LiblinearTrainer, &unit, TrainOptions{})
		b := trainBy(t, LiblinearTrainer, good, TrainOptions{})
		checkGap(t, "W of ones vs nil", gap(good, a, b), 0, 0, 0)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := tr.Train(ctx, good, TrainOptions{}); err != context.Canceled {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// TestLiblinearCgoCheckActive shows that this run has the cgo pointer
// check on, so the other tests would panic if pinProblem missed memory:
// golearn's Train without pinning must panic.
func TestLiblinearCgoCheckActive(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "cgocheck=0") {
		t.Fatal("GODEBUG disables cgocheck; run with the default")
	}
	d := liblinearData(6, 50)
	rows := make([][]float64, d.Rows())
	for i := range rows {
		rows[i] = append(d.Row(i)[:d.P:d.P], 1)
	}
	prob := linear_models.NewProblem(rows, d.Y, 0)
	param := linear_models.NewParameter(linear_models.L2R_LR, 1, 0.01)
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("unpinned Train did not panic: the cgo pointer check is off")
		}
		if !strings.Contains(fmt.Sprint(r), "unpinned Go pointer") {
			t.Fatalf("panic %v, want the cgo pointer check", r)
		}
	}()
	linear_models.Train(prob, param)
}

// TestLiblinearConcurrent trains from several goroutines at once, for the
// race detector and the process-wide logger swap.
func TestLiblinearConcurrent(t *testing.T) {
	d := liblinearData(7, 1000)
	want := trainBy(t, LiblinearTrainer, d, TrainOptions{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			tr, _ := TrainerByName(LiblinearTrainer)
			got, err := tr.Train(context.Background(), d, TrainOptions{})
			if err == nil && (got.Intercept != want.Intercept || got.Iterations != want.Iterations) {
				err = fmt.Errorf("concurrent fit differs: %+v vs %+v", got, want)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestParseLiblinearModel(t *testing.T) {
	const file = "solver_type L2R_LR\nnr_class 2\nlabel %s\nnr_feature 4\nbias -1\nw\n0.5 \n-0.25 \n0.01 \n0 \n"
	for _, tc := range []struct {
		label string
		want  []float64
	}{
		{"1 0", []float64{0.5, -0.25, 0.01}},
		{"0 1", []float64{-0.5, 0.25, -0.01}},
	} {
		got, err := parseLiblinearModel(strings.NewReader(fmt.Sprintf(file, tc.label)), 2)
		if err != nil {
			t.Fatalf("label %s: %v", tc.label, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("label %s: got %v, want %v", tc.label, got, tc.want)
		}
	}
	if _, err := parseLiblinearModel(strings.NewReader(fmt.Sprintf(file, "1 2")), 2); err == nil {
		t.Error("labels 1 2 accepted")
	}
	if _, err := parseLiblinearModel(strings.NewReader(fmt.Sprintf(file, "1 0")), 3); err == nil {
		t.Error("wrong feature count accepted")
	}
}

// BenchmarkLiblinearTrain compares both trainers on 100k rows of 20
// features: go test -tags golearn -run '^$' -bench LiblinearTrain ./model
func BenchmarkLiblinearTrain(b *testing.B) {
	const n, p = 100_000, 20
	rng := rand.New(rand.NewPCG(9, 9))
	d := &Dataset{X: make([]float64, n*p), Y: make([]float64, n), P: p}
	beta := make([]float64, p)
	for j := range beta {
		beta[j] = rng.NormFloat64() * 0.5
	}
	for i := range n {
		row := d.Row(i)
		z := -1.0
		for j := range row {
			if j%4 == 3 {
				row[j] = bit(rng.Float64() < 0.2)
			} else {
				row[j] = rng.NormFloat64()
			}
			if j > 0 && j%5 == 0 {
				row[j] = 0.7*row[j-1] + 0.7*row[j]
			}
			z += beta[j] * row[j]
		}
		d.Y[i] = bit(rng.Float64() < sigmoid(z))
	}
	for _, name := range []string{LiblinearTrainer, "newton"} {
		b.Run(name, func(b *testing.B) {
			tr, err := TrainerByName(name)
			if err != nil {
				b.Skip(err)
			}
			b.ReportAllocs()
			var fit Fit
			for b.Loop() {
				fit, err = tr.Train(context.Background(), d, TrainOptions{})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fit.Iterations), "iterations")
		})
	}
}
