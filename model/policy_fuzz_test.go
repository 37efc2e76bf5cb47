package model

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// policySeeds are policy documents as authors send them to PUT /v1/rules
// and `hotlane rules apply`: YAML and JSON, every section, and the usual
// mistakes.
var policySeeds = []string{
	// A channel listed with no tiers (a YAML set's key, so null): it once
	// stored as null and read back from its YAML form as [].
	`{"thresholds":{"default":{"urgent":.7,"high":.7,"medium":.1}},"alerts":{"tiers":{"0"}}}`,
	// Expressions that start with blank lines or spaces: a YAML block
	// starting with a blank line once read back without it.
	"rules:\n  - name: 0\n    expression: |\n\n     A\nthresholds:\n default: {urgent: .7,high: .7,medium: .1}",
	"rules:\n  - name: a\n    expression: \"\\n\\n  deal_size > 1\\n\"\nthresholds:\n default: {urgent: .7,high: .7,medium: .1}",
	"rules:\n  - name: a\n    expression: \"   deal_size > 1\"\nthresholds:\n default: {urgent: .7,high: .7,medium: .1}",
	"rules:\n  - name: a\n    expression: \" \\n deal_size > 1 \\n \"\nthresholds:\n default: {urgent: .7,high: .7,medium: .1}",
	`
base: -3
rules:
  - {name: big-deal, expression: "deal_size >= 10000", points: 2.5, tier_floor: high}
  - {name: angry-whatsapp, expression: 'message matches "(?i)cancel|refund"', points: 2, channels: [whatsapp]}
  - {name: pricing, expression: "pricing_page_views >= 3", points: 1.5, description: Looked at pricing}
thresholds:
  default:  {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.65, medium: 0.35}
routes:
  - {rule: angry-whatsapp, team: retention}
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, channel: web, team: sales}
alerts:
  tiers: {default: [urgent, high], whatsapp: [urgent, high, medium]}
  cooldown: 10m
  hourly_budget: {default: 30, enterprise-sales: 100}
  exploration_rate: 0.02
  sla: {urgent: 60s, high: 3m}
`,
	`{"base":-2,"rules":[{"name":"vip","expression":"plan == \"enterprise\" and returning","points":3}],"thresholds":{"default":{"urgent":0.9,"high":0.7,"medium":0.4}}}`,
	`{"base":0,"rules":[],"thresholds":{"default":{"urgent":0.9,"high":0.7,"medium":0.4}},"alerts":{"tiers":{"default":[]},"exploration_rate":0,"sla":{}}}`,
	`
rules:
  - name: env
    expression: |
      let d = deal_size ?? 0;
      any(["cancel", "refund"], message contains #) or $env["wait_seconds"] > 60 and d > 1
    points: 1
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`,
	`
rules:
  - {name: r, expression: "count(1..10, # > seats) > 3 and len(upper(plan)) > 2", points: 1}
thresholds: {default: {urgent: 0.9, high: 0.7, medium: 0.4}}
`,
	// Refused: each for a different reason.
	`rules: [{name: Bad Name, expression: "x >", points: .nan, tier_floor: hot, channels: [Web]}]
thresholds: {default: {urgent: 0.4, high: 0.7, medium: 0.9}, "web chat": {urgent: 1, high: 1, medium: 1}}
routes: [{rule: nope, tier: hot, channel: Web, team: ""}]
alerts: {tiers: {default: [hot]}, cooldown: soon, hourly_budget: {" ": 0}, exploration_rate: 2, sla: {urgent: -1s, later: 1m}}
`,
	`rules: [{name: a, expression: "x", points: 1}, {name: a, expression: "len(repeat(message, 1000000)) > 0", points: 1}]
thresholds: {default: {urgent: 0.9, high: 0.7, medium: 0.4}}`,
	`base: .inf
tierfloor: high`,
	`thresholds: {default: {urgent: 0.9, high: 0.7, medium: 0.4}}
---
base: 1`,
	`rules: 5`,
	`rules: [{name: a, expression: [1], points: x}]`,
	`a: &a [*a, *a]`,
	`{"rules": [`,
	"\t- x",
	``,
	`null`,
}

// policyInputs are the signal maps a compiled policy is scored with: none,
// a typical conversation, and each identifier the rules read set to a
// string, a number, a boolean and null in turn.
func policyInputs(p *Policy) []Input {
	names := map[string]struct{}{}
	for _, r := range p.rules {
		collectIdentifiers(r.program, names)
	}
	ins := []Input{
		{Channel: "web", Signals: map[string]any{}},
		{Channel: "whatsapp", Message: "I want to cancel and get a refund", Signals: map[string]any{
			"deal_size": 20000.0, "plan": "enterprise", "returning": true, "owner": "ana@example.com", "seats": 40.0, "wait_seconds": nil}},
	}
	for _, v := range []any{"abc", 3.0, true, nil} {
		in := Input{Channel: "sms", Message: "hello", Signals: map[string]any{}}
		for n := range names {
			if n != "channel" && n != "message" {
				in.Signals[n] = v
			}
		}
		ins = append(ins, in)
	}
	return ins
}

