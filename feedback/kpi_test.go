package feedback

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

func rateString(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.4g", *r)
}

// TestComputeKPIs computes the four KPIs of two weeks from hand-made
// facts, without a database.
func TestComputeKPIs(t *testing.T) {
	start := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC) // Monday of 2026-W47
	w47 := func(h int) time.Time { return start.Add(time.Duration(h) * time.Hour) }
	w48 := func(h int) time.Time { return start.AddDate(0, 0, 7).Add(time.Duration(h) * time.Hour) }
	at := func(t time.Time, d time.Duration) *time.Time { t = t.Add(d); return &t }
	facts := KPIFacts{
		Reviews: []KPIReview{
			// c1 is reviewed twice: only the latest review counts.
			{ConversationID: "c1", Channel: "web", ModelTier: model.TierHigh, AgentTier: model.TierLow, At: w48(1)},
			{ConversationID: "c1", Channel: "web", ModelTier: model.TierHigh, AgentTier: model.TierHigh, At: w48(2)},
			{ConversationID: "c2", Channel: "whatsapp", ModelTier: model.TierLow, AgentTier: model.TierMedium, At: w48(3)},
			{ConversationID: "c3", Channel: "web", ModelTier: model.TierUrgent, AgentTier: model.TierUrgent, At: w47(5)},
		},
		Tops: []KPITopConversation{
			{ConversationID: "t1", Channel: "web", FirstTopAt: w48(1), FirstResponseAt: at(w48(1), 30*time.Second), ReachedUrgent: true, Converted: true},
			{ConversationID: "t2", Channel: "web", FirstTopAt: w48(2), FirstResponseAt: at(w48(2), 130*time.Second)},
			{ConversationID: "t3", Channel: "whatsapp", FirstTopAt: w48(3)},
			// A response before the top decision counts as 0 s.
			{ConversationID: "t4", Channel: "web", FirstTopAt: w47(1), FirstResponseAt: at(w47(1), -time.Minute)},
			// Outside the two weeks: not counted.
			{ConversationID: "t5", Channel: "web", FirstTopAt: start.Add(-time.Hour), Converted: true},
		},
		Alerts: []KPILabelledAlert{
			{AlertID: "a1", Channel: "web", Tier: model.TierHigh, CreatedAt: w48(1), Labels: []string{LabelUseful}, Rules: []string{"big-deal"}},
			{AlertID: "a2", Channel: "web", Tier: model.TierUrgent, CreatedAt: w48(2), Labels: []string{LabelNoise, LabelNoise, LabelUseful}, Rules: []string{"big-deal", "angry"}},
			{AlertID: "a3", Channel: "whatsapp", Tier: model.TierHigh, CreatedAt: w48(3), Labels: []string{LabelNoise, LabelUseful}, Rules: []string{"angry"}},
		},
	}
	rep := ComputeKPIs(facts, start, 2)
	if len(rep.Weeks) != 2 || rep.Weeks[0].Week != "2026-W47" || rep.Weeks[1].Week != "2026-W48" {
		t.Fatalf("weeks = %+v", rep.Weeks)
	}
	set := func(s KPISet) string {
		return fmt.Sprintf("acc %d/%d=%s rt %d/%d med %s p90 %s tp %d/%d/%d=%s conv %d/%d=%s",
			s.Accuracy.Confirmed, s.Accuracy.Reviewed, rateString(s.Accuracy.Rate),
			s.ResponseTime.Conversations, s.ResponseTime.Responded, rateString(s.ResponseTime.MedianSeconds), rateString(s.ResponseTime.P90Seconds),
			s.TruePositive.Useful, s.TruePositive.Noise, s.TruePositive.Tied, rateString(s.TruePositive.Rate),
			s.Conversion.Converted, s.Conversion.Conversations, rateString(s.Conversion.Rate))
	}
	w47s, w48s := rep.Weeks[0], rep.Weeks[1]
	tests := []struct{ name, got, want string }{
		{"W48 overall", set(w48s.Overall), "acc 1/2=0.5 rt 3/2 med 80 p90 120 tp 1/1/1=0.5 conv 1/3=0.3333"},
		{"W48 urgent", set(w48s.ByTier[model.TierUrgent]), "acc 0/0=- rt 1/1 med 30 p90 30 tp 0/1/0=0 conv 1/1=1"},
		{"W48 high", set(w48s.ByTier[model.TierHigh]), "acc 1/1=1 rt 2/1 med 130 p90 130 tp 1/0/1=1 conv 0/2=0"},
		{"W48 low", set(w48s.ByTier[model.TierLow]), "acc 0/1=0 rt 0/0 med - p90 - tp 0/0/0=- conv 0/0=-"},
		{"W48 whatsapp", set(w48s.ByChannel["whatsapp"]), "acc 0/1=0 rt 1/0 med - p90 - tp 0/0/1=- conv 0/1=0"},
		{"W48 rule big-deal", fmt.Sprint(w48s.ByRule["big-deal"].Useful, w48s.ByRule["big-deal"].Noise, w48s.ByRule["big-deal"].Tied), "1 1 0"},
		{"W48 rule angry", fmt.Sprint(w48s.ByRule["angry"].Useful, w48s.ByRule["angry"].Noise, w48s.ByRule["angry"].Tied), "0 1 1"},
		{"W47 overall", set(w47s.Overall), "acc 1/1=1 rt 1/1 med 0 p90 0 tp 0/0/0=- conv 0/1=0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, tt.got, tt.want)
		}
	}
}

func TestKPIWindow(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) // a Wednesday of 2026-W48
	start, end, err := KPIWindow(KPIQuery{Weeks: 2, Now: now})
	if err != nil || !start.Equal(time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("KPIWindow = %v, %v, %v", start, end, err)
	}
	for _, weeks := range []int{0, -1, MaxKPIWeeks + 1} {
		if _, _, err := KPIWindow(KPIQuery{Weeks: weeks, Now: now}); !errors.Is(err, ErrInvalid) {
			t.Errorf("weeks %d: err = %v, want ErrInvalid", weeks, err)
		}
	}
}

func TestRuleNames(t *testing.T) {
	tests := []struct{ reasons, want string }{
		{`[{"kind":"rule","name":"a"},{"kind":"feature","name":"deal_size"},{"kind":"rule","name":"b"},{"kind":"rule","name":"a"}]`, "[a b]"},
		{`[]`, "[]"},
		{`not json`, "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(RuleNames(tt.reasons)); got != tt.want {
			t.Errorf("RuleNames(%s) = %s, want %s", tt.reasons, got, tt.want)
		}
	}
}
