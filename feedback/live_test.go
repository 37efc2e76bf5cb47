package feedback

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

// fakeLiveSource serves a live ruleset and model from memory and counts
// the loads.
type fakeLiveSource struct {
	mu     sync.Mutex
	policy PolicyVersion // Version 0: none published
	model  ModelVersion  // Version 0: none active
	err    error         // returned by LiveVersions
	loads  int           // LivePolicy calls
}

func (f *fakeLiveSource) LiveVersions(context.Context) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.policy.Version, f.model.Version, f.err
}

func (f *fakeLiveSource) LivePolicy(context.Context) (PolicyVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	if f.policy.Version == 0 {
		return PolicyVersion{}, ErrNotFound
	}
	return f.policy, nil
}

func (f *fakeLiveSource) ActiveModel(context.Context) (ModelVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.model.Version == 0 {
		return ModelVersion{}, ErrNotFound
	}
	return f.model, nil
}

func (f *fakeLiveSource) set(fn func(f *fakeLiveSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

const livePolicy = `{"base": -3, "rules": [{"name": "big-deal", "expression": "deal_size >= 10000", "points": 2.5}],
 "thresholds": {"default": {"urgent": 0.9, "high": 0.7, "medium": 0.4}},
 "alerts": {"sla": {"urgent": "45s"}}}`

func TestLive(t *testing.T) {
	ctx := context.Background()
	src := &fakeLiveSource{}
	var loaded []int
	var failed int
	live := NewLive(src, LiveOptions{
		Loaded: func(prev, next *Scoring) { loaded = append(loaded, next.PolicyVersion*10+next.ModelVersion) },
		Failed: func(error) { failed++ },
	})

	// Before any ruleset: nothing held, nothing loaded.
	if err := live.Refresh(ctx); err != nil || live.Current() != nil || src.loads != 0 {
		t.Fatalf("before any ruleset: Refresh = %v, Current = %v, %d loads", err, live.Current(), src.loads)
	}

	src.set(func(f *fakeLiveSource) { f.policy = PolicyVersion{Version: 1, Document: []byte(livePolicy)} })
	if err := live.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	sc := live.Current()
	if sc == nil || sc.PolicyVersion != 1 || sc.ModelVersion != 0 || sc.Model != nil || sc.Policy == nil || sc.Scorer == nil {
		t.Fatalf("after publishing: %+v", sc)
	}
	if got := sc.SLA(model.TierUrgent); got != 45*time.Second {
		t.Errorf("SLA(urgent) = %v, want the policy's 45s", got)
	}
	d := sc.Scorer.Score(model.Input{Channel: "web", Signals: map[string]any{"deal_size": 20000.0}})
	if d.Tier != model.TierLow || len(d.Reasons) == 0 {
		t.Errorf("a big deal scored sigmoid(-3+2.5) = %.3f, tier %s; want low, below medium's 0.4", d.Score, d.Tier)
	}

	// The same versions again: no load.
	if err := live.Refresh(ctx); err != nil || src.loads != 1 {
		t.Errorf("unchanged versions: Refresh = %v after %d loads, want 1", err, src.loads)
	}

	// A model is promoted: the pairing changes, with its window.
	end := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	body, err := (&model.Model{Intercept: -1, RuleWeights: map[string]float64{"big-deal": 0.5}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	src.set(func(f *fakeLiveSource) { f.model = ModelVersion{Version: 4, Body: body, WindowEnd: &end} })
	if err := live.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if sc := live.Current(); sc.ModelVersion != 4 || sc.Model == nil || sc.ModelWindowEnd == nil || !sc.ModelWindowEnd.Equal(end) {
		t.Errorf("after promotion: %+v", sc)
	}

	// A broken ruleset keeps the previous pairing and says so.
	src.set(func(f *fakeLiveSource) {
		f.policy = PolicyVersion{Version: 2, Document: []byte(`{"rules": [{"name": "x", "expression": "(("}]}`)}
	})
	if err := live.Refresh(ctx); err == nil {
		t.Error("a ruleset that does not compile refreshed without an error")
	}
	if sc := live.Current(); sc.PolicyVersion != 1 || sc.ModelVersion != 4 {
		t.Errorf("after a failed load the holder serves %d/%d, want the previous 1/4", sc.PolicyVersion, sc.ModelVersion)
	}

	// A database that does not answer keeps it too.
	src.set(func(f *fakeLiveSource) { f.err = errors.New("connection refused") })
	if err := live.Refresh(ctx); err == nil || live.Current().PolicyVersion != 1 {
		t.Errorf("unreachable store: Refresh = %v, serving %d", err, live.Current().PolicyVersion)
	}

	if len(loaded) != 2 || loaded[0] != 10 || loaded[1] != 14 || failed != 1 {
		t.Errorf("hooks saw loads %v and %d failures, want [10 14] and 1", loaded, failed)
	}
}

// TestLiveWatch picks up a change within an interval and stops with its
// context.
func TestLiveWatch(t *testing.T) {
	src := &fakeLiveSource{policy: PolicyVersion{Version: 1, Document: []byte(livePolicy)}}
	live := NewLive(src, LiveOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { live.Watch(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for live.Current() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if live.Current() == nil {
		t.Fatal("Watch did not load the ruleset")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not stop with its context")
	}
}
