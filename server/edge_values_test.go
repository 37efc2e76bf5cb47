package server

import (
	"net/http"
	"testing"
)

// Edge values answer the same 4xx on both engines and store nothing: a
// version past 32 bits (500 on PostgreSQL before), a model body of null or
// {} (stored as an empty model before), null or unknown fields where an
// object is expected (accepted before), and NUL in a label note (stored by
// SQLite before, refused only by PostgreSQL).
func TestEdgeValues(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicyNoAlerts)
			var dest destinationJSON
			if rec := h.do(http.MethodPost, "/v1/destinations", "application/json",
				`{"team": "sales", "kind": "webhook", "url": "https://crm.example.com/in"}`, h.key, &dest); rec.Code != http.StatusCreated {
				t.Fatalf("create destination = %d %s", rec.Code, rec.Body.String())
			}
			d, _ := h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":20000}}`)
			h.insertAlert("a1", "c1", d.DecisionID, "web", d.Tier)

			tests := []struct {
				method, path, body string
				status             int
			}{
				{http.MethodGet, "/v1/rulesets/2147483648", "", http.StatusNotFound},
				{http.MethodGet, "/v1/rulesets/99999999999999999999", "", http.StatusNotFound},
				{http.MethodPost, "/v1/rulesets/2147483648/activate", "", http.StatusNotFound},
				{http.MethodGet, "/v1/models/2147483648", "", http.StatusNotFound},
				{http.MethodPost, "/v1/models/4294967297/activate", "", http.StatusNotFound},
				{http.MethodGet, "/v1/rulesets/2147483647", "", http.StatusNotFound},
				{http.MethodPost, "/v1/models", "null", http.StatusUnprocessableEntity},
				{http.MethodPost, "/v1/models", "{}", http.StatusUnprocessableEntity},
				{http.MethodPost, "/v1/models", "[]", http.StatusUnprocessableEntity},
				{http.MethodPost, "/v1/jobs/tune", "null", http.StatusBadRequest},
				{http.MethodPost, "/v1/jobs/tune", `{"as_off": "2026-11-20T00:00:00Z"}`, http.StatusBadRequest},
				{http.MethodPost, "/v1/destinations/" + dest.ID + "/rotate-secret", "null", http.StatusBadRequest},
				{http.MethodPost, "/v1/destinations/" + dest.ID + "/rotate-secret", `{"grce": "1h"}`, http.StatusBadRequest},
				{http.MethodPost, "/v1/destinations/" + dest.ID + "/rotate-secret", `[]`, http.StatusBadRequest},
				{http.MethodPost, "/v1/alerts/a1/label", `{"label":"useful","agent":"ana","note":"a\u0000b"}`, http.StatusUnprocessableEntity},
				{http.MethodPost, "/v1/alerts/a1/label", `null`, http.StatusBadRequest},
			}
			for _, tt := range tests {
				rec := h.do(tt.method, tt.path, "application/json", tt.body, h.key, nil)
				if rec.Code != tt.status {
					t.Errorf("%s %s %s = %d, want %d: %s", tt.method, tt.path, tt.body, rec.Code, tt.status, rec.Body.String())
				}
			}
			var models struct {
				Models []any `json:"models"`
			}
			h.do(http.MethodGet, "/v1/models", "", "", h.key, &models)
			if len(models.Models) != 0 {
				t.Errorf("models stored: %v", models.Models)
			}
			var alert struct {
				Labels []any `json:"labels"`
				Label  any   `json:"label"`
			}
			h.do(http.MethodGet, "/v1/alerts/a1", "", "", h.key, &alert)
			if len(alert.Labels) != 0 || alert.Label != nil {
				t.Errorf("a refused label was stored: %+v", alert)
			}
			// An escaped backslash before u0000 is text, not NUL.
			if rec := h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"useful","agent":"ana","note":"C:\\u0000"}`, h.key, nil); rec.Code != http.StatusOK {
				t.Errorf("note with an escaped backslash = %d %s", rec.Code, rec.Body.String())
			}
		})
	}
}
