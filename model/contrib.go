package model

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// ContribCurve is one signal's contribution to a model's logit across the
// signal's values: the sum of the weighted features that read it, as a
// decision's reason for that signal would show it. It is how a lead reads
// the shape a model learned ("a deal size matters up to a point, then not
// more") without reading weights.
type ContribCurve struct {
	Signal string `json:"signal"`
	// Kind is ContribNumber, ContribCategory or ContribBool.
	Kind string `json:"kind"`
	// LogScale is set when the model reads the number on a log scale:
	// the grid is then evenly spaced in log(1+x), and so should a chart's
	// axis be.
	LogScale bool `json:"log_scale,omitempty"`
	// Spread is how much the signal moves the logit from one conversation
	// to the next: the mean absolute deviation of its contribution over
	// the rows it was measured on (the holdout in a tuning report). The
	// curves are ranked by it.
	Spread float64 `json:"spread"`
	// Grid is, for a number, the contribution at evenly spaced values
	// across the encoder's clip range (the training data's 0.5th to 99.5th
	// percentiles, where FitEncoder clips), in increasing value.
	Grid []ContribPoint `json:"grid,omitempty"`
	// Bars are, for a category, one per category the model knows (in the
	// encoder's order) and then the "other" bucket when it has one; for a
	// boolean, true then false.
	Bars []ContribBar `json:"bars,omitempty"`
	// Missing is the contribution when the signal is missing; nil when the
	// model has no missing indicator for it (it was never missing in
	// training).
	Missing *ContribBar `json:"missing,omitempty"`
}

// The kinds of ContribCurve.
const (
	ContribNumber   = "number"
	ContribCategory = "category"
	ContribBool     = "bool"
)

// ContribPoint is a number signal's contribution at one value.
type ContribPoint struct {
	Value        float64 `json:"value"`
	Contribution float64 `json:"contribution"`
}

// ContribBar is a category's (or a boolean's, or a missing signal's)
// contribution.
type ContribBar struct {
	// Category is the value; "true" or "false" for a boolean; empty for
	// the other bucket and for a missing signal.
	Category string `json:"category,omitempty"`
	// Other marks the bucket of every value the model has no category for.
	Other        bool    `json:"other,omitempty"`
	Contribution float64 `json:"contribution"`
	// Share is the share of the measured rows that had this value, when
	// the encoding tells (nil otherwise).
	Share *float64 `json:"share,omitempty"`
}

// contribGridPoints is how many values a number's curve is evaluated at:
// enough for a kink or a step to show at a chart's width.
const contribGridPoints = 41

