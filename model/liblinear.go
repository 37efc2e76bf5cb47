//go:build golearn

package model

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/linear_models"
)

// LiblinearTrainer is the name of the optional trainer that fits the model
// with liblinear's L2R_LR solver through golearn. It exists only in
// binaries built with the golearn tag, and serves to cross-check the
// default trainer.
const LiblinearTrainer = "liblinear"

// liblinearConst is the value of the constant column appended to every
// row to carry the intercept; the other columns are centred, so the
// constant column is only weakly coupled to them. liblinear has no
// unpenalised intercept: the column's coefficient b is penalised like the
// others, which puts a penalty of L2/c^2 on the intercept instead of 0,
// against an intercept curvature of sum_i p_i*(1-p_i). A larger c shrinks
// that bias as 1/c^2 but makes the problem stiffer, and TRON (no
// preconditioner, and a stop when a step lowers the objective by less than
// 1e-12 of it) then stalls with the gradient still large. Measured on 240
// fits (2000-5000 rows, 8 columns, L2 0.1 to 10) against an exact optimum,
// worst relative coefficient error: 2.4e-4 at c = 10, 2.7e-5 at 30,
// 9.8e-6 at 50, 6.8e-6 at 60, and at 70 and 100 stalls up to 5e-5 in a
// few fits. 50 keeps a margin from the stalls.
const liblinearConst = 50

// liblinearEps is the stopping tolerance when TrainOptions.Tol is 0.
// TRON stops when |grad| <= eps*max(min(#pos,#neg),1)/N*|grad at 0|; the
// constant column makes |grad at 0| about c times what unit columns give,
// so liblinear is given eps/c.
const liblinearEps = 1e-6

// liblinearMaxIter is TRON's iteration cap, fixed inside liblinear and not
// reachable through golearn.
const liblinearMaxIter = 1000

// liblinearMu serialises training: liblinear's print hook and golearn's
// base.Logger are process-wide, and Train swaps the logger to count TRON's
// iterations.
var liblinearMu sync.Mutex

func init() {
	base.SetLoggerOut(io.Discard)
	RegisterTrainer(liblinearTrainer{})
}

// liblinearTrainer implements Trainer with liblinear. It does not take row
// weights (golearn passes no instance weights to liblinear), uses
// TrainOptions.Tol as liblinear's eps (divided by c, see liblinearEps),
// ignores TrainOptions.MaxIter (see liblinearMaxIter), cannot be cancelled
// once the C solver runs, and writes the model to a temporary file to read
// the weights back, because golearn exposes them no other way. Its fits
// agree with the exact optimum to about 1e-5 (see liblinearConst).
type liblinearTrainer struct{}

func (liblinearTrainer) Name() string { return LiblinearTrainer }

func (liblinearTrainer) Train(ctx context.Context, d *Dataset, opt TrainOptions) (Fit, error) {
	if err := ctx.Err(); err != nil {
		return Fit{}, err
	}
	if err := liblinearCheck(d, opt); err != nil {
		return Fit{}, fmt.Errorf("liblinear: %w", err)
	}
	l2 := opt.L2
	if l2 == 0 {
		l2 = DefaultL2
	}
	eps := liblinearEps
	if opt.Tol > 0 {
		eps = opt.Tol
	}

	// Centred rows with the constant column appended.
	n, p := d.Rows(), d.P
	const c = liblinearConst
	mean := liblinearMeans(d)
	buf := make([]float64, n*(p+1))
	rows := make([][]float64, n)
	for i := range rows {
		r := buf[i*(p+1) : (i+1)*(p+1)]
		for j, x := range d.Row(i) {
			r[j] = x - mean[j]
		}
		r[p] = c
		rows[i] = r
	}

	liblinearMu.Lock()
	defer liblinearMu.Unlock()
	if err := ctx.Err(); err != nil {
		return Fit{}, err
	}

	prob := linear_models.NewProblem(rows, d.Y, 0)
	param := linear_models.NewParameter(linear_models.L2R_LR, 1/l2, eps/c)
	var pin runtime.Pinner
	defer pin.Unpin()
	if err := pinProblem(&pin, prob); err != nil {
		return Fit{}, fmt.Errorf("liblinear: %w", err)
	}
	var log tronLog
	base.SetLoggerOut(&log)
	m := linear_models.Train(prob, param)
	base.SetLoggerOut(io.Discard)
	pin.Unpin()
	runtime.KeepAlive(prob)

	w, err := liblinearWeights(m, p)
	if err != nil {
		return Fit{}, fmt.Errorf("liblinear: %w", err)
	}
	intercept := w[p] * c
	for j, mj := range mean {
		intercept -= w[j] * mj
	}
	fit := Fit{
		Intercept:  intercept,
		Coef:       w[:p:p],
		Iterations: log.steps,
		Converged:  !log.warned && log.lastIter < liblinearMaxIter,
	}
	return fit, nil
}

// liblinearMeans returns the mean of each column.
func liblinearMeans(d *Dataset) []float64 {
	m := make([]float64, d.P)
	for i := range d.Rows() {
		for j, x := range d.Row(i) {
			m[j] += x
		}
	}
	for j := range m {
		m[j] /= float64(d.Rows())
	}
	return m
}

