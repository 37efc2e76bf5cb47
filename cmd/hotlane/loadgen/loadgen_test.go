package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testKey = "hl_test_key"

// fakeHotlane answers score calls like the server would: 401 without the
// right key, 400 for a body that is not JSON, else status.
func fakeHotlane(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/v1/score" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such route"}}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"invalid API key"}}`)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["conversation_id"] == nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid_json","message":"bad body"}}`)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"decision_id":"d1","tier":"low","score":0.12}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRunWithBaseline(t *testing.T) {
	srv, _ := fakeHotlane(t, http.StatusOK)
	var progress bytes.Buffer
	cfg := Config{
		URL:         srv.URL,
		Key:         testKey,
		Duration:    200 * time.Millisecond,
		Concurrency: 4,
		Baseline:    true,
		Rounds:      2,
		Seed:        3,
		Warmup:      50 * time.Millisecond,
	}
	rep, err := Run(t.Context(), cfg, &progress)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests <= 0 || rep.BaselineRequests <= 0 {
		t.Errorf("requests = %d, baseline requests = %d, want both > 0", rep.Requests, rep.BaselineRequests)
	}
	if rep.Errors != 0 || rep.BaselineErrors != 0 {
		t.Errorf("errors = %d, baseline errors = %d, want 0 (first: %s)", rep.Errors, rep.BaselineErrors, rep.FirstError)
	}
	if rep.RPS <= 0 || rep.BaselineRPS <= 0 || rep.Ratio <= 0 {
		t.Errorf("rps = %v, baseline_rps = %v, ratio = %v, want all > 0", rep.RPS, rep.BaselineRPS, rep.Ratio)
	}
	if rep.P50Ms <= 0 || rep.P50Ms > rep.P95Ms || rep.P95Ms > rep.P99Ms || rep.P99Ms > rep.MaxMs {
		t.Errorf("percentiles not ordered: p50 %v p95 %v p99 %v max %v", rep.P50Ms, rep.P95Ms, rep.P99Ms, rep.MaxMs)
	}
	if got, want := rep.Statuses["200"], rep.Requests; got != want {
		t.Errorf("statuses[200] = %d, want %d", got, want)
	}
	if got, want := rep.Concurrency, 4; got != want {
		t.Errorf("concurrency = %d, want %d", got, want)
	}
	var targets []string
	var sum int64
	for _, r := range rep.Rounds {
		targets = append(targets, r.Target)
		if r.Target == TargetHotlane {
			sum += r.Requests
		}
		if r.Requests <= 0 {
			t.Errorf("round %+v made no requests", r)
		}
	}
	if got, want := strings.Join(targets, ","), "baseline,hotlane,baseline,hotlane"; got != want {
		t.Errorf("rounds = %s, want %s", got, want)
	}
	if sum != rep.Requests {
		t.Errorf("hotlane rounds sum to %d requests, report says %d", sum, rep.Requests)
	}
	if got, want := strings.Count(progress.String(), "\n"), 4; got != want {
		t.Errorf("progress has %d lines, want %d:\n%s", got, want, progress.String())
	}

	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rps", "requests", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms",
		"baseline_rps", "baseline_p50_ms", "baseline_p99_ms", "ratio", "concurrency", "duration_s", "rounds"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON report lacks %q: %s", k, data)
		}
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"p99 ms", "baseline", "hotlane", "all", "ratio"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRunCountsErrors(t *testing.T) {
	srv, _ := fakeHotlane(t, http.StatusInternalServerError)
	rep, err := Run(t.Context(), Config{
		URL: srv.URL, Key: testKey, Duration: 100 * time.Millisecond, Concurrency: 2, Warmup: -1,
	}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests == 0 {
		t.Fatal("no requests made")
	}
	if got, want := rep.Errors, rep.Requests; got != want {
		t.Errorf("errors = %d, want every request (%d)", got, want)
	}
	if got, want := rep.Statuses["500"], rep.Requests; got != want {
		t.Errorf("statuses[500] = %d, want %d", got, want)
	}
	if got, want := rep.Ratio, 0.0; got != want {
		t.Errorf("ratio without baseline = %v, want %v", got, want)
	}
	if got, want := len(rep.Rounds), 1; got != want {
		t.Errorf("%d rounds, want %d", got, want)
	}
	if !strings.Contains(rep.FirstError, "500") {
		t.Errorf("first error = %q, want it to name the status", rep.FirstError)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "500: ") {
		t.Errorf("text report does not show the error statuses:\n%s", text.String())
	}
}

func TestRunProbeFailures(t *testing.T) {
	ok, _ := fakeHotlane(t, http.StatusOK)
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"forbidden","message":"key lacks scope score"}}`)
	}))
	t.Cleanup(forbidden.Close)
	// Port 1 (tcpmux) is privileged and served by nothing here; a port
	// freed by closing a listener could be taken again by the baseline
	// server a previous case started.
	closedURL := "http://127.0.0.1:1"

	tests := []struct {
		name     string
		url, key string
		wantIs   error
		wantText []string
	}{
		{name: "wrong key", url: ok.URL, key: "hl_wrong", wantIs: ErrBadKey, wantText: []string{"401", "invalid API key"}},
		{name: "missing scope", url: forbidden.URL, key: testKey, wantIs: ErrBadKey, wantText: []string{"403", "score scope"}},
		{name: "unreachable", url: closedURL, key: testKey, wantIs: ErrUnreachable, wantText: []string{closedURL}},
		{name: "wrong path", url: ok.URL + "/nothing", key: testKey, wantText: []string{"404", "Hotlane server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var progress bytes.Buffer
			_, err := Run(t.Context(), Config{URL: tt.url, Key: tt.key, Duration: time.Hour, Baseline: true}, &progress)
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Run error %q is not %v", err, tt.wantIs)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Run error %q does not mention %q", err, want)
				}
			}
			if progress.Len() != 0 {
				t.Errorf("rounds ran despite the failed probe:\n%s", progress.String())
			}
		})
	}
}

func TestRunInvalidConfig(t *testing.T) {
	_, err := Run(t.Context(), Config{URL: "http://127.0.0.1:1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("Run with no duration = %v, want a config error", err)
	}
}

// TestRunCancelInFlight cancels while every worker waits on a server that
// never answers: Run must abort the requests and return.
func TestRunCancelInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const concurrency = 4
	var calls atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch calls.Add(1) {
		case 1:
			io.WriteString(w, `{}`) // the probe
			return
		case 1 + concurrency: // every worker now has a request in flight
			cancel()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{URL: srv.URL, Key: testKey, Duration: time.Hour, Concurrency: concurrency, Warmup: -1}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// cancelWriter cancels the run when the first progress line arrives.
type cancelWriter struct {
	once   sync.Once
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.once.Do(w.cancel)
	return w.buf.Write(p)
}

// TestRunCancelKeepsFinishedRounds cancels after the first baseline round:
// Run returns that round, stops the baseline server, and reports the cause.
func TestRunCancelKeepsFinishedRounds(t *testing.T) {
	srv, _ := fakeHotlane(t, http.StatusOK)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancelWriter{cancel: cancel}
	rep, err := Run(ctx, Config{
		URL: srv.URL, Key: testKey, Duration: 100 * time.Millisecond, Concurrency: 2,
		Baseline: true, Rounds: 50, Warmup: -1,
	}, w)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want context.Canceled", err)
	}
	if got, want := len(rep.Rounds), 1; got != want {
		t.Fatalf("%d rounds reported, want %d", got, want)
	}
	if got, want := rep.Rounds[0].Target, TargetBaseline; got != want {
		t.Errorf("round target = %q, want %q", got, want)
	}
	if rep.BaselineRequests == 0 || rep.Requests != 0 || rep.Ratio != 0 {
		t.Errorf("baseline requests %d, requests %d, ratio %v; want >0, 0, 0", rep.BaselineRequests, rep.Requests, rep.Ratio)
	}
}

func TestBaselineServer(t *testing.T) {
	b, err := startBaseline()
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := generateBodies(1, 10, 1, testRef)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{name: "score body", body: string(bodies[0]), wantStatus: http.StatusOK},
		{name: "not JSON", body: "{", wantStatus: http.StatusBadRequest},
		{name: "signals not an object", body: `{"conversation_id":"c","signals":[1]}`, wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(b.url+"/v1/score", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			var out map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if tt.wantStatus == http.StatusOK && out["tier"] != "low" {
				t.Errorf("answer = %v, want tier low", out)
			}
		})
	}
	if err := b.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := http.Post(b.url+"/v1/score", "application/json", strings.NewReader("{}")); err == nil {
		t.Error("baseline still answers after stop")
	}
}

// stallingServer answers at once except while stalled, when every
// request waits until the stall ends.
// stallingServer answers at once, except that after stallAfter(n, d) its
// n-th request starts a stall of d that every request waits out. Counting
// requests, not time, puts the stall inside the measured round however
// slowly a loaded machine starts it.
func stallingServer(t *testing.T) (*httptest.Server, func(n int, d time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	var until time.Time
	var left int
	var stallFor time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		if left > 0 {
			if left--; left == 0 {
				until = time.Now().Add(stallFor)
			}
		}
		wait := time.Until(until)
		mu.Unlock()
		if wait > 0 {
			time.Sleep(wait)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"decision_id":"d1","tier":"low","score":0.12}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func(n int, d time.Duration) {
		mu.Lock()
		left, stallFor = n, d
		mu.Unlock()
	}
}

// TestOpenLoopCountsStalls: a 300 ms stall in the middle of a round is
// seen by every request scheduled during it when the load is open loop,
// and by only the few in flight when it is closed loop (coordinated
// omission). The two runs are compared with each other, not with a
// fixed time.
func TestOpenLoopCountsStalls(t *testing.T) {
	srv, stall := stallingServer(t)
	run := func(rate float64) Report {
		t.Helper()
		stall(60, 300*time.Millisecond) // about 300 ms into the open loop's second
		rep, err := Run(context.Background(), Config{URL: srv.URL, Key: testKey, Duration: time.Second,
			Concurrency: 4, Warmup: -1, Rate: rate}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	open := run(200)
	closed := run(0)
	t.Logf("open loop: p95 %.1f ms, max %.1f ms; closed loop: p95 %.1f ms, max %.1f ms", open.P95Ms, open.MaxMs, closed.P95Ms, closed.MaxMs)
	if open.Rate != 200 || open.Requests < 150 || open.Requests > 250 {
		t.Errorf("open loop: %d requests at rate %v, want about 200 in 1 s", open.Requests, open.Rate)
	}
	if open.P95Ms < 4*closed.P95Ms || open.P95Ms < 50 {
		t.Errorf("open-loop p95 %.1f ms, closed-loop p95 %.1f ms: the open loop should see the stall in its tail", open.P95Ms, closed.P95Ms)
	}
	if open.MaxMs < 250 || open.P999Ms < open.P99Ms {
		t.Errorf("open-loop max %.1f ms, p99.9 %.1f, p99 %.1f: want the stall's 300 ms in the max", open.MaxMs, open.P999Ms, open.P99Ms)
	}
	var text bytes.Buffer
	if err := open.WriteText(&text); err != nil || !strings.Contains(text.String(), "open loop: 200 req/s") || !strings.Contains(text.String(), "p99.9 ms") {
		t.Errorf("report text:\n%s", text.String())
	}
}
