package model

import (
	"reflect"
	"testing"
)

// evalRule scores in against a policy holding only expression and reports
// whether the rule fired and whether it failed.
func evalRule(t *testing.T, expression string, in Input) (fired, failed bool) {
	t.Helper()
	p, err := CompilePolicy(PolicyDoc{
		Rules:      []RuleSpec{{Name: "r", Expression: expression, Points: 1}},
		Thresholds: map[string]Thresholds{"default": {Urgent: 0.9, High: 0.7, Medium: 0.4}},
	})
	if err != nil {
		t.Fatalf("CompilePolicy(%q): %v", expression, err)
	}
	d := NewScorer(p, nil).Score(in)
	return len(d.Hits) == 1, len(d.Errors) == 1
}

func TestRuleSemantics(t *testing.T) {
	sig := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name       string
		expression string
		in         Input
		fired      bool
		failed     bool
	}{
		{name: "number present", expression: "deal_size >= 10000", in: Input{Signals: sig("deal_size", 20000.0)}, fired: true},
		{name: "number below", expression: "deal_size >= 10000", in: Input{Signals: sig("deal_size", 5000.0)}},
		{name: "absent key", expression: "deal_size >= 10000", in: Input{Signals: sig()}},
		{name: "nil signals map", expression: "deal_size >= 10000", in: Input{}},
		{name: "explicit nil", expression: "deal_size >= 10000", in: Input{Signals: sig("deal_size", nil)}},
		{name: "missing on the right", expression: "10000 < deal_size", in: Input{Signals: sig()}},
		{name: "not of a missing comparison", expression: "not (deal_size >= 10000)", in: Input{Signals: sig()}, fired: true},
		{name: "missing equals is false", expression: `plan == "free"`, in: Input{Signals: sig()}},
		{name: "missing not-equals is false", expression: `plan != "free"`, in: Input{Signals: sig()}},
		{name: "present not-equals", expression: `plan != "free"`, in: Input{Signals: sig("plan", "pro")}, fired: true},
		{name: "two missing are not equal", expression: "plan == old_plan", in: Input{Signals: sig()}},
		{name: "presence test missing", expression: "owner != nil", in: Input{Signals: sig("owner", nil)}},
		{name: "presence test present", expression: "owner != nil", in: Input{Signals: sig("owner", "ana")}, fired: true},
		{name: "absence test", expression: "owner == nil", in: Input{Signals: sig()}, fired: true},
		{name: "in list", expression: `lifecycle_stage in ["opportunity", "customer"]`, in: Input{Signals: sig("lifecycle_stage", "customer")}, fired: true},
		{name: "not in list", expression: `lifecycle_stage in ["opportunity", "customer"]`, in: Input{Signals: sig("lifecycle_stage", "lead")}},
		{name: "in list missing", expression: `lifecycle_stage in ["opportunity", "customer"]`, in: Input{Signals: sig()}},
		{name: "not in list missing", expression: `lifecycle_stage not in ["opportunity", "customer"]`, in: Input{Signals: sig()}, fired: true},
		{name: "in number list", expression: "seats in [5, 10]", in: Input{Signals: sig("seats", 10.0)}, fired: true},
		{name: "matches message", expression: `message matches "(?i)cancel|refund"`, in: Input{Message: "I want a REFUND now"}, fired: true},
		{name: "matches empty message", expression: `message matches "(?i)cancel|refund"`, in: Input{}},
		{name: "matches missing signal", expression: `plan matches "^ent"`, in: Input{Signals: sig()}},
		{name: "contains missing signal", expression: `plan contains "ent"`, in: Input{Signals: sig()}},
		{name: "channel", expression: `channel == "whatsapp"`, in: Input{Channel: "whatsapp"}, fired: true},
		{name: "channel other", expression: `channel == "whatsapp"`, in: Input{Channel: "web"}},
		{name: "bool signal", expression: "returning", in: Input{Signals: sig("returning", true)}, fired: true},
		{name: "bool signal missing", expression: "returning", in: Input{Signals: sig()}},
		{name: "not bool missing", expression: "not returning", in: Input{Signals: sig()}, fired: true},
		{name: "not bool true", expression: "!returning", in: Input{Signals: sig("returning", true)}},
		{name: "and with missing", expression: "returning and deal_size > 10", in: Input{Signals: sig("deal_size", 20.0)}},
		{name: "and all present", expression: "returning and deal_size > 10", in: Input{Signals: sig("deal_size", 20.0, "returning", true)}, fired: true},
		{name: "or with missing", expression: "returning or deal_size > 10", in: Input{Signals: sig("deal_size", 20.0)}, fired: true},
		{name: "or all missing", expression: "returning || deal_size > 10", in: Input{Signals: sig()}},
		{name: "ternary on missing", expression: "vip ? true : deal_size > 10", in: Input{Signals: sig("deal_size", 20.0)}, fired: true},
		{name: "arithmetic on missing", expression: "deal_size * seats > 100", in: Input{Signals: sig("seats", 3.0)}},
		{name: "arithmetic present", expression: "deal_size * seats > 100", in: Input{Signals: sig("seats", 3.0, "deal_size", 50.0)}, fired: true},
		{name: "negation of missing", expression: "-balance > 0", in: Input{Signals: sig()}},
		{name: "nil coalescing", expression: "(deal_size ?? 0) < 1", in: Input{Signals: sig()}, fired: true},
		{name: "string vs number", expression: "deal_size >= 10000", in: Input{Signals: sig("deal_size", "big")}, failed: true},
		{name: "string vs number in and", expression: "returning and plan > 3", in: Input{Signals: sig("returning", true, "plan", "pro")}, failed: true},
		{name: "non-bool condition", expression: "plan and returning", in: Input{Signals: sig("plan", "pro", "returning", true)}, failed: true},
		{name: "non-bool result", expression: "plan", in: Input{Signals: sig("plan", "pro")}, failed: true},
		{name: "equality across types is false", expression: `plan == "5"`, in: Input{Signals: sig("plan", 5.0)}},
		{name: "$env sees every signal", expression: `$env["deal size"] > 1`, in: Input{Signals: sig("deal size", 2.0)}, fired: true},
		{name: "let binding", expression: "let d = deal_size; d > 1 and d < 10", in: Input{Signals: sig("deal_size", 2.0)}, fired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fired, failed := evalRule(t, tt.expression, tt.in)
			if fired != tt.fired || failed != tt.failed {
				t.Errorf("%s with %v: fired, failed = %v, %v; want %v, %v", tt.expression, tt.in.Signals, fired, failed, tt.fired, tt.failed)
			}
		})
	}
}

func TestEnvIsNotShared(t *testing.T) {
	// A signal named after a variable of another call must not leak from
	// the pooled env into the next decision.
	p := mustPolicy(t, "rules:\n  - {name: a, expression: 'x > 1', points: 1}\n"+okThresholds)
	s := NewScorer(p, nil)
	if got := s.Score(Input{Signals: map[string]any{"x": 5.0}}).Hits; !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("Hits = %v, want [a]", got)
	}
	if got := s.Score(Input{Signals: map[string]any{}}).Hits; got != nil {
		t.Errorf("Hits after a call without x = %v, want none", got)
	}
}