// leastAllocated runs fn twice and reports the fewer bytes one run
// allocated, so that the work of another goroutine counted in one run,
// and pools filled on the first, do not count.
func leastAllocated(fn func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 2 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// Bounds on what one policy document may allocate. Parsing and compiling
// measure 100 to 300 bytes per document byte for ordinary documents (the
// YAML decoder keeps a node per token; expr parses, checks, patches and
// compiles each rule), up to 600 for YAML nested thousands deep, and
// some 8 KiB for the smallest; the bound is three times the worst. One
// score of the small inputs above measures under 1 KiB for most rules
// and some 20 KiB for 200 rules; the expensive rules are refused at
// compile (FuzzRule bounds the accepted ones against the largest input).
// The bound allows 256 KiB per rule, ten times a rule that builds a
// thousand strings.
const (
	policyAllocBase     = 1 << 20
	policyAllocPerByte  = 2 << 10
	scoreAllocBase      = 1 << 20
	scoreAllocPerRule   = 256 << 10
	maxFuzzPolicyLength = 1 << 20 // the API's limit on a policy body
)

// FuzzPolicy: no policy document makes parsing, compiling or scoring
// panic or allocate past its bound. A document is refused with a
// *PolicyError listing at least one problem, or compiles; a compiled one
// has a canonical form (what is stored) and a YAML form (what the editor
// shows) that both load back to the same policy, alerts included, and it
// scores each input to a valid decision.
func FuzzPolicy(f *testing.F) {
	for _, s := range policySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzPolicyLength {
			return
		}
		var doc PolicyDoc
		var p *Policy
		var err error
		n := leastAllocated(func() {
			doc, err = ParsePolicy(data)
			if err == nil {
				p, err = CompilePolicy(doc)
			}
		})
		if bound := uint64(policyAllocBase + policyAllocPerByte*len(data)); n > bound {
			t.Fatalf("%q: parsing and compiling allocated %d bytes; the bound is %d", data, n, bound)
		}
		if err != nil {
			checkPolicyError(t, data, err)
			return
		}

		canonical, err := doc.Canonical()
		if err != nil {
			t.Fatalf("%q: compiled, but has no canonical form: %v", data, err)
		}
		if !json.Valid(canonical) {
			t.Fatalf("%q: canonical form %q is not JSON", data, canonical)
		}
		source, err := doc.YAML()
		if err != nil {
			t.Fatalf("%q: compiled, but has no YAML form: %v", data, err)
		}
		for _, form := range []struct {
			name string
			text []byte
		}{{"canonical", canonical}, {"YAML", source}} {
			again, err := ParsePolicy(form.text)
			if err != nil {
				t.Fatalf("%q: its %s form %q does not parse: %v", data, form.name, form.text, err)
			}
			p2, err := CompilePolicy(again)
			if err != nil {
				t.Fatalf("%q: its %s form %q does not compile: %v", data, form.name, form.text, err)
			}
			if c2, _ := again.Canonical(); string(c2) != string(canonical) {
				t.Fatalf("%q: its %s form has the canonical form\n%s\nwant\n%s", data, form.name, c2, canonical)
			}
			if !reflect.DeepEqual(p.Alerts(), p2.Alerts()) {
				t.Fatalf("%q: its %s form %q alerts as %+v, want %+v", data, form.name, form.text, *p2.Alerts(), *p.Alerts())
			}
			for _, in := range policyInputs(p) {
				if d, d2 := NewScorer(p, nil).Score(in), NewScorer(p2, nil).Score(in); !reflect.DeepEqual(d, d2) {
					t.Fatalf("%q: its %s form scores %+v as %+v, want %+v", data, form.name, in, d2, d)
				}
			}
		}

		s := NewScorer(p, nil)
		for _, in := range policyInputs(p) {
			var d Decision
			n := leastAllocated(func() { d = s.Score(in) })
			if bound := uint64(scoreAllocBase + scoreAllocPerRule*len(p.rules)); n > bound {
				t.Fatalf("%q: one score of %+v allocated %d bytes; the bound is %d", data, in, n, bound)
			}
			checkScored(t, data, d)
		}
	})
}

// checkPolicyError checks a refusal: a *PolicyError whose every problem
// says what is wrong.
func checkPolicyError(t *testing.T, data []byte, err error) {
	t.Helper()
	var pe *PolicyError
	if !errors.As(err, &pe) || len(pe.Problems) == 0 {
		t.Fatalf("%q: refused with %#v, want a *PolicyError with problems", data, err)
	}
	for _, pr := range pe.Problems {
		if strings.TrimSpace(pr.Message) == "" || pr.Line < 0 || pr.Column < 0 {
			t.Fatalf("%q: problem %+v", data, pr)
		}
	}
	if err.Error() == "" {
		t.Fatalf("%q: empty error", data)
	}
}

// checkScored checks that a decision is one the server can store and
// show: a score in [0, 1], a tier, finite contributions.
func checkScored(t *testing.T, data []byte, d Decision) {
	t.Helper()
	if math.IsNaN(d.Score) || d.Score < 0 || d.Score > 1 || math.IsNaN(d.Logit) {
		t.Fatalf("%q: score %v, logit %v", data, d.Score, d.Logit)
	}
	if d.Tier < TierLow || d.Tier > TierUrgent {
		t.Fatalf("%q: tier %v", data, d.Tier)
	}
	if _, err := json.Marshal(d.Reasons); err != nil {
		t.Fatalf("%q: reasons %+v do not encode: %v", data, d.Reasons, err)
	}
	if d.Route.Via == "" {
		t.Fatalf("%q: route %+v has no via", data, d.Route)
	}
}
