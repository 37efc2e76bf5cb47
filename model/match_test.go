package model

import (
	"regexp"
	"strings"
	"testing"
)

func TestLiteralMatcherAgreesWithRegexp(t *testing.T) {
	patterns := []string{
		`(?i)cancel|refund|urgent`,
		`cancel|refund|urgent`,
		`(?i)price|pricing|quote`,
		`(?i)\b(angry|terrible|worst)\b`,
		`\b(?:ok|no)\b`,
		`(?i)\bsk`,
		`ask\b`,
		`(?i)(demo)`,
		`(?i)money-back|don't`,
		`(?i)\b-x\b`,
	}
	inputs := []string{
		"", "I want to CANCEL", "please Refund me", "urgent!", "cancellation", "uncancel",
		"What's the PRICE?", "pricing page", "quote", "qUoTe", "angry", "I'm angry.", "hangry", "worst_case",
		"worst-case", "ok", "okay", "no, ok", "not ok!", "ask", "asked", "task", "SKY", "skip", "a ska",
		"\u212Aelvin ſk ſKY", "\u017Fk", "demo", "DEMO day", "money-back guarantee", "DON'T", "a -x b", "a-x", "é angry é",
		"ANGRY\u00e9", "refund\u00e9", "\u00e9cancel",
		strings.Repeat("long message ", 50) + "then CANCEL", strings.Repeat("x", 600) + " angry",
	}
	for _, p := range patterns {
		m := literalMatcher(p)
		if m == nil {
			t.Errorf("literalMatcher(%q) = nil, want a matcher", p)
			continue
		}
		re := regexp.MustCompile(p)
		for _, in := range inputs {
			if got, want := m(in), re.MatchString(in); got != want {
				t.Errorf("%q matches %q = %v, want %v", in, p, got, want)
			}
		}
		if m(nil) {
			t.Errorf("%q on a missing value = true, want false", p)
		}
	}
}

func TestLiteralMatcherDeclines(t *testing.T) {
	for _, p := range []string{``, `(?i)`, `a||b`, `a.b`, `^cancel`, `cancel$`, `(a)|(b)`, `a+`, `[ab]`, `(?i:a)`, `\d`, `(`, `a\|b`, "caf\u00e9"} {
		if literalMatcher(p) != nil {
			t.Errorf("literalMatcher(%q) != nil, want nil (not a plain word list)", p)
		}
	}
}
