package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"
)

// FitOptions control FitModel.
type FitOptions struct {
	// Encoder controls the encoder learned from the examples; its Knots
	// 0 takes DefaultKnots here, a negative number no hinges.
	Encoder EncoderOptions
	// L2, when above 0, is the penalty used as given; 0 picks it from
	// L2Grid by inner cross-validation.
	L2 float64
	// Interactions caps the pairwise interactions kept; 0 takes
	// DefaultInteractions, a negative number none.
	Interactions int
	// Folds is the number of inner cross-validation folds; 0 takes
	// DefaultInnerFolds.
	Folds int
	// Seed shuffles the rows into inner folds.
	Seed uint64
	// EncoderRows bounds the rows the encoder is learned from (an evenly
	// spaced sample); 0 takes DefaultEncoderRows.
	EncoderRows int
	// SelectRows bounds the rows the penalty and the interactions are
	// chosen on (an evenly spaced sample when there are more); the final
	// model is fitted on every row. 0 takes DefaultSelectRows.
	SelectRows int
}

// FitModel's defaults.
const (
	DefaultInteractions = 10
	DefaultInnerFolds   = 3
	DefaultSelectRows   = 20_000
	DefaultEncoderRows  = 50_000
)

// L2Grid is the short grid of penalties FitModel chooses from, strongest
// first: each fit starts from the previous one, so the walk down the grid
// costs little more than one fit.
var L2Grid = []float64{100, 30, 10, 3, 1, 0.3, 0.1}

// finalLossTol ends the final fit once a Newton step promises to lower the
// objective by less than this share of it: on a million rows of log loss
// about 0.4 each, a few hundredths in all, or coefficients within about
// 1e-3 of the optimum.
const finalLossTol = 1e-7

// interactionMargin is the relative improvement of the inner
// cross-validated log loss an interaction must bring to be kept: with
// hundreds of pairs screened, the best of them improves the loss a little
// by chance alone.
const interactionMargin = 2e-3

// screenFactor times the cap on interactions is the number of pairs,
// ranked by a score test, whose held-out gain is measured.
const screenFactor = 4

// maxPairBasis bounds the features of one signal that enter its
// interactions (the most frequent categories of a string signal).
const maxPairBasis = 4

// Selection is what FitModel chose, and why.
type Selection struct {
	// L2 is the penalty of the final model.
	L2 float64 `json:"l2"`
	// L2FromCV reports that L2 was chosen by cross-validation.
	L2FromCV bool `json:"l2_from_cv"`
	// CVLogLoss is the inner cross-validated log loss (per unit of
	// weight) of the chosen model.
	CVLogLoss float64 `json:"cv_log_loss"`
	// Interactions are the pairs of signals kept, as "a×b".
	Interactions []string `json:"interactions"`
	// Rows is the number of rows the choices were made on.
	Rows int `json:"rows"`
}

