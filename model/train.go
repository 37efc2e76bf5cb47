package model

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Dataset is a dense design matrix for training a logistic model: N rows
// of P features, stored row-major in X (len N*P), with labels Y (0 or 1)
// and optional row weights W (nil means every row weighs 1). The intercept
// is not a column of X: trainers fit it separately and never penalise it.
type Dataset struct {
	X []float64
	Y []float64
	W []float64
	P int
	// derive, when set, makes the dataset compact: each row of X stores
	// only derive.stride columns and the others (hinges, products) are
	// computed from them as the row is read. Only FitModel makes such
	// datasets, for the Newton trainer, and they never leave the package.
	derive *derivation
}

// Rows is the number of rows.
func (d *Dataset) Rows() int {
	if d.derive != nil {
		return len(d.Y)
	}
	if d.P == 0 {
		return len(d.Y)
	}
	return len(d.X) / d.P
}

// derivation lays out a compact Dataset. A hinge reads a stored column
// and a product any earlier column, so a row is expanded in three passes:
// stored columns, hinges, products in order.
type derivation struct {
	stride   int
	ops      []deriveOp // one per column of the full row, in order
	stored   [][2]int   // full column, stored column
	hinges   []deriveOp // a is the full column read, b the one written
	products []deriveOp // a, b read, knot unused; dst in col
	prodCols []int
}

// deriveOp makes one column of the full row: a stored column, a hinge of
// an earlier column or the product of two.
type deriveOp struct {
	kind uint8
	a, b int
	knot float64
}

const (
	opStored uint8 = iota
	opHinge
	opProduct
)

// features returns row i's P features: a slice of X for a dense dataset,
// else the row expanded into buf (of capacity at least P).
func (d *Dataset) features(i int, buf []float64) []float64 {
	if d.derive == nil {
		return d.X[i*d.P : (i+1)*d.P]
	}
	der := d.derive
	s := der.stride
	src := d.X[i*s : (i+1)*s]
	buf = buf[:d.P]
	for _, c := range der.stored {
		buf[c[0]] = src[c[1]]
	}
	for _, h := range der.hinges {
		buf[h.b] = hinge(buf[h.a], h.knot)
	}
	for k, p := range der.products {
		buf[der.prodCols[k]] = buf[p.a] * buf[p.b]
	}
	return buf
}

// plan splits ops into the three passes of features; it reports false when
// a hinge reads a column that is not stored, which the passes cannot do.
func (der *derivation) plan() bool {
	for j, op := range der.ops {
		switch op.kind {
		case opStored:
			der.stored = append(der.stored, [2]int{j, op.a})
		case opHinge:
			if der.ops[op.a].kind != opStored {
				return false
			}
			der.hinges = append(der.hinges, deriveOp{kind: opHinge, a: op.a, b: j, knot: op.knot})
		case opProduct:
			der.products = append(der.products, op)
			der.prodCols = append(der.prodCols, j)
		}
	}
	return true
}

// Row returns row i of X, sharing its memory.
func (d *Dataset) Row(i int) []float64 { return d.X[i*d.P : (i+1)*d.P] }

// Weight returns the weight of row i.
func (d *Dataset) Weight(i int) float64 {
	if d.W == nil {
		return 1
	}
	return d.W[i]
}

// TrainOptions control a trainer. The objective is the weighted log loss
// sum_i w_i * loss_i plus L2/2 * |coef|^2; the intercept is not penalised.
type TrainOptions struct {
	// L2 is the penalty strength; 0 takes DefaultL2.
	L2 float64
	// MaxIter bounds the solver's iterations; 0 takes a trainer default.
	MaxIter int
	// Tol is the convergence tolerance; 0 takes a trainer default.
	Tol float64
	// LossTol, when above 0, also ends a Newton fit once a step's
	// predicted decrease of the objective (half the Newton decrement) is
	// at most LossTol times the objective, after taking that step: on
	// millions of rows, where the sampled Hessian converges linearly, the
	// last digits of the coefficients cost a pass over the rows each and
	// change no score measurably.
	LossTol float64
	// Chord makes Newton keep an iteration's Hessian for the iterations
	// after it (the chord method) until a step has to be shortened, or for
	// 8 iterations at most: each iteration then costs a pass for the
	// gradient only. From a warm start near the optimum it converges in
	// about as many iterations.
	Chord bool
	// Init, when it has one coefficient per column, is where the solver
	// starts (a warm start along a grid of penalties, say); trainers that
	// cannot start elsewhere ignore it.
	Init *Fit
}

// DefaultL2 is the penalty used when TrainOptions.L2 is 0.
const DefaultL2 = 1.0

// Fit is a trained logistic model over a Dataset's columns.
type Fit struct {
	Intercept  float64
	Coef       []float64 // one per column of X
	Iterations int
	Converged  bool
}

// Logit returns the fit's logit for one row of features.
func (f *Fit) Logit(row []float64) float64 {
	z := f.Intercept
	for j, x := range row {
		z += f.Coef[j] * x
	}
	return z
}

// Prob returns the fit's probability for one row of features.
func (f *Fit) Prob(row []float64) float64 { return sigmoid(f.Logit(row)) }

// Trainer fits an L2-regularised logistic regression.
type Trainer interface {
	Name() string
	Train(ctx context.Context, d *Dataset, opt TrainOptions) (Fit, error)
}

var (
	trainersMu sync.RWMutex
	trainers   = map[string]Trainer{}
)

// RegisterTrainer makes a trainer available by name; optional trainers
// built behind a build tag register themselves this way.
func RegisterTrainer(t Trainer) {
	trainersMu.Lock()
	defer trainersMu.Unlock()
	trainers[t.Name()] = t
}

// TrainerByName returns a registered trainer; "" is the default trainer.
func TrainerByName(name string) (Trainer, error) {
	if name == "" {
		name = DefaultTrainer
	}
	trainersMu.RLock()
	defer trainersMu.RUnlock()
	t, ok := trainers[name]
	if !ok {
		return nil, fmt.Errorf("unknown trainer %q (available: %v)", name, trainerNamesLocked())
	}
	return t, nil
}

// TrainerNames lists the registered trainers.
func TrainerNames() []string {
	trainersMu.RLock()
	defer trainersMu.RUnlock()
	return trainerNamesLocked()
}

func trainerNamesLocked() []string {
	out := make([]string, 0, len(trainers))
	for n := range trainers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DefaultTrainer is the pure-Go trainer's name.
const DefaultTrainer = "newton"
