package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// send is harness.do from a client address, with extra headers.
func (h *harness) send(method, path, body, key, addr string, header http.Header) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.RemoteAddr = addr + ":40000"
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func wantLimited(t *testing.T, rec *httptest.ResponseRecorder, retryAfter string) {
	t.Helper()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d %s, want 429", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
	if rec.Body.Len() > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if e := decodeError(t, rec); e.Error.Code != "rate_limited" {
			t.Errorf("error code %q, want rate_limited", e.Error.Code)
		}
	}
}

const limitBody = `{"conversation_id":"c-%d","channel":"web","signals":{"deal_size":100}}`

// A key over its rate gets 429 with the wait until its next token; other
// keys are not held back, and the bucket refills with time.
func TestKeyRateLimit(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Limits: Limits{KeyRate: 0.5, KeyBurst: 4}})
	h.publish(testPolicy) // the burst's first request
	_, other, err := h.store.CreateAPIKey(context.Background(), "other", []string{"score"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if rec := h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, i), h.key, "192.0.2.1", nil); rec.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	// 0.5 per second: the next token is 2 s away.
	wantLimited(t, h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 3), h.key, "192.0.2.1", nil), "2")
	// The same key from another address is the same bucket.
	wantLimited(t, h.send(http.MethodGet, "/v1/rules", "", h.key, "198.51.100.7", nil), "2")
	if rec := h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 4), other, "192.0.2.1", nil); rec.Code != http.StatusOK {
		t.Fatalf("another key: %d %s", rec.Code, rec.Body.String())
	}
	if n := testutil.ToFloat64(h.srv.metrics.limited.WithLabelValues(limitKey)); n != 2 {
		t.Errorf("hotlane_rate_limited_total{limit=key} = %v, want 2", n)
	}
	h.clock.Add(2 * time.Second)
	if rec := h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 5), h.key, "192.0.2.1", nil); rec.Code != http.StatusOK {
		t.Fatalf("after the wait: %d %s", rec.Code, rec.Body.String())
	}
	wantLimited(t, h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 6), h.key, "192.0.2.1", nil), "2")
}

// Requests that do not authenticate spend their address's tokens: past
// the burst the address gets 429, even with a key the server has not seen
// (which is then not looked up), while a key it already trusts goes on
// and other addresses are not affected.
func TestAnonRateLimit(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Limits: Limits{AnonRate: 1, AnonBurst: 3}})
	h.publish(testPolicy)
	// h.key is now trusted (cached) by the publish above.
	_, fresh, err := h.store.CreateAPIKey(context.Background(), "fresh", []string{"score"})
	if err != nil {
		t.Fatal(err)
	}
	const bad = "192.0.2.9"
	for i, key := range []string{"", "hl_not_a_key", ""} {
		if rec := h.send(http.MethodGet, "/v1/alerts", "", key, bad, nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("unauthenticated request %d: %d %s, want 401", i, rec.Code, rec.Body.String())
		}
	}
	wantLimited(t, h.send(http.MethodGet, "/v1/alerts", "", "", bad, nil), "1")
	wantLimited(t, h.send(http.MethodGet, "/v1/alerts", "", "hl_another_guess", bad, nil), "1")
	// A key the server has not cached is not looked up for this address.
	wantLimited(t, h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 1), fresh, bad, nil), "1")
	if rec := h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 2), h.key, bad, nil); rec.Code != http.StatusOK {
		t.Fatalf("a trusted key from the limited address: %d %s", rec.Code, rec.Body.String())
	}
	if rec := h.send(http.MethodGet, "/v1/alerts", "", "", "192.0.2.10", nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d %s, want 401", rec.Code, rec.Body.String())
	}
	// Public routes are not counted or limited.
	if rec := h.send(http.MethodGet, "/healthz", "", "", bad, nil); rec.Code != http.StatusOK {
		t.Fatalf("/healthz from the limited address: %d", rec.Code)
	}
	h.clock.Add(time.Second)
	if rec := h.send(http.MethodPost, "/v1/score", fmt.Sprintf(limitBody, 3), fresh, bad, nil); rec.Code != http.StatusOK {
		t.Fatalf("after a token came back, a valid key: %d %s", rec.Code, rec.Body.String())
	}
	if n := testutil.ToFloat64(h.srv.metrics.limited.WithLabelValues(limitAddress)); n != 3 {
		t.Errorf("hotlane_rate_limited_total{limit=address} = %v, want 3", n)
	}
}

