package model

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

const (
	// maxExpressionBytes bounds a rule's source so a policy stays readable
	// and cheap to compile.
	maxExpressionBytes = 2000
	// maxExpressionNodes bounds a rule's syntax tree, and so its cost per
	// evaluation, independently of how compactly it is written.
	maxExpressionNodes = 500
)

// compileEnv declares the two values that always travel beside the
// signals. Declaring them as strings lets the checker reject rules such as
// `message > 3` when they are saved rather than when they run.
var compileEnv = map[string]any{"channel": "", "message": ""}

// exprError is a compile error located inside a rule's expression.
type exprError struct {
	line, column int // 1-based; 0 when expr gave no position
	msg          string
}

func (e *exprError) Error() string { return e.msg }

// compileRule compiles one rule expression with Hotlane's missing-value
// semantics. Any identifier is allowed because signals are not declared.
func compileRule(src string) (*vm.Program, error) {
	if err := checkRule(src); err != nil {
		return nil, locate(src, err)
	}
	prog, err := expr.Compile(src,
		expr.Env(compileEnv),
		expr.AllowUndefinedVariables(),
		expr.AsBool(),
		expr.MaxNodes(maxExpressionNodes),
		// now() would make a decision depend on the clock.
		expr.DisableBuiltin("now"),
		expr.Patch(missingSafe{}),
	)
	if err == nil {
		if fe := unknownCall(prog); fe != nil {
			err = fe.Bind(file.NewSource(src))
		} else {
			return prog, nil
		}
	}
	return nil, locate(src, err)
}

// locate turns an error from expr or checkRule into an exprError with the
// line and column of its position in src.
func locate(src string, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		line, col := fe.Line, fe.Column+1
		if fe.Line == 0 {
			// Errors raised before Bind carry only an offset.
			b := (&file.Error{Location: fe.Location}).Bind(file.NewSource(src))
			line, col = b.Line, b.Column+1
		}
		return &exprError{line: line, column: col, msg: fe.Message}
	}
	return &exprError{msg: err.Error()}
}

// collectIdentifiers adds the names a compiled rule reads to names. It
// reports whether the rule reads $env, which sees every signal and so needs
// the whole signal map rather than only the names the rules mention.
func collectIdentifiers(prog *vm.Program, names map[string]struct{}) (usesEnv bool) {
	root := prog.Node()
	ast.Walk(&root, identVisitor(func(name string) {
		if name == "$env" {
			usesEnv = true
			return
		}
		names[name] = struct{}{}
	}))
	return usesEnv
}

// unknownCall finds a call of a name that is not a function. Undefined
// names are allowed because they are signals, but a signal is never a
// function, so such a call is a typo that would otherwise fail on every
// evaluation.
func unknownCall(prog *vm.Program) *file.Error {
	var found *file.Error
	root := prog.Node()
	ast.Walk(&root, nodeVisitor(func(n ast.Node) {
		c, ok := n.(*ast.CallNode)
		if !ok || found != nil {
			return
		}
		if id, ok := c.Callee.(*ast.IdentifierNode); ok && mayBeMissing(id) {
			found = &file.Error{Location: c.Location(), Message: fmt.Sprintf("unknown function %s", id.Value)}
		}
	}))
	return found
}

type nodeVisitor func(ast.Node)

func (f nodeVisitor) Visit(node *ast.Node) { f(*node) }

type identVisitor func(string)

func (f identVisitor) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		f(id.Value)
	}
}

// missingSafe rewrites operators whose operands may be missing into calls
// of the helpers below. Operators whose operand types are known at compile
// time keep expr's native code, and its compile-time type errors.
type missingSafe struct{}

