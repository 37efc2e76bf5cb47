package model

import (
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// EncoderOptions control FitEncoder.
type EncoderOptions struct {
	// MinCount is the least number of training rows a string value needs
	// to get its own category feature; rarer values share the signal's
	// "other" feature. 0 takes DefaultMinCount.
	MinCount int
	// MaxCategories caps the category features of one signal (the most
	// frequent values win); 0 takes DefaultMaxCategories.
	MaxCategories int
	// Knots is the most hinges a number signal gets besides its line, at
	// quantiles of its values; 0 or a negative number gives none, the
	// version-1 layout. Hinges want a penalty chosen from the data, so
	// FitModel, which chooses it, takes DefaultKnots when this is 0.
	Knots int
}

// FitEncoder's defaults.
const (
	DefaultMinCount      = 5
	DefaultMaxCategories = 50
	DefaultKnots         = 4
)

// Number encoding: the percentiles clipped to after the transform, and
// the skewness above which a non-negative signal is log-transformed.
const (
	clipLow      = 0.005
	clipHigh     = 0.995
	skewLogLimit = 1.0
)

// FitEncoder learns from training rows how to encode each signal.
//
// A signal's type is the majority among its present values (numbers,
// booleans, strings; ties go to number, then bool). Numbers become one
// feature: non-negative signals with a heavy right tail (skewness above 1)
// are log-transformed (KindLog), then clipped to the 0.5th and 99.5th
// percentiles and centred on the median and scaled by IQR/1.349 (the
// standard deviation when the IQR is 0, and 1 when that is 0 too). With
// Knots, a number also gets up to that many hinges (KindHinge,
// KindLogHinge) at quantiles of its values, so the model can learn its
// shape as a piecewise-linear curve; the L2 penalty on a hinge's weight,
// a change of slope, is what keeps the curve smooth.
// Booleans become one 0/1 feature. Strings become one feature per value
// seen in at least MinCount rows (most frequent first, at most
// MaxCategories) plus an "other" feature for every remaining or unseen
// value. A signal missing in some rows but not all also gets a missing
// indicator. Signals that never vary, or are never present, are dropped.
// Signals are taken in name order, so the result is deterministic.
//
// Numeric codes (integers with few distinct values) are encoded as
// numbers: category features only match strings, and a code sent as a
// number would never match them.
func FitEncoder(rows []map[string]any, opt EncoderOptions) Encoder {
	if opt.MinCount <= 0 {
		opt.MinCount = DefaultMinCount
	}
	if opt.MaxCategories <= 0 {
		opt.MaxCategories = DefaultMaxCategories
	}
	names := map[string]struct{}{}
	for _, r := range rows {
		for k := range r {
			names[k] = struct{}{}
		}
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)

	enc := Encoder{Version: EncoderVersion, Features: []Feature{}}
	used := map[string]bool{}
	add := func(f Feature) {
		// Names must be unique; a clash (a category literally named
		// "other", say) gets a suffix.
		base := f.Name
		for i := 2; used[f.Name]; i++ {
			f.Name = base + "#" + strconv.Itoa(i)
		}
		used[f.Name] = true
		enc.Features = append(enc.Features, f)
	}
	// Signals are fitted in parallel, each on its own, and added in name
	// order.
	perSignal := make([][]Feature, len(sorted))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(sorted)) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= len(sorted) {
					return
				}
				perSignal[k] = fitSignal(rows, sorted[k], opt)
			}
		})
	}
	wg.Wait()
	for _, feats := range perSignal {
		for _, f := range feats {
			add(f)
		}
	}
	return enc
}

// fitSignal returns the features of one signal, or none.
func fitSignal(rows []map[string]any, name string, opt EncoderOptions) []Feature {
	var nNum, nBool, nStr, nMissing int
	for _, r := range rows {
		v := r[name]
		if missing(v) {
			nMissing++
			continue
		}
		switch v.(type) {
		case bool:
			nBool++
		case string:
			nStr++
		default:
			if _, ok := number(v); ok {
				nNum++
			}
		}
	}
	present := len(rows) - nMissing
	if present == 0 {
		return nil
	}
	var feats []Feature
	switch {
	case nNum > 0 && nNum >= nBool && nNum >= nStr:
		feats = fitNumber(rows, name, nNum, opt.Knots)
	case nBool > 0 && nBool >= nStr:
		var nTrue int
		for _, r := range rows {
			if b, ok := r[name].(bool); ok && b {
				nTrue++
			}
		}
		if nTrue > 0 && nTrue < len(rows) {
			feats = []Feature{{Name: name, Signal: name, Kind: KindBool}}
		}
	case nStr > 0:
		feats = fitCategory(rows, name, nStr, opt)
	}
	if nMissing > 0 && nMissing < len(rows) {
		feats = append(feats, Feature{Name: name + ":missing", Signal: name, Kind: KindMissing})
	}
	return feats
}

