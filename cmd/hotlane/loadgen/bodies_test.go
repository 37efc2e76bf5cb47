package loadgen

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testRef = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)

func TestGenerateBodiesDeterministic(t *testing.T) {
	a, err := generateBodies(42, 5000, 500, testRef)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generateBodies(42, 5000, 500, testRef)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("body %d differs for the same seed:\n%s\n%s", i, a[i], b[i])
		}
	}
	c, err := generateBodies(43, 5000, 500, testRef)
	if err != nil {
		t.Fatal(err)
	}
	same := 0
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same == len(a) {
		t.Errorf("seeds 42 and 43 gave the same bodies")
	}
}

func TestGenerateBodiesValid(t *testing.T) {
	const conversations = 300
	bodies, err := generateBodies(7, conversations, bodyCount, testRef)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(bodies), bodyCount; got != want {
		t.Fatalf("got %d bodies, want %d", got, want)
	}
	convRE := regexp.MustCompile(`^conv-([0-9]+)$`)
	keyRE := regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	channelsSeen := map[string]int{}
	var withMessage, withOwner, nulls int
	convs := map[string]bool{}
	for i, raw := range bodies {
		if len(raw) > maxBaselineBody {
			t.Fatalf("body %d is %d bytes, over the 64 KiB limit", i, len(raw))
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var body map[string]any
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("body %d is not valid JSON: %v\n%s", i, err, raw)
		}
		for _, field := range []string{"conversation_id", "channel", "signals", "occurred_at"} {
			if _, ok := body[field]; !ok {
				t.Fatalf("body %d has no %q: %s", i, field, raw)
			}
		}
		id, _ := body["conversation_id"].(string)
		m := convRE.FindStringSubmatch(id)
		if m == nil {
			t.Fatalf("body %d: conversation_id %q is not conv-<n>", i, id)
		}
		if n, _ := strconv.Atoi(m[1]); n < 1 || n > conversations {
			t.Errorf("body %d: conversation_id %q outside the pool of %d", i, id, conversations)
		}
		convs[id] = true
		ch, _ := body["channel"].(string)
		switch ch {
		case "web", "whatsapp", "email":
			channelsSeen[ch]++
		default:
			t.Errorf("body %d: channel %q", i, ch)
		}
		at, _ := body["occurred_at"].(string)
		ts, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Errorf("body %d: occurred_at %q: %v", i, at, err)
		} else if ts.After(testRef) || ts.Before(testRef.Add(-2*time.Hour)) {
			t.Errorf("body %d: occurred_at %v not within two hours before %v", i, ts, testRef)
		}
		if msg, ok := body["message"]; ok {
			s, isString := msg.(string)
			if !isString || strings.TrimSpace(s) == "" {
				t.Errorf("body %d: message %#v, want a non-empty string", i, msg)
			}
			withMessage++
		}
		signals, ok := body["signals"].(map[string]any)
		if !ok {
			t.Fatalf("body %d: signals is %T, want an object", i, body["signals"])
		}
		if n := len(signals); n < minSignals || n > maxSignals || n > 100 {
			t.Errorf("body %d has %d signals, want %d-%d (and at most 100)", i, n, minSignals, maxSignals)
		}
		for k, v := range signals {
			if !keyRE.MatchString(k) || k == "channel" || k == "message" {
				t.Errorf("body %d: signal key %q", i, k)
			}
			switch v.(type) {
			case nil:
				nulls++
			case json.Number, string, bool:
			default:
				t.Errorf("body %d: signal %q is %T, want a scalar", i, k, v)
			}
		}
		if _, ok := signals["owner"].(string); ok {
			withOwner++
		}
		for _, core := range coreSignals {
			if _, ok := signals[core.name]; !ok {
				t.Errorf("body %d lacks core signal %q", i, core.name)
			}
		}
	}
	// The bodies must vary the way real traffic does.
	for _, ch := range []string{"web", "whatsapp", "email"} {
		if channelsSeen[ch] == 0 {
			t.Errorf("no body on channel %q", ch)
		}
	}
	if channelsSeen["web"] < channelsSeen["email"] {
		t.Errorf("web (%d) should outweigh email (%d)", channelsSeen["web"], channelsSeen["email"])
	}
	if withMessage == 0 || withMessage == len(bodies) {
		t.Errorf("%d of %d bodies carry a message, want some but not all", withMessage, len(bodies))
	}
	if withOwner == 0 || withOwner == len(bodies) {
		t.Errorf("%d of %d bodies carry an owner, want some but not all", withOwner, len(bodies))
	}
	if nulls == 0 {
		t.Errorf("no null signal values")
	}
	if got, want := len(convs), conversations/2; got < want {
		t.Errorf("%d distinct conversations, want at least %d", got, want)
	}
}

func TestGenerateBodiesDecodeIntoBaseline(t *testing.T) {
	bodies, err := generateBodies(1, 50, 200, testRef)
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range bodies {
		var req baselineRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			t.Fatalf("body %d does not decode into the baseline request: %v", i, err)
		}
		if req.ConversationID == "" || req.Channel == "" || len(req.Signals) == 0 || req.OccurredAt == nil {
			t.Errorf("body %d decoded incompletely: %+v", i, req)
		}
	}
}
