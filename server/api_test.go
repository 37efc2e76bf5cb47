package server

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

func TestAuth(t *testing.T) {
	h := newHarness(t, "sqlite", Config{KeyCacheTTL: 10 * time.Second})
	h.publish(testPolicy)
	ctx := context.Background()
	scoreOnly, scoreSecret, err := h.store.CreateAPIKey(ctx, "platform", []string{"score"})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"conversation_id":"c1","channel":"web"}`
	tests := []struct {
		name   string
		method string
		path   string
		key    string
		status int
		code   string
	}{
		{"no key", http.MethodPost, "/v1/score", "", 401, "unauthorized"},
		{"unknown key", http.MethodPost, "/v1/score", "hl_not_a_key", 401, "unauthorized"},
		{"score key scores", http.MethodPost, "/v1/score", scoreSecret, 200, ""},
		{"score key cannot publish", http.MethodPut, "/v1/rules", scoreSecret, 403, "forbidden"},
		{"score key cannot read rules", http.MethodGet, "/v1/rules", scoreSecret, 403, "forbidden"},
		{"admin key reads rules", http.MethodGet, "/v1/rules", h.key, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := "application/json"
			if tt.method == http.MethodGet {
				ct = ""
			}
			rec := h.do(tt.method, tt.path, ct, body, tt.key, nil)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body.String())
			}
			if tt.code != "" {
				if e := decodeError(t, rec); e.Error.Code != tt.code {
					t.Errorf("code = %q, want %q", e.Error.Code, tt.code)
				}
			}
		})
	}

	// A revoked key keeps working from the cache until its TTL passes, then
	// is refused.
	if err := h.store.RevokeAPIKey(ctx, scoreOnly.ID); err != nil {
		t.Fatal(err)
	}
	if rec := h.do(http.MethodPost, "/v1/score", "application/json", body, scoreSecret, nil); rec.Code != http.StatusOK {
		t.Fatalf("within TTL: status %d, want 200 from the cache", rec.Code)
	}
	h.clock.Add(11 * time.Second)
	if rec := h.do(http.MethodPost, "/v1/score", "application/json", body, scoreSecret, nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after TTL: status %d, want 401 for a revoked key", rec.Code)
	}
}

func TestRulesPublishRefusesBadDocument(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)
			bad := `
base: -3
rules:
  - {name: ok-rule, expression: "deal_size >= 10000", points: 1}
  - {name: broken, expression: "deal_size >= ", points: 1}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`
			rec := h.do(http.MethodPut, "/v1/rules", "application/yaml", bad, h.key, nil)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422: %s", rec.Code, rec.Body.String())
			}
			e := decodeError(t, rec)
			if e.Error.Code != "invalid_policy" || len(e.Error.Problems) == 0 {
				t.Fatalf("error = %+v, want invalid_policy with problems", e.Error)
			}
			p := e.Error.Problems[0]
			if p.Rule != "broken" || p.Line != 1 || p.Column < 1 {
				t.Errorf("problem = %+v, want rule broken at line 1 with a column", p)
			}
			if !strings.Contains(e.Error.Message, "broken") {
				t.Errorf("message %q does not name the rule", e.Error.Message)
			}
			// Nothing of that document was published.
			var list struct {
				Rulesets []rulesetJSON `json:"rulesets"`
			}
			h.do(http.MethodGet, "/v1/rulesets", "", "", h.key, &list)
			if len(list.Rulesets) != 1 {
				t.Errorf("rulesets = %d, want 1 (the refused document must not be stored)", len(list.Rulesets))
			}
			// Validate answers the same without publishing.
			rec = h.do(http.MethodPost, "/v1/rules/validate", "application/yaml", bad, h.key, nil)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("validate status = %d, want 422", rec.Code)
			}
			rec = h.do(http.MethodPost, "/v1/rules/validate", "application/yaml", testPolicy, h.key, nil)
			if rec.Code != http.StatusOK {
				t.Errorf("validate of a good policy = %d, want 200: %s", rec.Code, rec.Body.String())
			}
			rec = h.do(http.MethodPut, "/v1/rules", "text/plain", testPolicy, h.key, nil)
			if rec.Code != http.StatusUnsupportedMediaType {
				t.Errorf("publish as text/plain = %d, want 415", rec.Code)
			}
		})
	}
}

func TestRulesetRollback(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)
			// Version 2 makes every conversation urgent.
			h.publish(`
