package jobs_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/feedbacktest"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

func TestNextAttempt(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		attempt int
		now     time.Duration // since created
		want    time.Duration // since created; -1 means give up
	}{
		{"first failure", 1, 0, 30 * time.Second},
		{"second", 2, 30 * time.Second, 150 * time.Second},
		{"third", 3, 150 * time.Second, 750 * time.Second},
		{"fourth", 4, 750 * time.Second, 750*time.Second + time.Hour},
		{"fifth", 5, time.Hour, 5 * time.Hour},
		{"sixth waits 12h", 6, 5 * time.Hour, 17 * time.Hour},
		{"capped at one day", 7, 17 * time.Hour, 24 * time.Hour},
		{"at the deadline", 8, 24 * time.Hour, -1},
		{"past the deadline", 3, 25 * time.Hour, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jobs.NextAttempt(tt.attempt, created, created.Add(tt.now))
			if tt.want < 0 {
				if ok {
					t.Errorf("got %v, want give up", got.Sub(created))
				}
				return
			}
			if !ok || !got.Equal(created.Add(tt.want)) {
				t.Errorf("got %v, %v; want %v", got.Sub(created), ok, tt.want)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	body := []byte(`{"a":1}`)
	header := jobs.SignatureValue([]string{"new", "old"}, at, body)
	// The documented recipe: HMAC-SHA256 over "<t>.<body>".
	if want := "t=1700000000,v1=" + jobs.Sign("new", at, body) + ",v1=" + jobs.Sign("old", at, body); header != want {
		t.Fatalf("header = %q, want %q", header, want)
	}
	tests := []struct {
		name   string
		header string
		body   string
		secret string
		now    time.Time
		want   error
	}{
		{"current secret", header, `{"a":1}`, "new", at, nil},
		{"previous secret", header, `{"a":1}`, "old", at.Add(time.Minute), nil},
		{"other secret", header, `{"a":1}`, "x", at, jobs.ErrSignatureMismatch},
		{"changed body", header, `{"a":2}`, "new", at, jobs.ErrSignatureMismatch},
		{"too old", header, `{"a":1}`, "new", at.Add(6 * time.Minute), jobs.ErrSignatureExpired},
		{"from the future", header, `{"a":1}`, "new", at.Add(-6 * time.Minute), jobs.ErrSignatureExpired},
		{"no timestamp", "v1=abc", `{"a":1}`, "new", at, jobs.ErrSignatureFormat},
		{"no signature", "t=1700000000", `{"a":1}`, "new", at, jobs.ErrSignatureFormat},
		{"garbage", "nonsense", `{"a":1}`, "new", at, jobs.ErrSignatureFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := jobs.VerifySignature(tt.header, []byte(tt.body), tt.secret, tt.now, 5*time.Minute)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// slaStore is an in-memory SLAStore: conversations with their tier and
// first_top_at.
type slaStore struct {
	tier      map[string]model.Tier
	top       map[string]time.Time
	escalated map[string]bool
	asked     map[model.Tier]time.Time
}

func (f *slaStore) SLABreaches(_ context.Context, deadlines map[model.Tier]time.Time, limit int) ([]string, error) {
	f.asked = deadlines
	var ids []string
	for id, tier := range f.tier {
		if d, ok := deadlines[tier]; ok && !f.escalated[id] && !f.top[id].After(d) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

func (f *slaStore) EscalateSLA(_ context.Context, id string, at time.Time) (feedback.Alert, bool, error) {
	if f.escalated[id] {
		return feedback.Alert{}, false, nil
	}
	f.escalated[id] = true
	return feedback.Alert{Kind: feedback.AlertKindSLA, ConversationID: id, Tier: f.tier[id], CreatedAt: at}, true, nil
}

func TestSLAChecker(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	store := &slaStore{
		tier:      map[string]model.Tier{"u": model.TierUrgent, "h": model.TierHigh, "m": model.TierMedium},
		top:       map[string]time.Time{"u": t0, "h": t0, "m": t0},
		escalated: map[string]bool{},
	}
	clk := feedbacktest.NewClock(t0.Add(59 * time.Second))
	c := &jobs.SLAChecker{Store: store, Now: clk.Now, Batch: 1}
	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, nil},                     // 59 s: nothing is late
		{time.Second, []string{"u"}}, // 60 s: urgent is late
		{time.Minute, nil},           // escalated once only
		{time.Minute, []string{"h"}}, // 180 s: high is late
		{time.Hour, nil},             // medium has no SLA
	}
	for i, st := range steps {
		clk.Add(st.advance)
		raised, err := c.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range raised {
			got = append(got, a.ConversationID)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("step %d (%v): escalated %v, want %v", i, clk.Now().Sub(t0), got, st.want)
		}
	}
	if _, ok := store.asked[model.TierMedium]; ok {
		t.Error("asked for medium breaches; medium has no SLA")
	}

	custom := &jobs.SLAChecker{Store: store, Now: clk.Now, SLA: func(context.Context, model.Tier) (time.Duration, error) {
		return 0, errors.New("policy unreadable")
	}}
	if _, err := custom.RunOnce(context.Background()); err == nil {
		t.Error("an SLA lookup error was swallowed")
	}
}
