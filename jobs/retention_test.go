package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

type fakeRetentionStore struct {
	mu     sync.Mutex
	calls  []time.Duration
	at     []time.Time
	failed bool
}

func (f *fakeRetentionStore) MaintainDecisions(_ context.Context, now time.Time, retain time.Duration) (feedback.DecisionMaintenance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, retain)
	f.at = append(f.at, now)
	if !f.failed {
		f.failed = true
		return feedback.DecisionMaintenance{}, errors.New("database down")
	}
	return feedback.DecisionMaintenance{Dropped: []string{"decisions_p202401"}}, nil
}

// The job passes its retention and clock to the store at start and then
// every interval, and a failing pass (a dead database) does not stop it.
func TestRetentionRunsEveryInterval(t *testing.T) {
	st := &fakeRetentionStore{}
	clock := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	r := &Retention{Store: st, Retain: 400 * 24 * time.Hour, Interval: 10 * time.Millisecond, Now: func() time.Time { return clock }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.calls)
		st.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d passes in 5s, want 3 (the first failed)", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil when stopped", err)
	}
	for i, retain := range st.calls {
		if retain != r.Retain || !st.at[i].Equal(clock) {
			t.Errorf("pass %d: retain %v at %v, want %v at %v", i, retain, st.at[i], r.Retain, clock)
		}
	}
}
