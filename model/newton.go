package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

func init() { RegisterTrainer(Newton{}) }

// Newton is the default trainer: L2-regularised weighted logistic
// regression by Newton's method (iteratively reweighted least squares).
// Each iteration streams the rows once to accumulate the gradient and the
// (P+1)x(P+1) Hessian X'WX, solves the Newton system by Cholesky and
// backtracks (halving the step) until the objective decreases, so it
// cannot diverge; the L2 penalty keeps the problem strictly convex, so
// separable data converges too.
//
// Rows are split into a number of blocks that depends only on the row
// count; blocks are accumulated in parallel and summed in block order, so
// a fit is bit-for-bit the same whatever GOMAXPROCS is.
type Newton struct{}

// Newton's defaults, used when TrainOptions leaves them at 0.
const (
	newtonMaxIter = 100
	newtonTol     = 1e-8
)

// Name is "newton".
func (Newton) Name() string { return "newton" }

// ErrOneClass is returned when training data holds a single class (among
// rows of positive weight): a logistic model cannot be fitted from it.
var ErrOneClass = errors.New("training data has only one class")

// Train fits the model. It checks ctx between iterations.
func (Newton) Train(ctx context.Context, d *Dataset, opt TrainOptions) (Fit, error) {
	if err := checkDataset(d); err != nil {
		return Fit{}, fmt.Errorf("newton: %w", err)
	}
	l2 := opt.L2
	if l2 == 0 {
		l2 = DefaultL2
	}
	if !(l2 > 0) || !finite(l2) {
		return Fit{}, fmt.Errorf("newton: L2 must be a positive finite number, got %v", opt.L2)
	}
	maxIter := opt.MaxIter
	if maxIter <= 0 {
		maxIter = newtonMaxIter
	}
	tol := opt.Tol
	if tol <= 0 {
		tol = newtonTol
	}

	p := d.P
	k := p + 1 // parameters: intercept first, then the coefficients
	acc := newAccumulator(d)
	theta := make([]float64, k)
	if opt.Init != nil && len(opt.Init.Coef) == p && finite(opt.Init.Intercept) {
		theta[0] = opt.Init.Intercept
		copy(theta[1:], opt.Init.Coef)
		for j := range theta {
			if !finite(theta[j]) {
				clear(theta)
				break
			}
		}
	}
	trial := make([]float64, k)
	delta := make([]float64, k)
	hess := make([]float64, k*k)
	grad := make([]float64, k)

	// The full step is tried with the gradient and Hessian at the trial
	// point, which, when it is taken (nearly always), the next iteration
	// uses: one pass over the rows per iteration instead of two.
	nextGrad := make([]float64, k)
	nextHess := make([]float64, k*k)
	nextLoss, haveNext, nextHasHess := 0.0, false, false
	// freshHess: hess holds a Hessian without the penalty yet; with
	// opt.Chord, later iterations keep it once penalised.
	freshHess := false
	var fit Fit
	for fit.Iterations < maxIter {
		if err := ctx.Err(); err != nil {
			return Fit{}, fmt.Errorf("newton: %w", err)
		}
		fit.Iterations++
		var loss float64
		if haveNext {
			loss = nextLoss
			grad, nextGrad = nextGrad, grad
			if nextHasHess {
				hess, nextHess = nextHess, hess
				freshHess = true
			}
		} else {
			loss = acc.gradHess(theta, grad, hess)
			freshHess = true
		}
		haveNext = false
		// The penalty: L2/2 |coef|^2, the intercept (index 0) excluded.
		for j := 1; j < k; j++ {
			loss += l2 / 2 * theta[j] * theta[j]
			grad[j] += l2 * theta[j]
			if freshHess {
				hess[j*k+j] += l2
			}
		}
		freshHess = false
		if err := solveNewton(hess, grad, delta, k); err != nil {
			return Fit{}, fmt.Errorf("newton: %w", err)
		}
		// slope is the directional derivative g·delta, negative for a
		// descent direction; -slope is the Newton decrement squared.
		slope := 0.0
		for j := range delta {
			slope += grad[j] * delta[j]
		}
		if !(slope < 0) {
			// Already at the minimum to machine precision.
			fit.Converged = true
			break
		}
		if -slope <= 1e-12*(1+math.Abs(loss)) {
			// Near the minimum the loss differences drown in rounding, so
			// a line search would only hold back the quadratically
			// convergent full step: take it and stop.
			for j := range theta {
				theta[j] += delta[j]
			}
			fit.Converged = true
			break
		}
		step, accepted := 1.0, false
		for range 60 {
			for j := range theta {
				trial[j] = theta[j] + step*delta[j]
			}
			var raw float64
			if step == 1 {
				// The chord takes a new Hessian every chordRefresh
				// iterations all the same, in case it is slow.
				nextHasHess = !opt.Chord || fit.Iterations%chordRefresh == 0
				h := nextHess
				if !nextHasHess {
					h = nil
				}
				raw = acc.gradHess(trial, nextGrad, h)
			} else {
				raw = acc.loss(trial)
			}
			f := raw
			for j := 1; j < k; j++ {
				f += l2 / 2 * trial[j] * trial[j]
			}
			if f <= loss+1e-4*step*slope {
				accepted = true
				if step == 1 {
					nextLoss, haveNext = raw, true
				}
				break
			}
			step /= 2
		}
		if step < 1 && acc.hstride > 1 {
			// The sampled Hessian misjudged the curvature (a rare
			// column the sample hardly holds, say): from here on, the
			// Hessian takes every row.
			acc.hstride = 1
			haveNext = false
		}
		if step < 1 && opt.Chord {
			// The kept Hessian is too far from the current one: the
			// next iteration takes a new one.
			haveNext = false
		}
		if !accepted {
			// No decrease is measurable any more: the current point is as
			// good as floating point allows.
			fit.Converged = -slope <= math.Sqrt(tol)*(1+math.Abs(loss))
			break
		}
		copy(theta, trial)
		maxStep, maxTheta := 0.0, 0.0
		for j := range delta {
			maxStep = max(maxStep, math.Abs(step*delta[j]))
			maxTheta = max(maxTheta, math.Abs(theta[j]))
		}
		if maxStep <= tol*(1+maxTheta) {
			fit.Converged = true
			break
		}
		if step == 1 && opt.LossTol > 0 && -slope/2 <= opt.LossTol*(1+math.Abs(loss)) {
			fit.Converged = true
			break
		}
	}
	fit.Intercept = theta[0]
	fit.Coef = append([]float64(nil), theta[1:]...)
	return fit, nil
}

