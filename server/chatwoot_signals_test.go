package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

func TestChatwootSignals(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	body := `{"id": 5, "inbox_id": 3, "waiting_since": ` + fmt.Sprint(now.Add(-90*time.Second).Unix()) + `,
	  "labels": ["vip", "hotlane-noise", "needs follow-up", "2fa"],
	  "custom_attributes": {"deal_size": 50000, "plan": "enterprise", "hotlane_tier": "high", "hotlane_score": 0.9,
	    "trial": true, "tags": ["a"], "nested": {"x": 1}, "message_count": 99, "company size": "50-100", "none": null},
	  "additional_attributes": {"browser": {"browser_name": "Firefox", "platform_name": "Linux"}, "referer": "https://example.com/pricing"},
	  "meta": {"sender": {"id": 42, "custom_attributes": {"plan": "free", "country": "DE"}}}}`
	var conv cwConversation
	if err := json.Unmarshal([]byte(body), &conv); err != nil {
		t.Fatal(err)
	}
	got := chatwootSignals(&conv, feedback.ChatwootState{Messages: 3, Returning: true}, now)
	want := map[string]any{
		"deal_size": 50000.0, "plan": "enterprise", "country": "DE", "trial": true, "company_size": "50-100",
		"label_vip": true, "label_needs_follow_up": true, "label_2fa": true,
		"message_count": 3.0, "returning": true, "wait_seconds": 90.0, "inbox_id": 3.0,
		"browser": "Firefox", "platform": "Linux", "referer": "https://example.com/pricing",
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("signals\n got %s\nwant %s", g, w)
	}
	// The signals pass the score request's own checks.
	raw, _ := json.Marshal(map[string]any{"conversation_id": "c", "channel": "web", "signals": got})
	if _, err := parseScoreRequest(raw, now); err != nil {
		t.Errorf("the signals are not a valid score request: %v", err)
	}

	// At most maxSignals, Hotlane's own first.
	many := map[string]any{}
	for i := range 150 {
		many[fmt.Sprintf("attr_%03d", i)] = float64(i)
	}
	conv = cwConversation{CustomAttributes: many}
	got = chatwootSignals(&conv, feedback.ChatwootState{Messages: 1}, now)
	if len(got) != maxSignals || got["message_count"] != 1.0 {
		t.Errorf("%d signals (message_count %v), want %d with Hotlane's kept", len(got), got["message_count"], maxSignals)
	}
}

func TestSignalKey(t *testing.T) {
	cases := map[string]string{
		"deal_size": "deal_size", "Deal Size": "Deal_Size", "2fa": "_2fa", "a-b.c": "a_b_c",
		"channel": "", "message": "", "---": "", "": "", "ünicode": "__nicode",
		strings.Repeat("x", 80): strings.Repeat("x", maxSignalKeyLen),
	}
	for in, want := range cases {
		if got := signalKey(in); got != want {
			t.Errorf("signalKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzChatwootPayload: no body makes the webhook parser or the signal
// mapping panic, and what it maps passes the score request's checks.
func FuzzChatwootPayload(f *testing.F) {
	f.Add("conversation_created", []byte(`{"id":1,"labels":["a"],"custom_attributes":{"x":1},"messages":[{"id":2,"message_type":0,"content":"hi"}]}`))
	f.Add("message_created", []byte(`{"id":2,"message_type":"incoming","content":"x","conversation":{"id":1,"waiting_since":1785233700}}`))
	f.Add("conversation_updated", []byte(`{"id":1,"changed_attributes":[{"label_list":{"previous_value":"a,b","current_value":["a"]}}]}`))
	f.Add("conversation_created", []byte(`{"id":"7","created_at":"2026-07-28T10:15:00Z","updated_at":1785235330.642077}`))
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		if event != "message_created" {
			event = "conversation_created"
		}
		p, err := parseChatwoot(event, body)
		if err != nil {
			return
		}
		sig := chatwootSignals(p.conversation, feedback.ChatwootState{}, now)
		raw, err := json.Marshal(map[string]any{"conversation_id": "c", "channel": feedback.ChatwootChannel(p.conversation.Channel), "signals": sig})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseScoreRequest(raw, now); err != nil {
			t.Fatalf("mapped signals refused: %v (%s)", err, raw)
		}
		_, _ = signalsUnchanged(p.conversation.Changes, feedback.ChatwootState{}), latestIncoming(p.conversation.Messages)
	})
}