// ContribCurves computes the contribution curves of m's signals and
// returns the top of them by Spread (all of them when top <= 0), ties in
// signal name order. rows are encoded feature rows (Encoder.Encode's
// output for m.Encoder, one per conversation, for example the holdout) on
// which Spread and the shares are measured; without rows, the curves are
// ranked by the range of their values instead and carry no shares.
//
// It reads the model through Encoder.Encode and Feature.Signal only, so
// every kind of feature, present or to come, counts towards its signal:
// the curve at a value is the sum of beta_j * feature_j over the signal's
// features when the signal has that value. A feature that reads a second
// signal (an interaction) counts towards its first signal, as in a
// decision's reasons, and is evaluated with the second signal missing, so
// a curve shows the signal's effect on its own. The kinds decide only what
// is drawn: a signal with category or "other" features gets bars, a
// boolean gets two, one read as a number or log gets a grid over its clip
// range; a signal with none of these (only a missing indicator, say) gets
// no curve.
func ContribCurves(m *Model, rows [][]float64, top int) []ContribCurve {
	enc := &m.Encoder
	bySignal := map[string][]int{}
	var order []string
	for j := range enc.Features {
		s := enc.Features[j].Signal
		if _, ok := bySignal[s]; !ok {
			order = append(order, s)
		}
		bySignal[s] = append(bySignal[s], j)
	}
	ev := contribEval{m: m, in: map[string]any{}, buf: make([]float64, 0, len(enc.Features))}
	var out []ContribCurve
	rank := map[string]float64{}
	for _, name := range order {
		feats := bySignal[name]
		c, ok := ev.curve(name, feats)
		if !ok {
			continue
		}
		if len(rows) > 0 {
			c.Spread = spread(m.Beta, feats, rows)
			shares(&c, enc, feats, rows)
			rank[name] = c.Spread
		} else {
			rank[name] = curveRange(&c)
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b ContribCurve) int {
		if d := cmp.Compare(rank[b.Signal], rank[a.Signal]); d != 0 {
			return d
		}
		return cmp.Compare(a.Signal, b.Signal)
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

// contribEval evaluates one signal's contribution at a value through the
// encoder, with every other signal missing.
type contribEval struct {
	m   *Model
	in  map[string]any
	buf []float64
}

func (e *contribEval) at(signal string, v any, feats []int) float64 {
	clear(e.in)
	var channel string
	switch {
	case signal == ChannelSignal:
		channel, _ = v.(string)
	case v != nil:
		e.in[signal] = v
	}
	e.buf = e.m.Encoder.EncodeFor(channel, e.in, e.buf)
	var sum float64
	for _, j := range feats {
		sum += e.m.Beta[j] * e.buf[j]
	}
	return sum
}

func (e *contribEval) curve(signal string, feats []int) (ContribCurve, bool) {
	c := ContribCurve{Signal: signal}
	var cats []string
	var other, boolean, hasMissing, numeric, logScale bool
	lo, hi := math.Inf(1), math.Inf(-1)
	var centre, scale float64
	for _, j := range feats {
		f := &e.m.Encoder.Features[j]
		switch f.Kind {
		case KindCategory:
			cats = append(cats, f.Value)
		case KindOther:
			other = true
		case KindBool:
			boolean = true
		case KindMissing:
			hasMissing = true
		case KindNumber, KindLog:
			if !numeric {
				centre, scale = f.Center, f.Scale
			}
			numeric = true
			if f.Kind == KindLog {
				logScale = true
			}
			if f.Min < f.Max {
				lo, hi = min(lo, f.Min), max(hi, f.Max)
			}
		}
	}
	switch {
	case len(cats) > 0 || other:
		c.Kind = ContribCategory
		for _, v := range cats {
			c.Bars = append(c.Bars, ContribBar{Category: v, Contribution: e.at(signal, v, feats)})
		}
		if other {
			c.Bars = append(c.Bars, ContribBar{Other: true, Contribution: e.at(signal, unlisted(cats), feats)})
		}
	case boolean:
		c.Kind = ContribBool
		c.Bars = []ContribBar{
			{Category: "true", Contribution: e.at(signal, true, feats)},
			{Category: "false", Contribution: e.at(signal, false, feats)},
		}
	case numeric:
		c.Kind = ContribNumber
		if !(lo < hi) {
			// No clip range: the centre plus or minus two scales.
			if !(scale > 0) {
				scale = 1
			}
			lo, hi = centre-2*scale, centre+2*scale
		}
		// A log feature's range is on the log scale already.
		c.LogScale = logScale
		for i := range contribGridPoints {
			t := lo + (hi-lo)*float64(i)/float64(contribGridPoints-1)
			x := t
			if logScale {
				x = math.Copysign(math.Expm1(math.Abs(t)), t)
			}
			c.Grid = append(c.Grid, ContribPoint{Value: x, Contribution: e.at(signal, x, feats)})
		}
	default:
		return c, false
	}
	if hasMissing {
		c.Missing = &ContribBar{Contribution: e.at(signal, nil, feats)}
	}
	return c, true
}

// unlisted is a string that is none of cats, so it lands in the "other"
// bucket.
func unlisted(cats []string) string {
	s := "\x00other"
	for i := 2; slices.Contains(cats, s); i++ {
		s = "\x00other" + strconv.Itoa(i)
	}
	return s
}

// spread is the mean absolute deviation of the summed contribution of
// feats over rows.
func spread(beta []float64, feats []int, rows [][]float64) float64 {
	vals := make([]float64, len(rows))
	var mean float64
	for i, r := range rows {
		var s float64
		for _, j := range feats {
			s += beta[j] * r[j]
		}
		vals[i] = s
		mean += s
	}
	mean /= float64(len(rows))
	var dev float64
	for _, v := range vals {
		dev += math.Abs(v - mean)
	}
	return dev / float64(len(rows))
}

// shares fills the bars' shares of rows from the indicator features that
// tell them: a category's feature, the other bucket's, a boolean's and a
// missing indicator. A boolean's false is what is neither true nor
// missing.
func shares(c *ContribCurve, enc *Encoder, feats []int, rows [][]float64) {
	share := func(j int) *float64 {
		var n int
		for _, r := range rows {
			if r[j] == 1 {
				n++
			}
		}
		s := float64(n) / float64(len(rows))
		return &s
	}
	var trueShare, missingShare *float64
	for _, j := range feats {
		f := &enc.Features[j]
		switch f.Kind {
		case KindCategory:
			for k := range c.Bars {
				if !c.Bars[k].Other && c.Bars[k].Category == f.Value && c.Bars[k].Share == nil {
					c.Bars[k].Share = share(j)
				}
			}
		case KindOther:
			for k := range c.Bars {
				if c.Bars[k].Other {
					c.Bars[k].Share = share(j)
				}
			}
		case KindBool:
			if c.Kind == ContribBool {
				trueShare = share(j)
				c.Bars[0].Share = trueShare
			}
		case KindMissing:
			missingShare = share(j)
			if c.Missing != nil {
				c.Missing.Share = missingShare
			}
		}
	}
	if c.Kind == ContribBool && trueShare != nil {
		f := 1 - *trueShare
		if missingShare != nil {
			f -= *missingShare
		}
		f = max(f, 0)
		c.Bars[1].Share = &f
	}
}

// curveRange is the difference between the largest and the smallest value
// of a curve, its missing bar included.
func curveRange(c *ContribCurve) float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	add := func(v float64) { lo, hi = min(lo, v), max(hi, v) }
	for _, p := range c.Grid {
		add(p.Contribution)
	}
	for _, b := range c.Bars {
		add(b.Contribution)
	}
	if c.Missing != nil {
		add(c.Missing.Contribution)
	}
	if lo > hi {
		return 0
	}
	return hi - lo
}
