package server

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// A signal sent with the wrong type is not a silent mistake: the answer
// and the stored decision say which rule and which model signal could not
// use it and why, and a lead sees it on the rules page and the
// conversation's page.
func TestScoreWarnsAboutSignalsOfTheWrongType(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWebHarness(t, engine)
			h := w.harness
			m := `{"intercept": -1, "rule_weights": {"big-deal": 1.0},
				"encoder": {"version": 1, "features": [
					{"name": "wait_seconds", "signal": "wait_seconds", "kind": "number", "center": 60, "scale": 60, "min": 0, "max": 600}
				]},
				"beta": [0.25]}`
			var created modelJSON
			if rec := h.do(http.MethodPost, "/v1/models", "application/json", m, h.key, &created); rec.Code != http.StatusCreated {
				t.Fatalf("create model: %d %s", rec.Code, rec.Body.String())
			}
			if rec := h.do(http.MethodPost, fmt.Sprintf("/v1/models/%d/activate", created.Version), "", "", h.key, nil); rec.Code != http.StatusOK {
				t.Fatalf("activate: %d %s", rec.Code, rec.Body.String())
			}

			// All well: no warnings key in the answer, an empty list stored.
			good, rec := h.score(`{"conversation_id":"ok-1","channel":"web","signals":{"deal_size":25000,"wait_seconds":30}}`)
			if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "warnings") {
				t.Fatalf("good decision = %d %s, want 200 without warnings", rec.Code, rec.Body.String())
			}
			var dec decisionJSON
			h.do(http.MethodGet, "/v1/decisions/"+good.DecisionID, "", "", h.key, &dec)
			if string(dec.Warnings) != "[]" {
				t.Errorf("stored warnings of a good decision = %s, want []", dec.Warnings)
			}

			// Both signals as strings: big-deal cannot be evaluated, the model
			// cannot read wait_seconds.
			bad, rec := h.score(`{"conversation_id":"bad-1","channel":"web","signals":{"deal_size":"25000","wait_seconds":"3 min"}}`)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			want := []model.Warning{
				{Rule: "big-deal", Message: `not evaluated (counts as not fired): string >= int; deal_size is the string "25000"`},
				{Signal: "wait_seconds", Message: `the model reads wait_seconds as a number but got the string "3 min", so it counted as the signal's typical value`},
			}
			if fmt.Sprint(bad.Warnings) != fmt.Sprint(want) {
				t.Errorf("answer's warnings = %+v, want %+v", bad.Warnings, want)
			}
			if bad.Tier == "high" {
				t.Errorf("big-deal fired on a string")
			}
			h.do(http.MethodGet, "/v1/decisions/"+bad.DecisionID, "", "", h.key, &dec)
			if got := fmt.Sprint(feedback.DecodeWarnings(dec.Warnings)); got != fmt.Sprint(want) {
				t.Errorf("stored warnings = %s, want %+v", dec.Warnings, want)
			}
			h.score(`{"conversation_id":"bad-2","channel":"web","signals":{"deal_size":"40000"}}`)

			lead := w.cookies[feedback.RoleLead]
			body := html.UnescapeString(w.page(http.MethodGet, "/rules", nil, lead, nil).Body.String())
			for _, s := range []string{
				"2 rules or signals could not be used in some decisions of the last 7 days",
				`rule <code>big-deal</code></th><td class="num">2</td>`,
				`signal <code>wait_seconds</code></th><td class="num">1</td>`,
				`deal_size is the string "40000"`, // the newest example
				`href="/conversations/bad-2"`,
			} {
				if !strings.Contains(body, s) {
					t.Errorf("rules page lacks %q", s)
				}
			}
			body = html.UnescapeString(w.page(http.MethodGet, "/conversations/bad-1", nil, w.cookies[feedback.RoleAgent], nil).Body.String())
			for _, s := range []string{"The latest decision could not use all it was sent", `Rule big-deal: not evaluated (counts as not fired): string >= int; deal_size is the string "25000"`, "2 warnings"} {
				if !strings.Contains(body, s) {
					t.Errorf("conversation page lacks %q", s)
				}
			}
			body = w.page(http.MethodGet, "/conversations/ok-1", nil, w.cookies[feedback.RoleAgent], nil).Body.String()
			if strings.Contains(body, "could not use") || strings.Contains(body, "warning") {
				t.Errorf("a conversation without warnings shows some")
			}
		})
	}
}
