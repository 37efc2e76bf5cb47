package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// The score request is the hot path of the whole product, so its body is
// read by a small scanner instead of reflection: json.Valid checks the
// syntax first, then one pass walks the known fields and the flat signals
// object, keeping the signals' raw bytes for storage. Everything that is
// not valid JSON is refused before the scanner runs, so the scanner only
// navigates and checks types.

// scanner walks a JSON document already known to be valid.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str reads a string at the cursor. Strings without escapes are sliced
// directly; the rare escaped ones go through encoding/json.
func (s *scanner) str() (string, error) {
	start := s.i
	s.i++ // opening quote
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '\\' {
			escaped = true
			s.i += 2
			continue
		}
		s.i++
		if c == '"' {
			break
		}
	}
	raw := s.b[start:s.i]
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", err
	}
	return out, nil
}

// skip moves past one value and returns its raw bytes.
func (s *scanner) skip() []byte {
	s.ws()
	start := s.i
	switch s.b[s.i] {
	case '"':
		_, _ = s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				_, _ = s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.b[start:s.i]
			}
			s.i++
		}
	}
	return s.b[start:s.i]
}

// jsonKind names a JSON value by its first byte, for type errors.
func jsonKind(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// syntaxError explains why body is not valid JSON, with a byte offset.
func syntaxError(body []byte) error {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &APIError{Status: 400, Code: "invalid_json", Message: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	}
	if len(body) == 0 || err != nil {
		return &APIError{Status: 400, Code: "invalid_json", Message: "the body is empty or truncated"}
	}
	return &APIError{Status: 400, Code: "invalid_json", Message: "malformed JSON"}
}

// scanScoreRequest reads a score request body into its raw parts. Type
// checks happen here; limits are checked by parseScoreRequest.
func scanScoreRequest(body []byte) (req scoreWire, err error) {
	if !utf8.Valid(body) {
		return req, &APIError{Status: 400, Code: "invalid_json", Message: "the body is not valid UTF-8"}
	}
	if !json.Valid(body) {
		return req, syntaxError(body)
	}
	s := &scanner{b: body}
	if c := s.peek(); c != '{' {
		return req, invalidField("", "the body must be a JSON object, not "+jsonKind(c))
	}
	s.i++
	for {
		c := s.peek()
		if c == '}' {
			s.i++
			break
		}
		if c == ',' {
			s.i++
			s.ws()
		}
		key, err := s.str()
		if err != nil {
			return req, err
		}
		s.ws()
		s.i++ // colon
		v := s.peek()
		switch key {
		case "conversation_id", "channel", "message", "occurred_at":
			if v == 'n' {
				s.skip()
				continue
			}
			if v != '"' {
				return req, invalidField(key, "expected a string, got JSON "+jsonKind(v))
			}
			str, err := s.str()
			if err != nil {
				return req, err
			}
			switch key {
			case "conversation_id":
				req.conversationID, req.hasConversationID = str, true
			case "channel":
				req.channel, req.hasChannel = str, true
			case "message":
				req.message, req.hasMessage = str, true
			case "occurred_at":
				req.occurredAt, req.hasOccurredAt = str, true
			}
		case "signals":
			if v == 'n' {
				s.skip()
				continue
			}
			if v != '{' {
				return req, invalidField("signals", "expected an object of signal name to value, got JSON "+jsonKind(v))
			}
			if err := s.signals(&req); err != nil {
				return req, err
			}
		default:
			return req, invalidField(key, "unknown field")
		}
	}
	return req, nil
}

// signals reads the flat signals object at the cursor.
func (s *scanner) signals(req *scoreWire) error {
	start := s.i
	s.i++ // {
	if req.signals == nil {
		req.signals = make(map[string]any, 32)
	} else {
		// A repeated "signals" field replaces the one before; reusing its
		// map keeps a body of them from allocating a map each.
		clear(req.signals)
	}
	for {
		c := s.peek()
		if c == '}' {
			s.i++
			break
		}
		if c == ',' {
			s.i++
			s.ws()
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if len(req.signals) >= maxSignals {
			return invalidField("signals", fmt.Sprintf("more than %d keys; at most %d are accepted", maxSignals, maxSignals))
		}
		if err := checkSignalKey(key); err != nil {
			return err
		}
		s.ws()
		s.i++ // colon
		v := s.peek()
		// field names the signal in an error; it is built only then.
		field := func() string { return "signals." + key }
		switch v {
		case 'n':
			s.skip()
			req.signals[key] = nil
		case 't':
			s.skip()
			req.signals[key] = true
		case 'f':
			s.skip()
			req.signals[key] = false
		case '"':
			at := s.i
			str, err := s.str()
			if err != nil {
				return err
			}
			if !pairedSurrogates(s.b[at:s.i]) {
				return invalidField(field(), "contains a \\u escape of an unpaired UTF-16 surrogate")
			}
			if len(str) > maxSignalStringLen {
				return invalidField(field(), fmt.Sprintf("string longer than %d bytes", maxSignalStringLen))
			}
			if hasNUL(str) {
				return invalidField(field(), "contains a NUL character")
			}
			req.signals[key] = str
		case '{', '[':
			return invalidField(field(), "must be a number, boolean, string or null, not an object or array")
		default:
			raw := s.skip()
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return invalidField(field(), "number out of range")
			}
			req.signals[key] = f
		}
	}
	req.rawSignals = s.b[start:s.i]
	return nil
}

// checkSignalKey accepts identifiers rules can name: letters, digits and
// underscore, not starting with a digit, at most maxSignalKeyLen bytes.
func checkSignalKey(key string) error {
	if len(key) > maxSignalKeyLen {
		return invalidField("signals", fmt.Sprintf("key %.20q... is longer than %d characters", key, maxSignalKeyLen))
	}
	if key == "channel" || key == "message" {
		return invalidField("signals."+key, "channel and message travel beside the signals, not inside them")
	}
	ok := key != ""
	for i := 0; i < len(key) && ok; i++ {
		c := key[i]
		ok = c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
	}
	if !ok {
		return invalidField("signals."+key, "a signal name is letters, digits and _ and does not start with a digit")
	}
	return nil
}

// validChannel accepts a lower-case token of letters, digits, - and _, at
// most 32 bytes, starting with a letter or digit.
func validChannel(ch string) bool {
	if ch == "" || len(ch) > 32 {
		return false
	}
	for i := 0; i < len(ch); i++ {
		c := ch[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// scoreWire is a score request as scanned, before limits are checked.
type scoreWire struct {
	conversationID, channel, message, occurredAt             string
	hasConversationID, hasChannel, hasMessage, hasOccurredAt bool
	signals                                                  map[string]any
	rawSignals                                               []byte
}

// pairedSurrogates reports whether every \u escape of a UTF-16 surrogate
// in a raw JSON string is half of a pair. encoding/json quietly turns a
// lone one into U+FFFD, but the raw signals are stored as they came, and
// PostgreSQL's jsonb refuses them.
func pairedSurrogates(raw []byte) bool {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		u, ok := hex4(raw, i+2)
		if !ok {
			return false
		}
		switch {
		case u >= 0xDC00 && u <= 0xDFFF:
			return false
		case u >= 0xD800 && u <= 0xDBFF:
			if i+11 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return false
			}
			lo, ok := hex4(raw, i+8)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 11
		default:
			i += 5
		}
	}
	return true
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
