package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

const alertPolicy = testPolicy + `
alerts:
  tiers: {default: [urgent, high]}
  cooldown: 10m
  hourly_budget: {default: 1}
  exploration_rate: 0
`

// TestScoreAlerts: the score response names the alert each decision
// produced, with the policy's alerts section applied on a fake clock.
func TestScoreAlerts(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(alertPolicy)
			high := func(conv string) string { // big-deal floors it at high: team sales
				return `{"conversation_id":"` + conv + `","channel":"web","signals":{"deal_size":25000}}`
			}
			steps := []struct {
				body    string
				advance time.Duration
				want    string // status/reason, "-" for null
			}{
				{`{"conversation_id":"c1","channel":"web","signals":{}}`, 0, "-"},
				{high("c1"), 0, "fired/"},
				{high("c1"), time.Minute, "deduplicated/duplicate"},
				{high("c2"), 0, "suppressed/budget"},
				{high("c2"), time.Hour, "fired/"},
			}
			var firedID string
			for i, st := range steps {
				h.clock.Add(st.advance)
				got, rec := h.score(st.body)
				if rec.Code != http.StatusOK {
					t.Fatalf("step %d: status %d: %s", i, rec.Code, rec.Body.String())
				}
				s := "-"
				if got.Alert != nil {
					s = got.Alert.Status + "/" + got.Alert.Reason
					if got.Alert.ID == "" || got.Alert.Kind != "tier" {
						t.Errorf("step %d: alert %+v, want an id and kind tier", i, got.Alert)
					}
					if firedID == "" && got.Alert.Status == "fired" {
						firedID = got.Alert.ID
					}
				}
				if s != st.want {
					t.Errorf("step %d: alert %s, want %s", i, s, st.want)
				}
			}
			conv, err := h.store.Conversation(t.Context(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if conv.AlertedTier != model.TierHigh || conv.LastAlertAt == nil || !conv.LastAlertAt.Equal(h.clock.Now().Add(-time.Hour-time.Minute)) {
				t.Errorf("c1 alert state = %q at %v", conv.AlertedTier, conv.LastAlertAt)
			}
		})
	}
}
