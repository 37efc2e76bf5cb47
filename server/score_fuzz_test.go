package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// allocated runs fn twice and reports the fewer bytes one run allocated.
// TotalAlloc counts the whole process, so a goroutine left running by an
// earlier test adds to one run now and then; the smaller of two runs of
// the same work is that work's own cost. The first run also warms the
// pools a handler reuses.
func allocated(fn func()) uint64 {
	return min(allocatedOnce(fn), allocatedOnce(fn))
}

// allocatedOnce reports the bytes one run of fn allocated, and whatever
// else the process allocated meanwhile.
func allocatedOnce(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// scoreSeeds are score request bodies: the documented shape, every kind
// of signal, each limit at and past its edge, and broken JSON.
var scoreSeeds = []string{
	`{"conversation_id":"chat-1","channel":"web","message":"Hi, can I get a quote for 40 seats?","signals":{"deal_size":20000,"plan":"pro","returning":true,"owner":null}}`,
	`{"conversation_id":"c1","channel":"whatsapp","occurred_at":"2026-11-25T09:59:00Z","signals":{}}`,
	`{"conversation_id":"c\u00e9\u0041","channel":"web_chat-2","message":"refund \"now\"","signals":{"k":"\u0041\ud83d\ude00","e":-1.5e3,"z":-0}}`,
	`  { "signals" : null , "channel" : "web", "conversation_id" : "x", "message": null }  `,
	`{"conversation_id":"x","channel":"web","signals":{"a":1,"a":"two"}}`,
	`{"conversation_id":"x","channel":"web","signals":{"lone":"\ud800"}}`,
	`{"conversation_id":"x","channel":"web","signals":{"nul":"a\u0000b"}}`,
	`{"conversation_id":"x","channel":"web","signals":{"big":1e400}}`,
	`{"conversation_id":"x","channel":"web","signals":{"nested":{"b":1}}}`,
	`{"conversation_id":"x","channel":"web","signals":{"list":[1]}}`,
	`{"conversation_id":"x","channel":"web","signals":{"2fa":true}}`,
	`{"conversation_id":"x","channel":"web","signals":{"channel":"sms"}}`,
	`{"conversation_id":"x","channel":"web","signals":{"` + strings.Repeat("k", 65) + `":1}}`,
	`{"conversation_id":"x","channel":"web","signals":{"s":"` + strings.Repeat("v", 1025) + `"}}`,
	`{"conversation_id":"x","channel":"web","message":"` + strings.Repeat("m", 4097) + `"}`,
	`{"conversation_id":"` + strings.Repeat("é", 128) + `","channel":"web"}`,
	`{"conversation_id":"` + strings.Repeat("é", 129) + `","channel":"web"}`,
	`{"conversation_id":"a\tb","channel":"web"}`,
	`{"conversation_id":"x","channel":"Web"}`,
	`{"conversation_id":"x","channel":"-web"}`,
	`{"conversation_id":"x","channel":"web","occurred_at":"1999-12-31T23:59:59Z"}`,
	`{"conversation_id":"x","channel":"web","occurred_at":"2026-11-27T10:00:00Z"}`,
	`{"conversation_id":"x","channel":"web","occurred_at":"yesterday"}`,
	`{"conversation_id":"x","channel":"web","Signals":{}}`,
	`{"conversation_id":"x","channel":"web","extra":1}`,
	`{"conversation_id":5,"channel":"web"}`,
	`{"channel":"web"}`,
	`{"conversation_id":"x","channel":"web"} {}`,
	`{"conversation_id":"x","channel":"web",}`,
	`[{"conversation_id":"x"}]`,
	`null`,
	``,
	"{\"conversation_id\":\"\x80\",\"channel\":\"web\"}",
	`{"conversation_id":"x","channel":"web","signals":{` + manySignals(101) + `}}`,
	// A map per repeated "signals" field was 2.4 KiB per 18 body bytes:
	// 7 MiB for this 54 KiB body.
	`{"conversation_id":"x","channel":"web",` + strings.Repeat(`"signals":{"a":1},`, 3000) + `"signals":{"b":2}}`,
}

// short quotes an input for a failure message, cut after 200 bytes.
func short[T string | []byte](in T) string {
	if len(in) <= 200 {
		return fmt.Sprintf("%q", in)
	}
	return fmt.Sprintf("%q... (%d bytes)", in[:200], len(in))
}

func manySignals(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"s%d":%d`, i, i)
	}
	return strings.Join(parts, ",")
}

// scoreWireRef is the documented score request, decoded by encoding/json.
type scoreWireRef struct {
	ConversationID *string        `json:"conversation_id"`
	Channel        *string        `json:"channel"`
	Message        *string        `json:"message"`
	OccurredAt     *string        `json:"occurred_at"`
	Signals        map[string]any `json:"signals"`
}

// The bound on what parsing one score request may allocate. Parsing
// keeps copies of the strings it reads and one map of at most 100
// signals; a refusal formats one message. Measured: about 2 bytes per
// body byte for plain bodies, up to 18 for bodies made of escaped strings
// (each goes through json.Unmarshal) and 16 for a refused body nested
// thousands deep (encoding/json's syntax check keeps a stack), and never
// more than some 20 KiB on top. The bound is about twice that; a parser
// that decodes a body into a tree of values or makes a map per repeated
// field spends 50 to 150 bytes per body byte and fails it.
const (
	scoreAllocBase    = 256 << 10
	scoreAllocPerByte = 32
)

// FuzzParseScoreRequest: no body makes the score request's parser panic
// or allocate past its bound; a refused body is a 4xx APIError; an
// accepted one meets every documented limit, its raw signals decode to
// its signals, and encoding/json reads the same request from it. A body
// that encoding/json reads as a request within the limits is accepted.
func FuzzParseScoreRequest(f *testing.F) {
	for _, s := range scoreSeeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxBodyBytes {
			return // readBody answers 413 before parsing
		}
		var in scoreInput
		var err error
		n := allocated(func() { in, err = parseScoreRequest(body, now) })
		if bound := uint64(scoreAllocBase + scoreAllocPerByte*len(body)); n > bound {
			t.Fatalf("%s: parsing allocated %d bytes; the bound is %d", short(body), n, bound)
		}
		if err != nil {
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status < 400 || apiErr.Status > 499 || apiErr.Message == "" {
				t.Fatalf("%s: refused with %#v, want a 4xx APIError with a message", short(body), err)
			}
			if ref, ok := refScoreRequest(body, now); ok {
				t.Fatalf("%s: refused (%v), but encoding/json reads a valid request: %+v", short(body), err, ref)
			}
			return
		}
		checkScoreInput(t, body, in, now)
	})
}

// checkScoreInput checks an accepted request against the limits and
// against encoding/json's reading of body.
func checkScoreInput(t *testing.T, body []byte, in scoreInput, now time.Time) {
	t.Helper()
	switch {
	case in.conversationID == "" || utf8.RuneCountInString(in.conversationID) > maxConversationID ||
		!utf8.ValidString(in.conversationID) || hasControl(in.conversationID):
		t.Fatalf("%s: accepted conversation id %q", short(body), in.conversationID)
	case !validChannel(in.channel):
		t.Fatalf("%s: accepted channel %q", short(body), in.channel)
	case len(in.message) > maxMessageLen || strings.ContainsRune(in.message, 0) || !utf8.ValidString(in.message):
		t.Fatalf("%s: accepted message %q", short(body), in.message)
	case !in.hasMessage && in.message != "":
		t.Fatalf("%s: message %q without hasMessage", short(body), in.message)
	case in.occurredAt.Before(earliest) || in.occurredAt.After(now.Add(maxFuture)) || in.occurredAt.Location() != time.UTC:
		t.Fatalf("%s: accepted occurred_at %v", short(body), in.occurredAt)
	case in.signals == nil || len(in.signals) > maxSignals:
		t.Fatalf("%s: accepted %d signals (nil: %t)", short(body), len(in.signals), in.signals == nil)
	}
	for k, v := range in.signals {
		if err := checkSignalKey(k); err != nil {
			t.Fatalf("%s: accepted signal name %q: %v", short(body), k, err)
		}
		switch v := v.(type) {
		case nil, bool:
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: accepted signal %s = %v", short(body), k, v)
			}
		case string:
			if len(v) > maxSignalStringLen || strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
				t.Fatalf("%s: accepted signal %s = %q", short(body), k, v)
			}
		default:
			t.Fatalf("%s: signal %s is a %T", short(body), k, v)
		}
	}
	// The raw signals are stored as they came: PostgreSQL's jsonb takes
	// them only without \u0000 and lone surrogates, and a later read must
	// give back the signals that were scored.
	if !json.Valid(in.rawSignals) || jsonHasNUL(in.rawSignals) || !pairedSurrogates(in.rawSignals) {
		t.Fatalf("%s: raw signals %q cannot be stored", short(body), in.rawSignals)
	}
	var raw map[string]any
	if err := json.Unmarshal(in.rawSignals, &raw); err != nil {
		t.Fatalf("%s: raw signals %q: %v", short(body), in.rawSignals, err)
	}
	if len(raw) != len(in.signals) || len(raw) > 0 && !reflect.DeepEqual(raw, in.signals) {
		t.Fatalf("%s: raw signals %q decode to %v, want %v", short(body), in.rawSignals, raw, in.signals)
	}
	if _, err := json.Marshal(in.signals); err != nil {
		t.Fatalf("%s: signals %v do not encode: %v", short(body), in.signals, err)
	}

	// encoding/json reads the same request, field by exact field name,
	// unless a field repeats: the scanner keeps the last "signals" object
	// whole, where encoding/json merges them.
	if hasRepeatedKeys(body) {
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("%s: accepted, but encoding/json says %v", short(body), err)
	}
	for k := range fields {
		switch k {
		case "conversation_id", "channel", "message", "occurred_at", "signals":
		default:
			t.Fatalf("%s: accepted with field %q", short(body), k)
		}
	}
	var ref scoreWireRef
	if err := json.Unmarshal(body, &ref); err != nil {
		t.Fatalf("%s: accepted, but encoding/json says %v", short(body), err)
	}
	if ref.ConversationID == nil || *ref.ConversationID != in.conversationID {
		t.Fatalf("%s: conversation_id %q, encoding/json %v", short(body), in.conversationID, ref.ConversationID)
	}
	if ref.Channel == nil || *ref.Channel != in.channel {
		t.Fatalf("%s: channel %q, encoding/json %v", short(body), in.channel, ref.Channel)
	}
	if (ref.Message != nil) != in.hasMessage || ref.Message != nil && *ref.Message != in.message {
		t.Fatalf("%s: message %q (%t), encoding/json %v", short(body), in.message, in.hasMessage, ref.Message)
	}
	if len(ref.Signals) != len(in.signals) || len(ref.Signals) > 0 && !reflect.DeepEqual(ref.Signals, in.signals) {
		t.Fatalf("%s: signals %v, encoding/json %v", short(body), in.signals, ref.Signals)
	}
	if ref.OccurredAt != nil {
		at, err := time.Parse(time.RFC3339Nano, *ref.OccurredAt)
		if err != nil || !at.Equal(in.occurredAt) {
			t.Fatalf("%s: occurred_at %v, encoding/json %q", short(body), in.occurredAt, *ref.OccurredAt)
		}
	} else if !in.occurredAt.Equal(now) {
		t.Fatalf("%s: occurred_at %v without one in the body, want now", short(body), in.occurredAt)
	}
}

// loneSurrogateRe finds what may be a \u escape of a UTF-16 surrogate;
// encoding/json reads a lone one as U+FFFD, which the scanner refuses.
var loneSurrogateRe = regexp.MustCompile(`\\[uU][dD][89a-fA-F]`)

// The documented forms of a channel and of a signal name, written apart
// from the scanner's own checks.
var (
	refChannelRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	refSignalRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// refScoreRequest reads body as encoding/json does and reports whether it
// is a request within every documented limit. Bodies encoding/json and the
// scanner may fairly read differently are never reported valid: repeated
// field names (the scanner refuses the first bad one, encoding/json keeps
// the last), field names in another case (encoding/json matches them) and
// surrogate escapes (see loneSurrogateRe).
func refScoreRequest(body []byte, now time.Time) (scoreWireRef, bool) {
	var ref scoreWireRef
	if !utf8.Valid(body) || loneSurrogateRe.Match(body) || hasRepeatedKeys(body) {
		return ref, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return ref, false
	}
	for k := range fields {
		switch k {
		case "conversation_id", "channel", "message", "occurred_at", "signals":
		default:
			return ref, false
		}
	}
	if err := json.Unmarshal(body, &ref); err != nil {
		return ref, false
	}
	if ref.ConversationID == nil || *ref.ConversationID == "" || utf8.RuneCountInString(*ref.ConversationID) > 128 {
		return ref, false
	}
	for _, r := range *ref.ConversationID {
		if r < 0x20 || r == 0x7f {
			return ref, false
		}
	}
	if ref.Channel == nil || !refChannelRe.MatchString(*ref.Channel) {
		return ref, false
	}
	if ref.Message != nil && (len(*ref.Message) > 4096 || strings.ContainsRune(*ref.Message, 0)) {
		return ref, false
	}
	if ref.OccurredAt != nil {
		at, err := time.Parse(time.RFC3339Nano, *ref.OccurredAt)
		if err != nil || at.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || at.After(now.Add(24*time.Hour)) {
			return ref, false
		}
	}
	if len(ref.Signals) > 100 {
		return ref, false
	}
	for k, v := range ref.Signals {
		if !refSignalRe.MatchString(k) || k == "channel" || k == "message" {
			return ref, false
		}
		switch v := v.(type) {
		case nil, bool, float64:
		case string:
			if len(v) > 1024 || strings.ContainsRune(v, 0) {
				return ref, false
			}
		default:
			return ref, false
		}
	}
	return ref, true
}

// hasRepeatedKeys reports whether some object in a JSON text names a key
// twice; false for text that is not JSON.
func hasRepeatedKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type object struct {
		keys  map[string]bool
		inKey bool // the next string token is a key
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.inKey
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				if top != nil {
					top.inKey = true
				}
				stack = append(stack, &object{keys: map[string]bool{}, inKey: true})
				continue
			case '[':
				if top != nil {
					top.inKey = true
				}
				stack = append(stack, &object{})
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if isKey {
				if top.keys[tok] {
					return true
				}
				top.keys[tok] = true
				top.inKey = false
				continue
			}
		}
		if top != nil && top.keys != nil {
			top.inKey = true
		}
	}
}
