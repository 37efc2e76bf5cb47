package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/feedbacktest"
)

// slowKeys is a key store whose lookups block until released and are
// counted; revoked keys are not found.
type slowKeys struct {
	calls   atomic.Int64
	gate    chan struct{}
	mu      sync.Mutex
	revoked bool
}

func (s *slowKeys) AuthenticateAPIKey(ctx context.Context, secret string) (feedback.APIKey, error) {
	s.calls.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return feedback.APIKey{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked {
		return feedback.APIKey{}, feedback.ErrNotFound
	}
	return feedback.APIKey{ID: 1, Scopes: []string{"score"}}, nil
}

// TestKeyCacheSingleFlight: a burst of requests with a key not cached
// asks the store once.
func TestKeyCacheSingleFlight(t *testing.T) {
	store := &slowKeys{gate: make(chan struct{})}
	k := newKeyCache(store, 10*time.Second, time.Now)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := k.authenticate(context.Background(), "hl_secret"); err != nil {
				t.Error(err)
			}
		})
	}
	for store.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the burst pile up behind the first lookup
	close(store.gate)
	wg.Wait()
	if n := store.calls.Load(); n != 1 {
		t.Errorf("%d lookups for a burst of 50 requests, want 1", n)
	}
}

// TestKeyCacheRefreshAhead: past half its time a key is refreshed once in
// the background while requests go on with the cached key; a refresh that
// finds it revoked drops it; past its whole time it is read again.
func TestKeyCacheRefreshAhead(t *testing.T) {
	clock := feedbacktest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	store := &slowKeys{}
	k := newKeyCache(store, 10*time.Second, clock.Now)
	ctx := context.Background()
	if _, err := k.authenticate(ctx, "hl_secret"); err != nil {
		t.Fatal(err)
	}
	store.gate = make(chan struct{}) // lookups now hang until released
	clock.Add(6 * time.Second)
	for range 20 {
		if _, err := k.authenticate(ctx, "hl_secret"); err != nil {
			t.Fatalf("a request waited on or failed with the refresh: %v", err)
		}
	}
	for wait := time.Now().Add(5 * time.Second); store.calls.Load() < 2 && time.Now().Before(wait); {
		time.Sleep(time.Millisecond)
	}
	for range 20 { // more requests while the refresh hangs start no other
		if _, err := k.authenticate(ctx, "hl_secret"); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.calls.Load(); n != 2 {
		t.Errorf("%d lookups, want 2 (the first and one refresh)", n)
	}
	store.mu.Lock()
	store.revoked = true
	store.mu.Unlock()
	close(store.gate)
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.RLock()
		n := len(k.entries)
		k.mu.RUnlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked key is still cached after its refresh")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := k.authenticate(ctx, "hl_secret"); !errors.Is(err, feedback.ErrNotFound) {
		t.Errorf("a revoked key: %v, want not found", err)
	}

	// A key not used for a whole ttl is read before use.
	store.mu.Lock()
	store.revoked = false
	store.mu.Unlock()
	if _, err := k.authenticate(ctx, "hl_other"); err != nil {
		t.Fatal(err)
	}
	before := store.calls.Load()
	clock.Add(11 * time.Second)
	if _, err := k.authenticate(ctx, "hl_other"); err != nil || store.calls.Load() != before+1 {
		t.Errorf("an expired key: %v, %d lookups, want one more", err, store.calls.Load()-before)
	}
}
