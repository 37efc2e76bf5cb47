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
// fail at run time: it does not fire, its name is listed in
// [Decision].Errors and a [Warning] in [Decision].Warnings says why, with
// the values it read (warnings.go). A signal the model cannot read for its
// type counts as its typical value and gets a Warning too: both are most
// often a bug in the sender's signals, worth surfacing to the caller.
// A decision's feature reasons are one per signal, summing every feature
// read from it.
//
// Learning lives here too, as pure functions over in-memory data, so the
// tuning job (package jobs), `hotlane eval` and the tests share one
// implementation. [FitModel] (select.go) is the whole fit: the encoder
// ([FitEncoder]: scaled numbers with hinges at quantiles, so a number's
// contribution is a curve; categories; missing indicators; and the
// conversation's channel, read as the category signal [ChannelSignal]
// beside the signals, never among them), pairs of signals kept as product
// features only when they improve inner cross-validated log loss, and the
// L2 strength chosen by inner cross-validation. A stored encoder carries
// the oldest version that reads it ([Encoder.NeededVersion]), so a binary
// that cannot read a model refuses it. The final fit on millions of rows
// uses Newton's chord method and a loss tolerance ([TrainOptions]).
// Under it, a [Design] lays out rule hits and encoded
// signals as a [Dataset] and a [Trainer] fits it (the default "newton";
// "liblinear" through golearn only when built with the golearn tag).
// [Evaluate] and its metrics measure scores against labels,
// [ProposeThresholds] picks tier thresholds for target precisions, and
// [ContribCurves] (contrib.go) draws what a model learned per signal for
// the tuning report. The weekly tuning job's judgements are pure functions
// here as well ([JudgeEvidence], which holds a run to the [Minimums] of
// labelled data it needs to judge at all, [EvaluateHoldout], [JudgeRules]
// and [RuleVerdict], [EstimateRecall], [ProposeHoldoutThresholds],
// [DecidePromotion], and [FitBudgets], which raises proposed alerting
// thresholds until each team's busiest hour fits its alert budget), tested
// against a golden file.
//
// model imports nothing of Hotlane's; every other package may import it.
//
// The package is pure and deterministic: it reads no environment, does no
// I/O, and the same policy, model and input always give the same decision
// and the same fit. The one exception is the optional liblinear trainer,
// which reads golearn's model back from a temporary file.
package model
