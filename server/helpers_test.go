package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/feedbacktest"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/jobs"
)

// engines lists the databases a store-backed test runs against.
func engines(t *testing.T) []string {
	t.Helper()
	return storetest.Engines
}

func openStore(t testing.TB, engine string) *store.Store {
	t.Helper()
	ctx := context.Background()
	store, err := store.Open(ctx, storetest.DSN(t, engine), store.Options{Logger: quietLog()})
	if err != nil {
		t.Fatalf("open %s: %v", engine, err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", engine, err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeClock is the shared settable test clock.
type fakeClock = feedbacktest.Clock

// harness is a server on a real store with an all-scopes key.
type harness struct {
	t     testing.TB
	store *store.Store
	srv   *Server
	key   string
	clock *fakeClock
}

func newHarness(t *testing.T, engine string, cfg Config) *harness {
	t.Helper()
	return newHarnessOn(t, openStore(t, engine), cfg)
}

// newHarnessOn is newHarness on a store the test opened itself.
func newHarnessOn(t testing.TB, store *store.Store, cfg Config) *harness {
	t.Helper()
	clock := feedbacktest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.Live == nil {
		m := NewMetrics()
		cfg.Metrics, cfg.Live = m, feedback.NewLive(store, m.LiveOptions(quietLog()))
	}
	if cfg.Tuning == nil {
		cfg.Tuning = &jobs.Tuner{Store: store, Live: cfg.Live, Log: quietLog()}
	}
	srv := New(cfg, store, quietLog())
	_, key, err := store.CreateAPIKey(context.Background(), "test", []string{"score", "feedback", "admin"})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return &harness{t: t, store: store, srv: srv, key: key, clock: clock}
}

// do sends one request and decodes a JSON answer into out when out is not
// nil.
func (h *harness) do(method, path, contentType, body, key string, out any) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			h.t.Fatalf("%s %s: decode %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec
}

func (h *harness) publish(policy string) {
	h.t.Helper()
	rec := h.do(http.MethodPut, "/v1/rules", "application/yaml", policy, h.key, nil)
	if rec.Code != http.StatusCreated {
		h.t.Fatalf("publish: status %d: %s", rec.Code, rec.Body.String())
	}
}

func (h *harness) score(body string) (scoreResponse, *httptest.ResponseRecorder) {
	h.t.Helper()
	var out scoreResponse
	rec := h.do(http.MethodPost, "/v1/score", "application/json", body, h.key, nil)
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			h.t.Fatalf("decode score: %v", err)
		}
	}
	return out, rec
}

type errorBody struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		Field    string `json:"field"`
		Problems []struct {
			Field   string `json:"field"`
			Rule    string `json:"rule"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Message string `json:"message"`
		} `json:"problems"`
	} `json:"error"`
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error body %q lacks code or message", rec.Body.String())
	}
	return e
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

const testPolicy = `
base: -3
rules:
  - {name: big-deal, expression: "deal_size >= 10000", points: 2.5, tier_floor: high}
  - {name: angry-whatsapp, expression: 'message matches "(?i)cancel|refund"', points: 2, channels: [whatsapp]}
  - {name: pricing, expression: "pricing_page_views >= 3", points: 1.5}
thresholds:
  default:  {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.65, medium: 0.35}
routes:
  - {rule: angry-whatsapp, team: retention}
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, team: sales}
`
