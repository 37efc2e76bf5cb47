package model

import (
	"math"
	"slices"
	"testing"
)

// contribModel has a number with a missing indicator, a log-read number,
// a category with an other bucket and a missing indicator, a boolean, and
// a signal read only through its missing indicator.
func contribModel() *Model {
	return &Model{
		Intercept: -1,
		Encoder: Encoder{Version: 1, Features: []Feature{
			{Name: "deal_size", Signal: "deal_size", Kind: KindNumber, Center: 10000, Scale: 10000, Min: 0, Max: 100000},
			{Name: "deal_size:missing", Signal: "deal_size", Kind: KindMissing},
			{Name: "wait_seconds", Signal: "wait_seconds", Kind: KindLog, Center: 3, Scale: 2, Min: 0, Max: math.Log1p(1000)},
			{Name: "plan=pro", Signal: "plan", Kind: KindCategory, Value: "pro"},
			{Name: "plan=free", Signal: "plan", Kind: KindCategory, Value: "free"},
			{Name: "plan=other", Signal: "plan", Kind: KindOther},
			{Name: "plan:missing", Signal: "plan", Kind: KindMissing},
			{Name: "returning", Signal: "returning", Kind: KindBool},
			{Name: "email:missing", Signal: "email", Kind: KindMissing},
		}},
		Beta: []float64{0.1, -0.7, 0.5, 0.9, -0.6, 0.3, -0.2, 0.05, 0.4},
	}
}

// A curve is exactly what the weights say at every value.
func TestContribCurvesFollowTheWeights(t *testing.T) {
	m := contribModel()
	curves := ContribCurves(m, nil, 0)
	by := map[string]ContribCurve{}
	for _, c := range curves {
		by[c.Signal] = c
	}
	if len(curves) != 4 {
		t.Fatalf("got %d curves, want 4 (email has only a missing indicator)", len(curves))
	}

	deal := by["deal_size"]
	if deal.Kind != ContribNumber || deal.LogScale || len(deal.Grid) != contribGridPoints {
		t.Fatalf("deal_size: kind %q, log %v, %d points", deal.Kind, deal.LogScale, len(deal.Grid))
	}
	if got := [2]float64{deal.Grid[0].Value, deal.Grid[len(deal.Grid)-1].Value}; got != [2]float64{0, 100000} {
		t.Errorf("deal_size grid from %v to %v, want the clip range 0 to 100000", got[0], got[1])
	}
	for _, p := range deal.Grid {
		if want := 0.1 * (p.Value - 10000) / 10000; !approx(p.Contribution, want) {
			t.Errorf("deal_size at %v = %v, want %v", p.Value, p.Contribution, want)
		}
	}
	if deal.Missing == nil || !approx(deal.Missing.Contribution, -0.7) {
		t.Errorf("deal_size missing = %+v, want -0.7", deal.Missing)
	}

	wait := by["wait_seconds"]
	if !wait.LogScale || wait.Missing != nil {
		t.Errorf("wait_seconds: log %v, missing %+v; want a log scale and no missing bar", wait.LogScale, wait.Missing)
	}
	if last := wait.Grid[len(wait.Grid)-1].Value; math.Abs(last-1000) > 1e-9 {
		t.Errorf("wait_seconds grid ends at %v, want 1000", last)
	}
	for i, p := range wait.Grid {
		// Evenly spaced in log1p, and 0.5*(log1p(x)-3)/2 there.
		if step := math.Log1p(1000) / (contribGridPoints - 1); !approx(math.Log1p(p.Value), float64(i)*step) {
			t.Errorf("wait_seconds point %d at %v, want log1p %v", i, p.Value, float64(i)*step)
		}
		if want := 0.5 * (math.Log1p(p.Value) - 3) / 2; !approx(p.Contribution, want) {
			t.Errorf("wait_seconds at %v = %v, want %v", p.Value, p.Contribution, want)
		}
	}

	plan := by["plan"]
	wantBars := []ContribBar{{Category: "pro", Contribution: 0.9}, {Category: "free", Contribution: -0.6}, {Other: true, Contribution: 0.3}}
	if plan.Kind != ContribCategory || len(plan.Bars) != len(wantBars) {
		t.Fatalf("plan = %+v, want bars %+v", plan, wantBars)
	}
	for i, b := range plan.Bars {
		if w := wantBars[i]; b.Category != w.Category || b.Other != w.Other || !approx(b.Contribution, w.Contribution) {
			t.Errorf("plan bar %d = %+v, want %+v", i, b, w)
		}
	}
	if plan.Missing == nil || !approx(plan.Missing.Contribution, -0.2) {
		t.Errorf("plan missing = %+v, want -0.2", plan.Missing)
	}

	ret := by["returning"]
	if ret.Kind != ContribBool || len(ret.Bars) != 2 || !approx(ret.Bars[0].Contribution, 0.05) || ret.Bars[1].Contribution != 0 {
		t.Errorf("returning = %+v, want true +0.05, false 0", ret)
	}

	// Without rows, ranked by range: wait_seconds spans
	// 0.25*log1p(1000), about 1.73, deal_size 0.9+0.7 (the missing bar
	// included), plan 1.5, returning 0.05.
	var order []string
	for _, c := range curves {
		order = append(order, c.Signal)
	}
	if want := []string{"wait_seconds", "deal_size", "plan", "returning"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
}

// On rows, curves are ranked by the spread of their contribution, carry
// the shares of their bars, and the top is kept.
func TestContribCurvesSpreadAndShares(t *testing.T) {
	m := contribModel()
	signals := []map[string]any{
		{"deal_size": 10000.0, "wait_seconds": 3.0, "plan": "pro", "returning": true},
		{"deal_size": 30000.0, "wait_seconds": 3.0, "plan": "pro", "returning": false},
		{"wait_seconds": 3.0, "plan": "enterprise", "returning": true},
		{"deal_size": 10000.0, "wait_seconds": 3.0, "returning": true},
	}
	var rows [][]float64
	for _, s := range signals {
		rows = append(rows, m.Encoder.Encode(s, nil))
	}
	curves := ContribCurves(m, rows, 3)
	if len(curves) != 3 {
		t.Fatalf("got %d curves, want the top 3", len(curves))
	}
	// plan: 0.9, 0.9, 0.3, -0.2, mean 0.475: deviations .425 .425 .175 .675.
	// deal_size: 0, 0.2, -0.7, 0, mean -0.125: .125 .325 .575 .125.
	// returning: .05 0 .05 .05, mean .0375: .0125 .0375 .0125 .0125.
	// wait_seconds never varies.
	want := []struct {
		signal string
		spread float64
	}{{"plan", 1.7 / 4}, {"deal_size", 1.15 / 4}, {"returning", 0.075 / 4}}
	for i, w := range want {
		if curves[i].Signal != w.signal || !approx(curves[i].Spread, w.spread) {
			t.Errorf("curve %d = %s spread %v, want %s %v", i, curves[i].Signal, curves[i].Spread, w.signal, w.spread)
		}
	}
	plan := curves[0]
	for i, w := range []float64{0.5, 0, 0.25} {
		if s := plan.Bars[i].Share; s == nil || !approx(*s, w) {
			t.Errorf("plan bar %d share = %v, want %v", i, s, w)
		}
	}
	if s := plan.Missing.Share; s == nil || !approx(*s, 0.25) {
		t.Errorf("plan missing share = %v, want 0.25", s)
	}
	ret := curves[2]
	if s := ret.Bars[1].Share; s == nil || !approx(*s, 0.25) {
		t.Errorf("returning false share = %v, want 0.25", s)
	}
}
