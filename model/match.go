package model

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Rules match messages against keyword lists far more often than against
// anything else, e.g. `message matches "(?i)cancel|refund|urgent"`, and Go's
// regexp takes microseconds for a case-insensitive alternation on a short
// message. literalMatcher recognises patterns that are only a list of
// plain words, optionally case-insensitive, grouped and between \b, and
// matches them with a byte scan that gives the same answer as the regexp.

// literalMatcher returns a function equivalent to `x matches pattern` for
// the simple patterns described above, or nil for any other pattern.
func literalMatcher(pattern string) func(any) bool {
	rest := pattern
	fold := strings.HasPrefix(rest, "(?i)")
	if fold {
		rest = rest[len("(?i)"):]
	}
	var lead, trail bool
	if strings.HasPrefix(rest, `\b`) {
		lead, rest = true, rest[2:]
	}
	if strings.HasSuffix(rest, `\b`) {
		trail, rest = true, rest[:len(rest)-2]
	}
	if strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")") {
		rest = strings.TrimPrefix(rest[1:len(rest)-1], "?:")
	}
	if rest == "" {
		return nil
	}
	words := strings.Split(rest, "|")
	for i, w := range words {
		if w == "" {
			return nil
		}
		for j := 0; j < len(w); j++ {
			if !plainByte(w[j]) {
				return nil
			}
		}
		if fold {
			words[i] = strings.ToLower(w)
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil
	}
	m := &wordMatcher{words: words, fold: fold, lead: lead, trail: trail, re: re}
	for _, w := range words {
		m.wordBytes = append(m.wordBytes, []byte(w))
	}
	return m.match
}

// plainByte reports whether c stands for itself in a regexp and has no
// case-folding partner outside ASCII other than through the letters k and
// s, which the matcher handles by falling back on non-ASCII input.
func plainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ' ' || c == '_' || c == '-' || c == '\'' || c == ',' || c == '!' || c == '/' || c == ':' || c == ';' || c == '@' || c == '#' || c == '%' || c == '&' || c == '=' || c == '<' || c == '>' || c == '~' || c == '"'
}

type wordMatcher struct {
	words             []string // lower-cased when fold
	wordBytes         [][]byte // words as bytes, for lower-cased buffers
	fold, lead, trail bool
	re                *regexp.Regexp
}

// foldBufLen bounds the messages lower-cased on the stack; longer ones
// use the slower in-place comparison.
const foldBufLen = 512

func (m *wordMatcher) match(v any) bool {
	if v == nil {
		return false
	}
	s, ok := v.(string)
	if !ok {
		panic(fmt.Sprintf("invalid operation: %T matches string", v))
	}
	if !m.fold {
		return m.matchIn(s)
	}
	if !isASCII(s) {
		// Unicode case folding (K and the Kelvin sign, s and long s) is
		// the regexp's business.
		return m.re.MatchString(s)
	}
	if len(s) > foldBufLen {
		return m.matchIn(strings.ToLower(s))
	}
	var buf [foldBufLen]byte
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return m.matchInBytes(b)
}

// matchIn finds a word in s, which is already lower-cased when folding.
func (m *wordMatcher) matchIn(s string) bool {
	for _, w := range m.words {
		for off := 0; off <= len(s)-len(w); {
			i := strings.Index(s[off:], w)
			if i < 0 {
				break
			}
			i += off
			if m.boundaries(s[max(i-1, 0):min(i+len(w)+1, len(s))], i > 0, w) {
				return true
			}
			off = i + 1
		}
	}
	return false
}

func (m *wordMatcher) matchInBytes(b []byte) bool {
	for k, w := range m.words {
		for off := 0; off <= len(b)-len(w); {
			i := bytes.Index(b[off:], m.wordBytes[k])
			if i < 0 {
				break
			}
			i += off
			end := i + len(w)
			if (!m.lead || isWordByte(w[0]) != (i > 0 && isWordByte(b[i-1]))) &&
				(!m.trail || isWordByte(w[len(w)-1]) != (end < len(b) && isWordByte(b[end]))) {
				return true
			}
			off = i + 1
		}
	}
	return false
}

// boundaries checks the \b conditions around w in window, which holds w
// plus the byte before it (when hasBefore) and the byte after it, if any.
func (m *wordMatcher) boundaries(window string, hasBefore bool, w string) bool {
	start := 0
	if hasBefore {
		start = 1
	}
	if m.lead && isWordByte(w[0]) == (hasBefore && isWordByte(window[0])) {
		return false
	}
	end := start + len(w)
	if m.trail && isWordByte(w[len(w)-1]) == (end < len(window) && isWordByte(window[end])) {
		return false
	}
	return true
}

// isWordByte is regexp's \w, which \b is defined by.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
