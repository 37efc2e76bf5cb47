package model

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	number := Feature{Name: "n", Signal: "x", Kind: KindNumber, Center: 10, Scale: 5, Min: 0, Max: 100}
	tests := []struct {
		name    string
		feature Feature
		value   any
		absent  bool
		want    float64
	}{
		{name: "number", feature: number, value: 20.0, want: 2},
		{name: "number clipped high", feature: number, value: 1e9, want: 18},
		{name: "number clipped low", feature: number, value: -50.0, want: -2},
		{name: "number from int", feature: number, value: 15, want: 1},
		{name: "number without bounds", feature: Feature{Kind: KindNumber, Signal: "x", Center: 0, Scale: 2}, value: 1e6, want: 5e5},
		{name: "number absent", feature: number, absent: true, want: 0},
		{name: "number nil", feature: number, value: nil, want: 0},
		{name: "number NaN", feature: number, value: math.NaN(), want: 0},
		{name: "number Inf", feature: number, value: math.Inf(1), want: 0},
		{name: "number wrong type", feature: number, value: "20", want: 0},
		{name: "log", feature: Feature{Kind: KindLog, Signal: "x", Center: 1, Scale: 2}, value: math.E - 1, want: 0},
		{name: "log negative", feature: Feature{Kind: KindLog, Signal: "x", Scale: 1}, value: -3.0, want: -math.Log(4)},
		{name: "log clipped in log space", feature: Feature{Kind: KindLog, Signal: "x", Scale: 1, Min: 0, Max: 2}, value: 1e6, want: 2},
		{name: "log wrong type", feature: Feature{Kind: KindLog, Signal: "x", Scale: 1}, value: true, want: 0},
		{name: "bool true", feature: Feature{Kind: KindBool, Signal: "x"}, value: true, want: 1},
		{name: "bool false", feature: Feature{Kind: KindBool, Signal: "x"}, value: false, want: 0},
		{name: "bool absent", feature: Feature{Kind: KindBool, Signal: "x"}, absent: true, want: 0},
		{name: "bool wrong type", feature: Feature{Kind: KindBool, Signal: "x"}, value: 1.0, want: 0},
		{name: "category hit", feature: Feature{Kind: KindCategory, Signal: "x", Value: "pro"}, value: "pro", want: 1},
		{name: "category miss", feature: Feature{Kind: KindCategory, Signal: "x", Value: "pro"}, value: "free", want: 0},
		{name: "category absent", feature: Feature{Kind: KindCategory, Signal: "x", Value: "pro"}, absent: true, want: 0},
		{name: "category wrong type", feature: Feature{Kind: KindCategory, Signal: "x", Value: "1"}, value: 1.0, want: 0},
		{name: "missing absent", feature: Feature{Kind: KindMissing, Signal: "x"}, absent: true, want: 1},
		{name: "missing nil", feature: Feature{Kind: KindMissing, Signal: "x"}, value: nil, want: 1},
		{name: "missing NaN", feature: Feature{Kind: KindMissing, Signal: "x"}, value: math.NaN(), want: 1},
		{name: "missing present", feature: Feature{Kind: KindMissing, Signal: "x"}, value: 0.0, want: 0},
		{name: "unknown kind", feature: Feature{Kind: "spline", Signal: "x"}, value: 3.0, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Encoder{Version: 1, Features: []Feature{tt.feature}}
			signals := map[string]any{"y": 1.0}
			if !tt.absent {
				signals["x"] = tt.value
			}
			got := e.Encode(signals, nil)
			if len(got) != 1 || math.Abs(got[0]-tt.want) > 1e-12 {
				t.Errorf("Encode(%v) = %v, want [%v]", tt.value, got, tt.want)
			}
		})
	}
}

