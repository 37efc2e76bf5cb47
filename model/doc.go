// Package model is Hotlane's scoring brain: it turns the signals of one
// conversation into a score, a tier, the reasons for both, and a route.
//
// A score is one logistic model with the hand-written rules inside it:
//
//	score = sigmoid(b + sum_i w_i*hit_i + sum_j beta_j*f_j(signals))
//
// Before any training there is no [Model]: b is the policy's base and w_i
// are the rules' hand-set points, so Hotlane starts as a pure rules engine.
// A trained Model supplies b, tuned rule weights and feature weights beta.
//
// Rules are expr-lang expressions over the signals plus `channel` and
// `message`. They are compiled once per [Policy] with missing-value
// semantics suited to partial data: a signal that is absent or null is
// missing, and
//   - a comparison (==, !=, <, <=, >, >=) with a missing operand is false,
//     except an explicit test against nil such as `owner != nil`;
//   - arithmetic with a missing operand is missing;
//   - a missing value used as a condition (and, or, not, ?:, or the whole
//     rule) is false, so `not returning` holds when `returning` is absent;
//   - `in`, `matches`, `contains`, `startsWith` and `endsWith` with a
//     missing operand are false, so `x not in [...]` holds when x is absent.
//
// A value of the wrong type (a string compared with a number) makes the rule
// fail at run time: it does not fire and its name is listed in
// [Decision].Errors, because that is a data or rule bug worth surfacing.
//
// The package is pure and deterministic: it reads no environment, does no
// I/O, and the same policy, model and input always give the same decision.
package model
