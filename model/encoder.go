package model

import "math"

// EncoderVersion is the encoding this package implements. A stored model
// with a newer encoder is refused rather than scored with the wrong
// features. Version 2 added shape (hinge) and product features, version 3
// features that read the conversation's channel; older models hold none
// and are read unchanged.
const EncoderVersion = 3

// ChannelSignal is the signal name under which features read the
// conversation's channel (web, whatsapp, ...), which travels beside the
// signals, never among them: "channel" is not a legal signal name. An
// empty channel reads as missing.
const ChannelSignal = "channel"

// NeededVersion is the oldest encoder version that can encode e's
// features: 1 when it has no hinge or product features and none reads the
// channel, so that a model without them stays readable by a binary from
// before version 2 (a rollback), 2 with shapes or products but no channel,
// and 3 otherwise. An older binary reading a channel feature would find
// the channel always missing, so it must refuse the model instead.
func (e *Encoder) NeededVersion() int {
	v := 1
	for _, f := range e.Features {
		switch {
		case f.Signal == ChannelSignal:
			return 3
		case f.Kind == KindHinge || f.Kind == KindLogHinge || f.Kind == KindProduct:
			v = 2
		}
	}
	return v
}

// The feature kinds an Encoder understands.
const (
	KindNumber   = "number"   // clip to [Min, Max], then (x-Center)/Scale
	KindLog      = "log"      // sign(x)*log1p(|x|), then as KindNumber
	KindBool     = "bool"     // 1 if true
	KindCategory = "category" // 1 if the string equals Value
	KindOther    = "other"    // 1 if a string not among the signal's category values
	KindMissing  = "missing"  // 1 if the signal is missing
	// KindHinge and KindLogHinge bend a number's line at Knot: with u the
	// value encoded as by KindNumber (or KindLog), the feature is
	// max(u-Knot, 0) - max(-Knot, 0), so it is 0 at the centre, as for a
	// missing value, and the weights of a signal's hinges are the changes
	// of its slope at their knots.
	KindHinge    = "hinge"
	KindLogHinge = "log_hinge"
	// KindProduct multiplies the features at indexes Of[0] and Of[1],
	// both earlier in the encoder: a pairwise interaction.
	KindProduct = "product"
)

// Encoder turns signals into the numeric features of a logistic model. It
// is stored with the model because the weights only mean something with
// the exact encoding they were fitted on.
type Encoder struct {
	// Version is the encoding's version; 0 is read as 1.
	Version  int       `json:"version"`
	Features []Feature `json:"features"`
}

// Feature is one encoded input of the model.
type Feature struct {
	// Name is shown in reasons, e.g. "deal_size", "plan=pro", "plan=other"
	// or "deal_size:missing".
	Name string `json:"name"`
	// Signal is the signal the feature reads.
	Signal string `json:"signal"`
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Value is the category a KindCategory feature tests for.
	Value string `json:"value,omitempty"`
	// Center and Scale standardise number and log features.
	Center float64 `json:"center"`
	Scale  float64 `json:"scale"`
	// Min and Max clip number and log features (after the log transform)
	// so an outlier cannot dominate the score; clipping applies only when
	// Min < Max.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Knot is where a hinge feature bends, in units of the scaled value.
	Knot float64 `json:"knot,omitempty"`
	// Of are the indexes of the two features a product multiplies.
	Of []int `json:"of,omitempty"`
}

// Encode appends one value per feature to dst[:0] and returns it; pass a
// reused buffer to avoid allocating. A signal that is absent, nil, a
// non-finite number or of the wrong type for its feature counts as
// missing: number and log features are then 0 (the centre), the others 0,
// and missing indicators 1 only for absent, nil or non-finite values.
func (e *Encoder) Encode(signals map[string]any, dst []float64) []float64 {
	return e.EncodeFor("", signals, dst)
}