func TestEncodeOther(t *testing.T) {
	e := Encoder{Version: 1, Features: []Feature{
		{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"},
		{Name: "plan=free", Signal: "plan", Kind: KindCategory, Value: "free"},
		{Name: "plan=other", Signal: "plan", Kind: KindOther},
		{Name: "stage=other", Signal: "stage", Kind: KindOther},
		// A category of another signal must not hide "pro" from plan=other.
		{Name: "stage=lead", Signal: "stage", Kind: KindCategory, Value: "lead"},
	}}
	tests := []struct {
		name    string
		signals map[string]any
		want    []float64
	}{
		{name: "known category", signals: map[string]any{"plan": "pro", "stage": "lead"}, want: []float64{1, 0, 0, 0, 1}},
		{name: "unseen category", signals: map[string]any{"plan": "enterprise", "stage": "pro"}, want: []float64{0, 0, 1, 1, 0}},
		{name: "missing", signals: map[string]any{}, want: []float64{0, 0, 0, 0, 0}},
		{name: "wrong type", signals: map[string]any{"plan": 3.0, "stage": false}, want: []float64{0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.Encode(tt.signals, make([]float64, 9))
			if len(got) != len(tt.want) {
				t.Fatalf("Encode = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Encode = %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}

func TestParseModel(t *testing.T) {
	valid := `{"intercept": -1, "rule_weights": {"big-deal": 1.5},
		"encoder": {"version": 1, "features": [
			{"name": "deal_size", "signal": "deal_size", "kind": "number", "center": 1000, "scale": 500, "min": 0, "max": 5000},
			{"name": "plan=pro", "signal": "plan", "kind": "category", "value": "pro"}]},
		"beta": [0.2, 0.8]}`
	tests := []struct {
		name    string
		src     string
		wantErr string
	}{
		{name: "valid", src: valid},
		{name: "no features", src: `{"intercept": 0.5, "rule_weights": {}, "encoder": {"version": 1, "features": []}, "beta": []}`},
		{name: "not JSON", src: `intercept: 1`, wantErr: "invalid character"},
		{name: "unknown field", src: strings.Replace(valid, `"beta"`, `"betas"`, 1), wantErr: "unknown field"},
		{name: "trailing data", src: valid + ` {}`, wantErr: "trailing data"},
		{name: "beta length", src: strings.Replace(valid, `[0.2, 0.8]`, `[0.2]`, 1), wantErr: "1 weights for 2 features"},
		{name: "unknown kind", src: strings.Replace(valid, `"category"`, `"spline"`, 1), wantErr: `unknown kind "spline"`},
		{name: "zero scale", src: strings.Replace(valid, `"scale": 500`, `"scale": 0`, 1), wantErr: "scale must be > 0"},
		{name: "negative scale", src: strings.Replace(valid, `"scale": 500`, `"scale": -1`, 1), wantErr: "scale must be > 0"},
		{name: "min above max", src: strings.Replace(valid, `"min": 0`, `"min": 6000`, 1), wantErr: "min > max"},
		{name: "category without value", src: strings.Replace(valid, `"value": "pro"`, `"value": ""`, 1), wantErr: "category value is required"},
		{name: "duplicate feature", src: strings.Replace(valid, `"name": "plan=pro"`, `"name": "deal_size"`, 1), wantErr: "duplicate name"},
		{name: "missing signal", src: strings.Replace(valid, `"signal": "plan", `, ``, 1), wantErr: "name and signal are required"},
		{name: "newer encoder", src: strings.Replace(valid, `"version": 1`, `"version": 4`, 1), wantErr: "encoder version 4"},
		{name: "product of a later feature", src: strings.Replace(valid, `"kind": "category", "value": "pro"`, `"kind": "product", "of": [0, 5]`, 1), wantErr: "product names two earlier features"},
		{name: "huge number", src: strings.Replace(valid, `"intercept": -1`, `"intercept": 1e999`, 1), wantErr: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseModel([]byte(tt.src))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseModel: %v", err)
				}
				b, err := m.Marshal()
				if err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				again, err := ParseModel(b)
				if err != nil {
					t.Fatalf("ParseModel(Marshal()): %v", err)
				}
				b2, _ := again.Marshal()
				if string(b) != string(b2) {
					t.Errorf("Marshal round trip differs:\n%s\n%s", b, b2)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseModel error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestModelValidateNonFinite(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Model)
	}{
		{name: "intercept", mutate: func(m *Model) { m.Intercept = math.NaN() }},
		{name: "rule weight", mutate: func(m *Model) { m.RuleWeights["big-deal"] = math.Inf(1) }},
		{name: "beta", mutate: func(m *Model) { m.Beta[0] = math.NaN() }},
		{name: "center", mutate: func(m *Model) { m.Encoder.Features[0].Center = math.Inf(-1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := exampleModel()
			tt.mutate(m)
			if err := m.validate(); err == nil {
				t.Error("validate() = nil, want an error for a non-finite number")
			}
		})
	}
	if err := exampleModel().validate(); err != nil {
		t.Errorf("validate(exampleModel) = %v, want nil", err)
	}
}

func TestMarshalEmptyModel(t *testing.T) {
	b, err := (&Model{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"intercept":0,"rule_weights":{},"encoder":{"version":1,"features":[]},"beta":[]}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	if _, err := ParseModel(b); err != nil {
		t.Errorf("ParseModel(empty model) = %v", err)
	}
}

func TestEncodePlanMatchesEncode(t *testing.T) {
	inputs := []map[string]any{
		benchSignals(),
		{},
		{"deal_size": "big", "plan": 3.0, "returning": "yes", "wait_seconds": math.NaN()},
		{"deal_size": -250.5, "plan": "pro", "returning": false, "wait_seconds": 1e12, "country": "DE"},
	}
	for _, m := range []*Model{exampleModel(), benchModel(benchSignals()), shapeModel(benchSignals())} {
		plan := newEncodePlan(&m.Encoder)
		for i, in := range inputs {
			want := m.Encoder.Encode(in, nil)
			vals, got, odd := plan.encode(nil, in, nil, nil)
			if wantOdd := i == 2; odd != wantOdd {
				t.Errorf("input %d: odd = %v, want %v", i, odd, wantOdd)
			}
			if len(got) != len(want) {
				t.Fatalf("input %d: plan gives %d features, Encode %d", i, len(got), len(want))
			}
			for j := range want {
				if got[j] != want[j] {
					t.Errorf("input %d feature %s: plan %v, Encode %v", i, m.Encoder.Features[j].Name, got[j], want[j])
				}
				if v := vals[plan.feats[j].slot]; v != in[m.Encoder.Features[j].Signal] && !(v != v) {
					t.Errorf("input %d feature %s: value %v, want %v", i, m.Encoder.Features[j].Name, v, in[m.Encoder.Features[j].Signal])
				}
			}
		}
	}
}

func TestNeededVersion(t *testing.T) {
	number := Feature{Name: "x", Signal: "x", Kind: KindNumber, Scale: 1}
	tests := []struct {
		name string
		add  Feature
		want int
	}{
		{name: "version-1 kinds only", add: Feature{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"}, want: 1},
		{name: "a hinge", add: Feature{Name: "x:hinge1", Signal: "x", Kind: KindHinge, Scale: 1, Knot: 0.5}, want: 2},
		{name: "a log hinge", add: Feature{Name: "x:hinge1", Signal: "x", Kind: KindLogHinge, Scale: 1, Knot: 0.5}, want: 2},
		{name: "a product", add: Feature{Name: "x×x", Signal: "x", Kind: KindProduct, Of: []int{0, 0}}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Encoder{Features: []Feature{number, tt.add}}
			if got := e.NeededVersion(); got != tt.want {
				t.Errorf("NeededVersion = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestFitModelEncoderVersion: a model FitModel makes without hinges or
// products is stored as encoder version 1, so a binary from before
// version 2 still loads it after a rollback; with either, version 2.
func TestFitModelEncoderVersion(t *testing.T) {
	tests := []struct {
		name string
		opt  FitOptions
		pair bool
		want int
	}{
		{name: "no shapes, no interactions", opt: FitOptions{Encoder: EncoderOptions{Knots: -1}, Interactions: -1}, want: 1},
		{name: "no shapes, no interaction kept", opt: FitOptions{Encoder: EncoderOptions{Knots: -1}}, want: 1},
		{name: "shapes", opt: FitOptions{Interactions: -1}, want: 2},
		{name: "interactions only", opt: FitOptions{Encoder: EncoderOptions{Knots: -1}}, pair: true, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := interactionExamples(3000, tt.pair, 11)
			design, fit, sel, err := FitModel(context.Background(), Newton{}, nil, ExampleSlice(ex), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if tt.pair && len(sel.Interactions) == 0 {
				t.Fatal("no interaction kept on data with one")
			}
			body, err := design.Model(fit).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var stored struct {
				Encoder struct {
					Version int `json:"version"`
				} `json:"encoder"`
			}
			if err := json.Unmarshal(body, &stored); err != nil {
				t.Fatal(err)
			}
			if got := stored.Encoder.Version; got != tt.want {
				t.Errorf("stored encoder version %d, want %d", got, tt.want)
			}
			back, err := ParseModel(body)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range ex[:20] {
				if a, b := design.Encoder.Encode(r.Signals, nil), back.Encoder.Encode(r.Signals, nil); !reflect.DeepEqual(a, b) {
					t.Fatalf("stored model encodes %v, want %v", b, a)
				}
			}
		})
	}
}