// FitModel learns a model's encoder from examples, chooses its penalty and
// a few pairwise interactions by inner cross-validation on (a sample of)
// them, and fits the final model on all of them. Everything is
// deterministic for a given Seed.
//
// The penalty is the one of L2Grid with the least cross-validated log
// loss. Interactions are then screened pair by pair among the signals: each
// pair's products are fitted on every inner training fold on top of the
// current model's logits, and the pairs whose held-out loss drops most are
// tried in turn, refitting the whole model: a pair stays only when the
// cross-validated loss improves by interactionMargin.
func FitModel(ctx context.Context, tr Trainer, rules []string, src Examples, opt FitOptions) (*Design, Fit, Selection, error) {
	n := src.Len()
	if n == 0 {
		return nil, Fit{}, Selection{}, errors.New("fit model: no examples")
	}
	if opt.Folds <= 0 {
		opt.Folds = DefaultInnerFolds
	}
	if opt.SelectRows <= 0 {
		opt.SelectRows = DefaultSelectRows
	}
	if opt.Interactions == 0 {
		opt.Interactions = DefaultInteractions
	}
	if opt.Encoder.Knots == 0 {
		opt.Encoder.Knots = DefaultKnots
	}
	if opt.EncoderRows <= 0 {
		opt.EncoderRows = DefaultEncoderRows
	}
	sample := readSpaced(src, opt.EncoderRows)
	signals := make([]map[string]any, len(sample))
	for i, ex := range sample {
		signals[i] = ex.Signals
	}
	design := &Design{Rules: rules, Encoder: FitEncoder(signals, opt.Encoder)}
	design.Encoder.Features = append(design.Encoder.Features, fitChannel(sample, opt.Encoder)...)
	sample, signals = nil, nil
	sel := readSpaced(src, opt.SelectRows)
	s := Selection{L2: opt.L2, Rows: len(sel)}
	if opt.L2 <= 0 {
		s.L2 = DefaultL2
	}
	cv, err := newInnerCV(design, sel, opt.Folds, opt.Seed)
	if err != nil && !errors.Is(err, errTooFewForCV) {
		return nil, Fit{}, Selection{}, fmt.Errorf("fit model: %w", err)
	}
	if cv != nil {
		if opt.L2 <= 0 {
			best, worse := math.Inf(1), 0
			for _, l2 := range L2Grid {
				loss, err := cv.run(ctx, l2)
				if err != nil {
					return nil, Fit{}, Selection{}, fmt.Errorf("fit model: penalty %g: %w", l2, err)
				}
				if loss < best {
					best, s.L2, worse = loss, l2, 0
				} else if worse++; worse == 2 {
					// The loss is rising as the penalty weakens: the
					// rest of the grid overfits more.
					break
				}
			}
			s.L2FromCV = true
		}
		if s.CVLogLoss, err = cv.run(ctx, s.L2); err != nil {
			return nil, Fit{}, Selection{}, fmt.Errorf("fit model: %w", err)
		}
		if opt.Interactions > 0 {
			if err := cv.interactions(ctx, tr, s.L2, opt.Interactions, &s); err != nil {
				return nil, Fit{}, Selection{}, fmt.Errorf("fit model: interactions: %w", err)
			}
			design = cv.design
		}
	}
	// The model is stored with the oldest encoding that reads it, so a
	// model without shapes or interactions stays loadable by a binary
	// from before them.
	design.Encoder.Version = design.Encoder.NeededVersion()
	// Coefficients to five digits, or a loss within finalLossTol of its
	// minimum, are plenty for a model, and on millions of rows, where
	// Newton's Hessian comes from a sample and it converges linearly, the
	// last digits cost an iteration each.
	to := TrainOptions{L2: s.L2, Tol: 1e-5, LossTol: finalLossTol}
	if cv != nil && len(cv.fits) > 0 {
		// From the inner fit, near the optimum, one Hessian serves.
		to.Chord = true
	}
	if cv != nil && len(cv.fits) > 0 {
		to.Init = &cv.fits[0]
	}
	var ds *Dataset
	if _, ok := tr.(Newton); ok {
		ds = design.compactDataset(src)
	} else {
		ds = design.streamDataset(src)
	}
	fit, err := tr.Train(ctx, ds, to)
	if err != nil {
		return nil, Fit{}, Selection{}, fmt.Errorf("fit model: %w", err)
	}
	return design, fit, s, nil
}

// Examples are the rows FitModel learns from, read by index as often as
// it needs, so that a caller with millions of them need not hold them all
// as maps at once. At is called from several goroutines at once; the
// Example it returns is not modified, and FitModel keeps some of them
// while it works, so At must not reuse their maps or slices.
type Examples interface {
	Len() int
	At(i int) Example
}

// ExampleSlice is Examples held in a slice.
type ExampleSlice []Example

// Len is the number of examples.
func (s ExampleSlice) Len() int { return len(s) }

// At is example i.
func (s ExampleSlice) At(i int) Example { return s[i] }

