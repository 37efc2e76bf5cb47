package model

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
)

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }

func checkDecision(t *testing.T, got, want Decision) {
	t.Helper()
	if !approx(got.Logit, want.Logit) {
		t.Errorf("Logit = %.15g, want %.15g", got.Logit, want.Logit)
	}
	if !approx(got.Score, want.Score) {
		t.Errorf("Score = %.15g, want %.15g", got.Score, want.Score)
	}
	if got.Tier != want.Tier {
		t.Errorf("Tier = %v, want %v", got.Tier, want.Tier)
	}
	if got.Route != want.Route {
		t.Errorf("Route = %+v, want %+v", got.Route, want.Route)
	}
	if !reflect.DeepEqual(got.Hits, want.Hits) {
		t.Errorf("Hits = %v, want %v", got.Hits, want.Hits)
	}
	if !reflect.DeepEqual(got.Errors, want.Errors) {
		t.Errorf("Errors = %v, want %v", got.Errors, want.Errors)
	}
	if len(got.Reasons) != len(want.Reasons) {
		t.Fatalf("Reasons = %+v, want %+v", got.Reasons, want.Reasons)
	}
	for i := range want.Reasons {
		g, w := got.Reasons[i], want.Reasons[i]
		if g.Kind != w.Kind || g.Name != w.Name || !approx(g.Contribution, w.Contribution) || g.TierFloor != w.TierFloor || !reflect.DeepEqual(g.Value, w.Value) {
			t.Errorf("Reasons[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func TestScoreRulesOnly(t *testing.T) {
	s := NewScorer(mustPolicy(t, examplePolicy), nil)
	rule := func(name string, c float64, floor string) Reason {
		return Reason{Kind: "rule", Name: name, Contribution: c, TierFloor: floor}
	}
	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{
			name: "nothing fires",
			in:   Input{Channel: "web", Signals: map[string]any{"deal_size": 50.0}},
			want: Decision{Logit: -3, Score: sigmoid(-3), Tier: TierLow, Route: Route{Via: "none"}},
		},
		{
			name: "one rule",
			in:   Input{Channel: "web", Signals: map[string]any{"pricing_page_views": 4.0}},
			want: Decision{Logit: -2, Score: 0.11920292202211755, Tier: TierLow, Route: Route{Via: "none"},
				Hits: []string{"pricing"}, Reasons: []Reason{rule("pricing", 1, "")}},
		},
		{
			name: "negative points",
			in:   Input{Channel: "web", Signals: map[string]any{"plan": "free", "pricing_page_views": 4.0}},
			want: Decision{Logit: -3.5, Score: sigmoid(-3.5), Tier: TierLow, Route: Route{Via: "none"},
				Hits: []string{"pricing", "free-plan"}, Reasons: []Reason{rule("free-plan", -1.5, ""), rule("pricing", 1, "")}},
		},
		{
			name: "tier floor raises medium to high",
			// logit -3 + 2.5 + 1 = 0.5, score 0.622: medium by default thresholds.
			in: Input{Channel: "web", Signals: map[string]any{"deal_size": 20000.0, "pricing_page_views": 3.0}},
			want: Decision{Logit: 0.5, Score: 0.6224593312018546, Tier: TierHigh, Route: Route{Via: "none"},
				Hits: []string{"big-deal", "pricing"}, Reasons: []Reason{rule("big-deal", 2.5, "high"), rule("pricing", 1, "")}},
		},
		{
			name: "channel scope: rule skipped on web",
			in:   Input{Channel: "web", Message: "please cancel", Signals: map[string]any{"pricing_page_views": 3.0}},
			want: Decision{Logit: -2, Score: 0.11920292202211755, Tier: TierLow, Route: Route{Via: "none"},
				Hits: []string{"pricing"}, Reasons: []Reason{rule("pricing", 1, "")}},
		},
		{
			name: "channel scope: rule fires on whatsapp, routed by rule",
			// logit -3 + 2 + 1 = 0, score 0.5: medium on whatsapp.
			in: Input{Channel: "whatsapp", Message: "I want a REFUND", Signals: map[string]any{"pricing_page_views": 3.0}},
			want: Decision{Logit: 0, Score: 0.5, Tier: TierMedium, Route: Route{Team: "retention", Via: "route"},
				Hits: []string{"angry-whatsapp", "pricing"}, Reasons: []Reason{rule("angry-whatsapp", 2, ""), rule("pricing", 1, "")}},
		},
		{
			name: "channel thresholds: medium on whatsapp",
			// logit -0.5, score 0.3775: below default medium 0.4, above whatsapp medium 0.35.
			in: Input{Channel: "whatsapp", Signals: map[string]any{"pricing_page_views": 3.0, "returning": true}},
			want: Decision{Logit: -0.5, Score: 0.3775406687981454, Tier: TierMedium, Route: Route{Via: "none"},
				Hits: []string{"pricing", "returning-visitor"}, Reasons: []Reason{rule("returning-visitor", 1.5, ""), rule("pricing", 1, "")}},
		},
		{
			name: "default thresholds for a channel without its own",
			in:   Input{Channel: "sms", Signals: map[string]any{"pricing_page_views": 3.0, "returning": true}},
			want: Decision{Logit: -0.5, Score: 0.3775406687981454, Tier: TierLow, Route: Route{Via: "none"},
				Hits: []string{"pricing", "returning-visitor"}, Reasons: []Reason{rule("returning-visitor", 1.5, ""), rule("pricing", 1, "")}},
		},
		{
			name: "high on whatsapp routes to escalations",
			// logit 1.5, score 0.8176: high on whatsapp (0.6 <= s < 0.85).
			in: Input{Channel: "whatsapp", Message: "cancel it", Signals: map[string]any{"pricing_page_views": 3.0, "returning": true}},
			want: Decision{Logit: 1.5, Score: 0.8175744761936437, Tier: TierHigh, Route: Route{Team: "support-escalations", Via: "route"},
				Hits:    []string{"angry-whatsapp", "pricing", "returning-visitor"},
				Reasons: []Reason{rule("angry-whatsapp", 2, ""), rule("returning-visitor", 1.5, ""), rule("pricing", 1, "")}},
		},
		{
			name: "owner takes urgent, team still set",
			in: Input{Channel: "whatsapp", Message: "refund", Signals: map[string]any{
				"deal_size": 20000.0, "pricing_page_views": 3.0, "returning": true, "owner": "ana@example.com"}},
			want: Decision{Logit: 4, Score: 0.9820137900379085, Tier: TierUrgent,
				Route: Route{Team: "enterprise-sales", Owner: "ana@example.com", Via: "owner"},
				Hits:  []string{"big-deal", "angry-whatsapp", "pricing", "returning-visitor"},
				Reasons: []Reason{rule("big-deal", 2.5, "high"), rule("angry-whatsapp", 2, ""),
					rule("returning-visitor", 1.5, ""), rule("pricing", 1, "")}},
		},
		{
			name: "owner takes high without a matching route",
			in:   Input{Channel: "web", Signals: map[string]any{"deal_size": 20000.0, "owner": "bo"}},
			want: Decision{Logit: -0.5, Score: 0.3775406687981454, Tier: TierHigh, Route: Route{Owner: "bo", Via: "owner"},
				Hits: []string{"big-deal"}, Reasons: []Reason{rule("big-deal", 2.5, "high")}},
		},
		{
			name: "owner ignored below high",
			in:   Input{Channel: "web", Signals: map[string]any{"owner": "bo"}},
			want: Decision{Logit: -3, Score: sigmoid(-3), Tier: TierLow, Route: Route{Via: "none"}},
		},
		{
			name: "empty or non-string owner ignored",
			in:   Input{Channel: "web", Signals: map[string]any{"deal_size": 20000.0, "owner": 7.0}},
			want: Decision{Logit: -0.5, Score: 0.3775406687981454, Tier: TierHigh, Route: Route{Via: "none"},
				Hits: []string{"big-deal"}, Reasons: []Reason{rule("big-deal", 2.5, "high")}},
		},
		{
			name: "type mismatch counts as not fired",
			in:   Input{Channel: "web", Signals: map[string]any{"pricing_page_views": "many", "returning": true}},
			want: Decision{Logit: -1.5, Score: sigmoid(-1.5), Tier: TierLow, Route: Route{Via: "none"},
				Hits: []string{"returning-visitor"}, Errors: []string{"pricing"}, Reasons: []Reason{rule("returning-visitor", 1.5, "")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecision(t, s.Score(tt.in), tt.want)
		})
	}
}

func TestRouteOrderAndCatchAll(t *testing.T) {
	p := mustPolicy(t, `
rules:
  - {name: vip, expression: "vip", points: 10}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
routes:
  - {tier: urgent, channel: whatsapp, rule: vip, team: vip-desk}
  - {tier: urgent, team: sales}
  - {team: general}
`)
	s := NewScorer(p, nil)
	tests := []struct {
		name string
		in   Input
		want Route
	}{
		{name: "all fields match", in: Input{Channel: "whatsapp", Signals: map[string]any{"vip": true}}, want: Route{Team: "vip-desk", Via: "route"}},
		{name: "channel differs", in: Input{Channel: "web", Signals: map[string]any{"vip": true}}, want: Route{Team: "sales", Via: "route"}},
		{name: "catch-all", in: Input{Channel: "whatsapp"}, want: Route{Team: "general", Via: "route"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Score(tt.in).Route; got != tt.want {
				t.Errorf("Route = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// exampleModel is a hand-built model over examplePolicy: pricing is tuned,
// returning-visitor keeps its points, and six features of every kind.
func exampleModel() *Model {
	return &Model{
		Intercept:   -1,
		RuleWeights: map[string]float64{"big-deal": 1.0, "pricing": 0.5, "retired-rule": 9},
		Encoder: Encoder{Version: 1, Features: []Feature{
			{Name: "deal_size", Signal: "deal_size", Kind: KindNumber, Center: 1000, Scale: 500, Min: 0, Max: 5000},
			{Name: "wait_seconds", Signal: "wait_seconds", Kind: KindLog, Center: 0, Scale: 1},
			{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"},
			{Name: "plan=other", Signal: "plan", Kind: KindOther},
			{Name: "returning", Signal: "returning", Kind: KindBool},
			{Name: "deal_size:missing", Signal: "deal_size", Kind: KindMissing},
		}},
		Beta: []float64{0.2, 0.1, 0.8, -0.3, 0.4, -0.5},
	}
}

func TestScoreWithModel(t *testing.T) {
	s := NewScorer(mustPolicy(t, examplePolicy), exampleModel())
	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{
			name: "rule weights and features",
			in: Input{Channel: "web", Signals: map[string]any{
				"deal_size": 20000.0, "wait_seconds": 3.0, "plan": "enterprise", "returning": true}},
			// b -1; big-deal tuned 1.0; returning-visitor untuned 1.5;
			// deal_size clipped to 5000: (5000-1000)/500 = 8, *0.2 = 1.6;
			// wait: log1p(3) = ln 4, *0.1; plan=other 1*-0.3; returning 0.4.
			want: func() Decision {
				logit := -1 + 1.0 + 1.5 + 1.6 + 0.1*math.Log(4) - 0.3 + 0.4
				return Decision{Logit: logit, Score: 1 / (1 + math.Exp(-logit)), Tier: TierUrgent,
					Route: Route{Team: "enterprise-sales", Via: "route"},
					Hits:  []string{"big-deal", "returning-visitor"},
					Reasons: []Reason{
						{Kind: "rule", Name: "returning-visitor", Contribution: 1.5},
						{Kind: "rule", Name: "big-deal", Contribution: 1.0, TierFloor: "high"},
						{Kind: "feature", Name: "deal_size", Contribution: 1.6, Value: 20000.0},
						{Kind: "feature", Name: "returning", Contribution: 0.4, Value: true},
						{Kind: "feature", Name: "plan", Contribution: -0.3, Value: "enterprise"},
						{Kind: "feature", Name: "wait_seconds", Contribution: 0.1 * math.Log(4), Value: 3.0},
					}}
			}(),
		},
		{
			name: "missing signals",
			in:   Input{Channel: "web", Signals: map[string]any{"plan": "pro", "pricing_page_views": 3.0}},
			// b -1; pricing tuned 0.5; plan=pro 0.8; deal_size missing -0.5:
			// one reason per signal, the missing one without a value.
			want: Decision{Logit: -0.2, Score: sigmoid(-0.2), Tier: TierMedium, Route: Route{Via: "none"},
				Hits: []string{"pricing"},
				Reasons: []Reason{
					{Kind: "rule", Name: "pricing", Contribution: 0.5},
					{Kind: "feature", Name: "plan", Contribution: 0.8, Value: "pro"},
					{Kind: "feature", Name: "deal_size", Contribution: -0.5},
				}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecision(t, s.Score(tt.in), tt.want)
		})
	}
}

func TestFeatureReasonsAreCapped(t *testing.T) {
	m := &Model{Encoder: Encoder{Version: 1}}
	signals := map[string]any{}
	for i := range 8 {
		name := fmt.Sprintf("f%d", i)
		m.Encoder.Features = append(m.Encoder.Features, Feature{Name: name, Signal: name, Kind: KindBool})
		// Weights 1, -2, 3, ... with a tie between f6 and f7.
		w := float64(i + 1)
		if i%2 == 1 {
			w = -w
		}
		if i == 7 {
			w = 7
		}
		m.Beta = append(m.Beta, w)
		signals[name] = true
	}
	d := NewScorer(mustPolicy(t, okThresholds), m).Score(Input{Signals: signals})
	var got []string
	for _, r := range d.Reasons {
		got = append(got, r.Name)
	}
	if want := []string{"f6", "f7", "f5", "f4", "f3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("feature reasons = %v, want %v", got, want)
	}
	if want := 1 - 2 + 3 - 4 + 5 - 6 + 7 + 7.0; !approx(d.Logit, want) {
		t.Errorf("Logit = %v, want %v (every feature counts, not only those shown)", d.Logit, want)
	}
}

// signalModel reads a category with an "other" bucket and a missing
// indicator, a number through two features (as a shape basis would) with
// its missing indicator, and a boolean.
func signalModel() *Model {
	return &Model{
		Intercept: -1,
		Encoder: Encoder{Version: 1, Features: []Feature{
			{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"},
			{Name: "deal_size", Signal: "deal_size", Kind: KindNumber, Center: 10000, Scale: 10000, Min: 0, Max: 100000},
			{Name: "plan=free", Signal: "plan", Kind: KindCategory, Value: "free"},
			{Name: "plan=other", Signal: "plan", Kind: KindOther},
			{Name: "plan:missing", Signal: "plan", Kind: KindMissing},
			{Name: "deal_size:log", Signal: "deal_size", Kind: KindLog, Center: 9, Scale: 1},
			{Name: "deal_size:missing", Signal: "deal_size", Kind: KindMissing},
			{Name: "returning", Signal: "returning", Kind: KindBool},
		}},
		Beta: []float64{0.9, 0.1, -0.6, 0.3, -0.2, 0.25, -0.7, 0.05},
	}
}

// A decision's feature reasons are one line per signal, summing all its
// features, named by the signal and carrying the signal's value.
func TestReasonsPerSignal(t *testing.T) {
	s := NewScorer(mustPolicy(t, okThresholds), signalModel())
	ln := func(x float64) float64 { return math.Log1p(x) }
	tests := []struct {
		name    string
		signals map[string]any
		want    []Reason
	}{
		{
			name:    "a number's features add up",
			signals: map[string]any{"deal_size": 50000.0, "plan": "pro", "returning": true},
			// deal_size: (50000-10000)/10000*0.1 + (log1p(50000)-9)*0.25,
			// about 0.85.
			want: []Reason{
				{Kind: "feature", Name: "plan", Contribution: 0.9, Value: "pro"},
				{Kind: "feature", Name: "deal_size", Contribution: 0.4 + (ln(50000)-9)*0.25, Value: 50000.0},
				{Kind: "feature", Name: "returning", Contribution: 0.05, Value: true},
			},
		},
		{
			name:    "the other bucket is the signal",
			signals: map[string]any{"deal_size": 10000.0, "plan": "enterprise"},
			want: []Reason{
				{Kind: "feature", Name: "plan", Contribution: 0.3, Value: "enterprise"},
				{Kind: "feature", Name: "deal_size", Contribution: (ln(10000) - 9) * 0.25, Value: 10000.0},
			},
		},
		{
			name:    "missing signals have no value",
			signals: map[string]any{"returning": false},
			// deal_size: the number features sit at their centre (0)
			// and the indicator fires.
			want: []Reason{
				{Kind: "feature", Name: "deal_size", Contribution: -0.7},
				{Kind: "feature", Name: "plan", Contribution: -0.2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Score(Input{Signals: tt.signals})
			if len(d.Reasons) != len(tt.want) {
				t.Fatalf("reasons = %+v, want %+v", d.Reasons, tt.want)
			}
			for i, r := range d.Reasons {
				w := tt.want[i]
				if r.Kind != w.Kind || r.Name != w.Name || !approx(r.Contribution, w.Contribution) || !reflect.DeepEqual(r.Value, w.Value) {
					t.Errorf("reason %d = %+v, want %+v", i, r, w)
				}
			}
			var sum float64
			for _, r := range d.Reasons {
				sum += r.Contribution
			}
			if !approx(d.Logit, -1+sum) {
				t.Errorf("Logit = %v, want the intercept plus the reasons, %v", d.Logit, -1+sum)
			}
		})
	}
}

// Signals are ranked by their summed contribution: one whose features
// cancel out ranks below one whose small features add up, and at most
// five are kept.
func TestSignalReasonsRankBySum(t *testing.T) {
	m := &Model{Encoder: Encoder{Version: 1}}
	signals := map[string]any{}
	// Per signal, the weights of its two boolean features.
	weights := [][2]float64{{2, -1.9}, {0.6, 0.6}, {-1, 0}, {0.5, 0.4}, {0.3, 0.3}, {0.2, 0.2}, {0.1, 0.05}}
	for i, w := range weights {
		name := fmt.Sprintf("s%d", i)
		for k, b := range w {
			m.Encoder.Features = append(m.Encoder.Features, Feature{Name: fmt.Sprintf("%s#%d", name, k), Signal: name, Kind: KindBool})
			m.Beta = append(m.Beta, b)
		}
		signals[name] = true
	}
	d := NewScorer(mustPolicy(t, okThresholds), m).Score(Input{Signals: signals})
	var got []string
	for _, r := range d.Reasons {
		got = append(got, fmt.Sprintf("%s %+.2f", r.Name, r.Contribution))
	}
	want := []string{"s1 +1.20", "s2 -1.00", "s3 +0.90", "s4 +0.60", "s5 +0.40"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reasons = %v, want %v", got, want)
	}
}

func TestSigmoidIsStable(t *testing.T) {
	tests := []struct {
		name string
		x    float64
		want float64
	}{
		{name: "zero", x: 0, want: 0.5},
		{name: "large positive", x: 1000, want: 1},
		{name: "large negative", x: -1000, want: 0},
		{name: "moderate", x: 2, want: 0.8807970779778823},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sigmoid(tt.x)
			if math.IsNaN(got) || !approx(got, tt.want) {
				t.Errorf("sigmoid(%v) = %v, want %v", tt.x, got, tt.want)
			}
		})
	}
}

func TestScoreConcurrent(t *testing.T) {
	s := NewScorer(mustPolicy(t, examplePolicy), exampleModel())
	inputs := []Input{
		{Channel: "web", Signals: map[string]any{"deal_size": 20000.0, "returning": true}},
		{Channel: "whatsapp", Message: "refund please", Signals: map[string]any{"plan": "pro", "pricing_page_views": 3.0}},
		{Channel: "sms", Message: "hi", Signals: map[string]any{"pricing_page_views": "x", "owner": "ana"}},
		{Channel: "whatsapp", Signals: nil},
	}
	want := make([]Decision, len(inputs))
	for i, in := range inputs {
		want[i] = s.Score(in)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for n := range 300 {
				i := (g + n) % len(inputs)
				if got := s.Score(inputs[i]); !reflect.DeepEqual(got, want[i]) {
					select {
					case errs <- fmt.Sprintf("input %d: got %+v, want %+v", i, got, want[i]):
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