base: 5
rules: []
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`)
			got, _ := h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`)
			if got.RulesetVersion != 2 || got.Tier != "urgent" {
				t.Fatalf("after v2: %+v", got)
			}
			rec := h.do(http.MethodPost, "/v1/rulesets/1/activate", "", "", h.key, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("rollback: %d %s", rec.Code, rec.Body.String())
			}
			got, _ = h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`)
			if got.RulesetVersion != 1 || got.Tier != "low" {
				t.Errorf("after rollback: version %d tier %s, want 1 low", got.RulesetVersion, got.Tier)
			}
			var live rulesetJSON
			h.do(http.MethodGet, "/v1/rules", "", "", h.key, &live)
			if live.Version != 1 || !live.Live || live.Rules != 3 {
				t.Errorf("GET /v1/rules = %+v, want live version 1 with 3 rules", live)
			}
			rec = h.do(http.MethodPost, "/v1/rulesets/9/activate", "", "", h.key, nil)
			if rec.Code != http.StatusNotFound {
				t.Errorf("activate unknown version = %d, want 404", rec.Code)
			}
			rec = h.do(http.MethodPost, "/v1/rulesets/x/activate", "", "", h.key, nil)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("activate version x = %d, want 400", rec.Code)
			}
		})
	}
}

// A change published by another process reaches this one on refresh.
func TestLiveRefreshSeesOtherWriters(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)
	other := New(Config{}, h.store, quietLog())
	if err := other.Live().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := other.Live().Current().PolicyVersion; v != 1 {
		t.Fatalf("other process serves version %d, want 1", v)
	}
	h.publish(strings.Replace(testPolicy, "base: -3", "base: -2", 1))
	if err := other.Live().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := other.Live().Current().PolicyVersion; v != 2 {
		t.Errorf("after refresh other process serves version %d, want 2", v)
	}
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	var spec struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPISpec(), &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", spec.OpenAPI)
	}
	h := newHarness(t, "sqlite", Config{})
	param := regexp.MustCompile(`:([a-z_]+)`)
	routes := h.srv.engine.Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, r := range routes {
		if !strings.HasPrefix(r.Path, "/v1/") && !slices.Contains([]string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"}, r.Path) {
			continue // the web UI's pages, covered by TestPageRoles
		}
		path := param.ReplaceAllString(r.Path, "{$1}")
		ops, ok := spec.Paths[path]
		if !ok {
			t.Errorf("route %s %s is missing from openapi.yaml", r.Method, path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s: method missing from openapi.yaml", r.Method, path)
		}
	}
	rec := h.do(http.MethodGet, "/openapi.yaml", "", "", "", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/v1/score") {
		t.Errorf("GET /openapi.yaml = %d", rec.Code)
	}
}

// The served document is valid OpenAPI 3 (kin-openapi's validation against
// the specification), and every API operation documents the errors every
// API route can answer: 401 and 403 (credentials), 429 (the abuse limits)
// and 503 (the database unavailable, TestOutageUnderLoad); a description
// whose comma once made a stray key fails the validation.
func TestOpenAPIValid(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	rec := h.do(http.MethodGet, "/openapi.yaml", "", "", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml = %d", rec.Code)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			for _, status := range []int{401, 403, 429, 503} {
				if path == "/v1/integrations/chatwoot" && status == 403 {
					continue // signed, not scoped: its 403 is another account's payload, documented
				}
				if op.Responses.Status(status) == nil {
					t.Errorf("%s %s does not document %d", method, path, status)
				}
			}
		}
	}
}

func TestOperationsEndpoints(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Version: "test"})
	rec := h.do(http.MethodGet, "/readyz", "", "", "", nil)
	if rec.Code != http.StatusOK {
		t.Errorf("readyz = %d: %s", rec.Code, rec.Body.String())
	}
	h.publish(testPolicy)
	h.score(`{"conversation_id":"c1","channel":"whatsapp","signals":{"deal_size":20000}}`)
	h.score(`{"conversation_id":"c1","channel":"weird-channel","signals":{}}`)
	h.srv.metrics.ObserveFlush(5, 3*time.Millisecond, nil)
	rec = h.do(http.MethodGet, "/metrics", "", "", "", nil)
	body := rec.Body.String()
	for _, want := range []string{
		`hotlane_decisions_total{channel="whatsapp",tier="high"} 1`,
		`hotlane_decisions_total{channel="other",tier="low"} 1`,
		`hotlane_rule_hits_total{rule="big-deal"} 1`,
		`hotlane_http_requests_total{method="POST",route="/v1/score",status="200"} 2`,
		`hotlane_http_request_duration_seconds_bucket{method="POST",route="/v1/score"`,
		`hotlane_decision_batch_size_sum 5`,
		`hotlane_decision_flush_seconds_count{outcome="ok"} 1`,
		`hotlane_served_version{kind="ruleset"} 1`,
		`hotlane_served_version{kind="model"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	rec = h.do(http.MethodGet, "/healthz", "", "", "", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"version":"test"`) {
		t.Errorf("healthz = %d %s", rec.Code, rec.Body.String())
	}
	rec = h.do(http.MethodGet, "/nope", "", "", "", nil)
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown path = %d, want 404", rec.Code)
	}
	decodeError(t, rec)
	if rec.Header().Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id header")
	}
}
