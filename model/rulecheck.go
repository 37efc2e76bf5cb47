package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// The limits below make a rule's cost per evaluation bounded whatever an
// admin types. A rule is checked on its parsed syntax tree before expr
// compiles it, because expr folds constant expressions (a literal range,
// for example) while compiling.
const (
	// maxRuleCost bounds a rule's estimated worst-case work per evaluation,
	// in bytes touched: about a millisecond of CPU and a few megabytes of
	// garbage at most.
	maxRuleCost = 2_000_000
	// maxRuleDepth bounds how deeply a rule's expression nests.
	maxRuleDepth = 40
	// maxRangeLen bounds a literal range such as 1..100.
	maxRangeLen = 1000

	// The largest values a rule can see; the API refuses larger ones. They
	// are the sizes the cost estimate assumes for any signal.
	maxInputString  = 4096 // message; signal strings are at most 1024 bytes
	maxInputSignals = 102  // signals, channel and message, for $env
)

// ruleFuncs are the functions a rule may call. Every one of them returns a
// value no larger than its arguments, so a rule's cost follows from its
// size. Functions that build values bigger than their inputs (repeat,
// replace, join, map, split, ...), read the clock or parse documents are
// left out.
var ruleFuncs = map[string]bool{
	"all": true, "any": true, "none": true, "one": true, "count": true, "filter": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
	"len": true, "type": true, "abs": true, "ceil": true, "floor": true, "round": true,
	"int": true, "float": true, "string": true, "max": true, "min": true,
	"trim": true, "trimPrefix": true, "trimSuffix": true, "upper": true, "lower": true,
	"indexOf": true, "lastIndexOf": true, "hasPrefix": true, "hasSuffix": true,
	"first": true, "last": true, "get": true, "keys": true, "values": true,
}

// closureFuncs take an array and a predicate evaluated once per element.
var closureFuncs = map[string]bool{
	"all": true, "any": true, "none": true, "one": true, "count": true, "filter": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
}

// ruleFuncList is ruleFuncs sorted, for error messages.
var ruleFuncList = func() string {
	names := make([]string, 0, len(ruleFuncs))
	for n := range ruleFuncs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}()

// checkRule parses src and refuses constructs whose cost is not bounded:
// functions outside ruleFuncs, nested predicates, ranges that are not
// short literal ranges, calls and members nested deeper than maxRuleDepth,
// and any rule whose estimated worst-case cost exceeds maxRuleCost. Syntax
// errors are left to the compiler, which reports them with their position.
func checkRule(src string) error {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	c := &costCheck{}
	est := c.walk(tree.Node, 1)
	if c.err != nil {
		return c.err.Bind(file.NewSource(src))
	}
	if est.cost > maxRuleCost {
		e := &file.Error{Location: tree.Node.Location(), Message: fmt.Sprintf(
			"expression too expensive: its worst case touches about %d bytes per evaluation, more than the %d allowed; use fewer string operations or shorter lists inside any/all/filter",
			est.cost, maxRuleCost)}
		return e.Bind(file.NewSource(src))
	}
	return nil
}

// estimate is a node's worst-case cost (bytes touched to evaluate it),
// size (bytes of a string, or elements of an array or map) and, for an
// array, the size of its largest element.
type estimate struct {
	cost, size, elem int
}

type costCheck struct {
	err       *file.Error
	predicate int                 // nesting of predicates being walked
	elem      int                 // size of # in the predicate being walked
	vars      map[string]estimate // variables declared with let, in scope
}

func (c *costCheck) fail(n ast.Node, format string, args ...any) estimate {
	if c.err == nil {
		c.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}
	}
	return estimate{}
}

// sat adds without overflow: estimates saturate at a value far above
// maxRuleCost.
func sat(vals ...int) int {
	const ceiling = 1 << 40
	s := 0
	for _, v := range vals {
		s += min(v, ceiling)
		if s > ceiling {
			return ceiling
		}
	}
	return s
}

func satMul(a, b int) int {
	const ceiling = 1 << 40
	if a == 0 || b == 0 {
		return 0
	}
	if a > ceiling/b {
		return ceiling
	}
	return a * b
}

