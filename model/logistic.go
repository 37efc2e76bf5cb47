package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// Model is a trained logistic model in its stored JSON form. Before any
// training there is none, and a Scorer uses the policy's hand-set points.
type Model struct {
	// Intercept replaces the policy's base.
	Intercept float64 `json:"intercept"`
	// RuleWeights are tuned rule weights by rule name. A rule absent here,
	// such as one added after training, keeps its hand-set points.
	RuleWeights map[string]float64 `json:"rule_weights"`
	// Encoder turns signals into features.
	Encoder Encoder `json:"encoder"`
	// Beta holds one weight per encoder feature.
	Beta []float64 `json:"beta"`
}

// ParseModel decodes and validates a stored model. Validation here is what
// lets a Scorer trust the model without checking it on every decision.
func ParseModel(data []byte) (*Model, error) {
	var m Model
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse model: trailing data after the model")
	}
	// A model is an object that states its intercept: null or {} would
	// otherwise decode as an empty model.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("parse model: a model is a JSON object with intercept, rule_weights, encoder and beta")
	}
	if _, ok := fields["intercept"]; !ok {
		return nil, fmt.Errorf("parse model: intercept is required")
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	return &m, nil
}

func (m *Model) validate() error {
	if !finite(m.Intercept) {
		return fmt.Errorf("intercept must be finite")
	}
	for name, w := range m.RuleWeights {
		if !finite(w) {
			return fmt.Errorf("rule weight %q must be finite", name)
		}
	}
	if v := m.Encoder.Version; v < 0 || v > EncoderVersion {
		return fmt.Errorf("encoder version %d is not supported (at most %d)", v, EncoderVersion)
	}
	if len(m.Beta) != len(m.Encoder.Features) {
		return fmt.Errorf("%d weights for %d features", len(m.Beta), len(m.Encoder.Features))
	}
	seen := make(map[string]bool, len(m.Encoder.Features))
	for i, f := range m.Encoder.Features {
		if f.Name == "" || f.Signal == "" {
			return fmt.Errorf("feature %d: name and signal are required", i)
		}
		if seen[f.Name] {
			return fmt.Errorf("feature %d: duplicate name %q", i, f.Name)
		}
		seen[f.Name] = true
		if !finite(m.Beta[i]) {
			return fmt.Errorf("feature %q: weight must be finite", f.Name)
		}
		if !(finite(f.Center) && finite(f.Scale) && finite(f.Min) && finite(f.Max)) {
			return fmt.Errorf("feature %q: center, scale, min and max must be finite", f.Name)
		}
		switch f.Kind {
		case KindNumber, KindLog:
			if !(f.Scale > 0) {
				return fmt.Errorf("feature %q: scale must be > 0", f.Name)
			}
			if f.Min > f.Max {
				return fmt.Errorf("feature %q: min > max", f.Name)
			}
		case KindCategory:
			if f.Value == "" {
				return fmt.Errorf("feature %q: category value is required", f.Name)
			}
		case KindHinge, KindLogHinge:
			if !(f.Scale > 0) || !finite(f.Knot) {
				return fmt.Errorf("feature %q: scale must be > 0 and knot finite", f.Name)
			}
			if f.Min > f.Max {
				return fmt.Errorf("feature %q: min > max", f.Name)
			}
		case KindProduct:
			if len(f.Of) != 2 || f.Of[0] < 0 || f.Of[1] < 0 || f.Of[0] >= i || f.Of[1] >= i {
				return fmt.Errorf("feature %q: a product names two earlier features", f.Name)
			}
		case KindBool, KindOther, KindMissing:
		default:
			return fmt.Errorf("feature %q: unknown kind %q", f.Name, f.Kind)
		}
	}
	if v, need := max(m.Encoder.Version, 1), m.Encoder.NeededVersion(); v < need {
		// A binary of version v would have scored these features wrongly
		// (the channel as always missing, say): the model is corrupt.
		return fmt.Errorf("encoder version %d holds features of version %d", v, need)
	}
	return nil
}

// Marshal encodes the model in its stored JSON form, with empty maps and
// lists rather than null so other readers need no special case.
func (m *Model) Marshal() ([]byte, error) {
	c := *m
	if c.RuleWeights == nil {
		c.RuleWeights = map[string]float64{}
	}
	if c.Beta == nil {
		c.Beta = []float64{}
	}
	if c.Encoder.Features == nil {
		c.Encoder.Features = []Feature{}
	}
	if c.Encoder.Version == 0 {
		// The oldest encoding that reads it, so that an older binary
		// loads what it can score.
		c.Encoder.Version = c.Encoder.NeededVersion()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal model: %w", err)
	}
	return b, nil
}

// sigmoid is the logistic function, computed without overflow for any
// finite logit.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}