// fitChannel returns the features of the examples' channel, read as a
// string signal named ChannelSignal: one per channel seen often enough and
// the "other" bucket, with a missing indicator if some examples have no
// channel; none when every example came by the same channel (or none).
// Channel features enter the model like any signal's, and its
// interactions with the signals are screened like theirs.
func fitChannel(examples []Example, opt EncoderOptions) []Feature {
	if opt.MinCount <= 0 {
		opt.MinCount = DefaultMinCount
	}
	if opt.MaxCategories <= 0 {
		opt.MaxCategories = DefaultMaxCategories
	}
	rows := make([]map[string]any, len(examples))
	for i, ex := range examples {
		if ex.Channel != "" {
			rows[i] = map[string]any{ChannelSignal: ex.Channel}
		}
	}
	return fitSignal(rows, ChannelSignal, opt)
}

// readSpaced reads min(src.Len(), k) evenly spaced examples of src, in
// parallel.
func readSpaced(src Examples, k int) []Example {
	idx := spaced(src.Len(), k)
	out := make([]Example, len(idx))
	const chunk = 1024
	forEach(context.Background(), (len(idx)+chunk-1)/chunk, func(c int) {
		for j := c * chunk; j < min(len(idx), (c+1)*chunk); j++ {
			out[j] = src.At(idx[j])
		}
	})
	return out
}

// spaced lists min(n, k) evenly spaced indexes of [0, n), all of them
// when n <= k.
func spaced(n, k int) []int {
	m := min(n, k)
	out := make([]int, m)
	for j := range out {
		out[j] = j * n / m
	}
	return out
}

// compactDataset lays src out in the design keeping only the columns that
// are not hinges or products of others: those are recomputed, exactly as
// Encode computes them, as Newton reads each row, so a million rows of
// fifty signals with their shapes take a fifth of the memory.
func (d *Design) compactDataset(src Examples) *Dataset {
	nr := len(d.Rules)
	feats := d.Encoder.Features
	p := d.Width()
	der := &derivation{ops: make([]deriveOp, p)}
	for j := range nr {
		der.ops[j] = deriveOp{kind: opStored, a: der.stride}
		der.stride++
	}
	var stored []int // full columns that are stored, in order
	for j := range nr {
		stored = append(stored, j)
	}
	for j, f := range feats {
		op := deriveOp{kind: opStored, a: der.stride}
		switch f.Kind {
		case KindHinge, KindLogHinge:
			if b := hingeBase(feats, j); b >= 0 {
				op = deriveOp{kind: opHinge, a: nr + b, knot: f.Knot}
			}
		case KindProduct:
			if len(f.Of) == 2 && f.Of[0] >= 0 && f.Of[1] >= 0 && f.Of[0] < j && f.Of[1] < j {
				op = deriveOp{kind: opProduct, a: nr + f.Of[0], b: nr + f.Of[1]}
			}
		}
		if op.kind == opStored {
			stored = append(stored, nr+j)
			der.stride++
		}
		der.ops[nr+j] = op
	}
	if !der.plan() {
		return d.streamDataset(src)
	}
	n := src.Len()
	ds := &Dataset{X: make([]float64, n*der.stride), Y: make([]float64, n), P: p, derive: der}
	index := make(map[string]int, nr)
	for i, r := range d.Rules {
		index[r] = i
	}
	plan := newEncodePlan(&d.Encoder)
	readsChannel := plan.channelSlot >= 0
	w := make([]float64, n)
	weighted := atomic.Bool{}
	// Rows are encoded in parallel chunks, each row on its own, so the
	// result does not depend on the number of workers.
	const chunk = 4096
	forEach(context.Background(), (n+chunk-1)/chunk, func(c int) {
		var vals []any
		full := make([]float64, p)
		for i := c * chunk; i < min(n, (c+1)*chunk); i++ {
			ex := src.At(i)
			clear(full[:nr])
			for _, h := range ex.Hits {
				if j, ok := index[h]; ok {
					full[j] = 1
				}
			}
			var channel any
			if readsChannel {
				channel = channelValue(ex.Channel)
			}
			vals, _, _ = plan.encode(channel, ex.Signals, vals, full[nr:nr:p])
			row := ds.X[i*der.stride : (i+1)*der.stride]
			for k, j := range stored {
				row[k] = full[j]
			}
			if ex.Label {
				ds.Y[i] = 1
			}
			if w[i] = exampleWeight(ex); w[i] != 1 {
				weighted.Store(true)
			}
		}
	})
	if weighted.Load() {
		ds.W = w
	}
	return ds
}