func (c *costCheck) walk(n ast.Node, depth int) estimate {
	if c.err != nil {
		return estimate{}
	}
	if depth > maxRuleDepth {
		return c.fail(n, "expression nests deeper than %d levels", maxRuleDepth)
	}
	d := depth + 1
	switch n := n.(type) {
	case *ast.NilNode, *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode:
		return estimate{cost: 1, size: 8}
	case *ast.StringNode:
		return estimate{cost: 1, size: len(n.Value)}
	case *ast.IdentifierNode:
		if v, ok := c.vars[n.Value]; ok {
			return estimate{cost: 1, size: v.size, elem: v.elem}
		}
		if n.Value == "$env" {
			return estimate{cost: 1, size: maxInputSignals, elem: maxInputString}
		}
		return estimate{cost: 1, size: maxInputString}
	case *ast.PointerNode:
		if c.predicate == 0 {
			return c.fail(n, "# is only meaningful inside a predicate")
		}
		return estimate{cost: 1, size: c.elem, elem: maxInputString}
	case *ast.UnaryNode:
		e := c.walk(n.Node, d)
		return estimate{cost: sat(e.cost, e.size), size: e.size}
	case *ast.BinaryNode:
		// A chain of operators (a and b and c, 1 + 2 + 3) is long rather
		// than deep; its length is bounded by the node limit.
		return c.binary(n, depth)
	case *ast.ChainNode:
		return c.walk(n.Node, d)
	case *ast.MemberNode:
		obj := c.walk(n.Node, d)
		prop := c.walk(n.Property, d)
		return estimate{cost: sat(obj.cost, prop.cost, prop.size), size: maxInputString}
	case *ast.SliceNode:
		e := c.walk(n.Node, d)
		cost := sat(e.cost, e.size)
		if n.From != nil {
			cost = sat(cost, c.walk(n.From, d).cost)
		}
		if n.To != nil {
			cost = sat(cost, c.walk(n.To, d).cost)
		}
		return estimate{cost: cost, size: e.size, elem: e.elem}
	case *ast.ConditionalNode:
		cond := c.walk(n.Cond, d)
		a, b := c.walk(n.Exp1, d), c.walk(n.Exp2, d)
		return estimate{cost: sat(cond.cost, max(a.cost, b.cost)), size: max(a.size, b.size), elem: max(a.elem, b.elem)}
	case *ast.ArrayNode:
		var cost, size, elem int
		for _, e := range n.Nodes {
			est := c.walk(e, d)
			cost, size, elem = sat(cost, est.cost), sat(size, 1), max(elem, est.size)
		}
		return estimate{cost: cost, size: size, elem: elem}
	case *ast.MapNode:
		var cost int
		for _, p := range n.Pairs {
			cost = sat(cost, c.walk(p, d).cost)
		}
		return estimate{cost: cost, size: len(n.Pairs), elem: maxInputString}
	case *ast.PairNode:
		k, v := c.walk(n.Key, d), c.walk(n.Value, d)
		return estimate{cost: sat(k.cost, v.cost), size: 1}
	case *ast.BuiltinNode:
		return c.builtin(n, d)
	case *ast.CallNode:
		// Builtins parse as BuiltinNode; any other call is an unknown
		// function, which the compiler reports.
		cost := 1
		for _, a := range n.Arguments {
			cost = sat(cost, c.walk(a, d).cost)
		}
		return estimate{cost: cost, size: maxInputString, elem: maxInputString}
	case *ast.VariableDeclaratorNode:
		// The value is computed once; uses of the name cost nothing more
		// but carry its size, so doubling a string with each let is seen.
		v := c.walk(n.Value, d)
		old, had := c.vars[n.Name]
		if c.vars == nil {
			c.vars = map[string]estimate{}
		}
		c.vars[n.Name] = v
		e := c.walk(n.Expr, d)
		if had {
			c.vars[n.Name] = old
		} else {
			delete(c.vars, n.Name)
		}
		return estimate{cost: sat(v.cost, e.cost), size: e.size, elem: e.elem}
	case *ast.SequenceNode:
		return c.fail(n, "a rule is one expression; ; is not allowed")
	case *ast.PredicateNode:
		return c.fail(n, "a predicate is only allowed as the argument of any, all, filter and the like")
	default:
		return c.fail(n, "this construct (%T) is not allowed in rules", n)
	}
}