// checkDataset validates a dataset for training.
func checkDataset(d *Dataset) error {
	if d == nil {
		return errors.New("no dataset")
	}
	if d.P < 0 {
		return fmt.Errorf("negative column count %d", d.P)
	}
	n := len(d.Y)
	if n == 0 {
		return errors.New("no rows")
	}
	stride := d.P
	if d.derive != nil {
		stride = d.derive.stride
	}
	if len(d.X) != n*stride {
		return fmt.Errorf("len(X) = %d, want rows*P = %d*%d", len(d.X), n, stride)
	}
	if d.W != nil && len(d.W) != n {
		return fmt.Errorf("len(W) = %d, want %d rows", len(d.W), n)
	}
	for i, x := range d.X {
		if !finite(x) {
			return fmt.Errorf("row %d column %d: value %v is not finite", i/stride, i%stride, x)
		}
	}
	var pos, neg float64
	for i, y := range d.Y {
		if y != 0 && y != 1 {
			return fmt.Errorf("row %d: label %v is not 0 or 1", i, y)
		}
		w := d.Weight(i)
		if !finite(w) || w < 0 {
			return fmt.Errorf("row %d: weight %v must be finite and >= 0", i, w)
		}
		if y == 1 {
			pos += w
		} else {
			neg += w
		}
	}
	if pos == 0 || neg == 0 {
		return ErrOneClass
	}
	return nil
}