// hingeBase is the index of the number feature hinge j bends: the same
// signal, transform, centre, scale and clipping, before it; -1 if none.
func hingeBase(feats []Feature, j int) int {
	h := feats[j]
	want := KindNumber
	if h.Kind == KindLogHinge {
		want = KindLog
	}
	for b := range j {
		f := feats[b]
		if f.Kind == want && f.Signal == h.Signal && f.Center == h.Center && f.Scale == h.Scale && f.Min == h.Min && f.Max == h.Max && f.Scale > 0 {
			return b
		}
	}
	return -1
}

// streamDataset is Dataset over src, for trainers that need every column
// stored.
func (d *Design) streamDataset(src Examples) *Dataset {
	ds := &Dataset{P: d.Width()}
	for i := range src.Len() {
		d.Append(ds, src.At(i))
	}
	return ds
}

var errTooFewForCV = errors.New("too few rows of a class for inner cross-validation")

// innerCV holds a data set split into folds by row weights: the training
// set of fold f is the data set with the rows of fold f weighing 0, so no
// fold copies the data.
type innerCV struct {
	design   *Design
	examples []Example
	ds       *Dataset
	fold     []int
	masks    [][]float64 // per fold: the row weights with the fold's rows at 0
	fits     []Fit       // per fold: the last fit, the next one's start
	hess     [][]float64 // per fold: the Hessian of its first fit, full
}

func newInnerCV(design *Design, examples []Example, k int, seed uint64) (*innerCV, error) {
	labels := make([]bool, len(examples))
	var pos int
	for i, ex := range examples {
		labels[i] = ex.Label
		if ex.Label {
			pos++
		}
	}
	if pos < 2*k || len(examples)-pos < 2*k {
		return nil, errTooFewForCV
	}
	c := &innerCV{design: design, examples: examples, fold: StratifiedFolds(labels, k, seed)}
	c.ds = design.Dataset(examples)
	c.masks = make([][]float64, k)
	for f := range k {
		m := make([]float64, len(examples))
		for i := range m {
			if c.fold[i] != f {
				m[i] = c.ds.Weight(i)
			}
		}
		c.masks[f] = m
	}
	c.fits = make([]Fit, k)
	c.hess = make([][]float64, k)
	return c, nil
}

// StratifiedFolds assigns each row a fold in [0, k): positives and
// negatives are shuffled separately with the seed and dealt round-robin,
// so every fold holds about the same share of each class.
func StratifiedFolds(labels []bool, k int, seed uint64) []int {
	var pos, neg []int
	for i, y := range labels {
		if y {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x686f746c616e65))
	fold := make([]int, len(labels))
	next := 0
	for _, class := range [][]int{pos, neg} {
		rng.Shuffle(len(class), func(a, b int) { class[a], class[b] = class[b], class[a] })
		for _, i := range class {
			fold[i] = next % k
			next++
		}
	}
	return fold
}

