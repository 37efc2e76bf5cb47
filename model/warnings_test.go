package model

import (
	"reflect"
	"strings"
	"testing"
)

func TestScoreWarnings(t *testing.T) {
	p := mustPolicy(t, strings.Replace(examplePolicy, "  - {name: free-plan", "  - {name: long-chat, expression: \"len(message) > budget\", points: 1}\n  - {name: free-plan", 1))
	s := NewScorer(p, exampleModel())
	tests := []struct {
		name string
		in   Input
		want []Warning
	}{
		{name: "all well", in: Input{Channel: "web", Signals: map[string]any{"deal_size": 25000.0, "returning": true, "plan": "pro"}}},
		{name: "absent signals are not wrong", in: Input{Channel: "web"}},
		{name: "explicit null is absent", in: Input{Channel: "web", Signals: map[string]any{"deal_size": nil}}},
		{
			name: "a number sent as a string",
			in:   Input{Channel: "web", Signals: map[string]any{"deal_size": "25000"}},
			want: []Warning{
				{Rule: "big-deal", Message: `not evaluated (counts as not fired): string >= int; deal_size is the string "25000"`},
				{Signal: "deal_size", Message: `the model reads deal_size as a number but got the string "25000", so it counted as the signal's typical value`},
			},
		},
		{
			name: "a boolean sent as a string, a category as a number",
			in:   Input{Channel: "web", Signals: map[string]any{"returning": "yes", "plan": 3.0}},
			want: []Warning{
				{Rule: "returning-visitor", Message: `not evaluated (counts as not fired): bool(string); returning is the string "yes"`},
				{Signal: "plan", Message: "the model reads plan as a string but got the number 3, so it counted as the signal's typical value"},
				{Signal: "returning", Message: `the model reads returning as true or false but got the string "yes", so it counted as the signal's typical value`},
			},
		},
		{
			name: "the visitor's message is never quoted",
			in:   Input{Channel: "web", Message: "my card number is 4242", Signals: map[string]any{"budget": "lots"}},
			want: []Warning{{Rule: "long-chat", Message: `not evaluated (counts as not fired): int > string; budget is the string "lots"`}},
		},
		{
			name: "long values are cut",
			in:   Input{Channel: "web", Signals: map[string]any{"pricing_page_views": strings.Repeat("é", 30)}},
			want: []Warning{{Rule: "pricing", Message: `not evaluated (counts as not fired): string >= int; pricing_page_views is the string "` + strings.Repeat("é", 20) + `…"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Score(tt.in)
			if !reflect.DeepEqual(d.Warnings, tt.want) {
				t.Errorf("Warnings =\n  %q\nwant\n  %q", d.Warnings, tt.want)
			}
			var rules []string
			for _, w := range d.Warnings {
				if w.Rule != "" {
					rules = append(rules, w.Rule)
				}
			}
			if !reflect.DeepEqual(rules, d.Errors) {
				t.Errorf("rules warned about %v, failed rules %v", rules, d.Errors)
			}
		})
	}
}
