package model

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const examplePolicy = `
base: -3
rules:
  - {name: big-deal, expression: "deal_size >= 10000", points: 2.5, tier_floor: high, description: "large deals"}
  - {name: angry-whatsapp, expression: 'message matches "(?i)cancel|refund"', points: 2, channels: [whatsapp]}
  - {name: pricing, expression: "pricing_page_views >= 3", points: 1}
  - {name: returning-visitor, expression: "returning", points: 1.5}
  - {name: free-plan, expression: 'plan == "free"', points: -1.5}
thresholds:
  default:  {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.6, medium: 0.35}
routes:
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, channel: whatsapp, team: support-escalations}
  - {rule: angry-whatsapp, team: retention}
`

func mustPolicy(t testing.TB, src string) *Policy {
	t.Helper()
	doc, err := ParsePolicy([]byte(src))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	p, err := CompilePolicy(doc)
	if err != nil {
		t.Fatalf("CompilePolicy: %v", err)
	}
	return p
}

func TestParsePolicyYAMLAndJSON(t *testing.T) {
	p := mustPolicy(t, examplePolicy)
	canon, err := p.Doc().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	// Canonical JSON parses back to the same document and is stable.
	doc, err := ParsePolicy(canon)
	if err != nil {
		t.Fatalf("ParsePolicy(canonical): %v", err)
	}
	if got, want := doc, p.Doc(); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
	}
	again, err := doc.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(canon) {
		t.Errorf("canonical form is not stable:\n%s\n%s", canon, again)
	}
	if !strings.Contains(string(canon), `"deal_size >= 10000"`) {
		t.Errorf("canonical JSON escapes expressions: %s", canon)
	}
	// Tab-indented JSON, as editors write it, is accepted.
	tabbed := "{\n\t\"base\": -3,\n\t\"rules\": [{\"name\": \"a\", \"expression\": \"x > 1\", \"points\": 1e3}],\n\t\"thresholds\": {\"default\": {\"urgent\": 0.9, \"high\": 0.7, \"medium\": 0.4}}\n}"
	if _, err := ParsePolicy([]byte(tabbed)); err != nil {
		t.Errorf("ParsePolicy(tabbed JSON): %v", err)
	}
	if got, want := p.Channels(), []string{"whatsapp"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Channels() = %v, want %v", got, want)
	}
}

