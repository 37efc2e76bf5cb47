package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

// everyoneUrgent makes every conversation urgent.
const everyoneUrgent = `
base: 5
rules:
  - {name: pricing, expression: "pricing_page_views >= 3", points: 1}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`

func TestDraftLifecycle(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)
			for i := range 3 {
				if _, rec := h.score(fmt.Sprintf(`{"conversation_id":"c%d","channel":"web","signals":{"pricing_page_views":%d}}`, i, i*2)); rec.Code != http.StatusOK {
					t.Fatalf("score: %d %s", rec.Code, rec.Body.String())
				}
			}

			var draft rulesetJSON
			rec := h.do(http.MethodPost, "/v1/rulesets?note=try", "application/yaml", testPolicy, h.key, &draft)
			if rec.Code != http.StatusCreated || draft.Status != feedback.PolicyDraft || draft.Live || draft.Version != 2 {
				t.Fatalf("create draft: %d %+v", rec.Code, draft)
			}
			rec = h.do(http.MethodPut, "/v1/rulesets/2", "application/yaml", everyoneUrgent, h.key, &draft)
			if rec.Code != http.StatusOK || draft.Rules != 1 || draft.Status != feedback.PolicyDraft {
				t.Fatalf("update draft: %d %+v", rec.Code, draft)
			}
			// A draft serves nothing.
			if got, _ := h.score(`{"conversation_id":"x","channel":"web","signals":{}}`); got.RulesetVersion != 1 || got.Tier != "low" {
				t.Fatalf("with a draft stored: version %d tier %s, want 1 low", got.RulesetVersion, got.Tier)
			}
			// A broken draft is refused at its rule and column and not stored.
			rec = h.do(http.MethodPut, "/v1/rulesets/2", "application/yaml", strings.Replace(everyoneUrgent, `"pricing_page_views >= 3"`, `"pricing_page_views >= "`, 1), h.key, nil)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("broken draft: %d", rec.Code)
			}
			if e := decodeError(t, rec); len(e.Error.Problems) == 0 || e.Error.Problems[0].Rule != "pricing" || e.Error.Problems[0].Column < 1 {
				t.Errorf("broken draft problems = %+v, want rule pricing with a column", e.Error.Problems)
			}
			var got rulesetJSON
			h.do(http.MethodGet, "/v1/rulesets/2", "", "", h.key, &got)
			if got.Rules != 1 {
				t.Errorf("after a refused update the draft has %d rules, want the stored 1", got.Rules)
			}
			// Activating a draft is a conflict that says what to do.
			rec = h.do(http.MethodPost, "/v1/rulesets/2/activate", "", "", h.key, nil)
			if rec.Code != http.StatusConflict || !strings.Contains(decodeError(t, rec).Error.Message, "publish") {
				t.Errorf("activate draft: %d %s, want 409 naming publish", rec.Code, rec.Body.String())
			}

			// Backtest: the draft alerts on all four conversations scored
			// (x included), the live ruleset on none.
			var rep feedback.BacktestReport
			rec = h.do(http.MethodPost, "/v1/rulesets/2/backtest?weeks=2", "", "", h.key, &rep)
			if rec.Code != http.StatusOK {
				t.Fatalf("backtest: %d %s", rec.Code, rec.Body.String())
			}
			if rep.Conversations != 4 || rep.Draft.Alerted != 4 || rep.Live.Alerted != 0 || rep.Draft.Tiers["urgent"] != 4 ||
				rep.DraftVersion != 2 || rep.LiveVersion != 1 || rep.Weeks != 2 {
				t.Errorf("backtest = %+v", rep)
			}
			for _, q := range []string{"weeks=0", "weeks=53", "weeks=x"} {
				if rec := h.do(http.MethodPost, "/v1/rulesets/2/backtest?"+q, "", "", h.key, nil); rec.Code != http.StatusBadRequest {
					t.Errorf("backtest %s = %d, want 400", q, rec.Code)
				}
			}
			if rec := h.do(http.MethodPost, "/v1/rulesets/9/backtest", "", "", h.key, nil); rec.Code != http.StatusNotFound {
				t.Errorf("backtest of an unknown version = %d, want 404", rec.Code)
			}

			rec = h.do(http.MethodPost, "/v1/rulesets/2/publish", "", "", h.key, &got)
			if rec.Code != http.StatusOK || !got.Live || got.Status != feedback.PolicyPublished {
				t.Fatalf("publish: %d %+v", rec.Code, got)
			}
			if got, _ := h.score(`{"conversation_id":"y","channel":"web","signals":{}}`); got.RulesetVersion != 2 || got.Tier != "urgent" {
				t.Errorf("after publish: version %d tier %s, want 2 urgent", got.RulesetVersion, got.Tier)
			}
			// Published versions are immutable.
			for _, r := range []struct{ method, path, body string }{
				{http.MethodPut, "/v1/rulesets/2", testPolicy},
				{http.MethodDelete, "/v1/rulesets/2", ""},
				{http.MethodPost, "/v1/rulesets/2/publish", ""},
			} {
				rec := h.do(r.method, r.path, "application/yaml", r.body, h.key, nil)
				if rec.Code != http.StatusConflict || !strings.Contains(decodeError(t, rec).Error.Message, "published") {
					t.Errorf("%s %s on a published version: %d %s, want 409", r.method, r.path, rec.Code, rec.Body.String())
				}
			}
			// Rolling back to version 1 still works.
			if rec := h.do(http.MethodPost, "/v1/rulesets/1/activate", "", "", h.key, nil); rec.Code != http.StatusOK {
				t.Errorf("rollback: %d", rec.Code)
			}

			// A draft can be deleted.
			h.do(http.MethodPost, "/v1/rulesets", "application/yaml", testPolicy, h.key, &draft)
			if rec := h.do(http.MethodDelete, fmt.Sprintf("/v1/rulesets/%d", draft.Version), "", "", h.key, nil); rec.Code != http.StatusNoContent {
				t.Errorf("delete draft: %d %s", rec.Code, rec.Body.String())
			}
			if rec := h.do(http.MethodGet, fmt.Sprintf("/v1/rulesets/%d", draft.Version), "", "", h.key, nil); rec.Code != http.StatusNotFound {
				t.Errorf("deleted draft: %d, want 404", rec.Code)
			}

			entries, err := h.store.AuditLog(context.Background(), feedback.AuditQuery{Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for i := len(entries) - 1; i >= 0; i-- {
				actions = append(actions, entries[i].Action+" "+entries[i].Subject)
			}
			want := "[ruleset.publish ruleset 1 ruleset.draft_create ruleset 2 ruleset.draft_update ruleset 2 ruleset.publish ruleset 2 ruleset.rollback ruleset 1 ruleset.draft_create ruleset 3 ruleset.draft_delete ruleset 3]"
			if fmt.Sprint(actions) != want {
				t.Errorf("audit = %v\nwant    %s", actions, want)
			}
		})
	}
}

func TestBacktestWithoutLiveRuleset(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	var draft rulesetJSON
	if rec := h.do(http.MethodPost, "/v1/rulesets", "application/yaml", testPolicy, h.key, &draft); rec.Code != http.StatusCreated {
		t.Fatalf("create draft: %d %s", rec.Code, rec.Body.String())
	}
	rec := h.do(http.MethodPost, "/v1/rulesets/1/backtest", "", "", h.key, nil)
	if rec.Code != http.StatusConflict || decodeError(t, rec).Error.Code != "no_live_ruleset" {
		t.Errorf("backtest without a live ruleset: %d %s, want 409 no_live_ruleset", rec.Code, rec.Body.String())
	}
	// The first ruleset can be published from a draft.
	if rec := h.do(http.MethodPost, "/v1/rulesets/1/publish", "", "", h.key, nil); rec.Code != http.StatusOK {
		t.Fatalf("publish first draft: %d %s", rec.Code, rec.Body.String())
	}
	if got, _ := h.score(`{"conversation_id":"x","channel":"web","signals":{}}`); got.RulesetVersion != 1 {
		t.Errorf("scored by version %d, want 1", got.RulesetVersion)
	}
}