// A page request with a session cookie that is not valid counts against
// its address like a wrong key; a page answers the 429 in words.
func TestAnonRateLimitSessions(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Limits: Limits{AnonRate: 1, AnonBurst: 2}})
	cookie := &http.Cookie{Name: sessionCookie, Value: "not-a-session"}
	for i := range 2 {
		rec := h.page(http.MethodGet, "/", nil, cookie, nil)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("bad session %d: %d, want 303 to /login", i, rec.Code)
		}
	}
	rec := h.page(http.MethodGet, "/", nil, cookie, nil)
	wantLimited(t, rec, "1")
	if !strings.Contains(rec.Body.String(), "too many requests without valid credentials") {
		t.Errorf("page 429 body %q", rec.Body.String())
	}
}

// X-Forwarded-For names the client only when the peer is a trusted proxy:
// otherwise a client could spend a new address on every request.
func TestAnonRateLimitForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []string
		limited bool
	}{
		{"no proxy trusted", nil, true},
		{"the peer is a trusted proxy", []string{"10.0.0.0/8"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "sqlite", Config{Limits: Limits{AnonRate: 1, AnonBurst: 2}, TrustedProxies: tc.proxies})
			var last *httptest.ResponseRecorder
			for i := range 3 {
				last = h.send(http.MethodGet, "/v1/alerts", "", "", "10.1.2.3",
					http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i+1)}})
			}
			if got := last.Code == http.StatusTooManyRequests; got != tc.limited {
				t.Errorf("third request from a new forwarded address each time: %d, limited %v, want %v", last.Code, got, tc.limited)
			}
		})
	}
}

// Without limits configured nothing is counted.
func TestNoLimitsByDefault(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	for i := range 50 {
		if rec := h.send(http.MethodGet, "/v1/alerts", "", "", "192.0.2.1", nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
}

// A flood of distinct addresses does not grow the limiter past its bound;
// a sweep drops the buckets that have filled up again and keeps those
// still spent.
func TestLimiterBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	l := newLimiter(1, 1, func() time.Time { return now })
	for i := range maxBuckets - 1 {
		l.take(fmt.Sprintf("a%d", i))
	}
	now = now.Add(time.Hour) // every bucket so far has refilled
	l.take("spender")
	if n := len(l.buckets); n != maxBuckets {
		t.Fatalf("%d buckets before the bound, want %d", n, maxBuckets)
	}
	l.take("late")
	if n := len(l.buckets); n != 2 || l.buckets["spender"] == nil || l.buckets["late"] == nil {
		t.Fatalf("after the sweep: %d buckets (spender kept %v), want spender and late", n, l.buckets["spender"] != nil)
	}
	if ok, _ := l.take("spender"); ok {
		t.Error("the spent bucket was reset by the sweep")
	}
	for i := range maxBuckets + 10 {
		l.take(fmt.Sprintf("b%d", i))
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets, bound %d", n, maxBuckets)
	}
}

// A Chatwoot webhook with a bad signature counts against its address.
func TestAnonRateLimitChatwoot(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Limits: Limits{AnonRate: 1, AnonBurst: 2},
		Chatwoot: &ChatwootConfig{AccountID: 1, Secret: "webhook-secret"}})
	sig := http.Header{"X-Chatwoot-Timestamp": {"1"}, "X-Chatwoot-Signature": {"sha256=00"}}
	for i := range 2 {
		if rec := h.send(http.MethodPost, "/v1/integrations/chatwoot", `{"event":"message_created"}`, "", "192.0.2.5", sig); rec.Code != http.StatusUnauthorized {
			t.Fatalf("bad signature %d: %d %s, want 401", i, rec.Code, rec.Body.String())
		}
	}
	wantLimited(t, h.send(http.MethodPost, "/v1/integrations/chatwoot", `{"event":"message_created"}`, "", "192.0.2.5", sig), "1")
}
