package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/file"
)

// Warning says why a decision could not use part of its input: a rule
// that failed at run time (Rule set), usually on a signal of the wrong
// type, or a signal the model could not read (Signal set). The decision is
// still made, without that rule or with the signal at its typical value,
// so a warning is the only trace of what is most often a bug in the
// sender's signals.
type Warning struct {
	Rule    string `json:"rule,omitempty"`
	Signal  string `json:"signal,omitempty"`
	Message string `json:"message"`
}

// maxWarningValue is how much of a signal's value a warning quotes.
const maxWarningValue = 40

// ruleWarning explains why rule r failed with err: expr's message without
// its position, then the values of the signals the rule reads. The
// visitor's message is never quoted.
func ruleWarning(r *rule, err error, env map[string]any) Warning {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimPrefix(msg, "invalid operation: ")
	var vals []string
	for _, name := range r.reads {
		v, ok := env[name]
		if !ok || v == nil || name == "message" || name == "channel" {
			continue
		}
		vals = append(vals, name+" is "+describeValue(v))
	}
	text := "not evaluated (counts as not fired): " + msg
	if len(vals) > 0 {
		text += "; " + strings.Join(vals, ", ")
	}
	return Warning{Rule: r.name, Message: text}
}

// typeWarnings names the signals whose values in vals (as encode filled
// them) are not of the type the model reads, one warning per signal.
func (p *encodePlan) typeWarnings(vals []any) []Warning {
	var out []Warning
	seen := make([]bool, len(p.signals))
	for i := range p.feats {
		f := &p.feats[i]
		v := vals[f.slot]
		if seen[f.slot] || v == nil {
			continue
		}
		var want string
		switch f.kind {
		case kNumber:
			if _, ok := number(v); !ok && !missing(v) {
				want = "a number"
			}
		case kBool:
			if _, ok := v.(bool); !ok {
				want = "true or false"
			}
		case kCategory:
			if _, ok := v.(string); !ok {
				want = "a string"
			}
		}
		if want == "" {
			continue
		}
		seen[f.slot] = true
		name := p.signals[f.slot]
		out = append(out, Warning{Signal: name, Message: fmt.Sprintf(
			"the model reads %s as %s but got %s, so it counted as the signal's typical value", name, want, describeValue(v))})
	}
	return out
}

// describeValue names a signal value's type with a short quote of it, as
// a sender would recognise it in the JSON they sent.
func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		q := x
		if len(q) > maxWarningValue {
			cut := maxWarningValue
			for cut > 0 && !utf8.RuneStart(q[cut]) {
				cut--
			}
			q = q[:cut] + "…"
		}
		return "the string " + strconv.Quote(q)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case float64, float32, int, int64, int32:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