// run fits every fold at penalty l2, each starting from its last fit, and
// returns the held-out log loss per unit of weight. A fold's first fit is
// a full Newton fit; later ones (another penalty, added columns) reuse
// that fit's Hessian as a fixed preconditioner with the exact gradient
// and a line search (the chord method), so that walking the grid and
// trying interactions costs gradient passes, not Hessians. The folds are
// fitted in parallel, each on its own, so the result does not depend on
// the number of processors.
func (c *innerCV) run(ctx context.Context, l2 float64) (float64, error) {
	errs := make([]error, len(c.masks))
	var wg sync.WaitGroup
	for f := range c.masks {
		wg.Go(func() { errs[f] = c.fitFold(ctx, f, l2) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	var loss, weight float64
	for i, f := range c.fold {
		w := c.ds.Weight(i)
		loss += w * logLoss1(c.fits[f].Logit(c.ds.Row(i)), c.ds.Y[i])
		weight += w
	}
	return loss / weight, nil
}

// chord iterations: at most this many, stopping when the Newton decrement
// falls under chordTol relative to the objective.
const (
	chordMaxIter = 100
	chordRefresh = 8
	chordTol     = 1e-10
)

func (c *innerCV) fitFold(ctx context.Context, f int, l2 float64) error {
	d := &Dataset{X: c.ds.X, Y: c.ds.Y, W: c.masks[f], P: c.ds.P}
	k := d.P + 1
	if c.hess[f] == nil {
		fit, err := Newton{}.Train(ctx, d, TrainOptions{L2: l2, Chord: true})
		if err != nil {
			return fmt.Errorf("inner fold %d: %w", f+1, err)
		}
		c.fits[f] = fit
		c.hess[f] = hessianAt(d, append([]float64{fit.Intercept}, fit.Coef...))
		return nil
	}
	if kh := int(math.Sqrt(float64(len(c.hess[f])))); kh < k {
		c.hess[f] = extendHess(d, c.hess[f], kh, c.fits[f])
	}
	theta := make([]float64, k)
	theta[0] = c.fits[f].Intercept
	copy(theta[1:], c.fits[f].Coef)
	m := slices.Clone(c.hess[f])
	for j := 1; j < k; j++ {
		m[j*k+j] += l2
	}
	var ch mat.Cholesky
	if !ch.Factorize(mat.NewSymDense(k, m)) {
		// The grown Hessian mixes two fits' weights and lost
		// definiteness: take the Hessian at the current fit instead.
		c.hess[f] = hessianAt(d, theta)
		copy(m, c.hess[f])
		for j := 1; j < k; j++ {
			m[j*k+j] += l2
		}
		if !ch.Factorize(mat.NewSymDense(k, m)) {
			return fmt.Errorf("inner fold %d: the Hessian is not positive definite", f+1)
		}
	}
	grad := make([]float64, k)
	trial := make([]float64, k)
	trialGrad := make([]float64, k)
	delta := mat.NewVecDense(k, nil)
	loss := lossGrad(d, theta, grad, l2)
	for it := range chordMaxIter {
		if err := ctx.Err(); err != nil {
			return err
		}
		if it > 0 && it%chordRefresh == 0 {
			// Slow progress: the fixed Hessian is too far from the
			// current one; take the current one from here on.
			c.hess[f] = hessianAt(d, theta)
			copy(m, c.hess[f])
			for j := 1; j < k; j++ {
				m[j*k+j] += l2
			}
			if !ch.Factorize(mat.NewSymDense(k, m)) {
				return fmt.Errorf("inner fold %d: the Hessian is not positive definite", f+1)
			}
		}
		if err := ch.SolveVecTo(delta, mat.NewVecDense(k, grad)); err != nil {
			return fmt.Errorf("inner fold %d: %w", f+1, err)
		}
		slope := 0.0
		for j := range k {
			slope -= grad[j] * delta.AtVec(j)
		}
		if !(-slope > chordTol*(1+math.Abs(loss))) {
			break
		}
		step, ok := 1.0, false
		var next float64
		for range 40 {
			for j := range k {
				trial[j] = theta[j] - step*delta.AtVec(j)
			}
			if next = lossGrad(d, trial, trialGrad, l2); next <= loss+1e-4*step*slope {
				ok = true
				break
			}
			step /= 2
		}
		if !ok {
			break
		}
		copy(theta, trial)
		copy(grad, trialGrad)
		loss = next
	}
	c.fits[f] = Fit{Intercept: theta[0], Coef: theta[1:], Converged: true}
	return nil
}

// hessianAt is the unpenalised Hessian of d's log loss at theta, full.
func hessianAt(d *Dataset, theta []float64) []float64 {
	k := d.P + 1
	h := make([]float64, k*k)
	newAccumulator(d).gradHess(theta, make([]float64, k), h)
	for a := range k {
		for b := range a {
			h[a*k+b] = h[b*k+a]
		}
	}
	return h
}

// lossGrad is the penalised objective at theta (intercept first) over the
// rows of positive weight, and its gradient into grad unless grad is nil.
func lossGrad(d *Dataset, theta, grad []float64, l2 float64) float64 {
	if grad != nil {
		clear(grad)
	}
	loss := 0.0
	for i := range d.Y {
		w := d.Weight(i)
		if w == 0 {
			continue
		}
		x := d.X[i*d.P : (i+1)*d.P]
		z := theta[0] + dot(theta[1:], x)
		// One exponential for the loss and the probability.
		e := math.Exp(-math.Abs(z))
		loss += w * (max(z, 0) + math.Log1p(e) - d.Y[i]*z)
		if grad != nil {
			p := 1 / (1 + e)
			if z < 0 {
				p = e / (1 + e)
			}
			r := w * (p - d.Y[i])
			grad[0] += r
			for j, v := range x {
				grad[j+1] += r * v
			}
		}
	}
	for j := 1; j < len(theta); j++ {
		loss += l2 / 2 * theta[j] * theta[j]
		if grad != nil {
			grad[j] += l2 * theta[j]
		}
	}
	return loss
}

// extendHess grows a fold's kh x kh Hessian to the data set's columns,
// which extend the old ones at the end: the new rows and columns are
// weighed at the fold's current fit.
func extendHess(d *Dataset, old []float64, kh int, fit Fit) []float64 {
	k := d.P + 1
	h := make([]float64, k*k)
	for a := range kh {
		copy(h[a*k:a*k+kh], old[a*kh:(a+1)*kh])
	}
	row := make([]float64, k)
	for i := range d.Y {
		w := d.Weight(i)
		if w == 0 {
			continue
		}
		x := d.X[i*d.P : (i+1)*d.P]
		z := fit.Intercept + dot(fit.Coef, x[:len(fit.Coef)])
		p := sigmoid(z)
		v := w * p * (1 - p)
		row[0] = 1
		copy(row[1:], x)
		for a := kh; a < k; a++ {
			va := v * row[a]
			if va == 0 {
				continue
			}
			for b := range k {
				h[a*k+b] += va * row[b]
			}
		}
	}
	for a := kh; a < k; a++ {
		for b := range kh {
			h[b*k+a] = h[a*k+b]
		}
	}
	return h
}

// withProducts is ds with one column appended per pair of encoder feature
// indexes in of, their product: what the design with those product
// features appended gives, without encoding the signals again. nr is the
// number of rule columns before the features.
func withProducts(ds *Dataset, nr int, of [][2]int) *Dataset {
	n, p := ds.Rows(), ds.P
	q := p + len(of)
	out := &Dataset{X: make([]float64, n*q), Y: ds.Y, W: ds.W, P: q}
	for i := range n {
		src, dst := ds.X[i*p:(i+1)*p], out.X[i*q:(i+1)*q]
		copy(dst, src)
		for j, ab := range of {
			dst[p+j] = src[nr+ab[0]] * src[nr+ab[1]]
		}
	}
	return out
}

// pairCandidate is a pair of signals and the products that stand for it.
type pairCandidate struct {
	name  string
	of    [][2]int // encoder feature indexes multiplied
	gain  float64  // held-out loss drop, screened on the current logits
	order int
}

// interactions screens every pair of signals and keeps, greedily, up to
// max of them that improve the cross-validated loss.
func (c *innerCV) interactions(ctx context.Context, tr Trainer, l2 float64, maxPairs int, s *Selection) error {
	cands := c.pairCandidates()
	if len(cands) == 0 {
		return nil
	}
	if err := c.screen(ctx, cands, l2, screenFactor*maxPairs); err != nil {
		return err
	}
	slices.SortStableFunc(cands, func(a, b pairCandidate) int {
		if a.gain != b.gain {
			if a.gain > b.gain {
				return -1
			}
			return 1
		}
		return a.order - b.order
	})
	current := s.CVLogLoss
	tried := 0
	for _, pc := range cands {
		if len(s.Interactions) >= maxPairs || tried >= 2*maxPairs || !(pc.gain > interactionMargin*current/4) {
			break
		}
		tried++
		prev, prevDS, prevFits, prevHess := c.design, c.ds, slices.Clone(c.fits), slices.Clone(c.hess)
		next := &Design{Rules: c.design.Rules, Encoder: cloneEncoder(c.design.Encoder)}
		for _, of := range pc.of {
			a, b := next.Encoder.Features[of[0]], next.Encoder.Features[of[1]]
			next.Encoder.Features = append(next.Encoder.Features, Feature{Name: a.Name + "×" + b.Name, Signal: a.Signal,
				Kind: KindProduct, Of: []int{of[0], of[1]}})
		}
		c.design, c.ds = next, withProducts(c.ds, len(c.design.Rules), pc.of)
		for f := range c.fits {
			// The new columns start at 0: the previous fit extended.
			c.fits[f].Coef = append(slices.Clone(c.fits[f].Coef), make([]float64, len(pc.of))...)
		}
		loss, err := c.run(ctx, l2)
		if err != nil {
			return err
		}
		if loss < current*(1-interactionMargin) {
			current = loss
			s.Interactions = append(s.Interactions, pc.name)
			continue
		}
		c.design, c.ds, c.fits, c.hess = prev, prevDS, prevFits, prevHess
	}
	s.CVLogLoss = current
	return nil
}

// pairCandidates lists every pair of signals with the features that enter
// their products: a number's scaled value, a boolean, and a string's most
// frequent categories; hinges and missing indicators stay out.
func (c *innerCV) pairCandidates() []pairCandidate {
	feats := c.design.Encoder.Features
	var names []string
	basis := map[string][]int{}
	for j, f := range feats {
		switch f.Kind {
		case KindNumber, KindLog, KindBool, KindCategory:
		default:
			continue
		}
		if _, ok := basis[f.Signal]; !ok {
			names = append(names, f.Signal)
		}
		if len(basis[f.Signal]) < maxPairBasis {
			basis[f.Signal] = append(basis[f.Signal], j)
		}
	}
	var out []pairCandidate
	for a := range names {
		for b := a + 1; b < len(names); b++ {
			pc := pairCandidate{name: names[a] + "×" + names[b], order: len(out)}
			for _, x := range basis[names[a]] {
				for _, y := range basis[names[b]] {
					pc.of = append(pc.of, [2]int{x, y})
				}
			}
			out = append(out, pc)
		}
	}
	return out
}

// screen sets each candidate's gain: on every inner fold, the pair's
// products alone are fitted on the training rows with the current fold
// model's logits held fixed, and the gain is how much the held-out log
// loss drops, per unit of weight, summed over folds. Candidates are
// screened in parallel; each is independent, so the result does not
// depend on the number of workers.
func (c *innerCV) screen(ctx context.Context, cands []pairCandidate, l2 float64, keep int) error {
	n := len(c.ds.Y)
	nr := len(c.design.Rules)
	logits := make([][]float64, len(c.fits))
	for f := range c.fits {
		z := make([]float64, n)
		for i := range n {
			z[i] = c.fits[f].Logit(c.ds.Row(i))
		}
		logits[f] = z
	}
	var total float64
	for i := range n {
		total += c.ds.Weight(i)
	}
	// First a score test on the out-of-fold residuals, one pass per pair,
	// ranks every pair; only the best keep are fitted fold by fold.
	resid := make([]float64, n)
	curv := make([]float64, n)
	for i, f := range c.fold {
		p := sigmoid(logits[f][i])
		w := c.ds.Weight(i)
		resid[i], curv[i] = w*(p-c.ds.Y[i]), w*p*(1-p)
	}
	score := make([]float64, len(cands))
	forEach(ctx, len(cands), func(k int) {
		s := 0.0
		for _, of := range cands[k].of {
			var g, h float64
			for i := range n {
				row := c.ds.Row(i)
				x := row[nr+of[0]] * row[nr+of[1]]
				g += resid[i] * x
				h += curv[i] * x * x
			}
			s += g * g / (h + l2)
		}
		score[k] = s
	})
	order := make([]int, len(cands))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if score[a] != score[b] {
			if score[a] > score[b] {
				return -1
			}
			return 1
		}
		return a - b
	})
	order = order[:min(keep, len(order))]
	forEach(ctx, len(order), func(k int) {
		pc := &cands[order[k]]
		q := len(pc.of)
		cols := make([]float64, n*q)
		for i := range n {
			row := c.ds.Row(i)
			for j, of := range pc.of {
				cols[i*q+j] = row[nr+of[0]] * row[nr+of[1]]
			}
		}
		gain := 0.0
		for f := range c.fits {
			gain += blockGain(cols, q, logits[f], c.ds, c.masks[f], c.fold, f, l2)
		}
		pc.gain = gain / total
	})
	return ctx.Err()
}

// forEach calls f(0), ..., f(n-1) on up to GOMAXPROCS goroutines; the
// calls must be independent.
func forEach(ctx context.Context, n int, f func(k int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				f(k)
			}
		})
	}
	wg.Wait()
}