// EncodeFor is Encode for a conversation on channel, which the features
// of ChannelSignal read.
func (e *Encoder) EncodeFor(channel string, signals map[string]any, dst []float64) []float64 {
	dst = dst[:0]
	for i := range e.Features {
		f := &e.Features[i]
		if f.Kind == KindProduct {
			x := 0.0
			if len(f.Of) == 2 && f.Of[0] < i && f.Of[1] < i && f.Of[0] >= 0 && f.Of[1] >= 0 {
				x = dst[f.Of[0]] * dst[f.Of[1]]
			}
			dst = append(dst, x)
			continue
		}
		var v any
		if f.Signal == ChannelSignal {
			v = channelValue(channel)
		} else {
			v = signals[f.Signal]
		}
		dst = append(dst, e.encodeOne(i, v))
	}
	return dst
}

// channelValue is a channel as a signal's value: nil, missing, when
// empty.
func channelValue(channel string) any {
	if channel == "" {
		return nil
	}
	return channel
}

// hinge is a hinge feature's value at the scaled value u.
func hinge(u, knot float64) float64 { return max(u-knot, 0) - max(-knot, 0) }

func (e *Encoder) encodeOne(i int, v any) float64 {
	f := &e.Features[i]
	switch f.Kind {
	case KindNumber, KindLog, KindHinge, KindLogHinge:
		x, ok := number(v)
		if !ok {
			return 0
		}
		if f.Kind == KindLog || f.Kind == KindLogHinge {
			x = math.Copysign(math.Log1p(math.Abs(x)), x)
		}
		if f.Min < f.Max {
			x = min(max(x, f.Min), f.Max)
		}
		scale := f.Scale
		if !(scale > 0) {
			scale = 1
		}
		u := (x - f.Center) / scale
		if f.Kind == KindHinge || f.Kind == KindLogHinge {
			return hinge(u, f.Knot)
		}
		return u
	case KindBool:
		if b, ok := v.(bool); ok && b {
			return 1
		}
	case KindCategory:
		if s, ok := v.(string); ok && s == f.Value {
			return 1
		}
	case KindOther:
		s, ok := v.(string)
		if !ok {
			return 0
		}
		for j := range e.Features {
			g := &e.Features[j]
			if g.Kind == KindCategory && g.Signal == f.Signal && g.Value == s {
				return 0
			}
		}
		return 1
	case KindMissing:
		if missing(v) {
			return 1
		}
	}
	return 0
}

// number reads a finite number. Signals from JSON are float64; integer
// types are accepted for callers that build signals in Go.
func number(v any) (float64, bool) {
	var x float64
	switch n := v.(type) {
	case float64:
		x = n
	case float32:
		x = float64(n)
	case int:
		x = float64(n)
	case int64:
		x = float64(n)
	case int32:
		x = float64(n)
	default:
		return 0, false
	}
	return x, finite(x)
}

func missing(v any) bool {
	switch n := v.(type) {
	case nil:
		return true
	case float64:
		return !finite(n)
	case float32:
		return !finite(float64(n))
	}
	return false
}

// encodePlan is an Encoder prepared for repeated use by a Scorer: each
// signal is looked up once however many features read it, kinds are
// decoded once, and the category values an "other" feature excludes are
// listed up front.
type encodePlan struct {
	enc     *Encoder
	signals []string // distinct signals read, in first-use order
	feats   []planFeature
	// channelSlot is the slot of ChannelSignal, -1 when no feature reads
	// the channel.
	channelSlot int
}

type planFeature struct {
	kind          uint8
	slot          int // the signal's index in encodePlan.signals
	clip          bool
	log, bend     bool // number kinds: log-transformed; a hinge
	lo, hi        float64
	center, scale float64
	knot          float64
	a, b          int // kProduct: the features multiplied
	base          int // a hinge: the index of its number feature, or -1
	value         string
	others        []string // KindOther: the signal's category values
}

const (
	kNone   uint8 = iota
	kNumber       // number, log and their hinges
	kBool
	kCategory
	kOther
	kMissing
	kProduct
)

