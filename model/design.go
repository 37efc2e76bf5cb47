package model

// Example is one labelled conversation for training or evaluation: what
// was known when it was scored, which rules fired, and how it turned out.
type Example struct {
	Channel string
	Signals map[string]any
	// Hits are the names of the rules that fired.
	Hits  []string
	Label bool
	// Weight is the example's weight in training and metrics; 0 means 1.
	Weight float64
}

// Design is the feature layout of a model with rules inside it: one 0/1
// column per rule, in Rules order, then the encoder's features. The
// fitted coefficients map back to rule weights and feature weights in the
// same order.
type Design struct {
	Rules   []string
	Encoder Encoder
}

// Width is the number of columns of the design.
func (d *Design) Width() int { return len(d.Rules) + len(d.Encoder.Features) }

// Dataset lays examples out as a training dataset. Hits naming rules
// outside Rules are ignored.
func (d *Design) Dataset(examples []Example) *Dataset {
	p := d.Width()
	nr := len(d.Rules)
	index := make(map[string]int, nr)
	for i, r := range d.Rules {
		index[r] = i
	}
	ds := &Dataset{X: make([]float64, len(examples)*p), Y: make([]float64, len(examples)), P: p}
	weighted := false
	for _, ex := range examples {
		if ex.Weight != 0 && ex.Weight != 1 {
			weighted = true
			break
		}
	}
	if weighted {
		ds.W = make([]float64, len(examples))
	}
	for i, ex := range examples {
		row := ds.X[i*p : (i+1)*p]
		for _, h := range ex.Hits {
			if j, ok := index[h]; ok {
				row[j] = 1
			}
		}
		// Encode writes in place: the slice has the row's capacity.
		d.Encoder.EncodeFor(ex.Channel, ex.Signals, row[nr:nr:p])
		if ex.Label {
			ds.Y[i] = 1
		}
		if weighted {
			ds.W[i] = exampleWeight(ex)
		}
	}
	return ds
}

// Model turns a fit over the design's dataset into a stored model.
func (d *Design) Model(f Fit) *Model {
	nr := len(d.Rules)
	m := &Model{
		Intercept:   f.Intercept,
		RuleWeights: make(map[string]float64, nr),
		Encoder:     cloneEncoder(d.Encoder),
		Beta:        append([]float64{}, f.Coef[nr:]...),
	}
	if m.Encoder.Version == 0 {
		m.Encoder.Version = m.Encoder.NeededVersion()
	}
	for i, r := range d.Rules {
		m.RuleWeights[r] = f.Coef[i]
	}
	return m
}

func cloneEncoder(e Encoder) Encoder {
	return Encoder{Version: e.Version, Features: append([]Feature{}, e.Features...)}
}

func exampleWeight(ex Example) float64 {
	if ex.Weight == 0 {
		return 1
	}
	return ex.Weight
}

// PredictLogit is the logit a policy, alone or with a model, gives an
// example on channel whose fired rules are hits; it is what a Scorer computes, from
// hits already known, so the live and a candidate model can be compared
// on the same holdout. With m nil: the policy's base plus the points of
// the fired rules. With m: the model's intercept, each fired rule's tuned
// weight (its points when the model has none for it) and the encoded
// features' contributions. Hits naming no rule of the policy count only
// when the model has a weight for them.
func PredictLogit(pol *Policy, m *Model, hits []string, channel string, signals map[string]any) float64 {
	points := make(map[string]float64, len(pol.rules))
	for _, r := range pol.rules {
		points[r.name] = r.points
	}
	if m == nil {
		z := pol.doc.Base
		for _, h := range hits {
			z += points[h]
		}
		return z
	}
	z := m.Intercept
	for _, h := range hits {
		if w, ok := m.RuleWeights[h]; ok {
			z += w
		} else {
			z += points[h]
		}
	}
	if len(m.Beta) > 0 {
		feats := m.Encoder.EncodeFor(channel, signals, make([]float64, 0, len(m.Beta)))
		for j, x := range feats {
			z += m.Beta[j] * x
		}
	}
	return z
}

// PredictProb is sigmoid(PredictLogit(...)).
func PredictProb(pol *Policy, m *Model, hits []string, channel string, signals map[string]any) float64 {
	return sigmoid(PredictLogit(pol, m, hits, channel, signals))
}

// Append adds one example to ds as a row of the design, so a caller can
// build a dataset without holding every example at once. ds must have
// been made for this design (P equal to Width); its W is created, with 1
// for the rows before, at the first weighted example.
func (d *Design) Append(ds *Dataset, ex Example) {
	p := d.Width()
	nr := len(d.Rules)
	start := len(ds.X)
	ds.X = append(ds.X, make([]float64, p)...)
	row := ds.X[start : start+p]
	for _, h := range ex.Hits {
		for j, r := range d.Rules {
			if r == h {
				row[j] = 1
			}
		}
	}
	d.Encoder.EncodeFor(ex.Channel, ex.Signals, row[nr:nr:p])
	y := 0.0
	if ex.Label {
		y = 1
	}
	ds.Y = append(ds.Y, y)
	w := exampleWeight(ex)
	if ds.W == nil && w != 1 {
		ds.W = make([]float64, len(ds.Y)-1, cap(ds.Y))
		for i := range ds.W {
			ds.W[i] = 1
		}
	}
	if ds.W != nil {
		ds.W = append(ds.W, w)
	}
}