func fitNumber(rows []map[string]any, name string, n, knots int) []Feature {
	xs := make([]float64, 0, n)
	for _, r := range rows {
		if x, ok := number(r[name]); ok {
			xs = append(xs, x)
		}
	}
	slices.Sort(xs)
	if xs[0] == xs[len(xs)-1] {
		// A constant carries nothing a missing indicator does not.
		return nil
	}
	f := Feature{Name: name, Signal: name, Kind: KindNumber}
	if xs[0] >= 0 && skewness(xs) > skewLogLimit {
		f.Kind = KindLog
		for i, x := range xs {
			xs[i] = math.Log1p(x)
		}
		// log1p is increasing, so xs stays sorted.
	}
	lo, hi := quantile(xs, clipLow), quantile(xs, clipHigh)
	if lo < hi {
		f.Min, f.Max = lo, hi
	}
	f.Center = quantile(xs, 0.5)
	if f.Min < f.Max {
		f.Center = min(max(f.Center, f.Min), f.Max)
	}
	f.Scale = (quantile(xs, 0.75) - quantile(xs, 0.25)) / 1.349
	if !(f.Scale > 0) {
		f.Scale = clippedStd(xs, f.Min, f.Max)
	}
	if !(f.Scale > 0) || !finite(f.Scale) {
		f.Scale = 1
	}
	feats := []Feature{f}
	for _, t := range fitKnots(xs, f.Min, f.Max, knots) {
		h := f
		h.Kind = KindHinge
		if f.Kind == KindLog {
			h.Kind = KindLogHinge
		}
		h.Knot = (t - f.Center) / f.Scale
		h.Name = name + ":hinge" + strconv.Itoa(len(feats))
		feats = append(feats, h)
	}
	return feats
}

// fitKnots places up to k knots for a number's shape at evenly spaced
// quantiles of its sorted values xs that lie strictly inside the clipping
// range [lo, hi] (the whole range when lo >= hi). Values at the ends are
// left out so that a mass of zeros (or of the clipped tail) does not pull
// every knot onto itself; a knot at the end would bend nothing. Equal
// knots are merged, so a signal with few distinct values gets fewer.
func fitKnots(xs []float64, lo, hi float64, k int) []float64 {
	if k <= 0 || len(xs) == 0 {
		return nil
	}
	if lo >= hi {
		lo, hi = xs[0], xs[len(xs)-1]
	}
	a := sort.Search(len(xs), func(i int) bool { return xs[i] > lo })
	b := sort.Search(len(xs), func(i int) bool { return xs[i] >= hi })
	inner := xs[a:b]
	// A knot needs rows on both sides to be learned from.
	if len(inner) < 2*minKnotRows {
		return nil
	}
	var out []float64
	for j := 1; j <= k; j++ {
		t := quantile(inner, float64(j)/float64(k+1))
		if len(out) > 0 && t <= out[len(out)-1] {
			continue
		}
		out = append(out, t)
	}
	return out
}

// minKnotRows is the least number of values inside the clipping range a
// number needs before it gets hinges at all.
const minKnotRows = 10

func fitCategory(rows []map[string]any, name string, n int, opt EncoderOptions) []Feature {
	counts := map[string]int{}
	for _, r := range rows {
		if s, ok := r[name].(string); ok {
			counts[s]++
		}
	}
	if len(counts) == 1 && n == len(rows) {
		// One value in every row: constant.
		return nil
	}
	type vc struct {
		v string
		c int
	}
	var kept []vc
	for v, c := range counts {
		if c >= opt.MinCount && v != "" {
			kept = append(kept, vc{v, c})
		}
	}
	sort.Slice(kept, func(i, j int) bool {
		if kept[i].c != kept[j].c {
			return kept[i].c > kept[j].c
		}
		return kept[i].v < kept[j].v
	})
	if len(kept) > opt.MaxCategories {
		kept = kept[:opt.MaxCategories]
	}
	feats := make([]Feature, 0, len(kept)+1)
	for _, k := range kept {
		feats = append(feats, Feature{Name: name + "=" + k.v, Signal: name, Kind: KindCategory, Value: k.v})
	}
	// The bucket for rare and unseen values, so a new plan name still
	// has a place to go.
	feats = append(feats, Feature{Name: name + "=other", Signal: name, Kind: KindOther})
	return feats
}

// quantile of sorted xs at q in [0, 1], interpolating linearly.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	pos := q * float64(len(xs)-1)
	i := int(math.Floor(pos))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	frac := pos - float64(i)
	return xs[i] + frac*(xs[i+1]-xs[i])
}

// skewness is the sample skewness (third standardised moment).
func skewness(xs []float64) float64 {
	n := float64(len(xs))
	mean := 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= n
	var m2, m3 float64
	for _, x := range xs {
		d := x - mean
		m2 += d * d
		m3 += d * d * d
	}
	m2 /= n
	m3 /= n
	if m2 == 0 {
		return 0
	}
	return m3 / math.Pow(m2, 1.5)
}

// clippedStd is the standard deviation of xs after clipping to [lo, hi]
// (no clipping when lo >= hi).
func clippedStd(xs []float64, lo, hi float64) float64 {
	clip := func(x float64) float64 {
		if lo < hi {
			return min(max(x, lo), hi)
		}
		return x
	}
	mean := 0.0
	for _, x := range xs {
		mean += clip(x)
	}
	mean /= float64(len(xs))
	v := 0.0
	for _, x := range xs {
		d := clip(x) - mean
		v += d * d
	}
	return math.Sqrt(v / float64(len(xs)))
}
