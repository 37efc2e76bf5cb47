package model

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// channelExamples: x1 raises the odds on whatsapp only, and whatsapp
// converts more overall; with one channel, every example is on web.
func channelExamples(n int, channels bool, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]Example, n)
	for i := range out {
		x1, x2 := rng.NormFloat64(), rng.NormFloat64()
		ch := "web"
		if channels {
			ch = []string{"web", "whatsapp", "email"}[rng.IntN(3)]
		}
		z := -1 + 0.4*x2
		if ch == "whatsapp" {
			z += 0.8 + 1.5*x1
		}
		out[i] = Example{Channel: ch, Signals: map[string]any{"x1": x1, "x2": x2}, Label: rng.Float64() < sigmoid(z)}
	}
	return out
}

// The channel is read like a string signal: its features, its
// interactions with the signals, the encoder version that stops an older
// binary from reading it as always missing, and the same logit on every
// path that encodes it (the scorer, the holdout's PredictLogit, the
// training rows).
func TestFitModelReadsTheChannel(t *testing.T) {
	ex := channelExamples(6000, true, 1)
	design, fit, sel, err := FitModel(context.Background(), Newton{}, nil, ExampleSlice(ex), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var chFeats []string
	for _, f := range design.Encoder.Features {
		if f.Signal == ChannelSignal && f.Kind != KindProduct {
			chFeats = append(chFeats, f.Name)
		}
	}
	if !slices.Contains(chFeats, "channel=whatsapp") || !slices.Contains(chFeats, "channel=other") {
		t.Errorf("channel features %v, want channel=whatsapp and channel=other among them", chFeats)
	}
	if !slices.ContainsFunc(sel.Interactions, func(s string) bool { return s == "channel×x1" || s == "x1×channel" }) {
		t.Errorf("interactions %v, want channel×x1", sel.Interactions)
	}
	if design.Encoder.Version != 3 {
		t.Errorf("encoder version %d, want 3 for a model that reads the channel", design.Encoder.Version)
	}
	m := design.Model(fit)
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if m, err = ParseModel(body); err != nil {
		t.Fatal(err)
	}
	pol := compileDesignPolicy(t)
	s := NewScorer(pol, m)
	ds := design.Dataset(ex[:50])
	for i, e := range ex[:50] {
		d := s.Score(Input{Channel: e.Channel, Signals: e.Signals})
		want := fit.Logit(ds.Row(i))
		// The design has no rules; the policy's rules add their points.
		for _, r := range pol.rules {
			if slices.Contains(d.Hits, r.name) {
				want += r.points
			}
		}
		if math.Abs(d.Logit-want) > 1e-9 {
			t.Fatalf("row %d (%s): scorer logit %v, fit %v", i, e.Channel, d.Logit, want)
		}
		if p := PredictLogit(pol, m, d.Hits, e.Channel, e.Signals); math.Abs(p-d.Logit) > 1e-12 {
			t.Fatalf("row %d: PredictLogit %v, scorer %v", i, p, d.Logit)
		}
		var shown bool
		for _, r := range d.Reasons {
			if r.Kind == "feature" && r.Name == ChannelSignal {
				shown = r.Value == e.Channel
			}
		}
		if e.Channel == "whatsapp" && !shown {
			t.Errorf("row %d on whatsapp: no channel reason with its value in %+v", i, d.Reasons)
		}
	}
	// A conversation with no channel reads as missing, not as "other".
	noCh := s.Score(Input{Signals: ex[0].Signals})
	if p := PredictLogit(pol, m, noCh.Hits, "", ex[0].Signals); math.Abs(p-noCh.Logit) > 1e-12 {
		t.Errorf("no channel: PredictLogit %v, scorer %v", p, noCh.Logit)
	}

	// Every example on one channel: nothing to learn from it, and the
	// model stays readable by a binary of encoder version 2.
	design, _, _, err = FitModel(context.Background(), Newton{}, nil, ExampleSlice(channelExamples(3000, false, 2)), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range design.Encoder.Features {
		if f.Signal == ChannelSignal || strings.Contains(f.Name, "channel") {
			t.Errorf("feature %s on data from one channel", f.Name)
		}
	}
	if design.Encoder.Version > 2 {
		t.Errorf("encoder version %d without channel features, want at most 2", design.Encoder.Version)
	}
}

func TestEncodePlanReadsTheChannel(t *testing.T) {
	enc := Encoder{Version: 3, Features: []Feature{
		{Name: "x", Signal: "x", Kind: KindNumber, Scale: 2},
		{Name: "channel=whatsapp", Signal: ChannelSignal, Kind: KindCategory, Value: "whatsapp"},
		{Name: "channel=other", Signal: ChannelSignal, Kind: KindOther},
		{Name: "channel:missing", Signal: ChannelSignal, Kind: KindMissing},
		{Name: "channel=whatsapp×x", Signal: ChannelSignal, Kind: KindProduct, Of: []int{1, 0}},
	}}
	plan := newEncodePlan(&enc)
	// A "channel" key among the signals is not the channel: signals never
	// carry one, and the encoder must not read it if one slipped in.
	signals := map[string]any{"x": 3.0, ChannelSignal: "whatsapp"}
	tests := []struct {
		channel string
		want    []float64
	}{
		{channel: "whatsapp", want: []float64{1.5, 1, 0, 0, 1.5}},
		{channel: "web", want: []float64{1.5, 0, 1, 0, 0}},
		{channel: "", want: []float64{1.5, 0, 0, 1, 0}},
	}
	for _, tt := range tests {
		got := enc.EncodeFor(tt.channel, signals, nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("EncodeFor(%q) = %v, want %v", tt.channel, got, tt.want)
		}
		vals, planned, odd := plan.encode(channelValue(tt.channel), signals, nil, nil)
		if !slices.Equal(planned, tt.want) || odd {
			t.Errorf("plan.encode(%q) = %v (odd %v), want %v", tt.channel, planned, odd, tt.want)
		}
		if v := vals[plan.channelSlot]; v != channelValue(tt.channel) {
			t.Errorf("plan value of the channel = %v, want %q", v, tt.channel)
		}
	}
	if got := enc.NeededVersion(); got != 3 {
		t.Errorf("NeededVersion = %d, want 3", got)
	}
	body, err := json.Marshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(body), `"version":3`, `"version":2`, 1)
	if _, err := ParseModel([]byte(`{"intercept":0,"rule_weights":{},"encoder":` + old + `,"beta":[0,0,0,0,0]}`)); err == nil {
		t.Error("a model reading the channel stored as encoder version 2 was accepted")
	}
}