// solveNewton solves hess*delta = -grad by Cholesky. hess is the upper
// triangle of a k x k symmetric matrix, row-major. Should rounding make it
// look indefinite, a growing ridge is added to the diagonal.
func solveNewton(hess, grad, delta []float64, k int) error {
	maxDiag := 0.0
	for j := range k {
		maxDiag = max(maxDiag, math.Abs(hess[j*k+j]))
	}
	a := make([]float64, len(hess))
	b := mat.NewVecDense(k, nil)
	for j := range k {
		b.SetVec(j, -grad[j])
	}
	ridge := 0.0
	for range 20 {
		copy(a, hess)
		for j := range k {
			a[j*k+j] += ridge
		}
		var ch mat.Cholesky
		if ch.Factorize(mat.NewSymDense(k, a)) {
			x := mat.NewVecDense(k, delta)
			if err := ch.SolveVecTo(x, b); err == nil {
				ok := true
				for _, v := range delta {
					ok = ok && finite(v)
				}
				if ok {
					return nil
				}
			}
		}
		if ridge == 0 {
			ridge = 1e-12 * max(maxDiag, 1)
		} else {
			ridge *= 100
		}
	}
	return errors.New("Newton system could not be solved")
}

// accumulator computes the loss, gradient and Hessian over a dataset in
// parallel blocks with a fixed summation order.
type accumulator struct {
	d      *Dataset
	blocks [][2]int // row ranges
	// hstride: the Hessian is summed over about one row in hstride, and
	// scaled up, when there are more than newtonHessRows rows.
	hstride int
	// Per block scratch: a row buffer for Syrk, and the block's partial
	// loss, gradient and Hessian.
	parts []blockPart
}

type blockPart struct {
	loss float64
	grad []float64
	hess []float64
	buf  []float64
	row  []float64 // a compact dataset's row, expanded
}

// Rows per Syrk call: large enough to amortise the call, small enough to
// stay in cache.
const syrkRows = 128

// maxBlocks bounds the number of blocks and so the memory spent on
// partial Hessians; minBlockRows keeps small datasets in one block.
const (
	maxBlocks    = 64
	minBlockRows = 4096
)

// newtonHessRows bounds the rows the Hessian is summed over. The gradient
// and the loss always take every row, so the fit converges to the same
// optimum; a Hessian from a fixed pseudo-random sample of 50,000 rows is
// close enough to the full one that Newton's steps lose little, and a
// million rows of hundreds of features cost a tenth of the time.
const newtonHessRows = 50_000

func newAccumulator(d *Dataset) *accumulator {
	n := d.Rows()
	nb := min(maxBlocks, max(1, (n+minBlockRows-1)/minBlockRows))
	a := &accumulator{d: d, blocks: make([][2]int, nb), parts: make([]blockPart, nb), hstride: max(1, (n+newtonHessRows-1)/newtonHessRows)}
	for b := range nb {
		a.blocks[b] = [2]int{b * n / nb, (b + 1) * n / nb}
	}
	return a
}

// run calls f for every block, on up to GOMAXPROCS goroutines.
func (a *accumulator) run(f func(b int)) {
	workers := min(runtime.GOMAXPROCS(0), len(a.blocks))
	if workers <= 1 {
		for b := range a.blocks {
			f(b)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				b := int(next.Add(1)) - 1
				if b >= len(a.blocks) {
					return
				}
				f(b)
			}
		})
	}
	wg.Wait()
}

// logLoss1 is the log loss of one row with logit z and label y, computed
// stably: log(1+exp(z)) - y*z.
func logLoss1(z, y float64) float64 {
	return max(z, 0) + math.Log1p(math.Exp(-math.Abs(z))) - y*z
}

