package model

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// expensiveRules allocate without bound or loop over huge inputs. Before
// rules were checked, each of them compiled, and the first score of the
// first ended the process with "fatal error: runtime: out of memory".
var expensiveRules = []struct {
	expression string
	message    string
}{
	{`len(repeat(repeat("a", 1000000), 1000000)) > 0`, "function repeat is not allowed"},
	{`len(repeat(message, 1000000)) > 0`, "function repeat is not allowed"},
	{`len(filter(1..100000000, # * 2 > 0)) > 0`, "range 1..100000000 is longer than 1000 elements"},
	{`len(map(1..10, # * 2)) > 0`, "function map is not allowed"},
	{`len(filter(0..1000000000, # > 5)) > 1`, "range 0..1000000000 is longer than 1000 elements"},
	{`len(map([1, 2], #)) > 0`, "function map is not allowed"},
	{`len(replace(message, "", message)) > 0`, "function replace is not allowed"},
	{`len(join(split(message, ""), message)) > 0`, "function join is not allowed"},
	{`any(1..deal_size, # > 5)`, "a range needs two integer literals"},
	{`sum(1..10) > 5`, "function sum is not allowed"},
	{doublingLets(12), "expression too expensive"},
	{`any(1..1000, any(1..1000, any(1..1000, # > 0)))`, "any inside another predicate is not allowed"},
	{`any(1..1000, message + message + message + message == "x")`, "expression too expensive"},
	{`len(message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message + message) > 0`, "expression too expensive"},
	{`len(string($env) + string($env) + string($env) + string($env)) > 0`, "expression too expensive"},
	{strings.Repeat("abs(", 60) + "x" + strings.Repeat(")", 60) + " > 1", "nests deeper than 40 levels"},
	{`toJSON($env) != ""`, "function toJSON is not allowed"},
	{`fromJSON(message) != nil`, "function fromJSON is not allowed"},
}

// doublingLets declares n variables, each twice the one before.
func doublingLets(n int) string {
	var b strings.Builder
	b.WriteString("let a0 = message + message; ")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "let a%d = a%d + a%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(a%d) > 0", n-1)
	return b.String()
}

// TestRuleUnboundedAllocationRefused is issue 10's first defect: a rule
// that allocates without bound passed validation and crashed every server
// on its first score.
func TestRuleUnboundedAllocationRefused(t *testing.T) {
	for _, tc := range expensiveRules {
		t.Run(tc.expression[:min(len(tc.expression), 40)], func(t *testing.T) {
			_, err := compileRule(tc.expression)
			if err == nil {
				t.Fatalf("compileRule(%q) succeeded; want it refused", tc.expression)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("compileRule(%q) = %q; want it to say %q", tc.expression, err, tc.message)
			}
			if e, ok := err.(*exprError); !ok || e.line == 0 || e.column == 0 {
				t.Fatalf("error %#v has no position", err)
			}
		})
	}
}

// The check refuses only what is expensive: ordinary rules, including the
// functions and ranges people use, still compile.
func TestRuleCheckAcceptsOrdinaryRules(t *testing.T) {
	for _, expression := range []string{
		`deal_size >= 10000 and lifecycle_stage in ["opportunity", "customer"]`,
		`channel == "whatsapp" and message matches "(?i)cancel|refund|urgent"`,
		`hour in 9..17`,
		`len(message) > 200 and lower(plan) == "pro"`,
		`any(["cancel", "refund"], message contains #)`,
		`count(1..10, # > seats) > 3`,
		`all(keys($env), len(#) < 40)`,
		`trimPrefix(upper(plan), "P") == "RO" or hasSuffix(email, "@acme.com")`,
		`max(deal_size, 1000) > 5000 and abs(delta) < 3 and int(seats) >= 5`,
		`$env["wait_seconds"] > 60`,
		`message[0:10] == "hello ther" ? true : false`,
		`string(seats) == "5"`,
		`let d = deal_size; d > 1 and d < 10`,
		doublingLets(3),
		strings.Repeat("x > 1 and ", 100) + "true",
	} {
		if _, err := compileRule(expression); err != nil {
			t.Errorf("compileRule(%q): %v", expression, err)
		}
	}
}

// Every function a rule may call is a builtin of the expr version in use
// and none of them is a closure function the check does not treat as one.
func TestRuleFuncsAreBuiltins(t *testing.T) {
	for name := range ruleFuncs {
		tree, err := parser.Parse(name + "(x, x)")
		if err != nil {
			continue // arity is checked later; the parse found the name
		}
		if b, ok := tree.Node.(*ast.BuiltinNode); !ok || b.Name != name {
			t.Errorf("%s does not parse as a builtin: %T", name, tree.Node)
		}
	}
}

// worstInput is the largest input the API accepts for a rule reading
// names: every signal a 1024-byte string and a 4096-byte message.
func worstInput(names map[string]struct{}, fill byte) Input {
	in := Input{Channel: "web", Message: strings.Repeat(string(fill), maxInputString), Signals: map[string]any{}}
	for n := range names {
		in.Signals[n] = strings.Repeat(string(fill), 1024)
	}
	for i := len(in.Signals); i < 100; i++ {
		in.Signals["s"+strings.Repeat("x", i%40)+string(rune('a'+i%26))] = strings.Repeat(string(fill), 1024)
	}
	return in
}

// evalAllocated compiles expression as a one-rule policy and reports the
// bytes one score of in allocates; ok is false when it does not compile.
func evalAllocated(expression string, in func(names map[string]struct{}) Input) (bytes uint64, ok bool) {
	p, err := CompilePolicy(PolicyDoc{
		Rules:      []RuleSpec{{Name: "r", Expression: expression, Points: 1}},
		Thresholds: map[string]Thresholds{"default": {Urgent: 0.9, High: 0.7, Medium: 0.4}},
	})
	if err != nil {
		return 0, false
	}
	names := map[string]struct{}{}
	for _, r := range p.rules {
		collectIdentifiers(r.program, names)
	}
	input := in(names)
	s := NewScorer(p, nil)
	s.Score(input) // warm the pool
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.Score(input)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, true
}

// maxRuleAlloc is the most one accepted rule may allocate in one score.
const maxRuleAlloc = 64 << 20

// FuzzRule compiles arbitrary expressions and scores the accepted ones
// against the largest input the API takes: none may crash or allocate
// more than maxRuleAlloc. The seed corpus holds the expensive class.
func FuzzRule(f *testing.F) {
	for _, tc := range expensiveRules {
		f.Add(tc.expression)
	}
	for _, s := range []string{
		`any(1..1000, message contains string(#))`,
		`len(upper(message) + lower(message) + trim(message)) > 3`,
		`count(values($env), len(string(#)) > 3) > 2`,
		`len(string($env)) > 0`,
		`len(string(keys($env)) + string(values($env))) > 0`,
		`filter(1..1000, # % 2 == 0)[0] == 2`,
		`message matches message`,
		`a + b + c + d == e`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expression string) {
		if len(expression) > maxExpressionBytes {
			return
		}
		for _, fill := range []byte{'a', '9'} {
			n, ok := evalAllocated(expression, func(names map[string]struct{}) Input { return worstInput(names, fill) })
			if !ok {
				return
			}
			if n > maxRuleAlloc {
				t.Fatalf("%q allocated %d bytes in one score; the bound is %d", expression, n, maxRuleAlloc)
			}
		}
	})
}
