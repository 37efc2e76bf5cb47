package server

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func TestAppendScoreResponseMatchesEncodingJSON(t *testing.T) {
	reasons := []model.Reason{{Kind: "rule", Name: "big-deal", Contribution: 2.5, TierFloor: "high"}}
	route := model.Route{Team: "sales", Owner: "ana@example.com", Via: "owner"}
	rj, _ := json.Marshal(reasons)
	ro, _ := json.Marshal(route)
	tests := []struct {
		name  string
		rec   feedback.Decision
		prev  string
		alert *feedback.AlertOutcome
	}{
		{"new conversation, no model", feedback.Decision{ID: "d1", ConversationID: "c1", Channel: "web", Score: 0.0474258731775, Tier: model.TierLow, PolicyVersion: 3}, "", nil},
		{"escaped id and model", feedback.Decision{ID: "d2", ConversationID: "c\"<ü>\\", Channel: "whatsapp", Score: 1e-9, Tier: model.TierUrgent, ModelVersion: 7, PolicyVersion: 1}, "high", nil},
		{"fired alert", feedback.Decision{ID: "d3", ConversationID: "c3", Channel: "web", Score: 0.95, Tier: model.TierUrgent, PolicyVersion: 1}, "low",
			&feedback.AlertOutcome{ID: "a3", Kind: feedback.AlertKindTier, Status: feedback.AlertStatusFired}},
		{"suppressed alert", feedback.Decision{ID: "d4", ConversationID: "c4", Channel: "web", Score: 0.95, Tier: model.TierUrgent, PolicyVersion: 1}, "",
			&feedback.AlertOutcome{ID: "a4", Kind: feedback.AlertKindTier, Status: feedback.AlertStatusSuppressed, Reason: feedback.AlertReasonBudget}},
		{"warnings", feedback.Decision{ID: "d5", ConversationID: "c5", Channel: "web", Score: 0.1, Tier: model.TierLow, PolicyVersion: 1,
			Warnings: []byte(`[{"rule":"big-deal","message":"not evaluated: string >= int"}]`)}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendScoreResponse(nil, &tt.rec, feedback.Recorded{PreviousTier: feedback.ParseEventTier(tt.prev), Alert: tt.alert}, rj, ro)
			want := scoreResponse{DecisionID: tt.rec.ID, ConversationID: tt.rec.ConversationID, Channel: tt.rec.Channel,
				Score: tt.rec.Score, Tier: tt.rec.Tier.String(), Reasons: reasons, Route: route, RulesetVersion: tt.rec.PolicyVersion}
			if tt.prev != "" {
				want.PreviousTier = &tt.prev
			}
			if tt.rec.ModelVersion != 0 {
				want.ModelVersion = &tt.rec.ModelVersion
			}
			if tt.rec.Warnings != nil {
				_ = json.Unmarshal(tt.rec.Warnings, &want.Warnings)
			}
			if a := tt.alert; a != nil {
				want.Alert = &alertRef{ID: a.ID, Kind: a.Kind, Status: a.Status, Reason: a.Reason}
			}
			wantJSON, _ := json.Marshal(want)
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("hand-written JSON %s is invalid: %v", got, err)
			}
			_ = json.Unmarshal(wantJSON, &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got  %s\nwant %s", got, wantJSON)
			}
		})
	}
}

// FuzzScanScoreRequest checks the hand-written scanner against
// encoding/json: whatever it accepts must decode the same way there.
func FuzzScanScoreRequest(f *testing.F) {
	for _, s := range []string{
		`{"conversation_id":"c1","channel":"web","signals":{"a":1,"b":"x","c":true,"d":null,"e":-1.5e3}}`,
		`{"conversation_id":"c\u00e9\n","channel":"web","message":"hi \"there\"","signals":{"k":"\u0041"}}`,
		`  { "signals" : { } , "channel" : "x" }  `,
		`{"signals":{"a":{"b":1}}}`,
		`{"signals":[1]}`,
		`{"conversation_id":null,"signals":null}`,
		`[]`,
		`{"a":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := scanScoreRequest(body)
		if err != nil {
			return
		}
		var ref struct {
			ConversationID *string        `json:"conversation_id"`
			Channel        *string        `json:"channel"`
			Message        *string        `json:"message"`
			OccurredAt     *string        `json:"occurred_at"`
			Signals        map[string]any `json:"signals"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("scanner accepted %q but encoding/json says %v", body, err)
		}
		if ref.ConversationID != nil && *ref.ConversationID != req.conversationID {
			t.Errorf("conversation_id = %q, want %q", req.conversationID, *ref.ConversationID)
		}
		if ref.Message != nil && *ref.Message != req.message {
			t.Errorf("message = %q, want %q", req.message, *ref.Message)
		}
		if len(ref.Signals) != len(req.signals) {
			t.Fatalf("signals = %v, want %v", req.signals, ref.Signals)
		}
		for k, v := range ref.Signals {
			if !reflect.DeepEqual(req.signals[k], v) {
				t.Errorf("signal %s = %#v, want %#v", k, req.signals[k], v)
			}
		}
		if len(req.rawSignals) > 0 {
			var raw map[string]any
			if err := json.Unmarshal(req.rawSignals, &raw); err != nil || len(raw) != len(ref.Signals) {
				t.Errorf("raw signals %q do not decode to the signals: %v", req.rawSignals, err)
			}
		}
	})
}

// The reasons and route stored with every decision are written by hand;
// they must decode as encoding/json's encoding of the same values does.
func TestAppendReasonsAndRouteMatchEncodingJSON(t *testing.T) {
	reasonSets := [][]model.Reason{
		nil,
		{},
		{{Kind: "rule", Name: "big-deal", Contribution: 2.5, TierFloor: "high"}},
		{{Kind: "feature", Name: "deal_size", Contribution: -1e-9, Value: 25000.0},
			{Kind: "feature", Name: "plan=\"pro\" <&>", Contribution: 0, Value: "pro\u00e9\n"},
			{Kind: "feature", Name: "vip", Contribution: 1e22, Value: true},
			{Kind: "feature", Name: "zero", Contribution: 0.1, Value: 0.0},
			{Kind: "feature", Name: "int", Contribution: 0.1, Value: 3}},
	}
	for i, rs := range reasonSets {
		got, err := appendReasons(nil, rs)
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		want := rs
		if want == nil {
			want = []model.Reason{}
		}
		wantJSON, _ := json.Marshal(want)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("set %d: hand-written JSON %s is invalid: %v", i, got, err)
		}
		_ = json.Unmarshal(wantJSON, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("set %d:\ngot  %s\nwant %s", i, got, wantJSON)
		}
	}
	if _, err := appendReasons(nil, []model.Reason{{Kind: "rule", Name: "x", Contribution: math.NaN()}}); err == nil {
		t.Error("a NaN contribution encoded, want an error")
	}
	for _, r := range []model.Route{{Via: "none"}, {Team: "sales", Via: "route"}, {Team: "s\"x", Owner: "ana@example.com", Via: "owner"}, {Owner: "o", Via: "owner"}} {
		got := appendRoute(nil, r)
		want, _ := json.Marshal(r)
		if string(got) != string(want) {
			t.Errorf("route %+v: got %s, want %s", r, got, want)
		}
	}
}