var kindCodes = map[string]uint8{KindNumber: kNumber, KindLog: kNumber, KindHinge: kNumber, KindLogHinge: kNumber,
	KindBool: kBool, KindCategory: kCategory, KindOther: kOther, KindMissing: kMissing, KindProduct: kProduct}

func newEncodePlan(e *Encoder) *encodePlan {
	p := &encodePlan{enc: e, feats: make([]planFeature, len(e.Features)), channelSlot: -1}
	index := map[string]int{}
	for i, f := range e.Features {
		j, ok := index[f.Signal]
		if !ok {
			j = len(p.signals)
			index[f.Signal] = j
			p.signals = append(p.signals, f.Signal)
			if f.Signal == ChannelSignal {
				p.channelSlot = j
			}
		}
		scale := f.Scale
		if !(scale > 0) {
			scale = 1
		}
		pf := planFeature{kind: kindCodes[f.Kind], slot: j, clip: f.Min < f.Max, lo: f.Min, hi: f.Max,
			log: f.Kind == KindLog || f.Kind == KindLogHinge, bend: f.Kind == KindHinge || f.Kind == KindLogHinge,
			center: f.Center, scale: scale, knot: f.Knot, value: f.Value}
		pf.base = -1
		if pf.bend {
			// A hinge bends its number's scaled value, computed once.
			pf.base = hingeBase(e.Features, i)
		}
		if pf.kind == kProduct {
			// Encode gives 0 for a malformed product; so does kNone.
			pf.kind = kNone
			if len(f.Of) == 2 && f.Of[0] >= 0 && f.Of[1] >= 0 && f.Of[0] < i && f.Of[1] < i {
				pf.kind, pf.a, pf.b = kProduct, f.Of[0], f.Of[1]
			}
		}
		if pf.kind == kOther {
			for _, g := range e.Features {
				if g.Kind == KindCategory && g.Signal == f.Signal {
					pf.others = append(pf.others, g.Value)
				}
			}
		}
		p.feats[i] = pf
	}
	return p
}

// encode is EncodeFor with the plan: vals receives the signal values by
// slot (so reasons can show them) and dst the features; channel is the
// channel as channelValue gives it, boxed by the caller, who can keep it
// between calls. It must give exactly what EncodeFor gives. odd reports that some signal the model reads has a
// value of another type than the model expects (a string where it reads
// a number): such a value encodes as if the signal had its typical value,
// and typeWarnings says which.
func (p *encodePlan) encode(channel any, signals map[string]any, vals []any, dst []float64) (_ []any, _ []float64, odd bool) {
	vals = vals[:0]
	for _, name := range p.signals {
		vals = append(vals, signals[name])
	}
	if p.channelSlot >= 0 {
		vals[p.channelSlot] = channel
	}
	dst = dst[:0]
	for i := range p.feats {
		f := &p.feats[i]
		v := vals[f.slot]
		x := 0.0
		switch f.kind {
		case kNumber:
			if f.base >= 0 {
				// Missing and odd values gave the base 0, and a hinge
				// of 0 is 0.
				x = hinge(dst[f.base], f.knot)
				break
			}
			n, ok := number(v)
			if !ok {
				odd = odd || !missing(v)
				break
			}
			if f.log {
				n = math.Copysign(math.Log1p(math.Abs(n)), n)
			}
			if f.clip {
				n = min(max(n, f.lo), f.hi)
			}
			x = (n - f.center) / f.scale
			if f.bend {
				x = hinge(x, f.knot)
			}
		case kProduct:
			x = dst[f.a] * dst[f.b]
		case kBool:
			b, ok := v.(bool)
			if ok && b {
				x = 1
			}
			odd = odd || (!ok && v != nil)
		case kCategory:
			s, ok := v.(string)
			if ok && s == f.value {
				x = 1
			}
			odd = odd || (!ok && v != nil)
		case kOther:
			if s, ok := v.(string); ok {
				x = 1
				for _, c := range f.others {
					if c == s {
						x = 0
						break
					}
				}
			}
		case kMissing:
			if missing(v) {
				x = 1
			}
		}
		dst = append(dst, x)
	}
	return vals, dst, odd
}
