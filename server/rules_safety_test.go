package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/model"
)

// An admin's rule that would allocate without bound is refused by validate
// and by publish, with its position, and nothing is stored.
func TestRuleUnboundedAllocationRefusedByAPI(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)
	bad := strings.Replace(testPolicy, `"pricing_page_views >= 3"`, `'len(repeat(repeat("a", 1000000), 1000000)) > 0'`, 1)
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		path := "/v1/rules/validate"
		if method == http.MethodPut {
			path = "/v1/rules"
		}
		var e errorBody
		rec := h.do(method, path, "application/yaml", bad, h.key, &e)
		if rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("%s %s = %d, want 422: %s", method, path, rec.Code, rec.Body.String())
		}
		if len(e.Error.Problems) != 1 || e.Error.Problems[0].Rule != "pricing" || e.Error.Problems[0].Line != 1 ||
			!strings.Contains(e.Error.Problems[0].Message, "function repeat is not allowed") {
			t.Errorf("%s %s problems = %+v", method, path, e.Error.Problems)
		}
	}
	var list struct {
		Rulesets []rulesetJSON `json:"rulesets"`
	}
	h.do(http.MethodGet, "/v1/rulesets", "", "", h.key, &list)
	if len(list.Rulesets) != 1 {
		t.Errorf("rulesets = %d, want 1", len(list.Rulesets))
	}
}

// A rule that fails on every score counts as not fired, is counted in a
// metric, is logged once at warn, and /readyz names it until it passes.
func TestRuleFailingReportedOnReadyz(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	var logs bytes.Buffer
	h.srv.log = slog.New(slog.NewJSONHandler(&logs, nil))
	h.publish(strings.Replace(testPolicy, `"pricing_page_views >= 3"`, `"plan > 3"`, 1))

	readyz := func() (status, rules string) {
		var body struct {
			Status string         `json:"status"`
			Checks map[string]any `json:"checks"`
		}
		rec := h.do(http.MethodGet, "/readyz", "", "", "", &body)
		if rec.Code != http.StatusOK {
			t.Fatalf("readyz = %d, want 200 (a failing rule does not take the process out of service): %s", rec.Code, rec.Body.String())
		}
		r, _ := body.Checks["rules"].(string)
		return body.Status, r
	}
	if status, rules := readyz(); status != "ready" || rules != "ok" {
		t.Fatalf("before any score: status %q, rules %q", status, rules)
	}
	for i := range model.FailingStreak {
		d, rec := h.score(fmt.Sprintf(`{"conversation_id":"c%d","channel":"web","signals":{"plan":"pro","deal_size":20000}}`, i))
		if rec.Code != http.StatusOK {
			t.Fatalf("score %d = %d: %s", i, rec.Code, rec.Body.String())
		}
		if d.Tier != "high" {
			t.Fatalf("score %d tier %q: the failing rule must not change the other rules' result", i, d.Tier)
		}
		if i == model.FailingStreak-2 {
			if status, _ := readyz(); status != "ready" {
				t.Fatalf("after %d failures status = %q, want ready", i+1, status)
			}
		}
	}
	status, rules := readyz()
	if status != "degraded" || !strings.Contains(rules, "failing: pricing") {
		t.Errorf("after %d failures: status %q, rules %q; want degraded naming pricing", model.FailingStreak, status, rules)
	}
	metrics := h.do(http.MethodGet, "/metrics", "", "", "", nil).Body.String()
	if want := fmt.Sprintf(`hotlane_rule_errors_total{rule="pricing"} %d`, model.FailingStreak); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s", want)
	}
	var warns int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Level string   `json:"level"`
			Rules []string `json:"rules"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && len(rec.Rules) == 1 && rec.Rules[0] == "pricing" {
			warns++
		}
	}
	if warns != 1 {
		t.Errorf("warn lines naming the rule = %d, want 1:\n%s", warns, logs.String())
	}

	// One evaluation that passes clears it.
	if _, rec := h.score(`{"conversation_id":"ok","channel":"web","signals":{"plan":5}}`); rec.Code != http.StatusOK {
		t.Fatalf("score = %d", rec.Code)
	}
	if status, rules := readyz(); status != "ready" || rules != "ok" {
		t.Errorf("after a passing evaluation: status %q, rules %q", status, rules)
	}
}