// The helpers are typed func(any, any) bool and friends: expr calls such
// functions directly (OpCallTyped), without allocating an argument slice.
var (
	cmpFuncs = map[string]func(a, b any) bool{
		"<":  func(a, b any) bool { return a != nil && b != nil && runtime.Less(a, b) },
		"<=": func(a, b any) bool { return a != nil && b != nil && runtime.LessOrEqual(a, b) },
		">":  func(a, b any) bool { return a != nil && b != nil && runtime.More(a, b) },
		">=": func(a, b any) bool { return a != nil && b != nil && runtime.MoreOrEqual(a, b) },
		"==": func(a, b any) bool { return a != nil && b != nil && runtime.Equal(a, b) },
		"!=": func(a, b any) bool { return a != nil && b != nil && !runtime.Equal(a, b) },
	}
	arithFuncs = map[string]func(a, b any) any{
		"+": func(a, b any) any {
			if a == nil || b == nil {
				return nil
			}
			return runtime.Add(a, b)
		},
		"-": func(a, b any) any {
			if a == nil || b == nil {
				return nil
			}
			return runtime.Subtract(a, b)
		},
		"*": func(a, b any) any {
			if a == nil || b == nil {
				return nil
			}
			return runtime.Multiply(a, b)
		},
		"/": func(a, b any) any {
			if a == nil || b == nil {
				return nil
			}
			return runtime.Divide(a, b)
		},
		"%": func(a, b any) any {
			if a == nil || b == nil {
				return nil
			}
			return runtime.Modulo(a, b)
		},
		"**": exponent,
		"^":  exponent,
	}
	negate = func(a any) any {
		if a == nil {
			return nil
		}
		return runtime.Negate(a)
	}
	// truth makes a missing condition false; any other non-bool is a type
	// error, reported like expr's own.
	truth = func(a any) bool {
		switch v := a.(type) {
		case nil:
			return false
		case bool:
			return v
		default:
			panic(fmt.Sprintf("invalid operation: non-bool value of type %T used as condition", a))
		}
	}
)

func exponent(a, b any) any {
	if a == nil || b == nil {
		return nil
	}
	return runtime.Exponent(a, b)
}

func (missingSafe) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "<", "<=", ">", ">=", "==", "!=":
			// `x == nil` and `x != nil` are how a rule tests presence.
			if isNil(n.Left) || isNil(n.Right) || !(mayBeMissing(n.Left) || mayBeMissing(n.Right)) {
				return
			}
			ast.Patch(node, call(cmpFuncs[n.Operator], n.Left, n.Right))
		case "+", "-", "*", "/", "%", "**", "^":
			if !(mayBeMissing(n.Left) || mayBeMissing(n.Right)) {
				return
			}
			ast.Patch(node, call(arithFuncs[n.Operator], n.Left, n.Right))
		case "matches":
			str, ok := n.Right.(*ast.StringNode)
			if !ok || !(mayBeMissing(n.Left) || n.Left.Type() == reflect.TypeOf("")) {
				return
			}
			if m := literalMatcher(str.Value); m != nil {
				ast.Patch(node, call(m, n.Left))
			}
		case "and", "&&", "or", "||":
			wrapCondition(&n.Left)
			wrapCondition(&n.Right)
		}
	case *ast.UnaryNode:
		switch n.Operator {
		case "not", "!":
			wrapCondition(&n.Node)
		case "-":
			if mayBeMissing(n.Node) {
				ast.Patch(node, call(negate, n.Node))
			}
		}
	case *ast.ConditionalNode:
		wrapCondition(&n.Cond)
	}
}

func call(fn any, args ...ast.Node) *ast.CallNode {
	return &ast.CallNode{Callee: &ast.ConstantNode{Value: fn}, Arguments: args}
}

func wrapCondition(node *ast.Node) {
	if mayBeMissing(*node) {
		ast.Patch(node, call(truth, *node))
	}
}

func isNil(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}

// mayBeMissing reports whether a node's value is not known to be of a
// concrete type at compile time, so it may be nil at run time.
func mayBeMissing(n ast.Node) bool {
	if c, ok := n.(*ast.CallNode); ok {
		// Nodes created by this patcher are not type-checked yet.
		if k, ok := c.Callee.(*ast.ConstantNode); ok {
			if t := reflect.TypeOf(k.Value); t != nil && t.Kind() == reflect.Func && t.NumOut() > 0 {
				return t.Out(0).Kind() == reflect.Interface
			}
		}
	}
	t := n.Type()
	return t == nil || t.Kind() == reflect.Interface
}