func (c *costCheck) binary(n *ast.BinaryNode, d int) estimate {
	if n.Operator == ".." {
		from, okf := n.Left.(*ast.IntegerNode)
		to, okt := n.Right.(*ast.IntegerNode)
		if !okf || !okt {
			return c.fail(n, "a range needs two integer literals, as in 1..10")
		}
		span := to.Value - from.Value + 1
		if span > maxRangeLen || to.Value-from.Value > maxRangeLen {
			return c.fail(n, "range %d..%d is longer than %d elements", from.Value, to.Value, maxRangeLen)
		}
		span = max(span, 0)
		return estimate{cost: span, size: span, elem: 8}
	}
	l, r := c.walk(n.Left, d), c.walk(n.Right, d)
	switch n.Operator {
	case "+":
		// Concatenation copies both sides.
		return estimate{cost: sat(l.cost, r.cost, l.size, r.size), size: sat(l.size, r.size)}
	case "matches":
		// The pattern is compiled per evaluation unless it is a literal;
		// matching is linear in the text times the pattern's program.
		pattern := r.size
		if _, ok := n.Right.(*ast.StringNode); ok {
			pattern = min(len(n.Right.(*ast.StringNode).Value), 64)
		}
		return estimate{cost: sat(l.cost, r.cost, satMul(l.size, max(pattern/8, 1))), size: 8}
	case "in", "not in":
		return estimate{cost: sat(l.cost, r.cost, satMul(max(r.size, 1), l.size)), size: 8}
	default:
		return estimate{cost: sat(l.cost, r.cost, l.size, r.size), size: max(l.size, r.size, 8)}
	}
}

func (c *costCheck) builtin(n *ast.BuiltinNode, d int) estimate {
	if n.Name == "now" {
		// The compiler refuses it as an unknown function.
		return estimate{cost: 1, size: 8}
	}
	if !ruleFuncs[n.Name] {
		return c.fail(n, "function %s is not allowed in rules (allowed: %s)", n.Name, ruleFuncList)
	}
	if closureFuncs[n.Name] {
		if len(n.Arguments) != 2 {
			return c.fail(n, "%s takes a list and a predicate", n.Name)
		}
		if c.predicate > 0 {
			return c.fail(n, "%s inside another predicate is not allowed in rules", n.Name)
		}
		list := c.walk(n.Arguments[0], d)
		pred, ok := n.Arguments[1].(*ast.PredicateNode)
		if !ok {
			return c.fail(n, "%s takes a predicate as its second argument", n.Name)
		}
		c.predicate++
		c.elem = list.elem
		if c.elem == 0 {
			c.elem = maxInputString
		}
		body := c.walk(pred.Node, d)
		c.predicate--
		out := estimate{cost: sat(list.cost, satMul(max(list.size, 1), body.cost)), size: 8}
		switch n.Name {
		case "filter":
			out.size, out.elem = list.size, list.elem
		case "find", "findLast":
			out.size = list.elem
		}
		return out
	}
	cost, size, elem := 1, 8, 8
	for _, a := range n.Arguments {
		if _, ok := a.(*ast.PredicateNode); ok {
			return c.fail(a, "%s does not take a predicate", n.Name)
		}
		e := c.walk(a, d)
		cost = sat(cost, e.cost, e.size)
		size, elem = max(size, e.size), max(elem, e.elem)
	}
	switch n.Name {
	case "len", "type", "abs", "ceil", "floor", "round", "int", "float",
		"indexOf", "lastIndexOf", "hasPrefix", "hasSuffix":
		size = 8
	case "first", "last", "get":
		size = max(elem, maxInputString)
	case "keys":
		elem = maxInputString
	case "string":
		// The string form of a list or a map of signals.
		size = satMul(size, max(elem, 8))
		cost = sat(cost, size)
	}
	return estimate{cost: cost, size: size, elem: elem}
}