// liblinearCheck rejects what liblinear would mis-handle silently.
func liblinearCheck(d *Dataset, opt TrainOptions) error {
	if d == nil || d.P < 0 {
		return errors.New("no dataset")
	}
	n := len(d.Y)
	if len(d.X) != n*d.P {
		return fmt.Errorf("X has %d values, want %d rows x %d columns", len(d.X), n, d.P)
	}
	if n == 0 {
		return errors.New("no rows")
	}
	if d.W != nil {
		if len(d.W) != n {
			return fmt.Errorf("%d row weights for %d rows", len(d.W), n)
		}
		for i, w := range d.W {
			if w != 1 {
				return fmt.Errorf("row %d has weight %g: this trainer supports only unit row weights (golearn passes no instance weights to liblinear)", i, w)
			}
		}
	}
	var pos int
	for i, y := range d.Y {
		switch y {
		case 1:
			pos++
		case 0:
		default:
			return fmt.Errorf("row %d has label %g, want 0 or 1", i, y)
		}
	}
	if pos == 0 || pos == n {
		return errors.New("labels must include both classes")
	}
	for i, x := range d.X {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("row %d column %d is not finite", i/d.P, i%d.P)
		}
	}
	if !(opt.L2 >= 0) || math.IsInf(opt.L2, 0) {
		return fmt.Errorf("L2 %g must be finite and not negative", opt.L2)
	}
	if !(opt.Tol >= 0) || math.IsInf(opt.Tol, 0) {
		return fmt.Errorf("tolerance %g must be finite and not negative", opt.Tol)
	}
	return nil
}

// pinProblem pins the Go memory golearn hands to C inside a Problem: the
// labels (y), the row pointer array (x) and the feature nodes the rows
// point into (one allocation for all rows). The cgo pointer check rejects
// a Go pointer to memory holding unpinned Go pointers. Pinning a pointer
// into an allocation pins the whole allocation.
func pinProblem(pin *runtime.Pinner, prob *linear_models.Problem) error {
	c := reflect.ValueOf(prob).Elem().FieldByName("c_prob")
	if !c.IsValid() {
		return errors.New("golearn Problem has no c_prob field")
	}
	y, x := c.FieldByName("y"), c.FieldByName("x")
	if !y.IsValid() || !x.IsValid() || y.Kind() != reflect.Pointer || x.Kind() != reflect.Pointer {
		return errors.New("golearn problem has no y and x pointers")
	}
	if y.IsNil() || x.IsNil() || x.Elem().IsNil() {
		return errors.New("golearn problem has nil y or x")
	}
	pin.Pin(y.UnsafePointer())
	pin.Pin(x.UnsafePointer())
	pin.Pin(x.Elem().UnsafePointer())
	return nil
}

// tronLog counts the steps TRON reports through golearn's logger and
// notes whether TRON stopped on a warning (a stall or a diverging
// objective) rather than on its gradient test.
type tronLog struct {
	steps    int
	lastIter int
	warned   bool
}

func (t *tronLog) Write(b []byte) (int, error) {
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "iter":
			t.steps++
			if k, err := strconv.Atoi(f[1]); err == nil {
				t.lastIter = k
			}
		case strings.Contains(line, "WARNING"):
			t.warned = true
		}
	}
	return len(b), nil
}

// liblinearWeights exports m to a temporary file and returns its weights
// oriented so that a positive logit means label 1: p feature weights, then
// the constant column's weight.
func liblinearWeights(m *linear_models.Model, p int) ([]float64, error) {
	f, err := os.CreateTemp("", "hotlane-liblinear-*.model")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	defer os.Remove(name)
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := linear_models.Export(m, name); err != nil {
		return nil, fmt.Errorf("export model: %w", err)
	}
	f, err = os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseLiblinearModel(f, p)
}

// parseLiblinearModel reads a two-class liblinear model file trained on p
// columns plus the constant column. golearn declares one feature more than
// its rows have, so the file holds p+2 weights; the last belongs to no
// data and is 0. liblinear's weights favour the first label it saw in the
// rows, so the sign is flipped when that label is 0.
func parseLiblinearModel(r io.Reader, p int) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sign := 0.0
	nrFeature := -1
	var w []float64
	inW := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if inW {
			for _, s := range f {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, fmt.Errorf("model file: weight %q: %w", s, err)
				}
				w = append(w, v)
			}
			continue
		}
		switch f[0] {
		case "solver_type":
			if len(f) != 2 || f[1] != "L2R_LR" {
				return nil, fmt.Errorf("model file: solver %v, want L2R_LR", f[1:])
			}
		case "nr_class":
			if len(f) != 2 || f[1] != "2" {
				return nil, fmt.Errorf("model file: %v classes, want 2", f[1:])
			}
		case "label":
			switch strings.Join(f[1:], " ") {
			case "1 0":
				sign = 1
			case "0 1":
				sign = -1
			default:
				return nil, fmt.Errorf("model file: labels %v, want 0 and 1", f[1:])
			}
		case "nr_feature":
			if len(f) != 2 {
				return nil, errors.New("model file: bad nr_feature line")
			}
			k, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("model file: nr_feature: %w", err)
			}
			nrFeature = k
		case "bias":
			if len(f) != 2 {
				return nil, errors.New("model file: bad bias line")
			}
			if b, err := strconv.ParseFloat(f[1], 64); err != nil || b >= 0 {
				return nil, fmt.Errorf("model file: bias %q, want a negative number (no liblinear bias)", f[1])
			}
		case "w":
			inW = true
		default:
			return nil, fmt.Errorf("model file: unexpected line %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	switch {
	case sign == 0:
		return nil, errors.New("model file: no label line")
	case nrFeature != p+2:
		return nil, fmt.Errorf("model file: %d features, want %d", nrFeature, p+2)
	case len(w) != nrFeature:
		return nil, fmt.Errorf("model file: %d weights, want %d", len(w), nrFeature)
	case w[p+1] != 0:
		return nil, fmt.Errorf("model file: weight %g on the empty column, want 0", w[p+1])
	}
	w = w[:p+1]
	for j := range w {
		w[j] *= sign
		if math.IsNaN(w[j]) || math.IsInf(w[j], 0) {
			return nil, fmt.Errorf("model file: weight %d is not finite", j)
		}
	}
	return w, nil
}
