package model

import (
	"fmt"
	"strings"
	"testing"
)

// benchRules are 30 rules of the kinds real policies hold: thresholds,
// category lists, booleans, message patterns, channel scopes and
// combinations.
var benchRules = []string{
	`deal_size >= 10000`,
	`deal_size >= 50000 and lifecycle_stage in ["opportunity", "customer"]`,
	`pricing_page_views >= 3`,
	`returning and pricing_page_views >= 1`,
	`wait_seconds > 120`,
	`plan == "free"`,
	`plan in ["pro", "business", "enterprise"]`,
	`channel == "whatsapp" and message matches "(?i)cancel|refund|urgent"`,
	`message matches "(?i)price|pricing|quote"`,
	`message contains "demo"`,
	`country in ["US", "GB", "DE", "FR"]`,
	`seats >= 20`,
	`seats * 12 > 200`,
	`not returning`,
	`trial_days_left <= 3 and trial_days_left >= 0`,
	`nps <= 6`,
	`open_tickets > 2 or csat < 3`,
	`company_size in ["201-500", "501-1000", "1000+"]`,
	`utm_source == "google" and utm_medium == "cpc"`,
	`visits_30d >= 5`,
	`cart_value > 500`,
	`churn_risk > 0.7`,
	`owner != nil`,
	`mrr >= 1000`,
	`last_order_days > 90`,
	`is_partner`,
	`industry in ["finance", "health"] and deal_size >= 5000`,
	`message matches "(?i)\\b(angry|terrible|worst)\\b"`,
	`referrals >= 1`,
	`lead_score >= 80 and lifecycle_stage != "customer"`,
}

func benchPolicy(b *testing.B) *Policy {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("base: -3\nrules:\n")
	for i, e := range benchRules {
		fmt.Fprintf(&sb, "  - name: r%02d\n    expression: '%s'\n    points: %g\n", i, e, float64(i%7)-2.5)
		if i == 7 {
			sb.WriteString("    channels: [whatsapp]\n    tier_floor: high\n")
		}
	}
	sb.WriteString(`thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.65, medium: 0.35}
routes:
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, channel: whatsapp, team: support-escalations}
  - {rule: r07, team: retention}
  - {team: general}
`)
	return mustPolicy(b, sb.String())
}

// benchSignals are 50 signals: numbers, booleans, categories and a few
// missing values, as a chat platform sends them.
func benchSignals() map[string]any {
	s := map[string]any{
		"deal_size": 64000.0, "lifecycle_stage": "opportunity", "pricing_page_views": 4.0,
		"returning": true, "wait_seconds": 45.0, "plan": "pro", "country": "DE", "seats": 25.0,
		"trial_days_left": nil, "nps": 8.0, "open_tickets": 1.0, "csat": 4.0,
		"company_size": "201-500", "utm_source": "google", "utm_medium": "cpc", "visits_30d": 7.0,
		"cart_value": 120.0, "churn_risk": 0.2, "owner": "ana@example.com", "mrr": 2500.0,
		"last_order_days": 12.0, "is_partner": false, "industry": "finance", "referrals": 0.0,
		"lead_score": 85.0,
	}
	for i := len(s); i < 50; i++ {
		switch i % 3 {
		case 0:
			s[fmt.Sprintf("extra_num_%d", i)] = float64(i)
		case 1:
			s[fmt.Sprintf("extra_flag_%d", i)] = i%2 == 0
		default:
			s[fmt.Sprintf("extra_cat_%d", i)] = fmt.Sprintf("v%d", i%4)
		}
	}
	return s
}

// benchModel has 50 features over the bench signals: every kind, as the
// weekly job would fit them.
func benchModel(signals map[string]any) *Model {
	m := &Model{Intercept: -2.2, RuleWeights: map[string]float64{"r00": 1.1, "r03": 0.4}, Encoder: Encoder{Version: 1}}
	add := func(f Feature, w float64) {
		m.Encoder.Features = append(m.Encoder.Features, f)
		m.Beta = append(m.Beta, w)
	}
	for _, name := range []string{"deal_size", "pricing_page_views", "wait_seconds", "seats", "nps", "open_tickets",
		"csat", "visits_30d", "cart_value", "churn_risk", "mrr", "last_order_days", "referrals", "lead_score", "trial_days_left"} {
		add(Feature{Name: name, Signal: name, Kind: KindLog, Center: 2, Scale: 1.5, Min: 0, Max: 12}, 0.05)
		add(Feature{Name: name + ":missing", Signal: name, Kind: KindMissing}, -0.1)
	}
	for _, name := range []string{"returning", "is_partner"} {
		add(Feature{Name: name, Signal: name, Kind: KindBool}, 0.3)
	}
	for _, c := range []struct{ signal, value string }{
		{"plan", "free"}, {"plan", "pro"}, {"plan", "business"}, {"lifecycle_stage", "lead"},
		{"lifecycle_stage", "opportunity"}, {"lifecycle_stage", "customer"}, {"country", "US"},
		{"country", "DE"}, {"industry", "finance"}, {"industry", "retail"}, {"company_size", "1-10"},
		{"company_size", "201-500"},
	} {
		add(Feature{Name: c.signal + "=" + c.value, Signal: c.signal, Kind: KindCategory, Value: c.value}, 0.2)
	}
	for _, name := range []string{"plan", "lifecycle_stage", "country", "industry", "company_size", "utm_source"} {
		add(Feature{Name: name + "=other", Signal: name, Kind: KindOther}, -0.05)
	}
	for len(m.Encoder.Features) < 50 {
		add(Feature{Name: fmt.Sprintf("x%d", len(m.Beta)), Signal: "deal_size", Kind: KindNumber, Center: 1000, Scale: 5000}, 0.01)
	}
	if err := m.validate(); err != nil {
		panic(err)
	}
	return m
}

func benchInput() Input {
	return Input{Channel: "whatsapp", Message: benchMessage, Signals: benchSignals()}
}

func BenchmarkScore(b *testing.B) {
	s := NewScorer(benchPolicy(b), nil)
	in := benchInput()
	if d := s.Score(in); len(d.Errors) > 0 || len(d.Hits) == 0 {
		b.Fatalf("bench decision: hits %v errors %v", d.Hits, d.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Score(in)
	}
}

func BenchmarkScoreModel(b *testing.B) {
	in := benchInput()
	m := benchModel(in.Signals)
	if len(m.Beta) != 50 {
		b.Fatalf("model has %d features, want 50", len(m.Beta))
	}
	s := NewScorer(benchPolicy(b), m)
	if d := s.Score(in); len(d.Errors) > 0 || len(d.Hits) == 0 {
		b.Fatalf("bench decision: hits %v errors %v", d.Hits, d.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Score(in)
	}
}

func BenchmarkScoreParallel(b *testing.B) {
	in := benchInput()
	s := NewScorer(benchPolicy(b), benchModel(in.Signals))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Score(in)
		}
	})
}

func BenchmarkCompilePolicy(b *testing.B) {
	doc := benchPolicy(b).Doc()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompilePolicy(doc); err != nil {
			b.Fatal(err)
		}
	}
}

var benchMessage = "Hi, I'd like a quote for 25 seats, or I'll cancel"