// loss is the weighted log loss at theta (intercept first), without the
// penalty.
func (a *accumulator) loss(theta []float64) float64 {
	d := a.d
	a.run(func(b int) {
		part := &a.parts[b]
		if d.derive != nil && part.row == nil {
			part.row = make([]float64, d.P)
		}
		s := 0.0
		for i := a.blocks[b][0]; i < a.blocks[b][1]; i++ {
			w := d.Weight(i)
			if w == 0 {
				continue
			}
			z := theta[0] + dot(theta[1:], d.features(i, part.row))
			s += w * logLoss1(z, d.Y[i])
		}
		part.loss = s
	})
	total := 0.0
	for b := range a.parts {
		total += a.parts[b].loss
	}
	return total
}

// gradHess fills grad and the upper triangle of hess (k x k, row-major) at
// theta and returns the loss, all without the penalty. A nil hess skips
// the Hessian.
func (a *accumulator) gradHess(theta, grad, hess []float64) float64 {
	d := a.d
	k := d.P + 1
	a.run(func(b int) {
		part := &a.parts[b]
		if part.grad == nil {
			part.grad = make([]float64, k)
			part.hess = make([]float64, k*k)
			part.buf = make([]float64, syrkRows*k)
			if d.derive != nil {
				part.row = make([]float64, d.P)
			}
		}
		clear(part.grad)
		if hess != nil {
			clear(part.hess)
		}
		h := blas64.Symmetric{Uplo: blas.Upper, N: k, Stride: k, Data: part.hess}
		s := 0.0
		rows := 0
		for i := a.blocks[b][0]; i < a.blocks[b][1]; i++ {
			w := d.Weight(i)
			if w == 0 {
				continue
			}
			x := d.features(i, part.row)
			z := theta[0] + dot(theta[1:], x)
			y := d.Y[i]
			s += w * logLoss1(z, y)
			pr := sigmoid(z)
			r := w * (pr - y)
			part.grad[0] += r
			g := part.grad[1:]
			for j, v := range x {
				g[j] += r * v
			}
			if hess == nil || a.hstride > 1 && mix64(uint64(i))%uint64(a.hstride) != 0 {
				continue
			}
			// The row, scaled by sqrt(w*p*(1-p)), joins the Syrk buffer.
			c := math.Sqrt(w * pr * (1 - pr))
			row := part.buf[rows*k : (rows+1)*k]
			row[0] = c
			for j, v := range x {
				row[j+1] = c * v
			}
			rows++
			if rows == syrkRows {
				blas64.Syrk(blas.Trans, 1, blas64.General{Rows: rows, Cols: k, Stride: k, Data: part.buf}, 1, h)
				rows = 0
			}
		}
		if rows > 0 {
			blas64.Syrk(blas.Trans, 1, blas64.General{Rows: rows, Cols: k, Stride: k, Data: part.buf[:rows*k]}, 1, h)
		}
		part.loss = s
	})
	clear(grad)
	clear(hess)
	total := 0.0
	if hess == nil {
		for b := range a.parts {
			total += a.parts[b].loss
			for j, v := range a.parts[b].grad {
				grad[j] += v
			}
		}
		return total
	}
	for b := range a.parts {
		part := &a.parts[b]
		total += part.loss
		for j, v := range part.grad {
			grad[j] += v
		}
		for j, v := range part.hess {
			hess[j] += v
		}
	}
	if a.hstride > 1 {
		scale := float64(a.hstride)
		for j := range hess {
			hess[j] *= scale
		}
	}
	return total
}

// mix64 scrambles a row index (splitmix64's finaliser) so that the rows
// the Hessian samples follow no pattern of the data's order.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func dot(a, b []float64) float64 {
	s := 0.0
	for j, v := range b {
		s += a[j] * v
	}
	return s
}