// blockGain fits the q columns of cols (row-major, one row per data row)
// by a few Newton steps on the rows of weight w > 0 with offsets z and
// penalty l2, and returns how much the weighted log loss of the rows of
// fold f drops.
func blockGain(cols []float64, q int, z []float64, ds *Dataset, w []float64, fold []int, f int, l2 float64) float64 {
	y := ds.Y
	beta := make([]float64, q)
	g := make([]float64, q)
	h := make([]float64, q*q)
	step := make([]float64, q)
	n := len(y)
	for range 4 {
		clear(g)
		clear(h)
		for i := range n {
			if w[i] == 0 {
				continue
			}
			x := cols[i*q : (i+1)*q]
			zi := z[i] + dot(beta, x)
			p := sigmoid(zi)
			r := w[i] * (p - y[i])
			v := w[i] * p * (1 - p)
			for a, xa := range x {
				if xa == 0 {
					continue
				}
				g[a] += r * xa
				for b := a; b < q; b++ {
					h[a*q+b] += v * xa * x[b]
				}
			}
		}
		for a := range q {
			g[a] += l2 * beta[a]
			h[a*q+a] += l2
			for b := 0; b < a; b++ {
				h[a*q+b] = h[b*q+a]
			}
		}
		if !solveSmall(h, g, step, q) {
			return 0
		}
		for a := range q {
			beta[a] -= step[a]
		}
	}
	gain := 0.0
	for i := range n {
		if fold[i] != f {
			continue
		}
		x := cols[i*q : (i+1)*q]
		gain += ds.Weight(i) * (logLoss1(z[i], y[i]) - logLoss1(z[i]+dot(beta, x), y[i]))
	}
	return gain
}

// solveSmall solves the symmetric positive definite system a*x = b (q x q,
// row-major, full) by Cholesky, reporting false when a is not positive
// definite.
func solveSmall(a, b, x []float64, q int) bool {
	l := make([]float64, q*q)
	for i := range q {
		for j := 0; j <= i; j++ {
			s := a[i*q+j]
			for k := range j {
				s -= l[i*q+k] * l[j*q+k]
			}
			if i == j {
				if !(s > 0) {
					return false
				}
				l[i*q+i] = math.Sqrt(s)
			} else {
				l[i*q+j] = s / l[j*q+j]
			}
		}
	}
	for i := range q {
		s := b[i]
		for k := range i {
			s -= l[i*q+k] * x[k]
		}
		x[i] = s / l[i*q+i]
	}
	for i := q - 1; i >= 0; i-- {
		s := x[i]
		for k := i + 1; k < q; k++ {
			s -= l[k*q+i] * x[k]
		}
		x[i] = s / l[i*q+i]
	}
	return true
}