func TestCanonicalEmpty(t *testing.T) {
	got, err := PolicyDoc{}.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"base":0,"rules":[],"thresholds":{}}`; string(got) != want {
		t.Errorf("Canonical() = %s, want %s", got, want)
	}
}

func TestPolicyDocIsCopied(t *testing.T) {
	doc, err := ParsePolicy([]byte(examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	doc.Rules[1].Channels[0] = "web"
	doc.Thresholds["default"] = Thresholds{}
	got := p.Doc()
	if got.Rules[1].Channels[0] != "whatsapp" || got.Thresholds["default"].High != 0.7 {
		t.Error("Policy shares memory with the document it was compiled from")
	}
}

// wantProblem is the part of a Problem a test checks; Message is matched
// as a substring.
type wantProblem struct {
	field, rule, message string
	line, column         int
}

func checkProblems(t *testing.T, err error, want []wantProblem) {
	t.Helper()
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want *PolicyError", err, err)
	}
	if len(pe.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(pe.Problems), len(want), err)
	}
	for i, w := range want {
		got := pe.Problems[i]
		if got.Field != w.field || got.Rule != w.rule || got.Line != w.line || got.Column != w.column || !strings.Contains(got.Message, w.message) {
			t.Errorf("problem %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantProblem
	}{
		{
			name: "empty",
			src:  "  \n",
			want: []wantProblem{{message: "empty"}},
		},
		{
			name: "bad YAML reports the line",
			src:  "base: -3\nrules:\n  - name: a\n   expression: x\n",
			want: []wantProblem{{line: 2, message: "did not find expected '-' indicator"}},
		},
		{
			name: "bad JSON reports the line",
			src:  "{\n  \"base\": -3,\n  \"rules\": [,]\n}",
			want: []wantProblem{{line: 2, message: "did not find expected node content"}},
		},
		{
			name: "unknown fields, all of them",
			src:  "base: -3\nrules:\n  - name: a\n    expresion: x\n  - name: b\n    tierfloor: high\n",
			want: []wantProblem{{line: 4, message: `unknown field "expresion"`}, {line: 6, message: `unknown field "tierfloor"`}},
		},
		{
			name: "wrong type",
			src:  "base: -3\nrules:\n  - name: a\n    points: lots\n",
			want: []wantProblem{{line: 4, message: "got a string lots where a number is expected"}},
		},
		{
			name: "duplicate key",
			src:  "base: -3\nbase: 2\n",
			want: []wantProblem{{line: 2, message: `"base" already defined`}},
		},
		{
			name: "not a mapping",
			src:  "[1, 2]",
			want: []wantProblem{{line: 1, message: "got a list where a mapping is expected"}},
		},
		{
			name: "two documents",
			src:  "base: 1\n---\nbase: 2\n",
			want: []wantProblem{{message: "single document"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.src))
			checkProblems(t, err, tt.want)
		})
	}
}

const okThresholds = "thresholds:\n  default: {urgent: 0.9, high: 0.7, medium: 0.4}\n"

func TestCompilePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantProblem
	}{
		{
			name: "duplicate rule names",
			src:  "rules:\n  - {name: a, expression: x > 1, points: 1}\n  - {name: a, expression: x > 2, points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[1].name", rule: "a", message: "duplicate rule name (also rules[0])"}},
		},
		{
			name: "bad rule name",
			src:  "rules:\n  - {name: Big Deal, expression: x > 1, points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].name", rule: "Big Deal", message: "must match"}},
		},
		{
			name: "bad tier floor",
			src:  "rules:\n  - {name: a, expression: x > 1, points: 1, tier_floor: critical}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].tier_floor", rule: "a", message: `unknown tier "critical"`}},
		},
		{
			name: "bad channel",
			src:  "rules:\n  - {name: a, expression: x > 1, points: 1, channels: [web, WhatsApp]}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].channels[1]", rule: "a", message: `channel "WhatsApp"`}},
		},
		{
			name: "non-finite points",
			src:  "rules:\n  - {name: a, expression: x > 1, points: .inf}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].points", rule: "a", message: "finite"}},
		},
		{
			name: "non-finite base",
			src:  "base: .nan\n" + okThresholds,
			want: []wantProblem{{field: "base", message: "finite"}},
		},
		{
			name: "empty expression",
			src:  "rules:\n  - {name: a, expression: ' ', points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].expression", rule: "a", message: "must not be empty"}},
		},
		{
			name: "too-long expression",
			src:  "rules:\n  - {name: a, expression: '" + strings.Repeat("x > 1 and ", 200) + "true', points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].expression", rule: "a", message: "2004 bytes, at most 2000"}},
		},
		{
			name: "too many nodes",
			src:  "rules:\n  - {name: a, expression: '" + strings.Repeat("1+", 600) + "1 > 0', points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].expression", rule: "a", message: "maximum allowed nodes", line: 1, column: 502}},
		},
		{
			name: "non-bool expression",
			src:  "rules:\n  - {name: a, expression: 'deal_size + 1 == 2 ? 1 : 2', points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].expression", rule: "a", message: "expected bool, but got int"}},
		},
		{
			name: "string expression",
			src:  "rules:\n  - {name: a, expression: '\"yes\"', points: 1}\n" + okThresholds,
			want: []wantProblem{{field: "rules[0].expression", rule: "a", message: "expected bool, but got string"}},
		},
		{
			name: "thresholds out of order",
			src:  "thresholds:\n  default: {urgent: 0.9, high: 0.7, medium: 0.4}\n  web: {urgent: 0.6, high: 0.7, medium: 0.4}\n",
			want: []wantProblem{{field: "thresholds.web", message: "need 0 < medium <= high <= urgent < 1"}},
		},
		{
			name: "thresholds out of range",
			src:  "thresholds:\n  default: {urgent: 1, high: 0.7, medium: 0}\n",
			want: []wantProblem{{field: "thresholds.default", message: "need 0 < medium"}},
		},
		{
			name: "missing default",
			src:  "thresholds:\n  web: {urgent: 0.9, high: 0.7, medium: 0.4}\n",
			want: []wantProblem{{field: "thresholds", message: `"default" thresholds are required`}},
		},
		{
			name: "bad thresholds key",
			src:  okThresholds + "  Web Chat: {urgent: 0.9, high: 0.7, medium: 0.4}\n",
			want: []wantProblem{{field: "thresholds.Web Chat", message: "key must be"}},
		},
		{
			name: "unknown rule in route",
			src:  "rules:\n  - {name: a, expression: x > 1, points: 1}\n" + okThresholds + "routes:\n  - {rule: b, team: sales}\n",
			want: []wantProblem{{field: "routes[0].rule", rule: "b", message: `unknown rule "b"`}},
		},
		{
			name: "route team with a control character",
			src:  okThresholds + "routes:\n  - {team: \"sa\\0les\"}\n",
			want: []wantProblem{{field: "routes[0].team", message: "without control characters"}},
		},
		{
			name: "route tier and team",
			src:  okThresholds + "routes:\n  - {tier: hot, team: ' '}\n",
			want: []wantProblem{{field: "routes[0].tier", message: `unknown tier "hot"`}, {field: "routes[0].team", message: "must not be empty"}},
		},
		{
			name: "every problem at once",
			src: "base: .inf\nrules:\n" +
				"  - {name: a, expression: 'x >', points: 1}\n" +
				"  - {name: a, expression: 'y > 1', points: 1, tier_floor: top}\n" +
				"thresholds:\n  web: {urgent: 0.5, high: 0.7, medium: 0.4}\n" +
				"routes:\n  - {rule: zzz, team: t}\n",
			want: []wantProblem{
				{field: "base", message: "finite"},
				{field: "rules[0].expression", rule: "a", line: 1, column: 3, message: "unexpected token EOF"},
				{field: "rules[1].name", rule: "a", message: "duplicate"},
				{field: "rules[1].tier_floor", rule: "a", message: "unknown tier"},
				{field: "thresholds", message: "default"},
				{field: "thresholds.web", message: "need 0 <"},
				{field: "routes[0].rule", rule: "zzz", message: "unknown rule"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := ParsePolicy([]byte(tt.src))
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			p, err := CompilePolicy(doc)
			if p != nil {
				t.Errorf("CompilePolicy returned a policy along with an error")
			}
			checkProblems(t, err, tt.want)
		})
	}
}

func TestCompilePolicyTooManyRules(t *testing.T) {
	doc := PolicyDoc{Thresholds: map[string]Thresholds{"default": {Urgent: 0.9, High: 0.7, Medium: 0.4}}}
	for i := range maxRules + 1 {
		doc.Rules = append(doc.Rules, RuleSpec{Name: "r" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + itoa(i), Expression: "x > 1", Points: 1})
	}
	_, err := CompilePolicy(doc)
	checkProblems(t, err, []wantProblem{{field: "rules", message: "at most 500 rules"}})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestCompileErrorPosition(t *testing.T) {
	tests := []struct {
		name       string
		expression string
		line, col  int
		message    string
	}{
		{name: "end of input", expression: "deal_size >= ", line: 1, col: 13, message: "unexpected token EOF"},
		{name: "second line", expression: "deal_size >= 10000 and\n  plan in [\"a\" \"b\"]", line: 2, col: 16, message: "unexpected token String"},
		{name: "type error", expression: "message > 3", line: 1, col: 9, message: "mismatched types string and int"},
		{name: "unknown function", expression: "frobnicate(x)", line: 1, col: 1, message: "unknown function frobnicate"},
		{name: "clock is refused", expression: "now() > x", line: 1, col: 1, message: "unknown function now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := PolicyDoc{
				Rules:      []RuleSpec{{Name: "r", Expression: tt.expression, Points: 1}},
				Thresholds: map[string]Thresholds{"default": {Urgent: 0.9, High: 0.7, Medium: 0.4}},
			}
			_, err := CompilePolicy(doc)
			checkProblems(t, err, []wantProblem{{field: "rules[0].expression", rule: "r", line: tt.line, column: tt.col, message: tt.message}})
			if got := err.Error(); !strings.Contains(got, `(rule "r")`) || !strings.Contains(got, itoa(tt.line)+":"+itoa(tt.col)) {
				t.Errorf("Error() = %q, want rule name and position", got)
			}
		})
	}
}

// YAML renders a document that parses back to the same document, without
// empty optional fields.
func TestPolicyDocYAMLRoundTrip(t *testing.T) {
	src := `
base: -2
rules:
  - {name: big-deal, expression: "deal_size >= 10000", points: 2, tier_floor: high, description: "A big one."}
  - {name: wa, expression: 'message matches "(?i)refund"', points: 1, channels: [whatsapp]}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
routes:
  - {tier: urgent, team: enterprise}
alerts:
  cooldown: 5m
`
	doc, err := ParsePolicy([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	y, err := doc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePolicy(y)
	if err != nil {
		t.Fatalf("YAML does not parse back: %v\n%s", err, y)
	}
	a, _ := doc.Canonical()
	b, _ := back.Canonical()
	if string(a) != string(b) {
		t.Errorf("round trip changed the document:\n%s\nwant\n%s", b, a)
	}
	if strings.Contains(string(y), "tier_floor: \"\"") || strings.Contains(string(y), "channels: []") {
		t.Errorf("empty optional fields rendered:\n%s", y)
	}
}
