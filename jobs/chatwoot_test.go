package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// memWrites is an in-memory ChatwootStore: every write is due until it
// is finished, and claims are counted.
type memWrites struct {
	mu       sync.Mutex
	pending  []feedback.PendingChatwootWrite
	outcomes map[string]feedback.ChatwootOutcome
	claimed  map[string]bool
	maxClaim int
}

func (m *memWrites) ClaimChatwootWrites(_ context.Context, _ time.Time, _ time.Duration, limit int) ([]feedback.PendingChatwootWrite, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maxClaim = max(m.maxClaim, limit)
	var out []feedback.PendingChatwootWrite
	if m.claimed == nil {
		m.claimed = map[string]bool{}
	}
	for _, p := range m.pending {
		if _, done := m.outcomes[p.ID]; !done && !m.claimed[p.ID] && len(out) < limit {
			m.claimed[p.ID] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func (m *memWrites) FinishChatwootWrite(_ context.Context, o feedback.ChatwootOutcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[o.ID] = o
	return nil
}

// TestChatwootWriterOutcomes: answers that can never work fail a write
// at once, others are retried; a redirect is not followed (the token
// stays with Chatwoot); the token and content type are sent.
func TestChatwootWriterOutcomes(t *testing.T) {
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed, with token %q", r.Header.Get("api_access_token"))
	}))
	defer elsewhere.Close()
	statusOf := map[string]int{"/api/v1/accounts/1/conversations/1/toggle_priority": 200,
		"/api/v1/accounts/1/conversations/2/toggle_priority": 400, "/api/v1/accounts/1/conversations/3/toggle_priority": 403,
		"/api/v1/accounts/1/conversations/4/toggle_priority": 404, "/api/v1/accounts/1/conversations/5/toggle_priority": 422,
		"/api/v1/accounts/1/conversations/6/toggle_priority": 401, "/api/v1/accounts/1/conversations/7/toggle_priority": 429,
		"/api/v1/accounts/1/conversations/8/toggle_priority": 500, "/api/v1/accounts/1/conversations/9/toggle_priority": 302,
		"/api/v1/accounts/1/conversations/10": 503}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("api_access_token") != "tok" || r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: token %q, content type %q", r.Method, r.URL.Path, r.Header.Get("api_access_token"), r.Header.Get("Content-Type"))
		}
		status := statusOf[r.URL.Path]
		if status == 302 {
			w.Header().Set("Location", elsewhere.URL)
		}
		w.WriteHeader(status)
	}))
	defer api.Close()
	created := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	store := &memWrites{outcomes: map[string]feedback.ChatwootOutcome{}}
	for d := int64(1); d <= 10; d++ {
		kind, body := feedback.ChatwootPriority, `{"priority":"high"}`
		if d == 10 {
			kind, body = feedback.ChatwootAttributes, `{"custom_attributes":{"hotlane_tier":"high"}}`
		}
		store.pending = append(store.pending, feedback.PendingChatwootWrite{Claim: "c", ChatwootWrite: feedback.ChatwootWrite{
			ID: string(rune('a' + d)), AccountID: 1, DisplayID: d, Kind: kind, Body: []byte(body), CreatedAt: created}})
	}
	w := &ChatwootWriter{Store: store, BaseURL: api.URL + "/", Token: "tok", Concurrency: 3, Now: func() time.Time { return created }}
	n, err := w.RunOnce(context.Background())
	if err != nil || n != 10 {
		t.Fatalf("RunOnce: %d attempts, %v; want 10", n, err)
	}
	if store.maxClaim > 3 {
		t.Errorf("claimed %d writes at once with Concurrency 3", store.maxClaim)
	}
	want := map[int64]string{1: "delivered", 2: "failed", 3: "failed", 4: "failed", 5: "failed",
		6: "retry", 7: "retry", 8: "retry", 9: "retry", 10: "retry"}
	for _, p := range store.pending {
		o := store.outcomes[p.ID]
		got := "failed"
		switch {
		case o.Delivered:
			got = "delivered"
		case o.RetryAt != nil:
			got = "retry"
			if !o.RetryAt.Equal(created.Add(10 * time.Second)) {
				t.Errorf("conversation %d: retry at %v, want 10 s later", p.DisplayID, o.RetryAt)
			}
		}
		if got != want[p.DisplayID] {
			t.Errorf("conversation %d: %s (%d %s), want %s", p.DisplayID, got, o.StatusCode, o.Error, want[p.DisplayID])
		}
	}
	if o := store.outcomes[string(rune('a'+10))]; o.StatusCode != 503 {
		t.Errorf("attributes whose read failed: status %d, want the read's 503", o.StatusCode)
	}
}

// TestChatwootWriterSlowRequest: a request that hangs holds only its own
// slot; the writer sends the rest meanwhile.
func TestChatwootWriterSlowRequest(t *testing.T) {
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/accounts/1/conversations/1/toggle_priority" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer api.Close()
	defer close(release)
	store := &memWrites{outcomes: map[string]feedback.ChatwootOutcome{}}
	for d := int64(1); d <= 5; d++ {
		store.pending = append(store.pending, feedback.PendingChatwootWrite{Claim: "c", ChatwootWrite: feedback.ChatwootWrite{
			ID: string(rune('a' + d)), AccountID: 1, DisplayID: d, Kind: feedback.ChatwootPriority, Body: []byte(`{}`)}})
	}
	w := &ChatwootWriter{Store: store, BaseURL: api.URL, Token: "t", Concurrency: 2, Interval: 10 * time.Millisecond, Timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		store.mu.Lock()
		n := len(store.outcomes)
		store.mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 4 other writes sent while one request hung", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if _, ok := store.outcomes["b"]; ok {
		t.Error("the hanging write finished")
	}
}
