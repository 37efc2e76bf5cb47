package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
)

func TestScoreBadInput(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)

	manySignals := map[string]any{}
	for i := range 101 {
		manySignals[fmt.Sprintf("s%d", i)] = i
	}
	tooMany := mustJSON(t, map[string]any{"conversation_id": "c1", "channel": "web", "signals": manySignals})
	longKey := strings.Repeat("k", 65)
	huge := `{"conversation_id":"c1","channel":"web","signals":{"a":"` + strings.Repeat("x", 70<<10) + `"}}`

	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
		field       string
	}{
		{"invalid JSON", "application/json", `{"conversation_id": "c1",`, 400, "invalid_json", ""},
		{"not an object", "application/json", `[1,2]`, 400, "invalid_field", ""},
		{"empty body", "application/json", ``, 400, "invalid_json", ""},
		{"trailing data", "application/json", `{"conversation_id":"c1","channel":"web"} {}`, 400, "invalid_json", ""},
		{"invalid UTF-8", "application/json", "{\"conversation_id\":\"c\xff\",\"channel\":\"web\"}", 400, "invalid_json", ""},
		{"unknown field", "application/json", `{"conversation_id":"c1","channel":"web","signal":{}}`, 400, "invalid_field", "signal"},
		{"conversation_id wrong type", "application/json", `{"conversation_id":7,"channel":"web"}`, 400, "invalid_field", "conversation_id"},
		{"conversation_id missing", "application/json", `{"channel":"web"}`, 400, "invalid_field", "conversation_id"},
		{"conversation_id empty", "application/json", `{"conversation_id":"","channel":"web"}`, 400, "invalid_field", "conversation_id"},
		{"conversation_id too long", "application/json", `{"conversation_id":"` + strings.Repeat("c", 129) + `","channel":"web"}`, 400, "invalid_field", "conversation_id"},
		{"conversation_id control char", "application/json", `{"conversation_id":"c\n1","channel":"web"}`, 400, "invalid_field", "conversation_id"},
		{"channel missing", "application/json", `{"conversation_id":"c1"}`, 400, "invalid_field", "channel"},
		{"channel bad token", "application/json", `{"conversation_id":"c1","channel":"Web Chat"}`, 400, "invalid_field", "channel"},
		{"channel wrong type", "application/json", `{"conversation_id":"c1","channel":true}`, 400, "invalid_field", "channel"},
		{"signals not an object", "application/json", `{"conversation_id":"c1","channel":"web","signals":[1]}`, 400, "invalid_field", "signals"},
		{"nested object signal", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"a":{"b":1}}}`, 400, "invalid_field", "signals.a"},
		{"array signal", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"a":[1]}}`, 400, "invalid_field", "signals.a"},
		{"number out of range", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"a":1e400}}`, 400, "invalid_field", "signals.a"},
		{"too many signals", "application/json", tooMany, 400, "invalid_field", "signals"},
		{"signal key too long", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"` + longKey + `":1}}`, 400, "invalid_field", "signals"},
		{"signal key not an identifier", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"deal size":1}}`, 400, "invalid_field", "signals.deal size"},
		{"reserved signal key", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"channel":"web"}}`, 400, "invalid_field", "signals.channel"},
		{"signal string too long", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"a":"` + strings.Repeat("x", 1025) + `"}}`, 400, "invalid_field", "signals.a"},
		{"signal string with NUL", "application/json", `{"conversation_id":"c1","channel":"web","signals":{"a":"x\u0000y"}}`, 400, "invalid_field", "signals.a"},
		{"message wrong type", "application/json", `{"conversation_id":"c1","channel":"web","message":5}`, 400, "invalid_field", "message"},
		{"message too long", "application/json", `{"conversation_id":"c1","channel":"web","message":"` + strings.Repeat("m", 4097) + `"}`, 400, "invalid_field", "message"},
		{"bad timestamp", "application/json", `{"conversation_id":"c1","channel":"web","occurred_at":"yesterday"}`, 400, "invalid_field", "occurred_at"},
		{"body over 64 KiB", "application/json", huge, 413, "body_too_large", ""},
		{"wrong content type", "text/plain", `{"conversation_id":"c1","channel":"web"}`, 415, "unsupported_media_type", ""},
		{"missing content type", "", `{"conversation_id":"c1","channel":"web"}`, 415, "unsupported_media_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := h.do(http.MethodPost, "/v1/score", tt.contentType, tt.body, h.key, nil)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body.String())
			}
			e := decodeError(t, rec)
			if e.Error.Code != tt.code {
				t.Errorf("code = %q, want %q (%s)", e.Error.Code, tt.code, e.Error.Message)
			}
			if tt.field != "" && e.Error.Field != tt.field {
				t.Errorf("field = %q, want %q", e.Error.Field, tt.field)
			}
		})
	}
}

func TestScoreRulesOnly(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)

			// Nothing fires: sigmoid(-3) = 0.0474, low; missing signals are not errors.
			got, rec := h.score(`{"conversation_id":"c1","channel":"web","signals":{"plan":"free","deal_size":null}}`)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			if got.Tier != "low" || got.PreviousTier != nil || got.RulesetVersion != 1 || got.ModelVersion != nil {
				t.Errorf("first decision = %+v, want tier low, no previous tier, ruleset 1, no model", got)
			}
			if want := 1 / (1 + math.Exp(3)); math.Abs(got.Score-want) > 1e-12 {
				t.Errorf("score = %v, want %v", got.Score, want)
			}
			if got.Alert != nil {
				t.Errorf("alert = %+v, want null", got.Alert)
			}

			// big-deal fires: logit -0.5 -> 0.378 (below medium) but its floor makes it high.
			got, _ = h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":25000}}`)
			if got.Tier != "high" {
				t.Errorf("tier = %q, want high from the tier floor", got.Tier)
			}
			if got.PreviousTier == nil || *got.PreviousTier != "low" {
				t.Errorf("previous_tier = %v, want low", got.PreviousTier)
			}
			if len(got.Reasons) != 1 || got.Reasons[0].Name != "big-deal" || got.Reasons[0].Contribution != 2.5 {
				t.Errorf("reasons = %+v, want big-deal +2.5", got.Reasons)
			}
			if got.Route.Team != "sales" || got.Route.Via != "route" {
				t.Errorf("route = %+v, want sales via route", got.Route)
			}

			// Channel-scoped rule on WhatsApp with its own thresholds: logit -3+2+2.5+1.5 = 3 -> 0.953 urgent.
			got, _ = h.score(`{"conversation_id":"c2","channel":"whatsapp","message":"I want a refund","signals":{"deal_size":20000,"pricing_page_views":4,"owner":"ana@example.com"}}`)
			if got.Tier != "urgent" {
				t.Errorf("tier = %q, want urgent (score %v)", got.Tier, got.Score)
			}
			if got.Route.Owner != "ana@example.com" || got.Route.Via != "owner" || got.Route.Team != "retention" {
				t.Errorf("route = %+v, want owner ana@example.com via owner, team retention", got.Route)
			}
			// The same message on the web does not fire the WhatsApp rule.
			got, _ = h.score(`{"conversation_id":"c3","channel":"web","message":"I want a refund","signals":{}}`)
			if len(got.Reasons) != 0 || got.Tier != "low" {
				t.Errorf("web decision = %+v, want no reasons and low", got)
			}

			// The decision and the conversation are committed before the answer.
			var dec decisionJSON
			rec = h.do(http.MethodGet, "/v1/decisions/"+got.DecisionID, "", "", h.key, &dec)
			if rec.Code != http.StatusOK || dec.ConversationID != "c3" || dec.Tier != "low" || dec.RulesetVersion != 1 {
				t.Fatalf("stored decision = %d %+v", rec.Code, dec)
			}
			if dec.Message != nil {
				t.Errorf("message stored without --store-messages: %q", *dec.Message)
			}
			var conv map[string]any
			h.do(http.MethodGet, "/v1/conversations/c1", "", "", h.key, &conv)
			if conv["tier"] != "high" || conv["decisions"] != float64(2) {
				t.Errorf("conversation c1 = %v, want tier high after 2 decisions", conv)
			}
		})
	}
}

func TestScoreStoresMessageOnlyWhenConfigured(t *testing.T) {
	h := newHarness(t, "sqlite", Config{StoreMessages: true})
	h.publish(testPolicy)
	got, rec := h.score(`{"conversation_id":"c1","channel":"web","message":"hello there","signals":{}}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	var dec decisionJSON
	h.do(http.MethodGet, "/v1/decisions/"+got.DecisionID, "", "", h.key, &dec)
	if dec.Message == nil || *dec.Message != "hello there" {
		t.Errorf("message = %v, want stored", dec.Message)
	}
}

func TestScoreWithoutRuleset(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	_, rec := h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`)
	if rec.Code != http.StatusConflict {
		t.Fatalf("status = %d, want 409", rec.Code)
	}
	if e := decodeError(t, rec); e.Error.Code != "no_ruleset" {
		t.Errorf("code = %q, want no_ruleset", e.Error.Code)
	}
}

func TestScoreDeadDatabase(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)
	if err := h.srv.Live().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Warm the key cache, then kill the database under the server.
	if _, rec := h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, rec := h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("score on a dead database: status = %d, want 503; %s", rec.Code, rec.Body.String())
	}
	if e := decodeError(t, rec); e.Error.Code != "unavailable" {
		t.Errorf("code = %q, want unavailable", e.Error.Code)
	}
	rec = h.do(http.MethodGet, "/readyz", "", "", "", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz on a dead database = %d, want 503", rec.Code)
	}
}

func TestScoreWithHandBuiltModel(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)
			model := `{"intercept": -1, "rule_weights": {"big-deal": 1.0},
				"encoder": {"version": 1, "features": [
					{"name": "returning", "signal": "returning", "kind": "bool"},
					{"name": "wait_seconds", "signal": "wait_seconds", "kind": "number", "center": 60, "scale": 60, "min": 0, "max": 600}
				]},
				"beta": [0.5, 0.25]}`
			var created modelJSON
			rec := h.do(http.MethodPost, "/v1/models", "application/json", model, h.key, &created)
			if rec.Code != http.StatusCreated || created.Status != "candidate" {
				t.Fatalf("create model: %d %s", rec.Code, rec.Body.String())
			}
			// A candidate does not score.
			got, _ := h.score(`{"conversation_id":"c1","channel":"web","signals":{}}`)
			if got.ModelVersion != nil {
				t.Fatalf("model_version = %v before activation", *got.ModelVersion)
			}
			rec = h.do(http.MethodPost, fmt.Sprintf("/v1/models/%d/activate", created.Version), "", "", h.key, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("activate: %d %s", rec.Code, rec.Body.String())
			}
			// logit = -1 + 1.0 (big-deal, tuned) + 1.5 (pricing, hand-set: absent from the model)
			//       + 0.5*1 (returning) + 0.25*(180-60)/60 = 2.5
			got, rec = h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":20000,"pricing_page_views":5,"returning":true,"wait_seconds":180}}`)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			if got.ModelVersion == nil || *got.ModelVersion != created.Version {
				t.Fatalf("model_version = %v, want %d", got.ModelVersion, created.Version)
			}
			if want := 1 / (1 + math.Exp(-2.5)); math.Abs(got.Score-want) > 1e-9 {
				t.Errorf("score = %v, want %v", got.Score, want)
			}
			names := map[string]float64{}
			for _, r := range got.Reasons {
				names[r.Kind+":"+r.Name] = r.Contribution
			}
			want := map[string]float64{"rule:big-deal": 1, "rule:pricing": 1.5, "feature:returning": 0.5, "feature:wait_seconds": 0.5}
			for k, v := range want {
				if math.Abs(names[k]-v) > 1e-9 {
					t.Errorf("reason %s = %v, want %v (all: %+v)", k, names[k], v, got.Reasons)
				}
			}
		})
	}
}

func TestScoreRejectsMalformedModel(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	rec := h.do(http.MethodPost, "/v1/models", "application/json", `{"intercept":0,"encoder":{"features":[{"name":"a","signal":"a","kind":"bool"}]},"beta":[]}`, h.key, nil)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422; %s", rec.Code, rec.Body.String())
	}
}

func TestScoreConcurrentConversationCounts(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)
			const workers, each = 16, 10
			errs := make(chan error, workers*each)
			done := make(chan struct{})
			for w := range workers {
				go func() {
					defer func() { done <- struct{}{} }()
					for i := range each {
						body := fmt.Sprintf(`{"conversation_id":"conv-%d","channel":"web","signals":{"deal_size":%d}}`, w%4, i*5000)
						_, rec := h.score(body)
						if rec.Code != http.StatusOK {
							errs <- fmt.Errorf("status %d: %s", rec.Code, rec.Body.String())
						}
					}
				}()
			}
			for range workers {
				<-done
			}
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			total := 0
			for c := range 4 {
				var conv struct {
					Decisions int `json:"decisions"`
				}
				h.do(http.MethodGet, fmt.Sprintf("/v1/conversations/conv-%d", c), "", "", h.key, &conv)
				total += conv.Decisions
			}
			if total != workers*each {
				t.Errorf("decisions over conversations = %d, want %d", total, workers*each)
			}
		})
	}
}

func TestScoreOccurredAtIsKept(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)
	got, _ := h.score(`{"conversation_id":"c1","channel":"web","occurred_at":"2026-11-20T08:30:00+01:00"}`)
	var dec decisionJSON
	h.do(http.MethodGet, "/v1/decisions/"+got.DecisionID, "", "", h.key, &dec)
	want := time.Date(2026, 11, 20, 7, 30, 0, 0, time.UTC)
	if !dec.OccurredAt.Equal(want) {
		t.Errorf("occurred_at = %v, want %v", dec.OccurredAt, want)
	}
	var raw map[string]json.RawMessage
	h.do(http.MethodGet, "/v1/decisions/"+got.DecisionID, "", "", h.key, &raw)
	if string(raw["signals"]) != "{}" {
		t.Errorf("signals = %s, want {}", raw["signals"])
	}
}

func TestScoreRefusesWhatADatabaseCannotStore(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"lone high surrogate", `{"conversation_id":"c1","channel":"web","signals":{"a":"x\ud800y"}}`, 400, "signals.a"},
		{"lone low surrogate", `{"conversation_id":"c1","channel":"web","signals":{"a":"\udc00"}}`, 400, "signals.a"},
		{"occurred_at in year 10000 once in UTC", `{"conversation_id":"c1","channel":"web","occurred_at":"9999-12-31T23:59:59-10:00"}`, 422, "occurred_at"},
		{"occurred_at in year 0", `{"conversation_id":"c1","channel":"web","occurred_at":"0000-01-01T00:00:00+01:00"}`, 422, "occurred_at"},
		{"occurred_at two days ahead", `{"conversation_id":"c1","channel":"web","occurred_at":"2026-11-27T10:00:01Z"}`, 422, "occurred_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := h.do(http.MethodPost, "/v1/score", "application/json", tt.body, h.key, nil)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body.String())
			}
			if e := decodeError(t, rec); e.Error.Field != tt.field {
				t.Errorf("field = %q, want %q", e.Error.Field, tt.field)
			}
		})
	}
	// A correctly paired escape is fine and kept as sent.
	got, rec := h.score(`{"conversation_id":"c1","channel":"web","signals":{"a":"\ud83d\ude00"}}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("paired surrogates: status %d: %s", rec.Code, rec.Body.String())
	}
	var raw map[string]json.RawMessage
	h.do(http.MethodGet, "/v1/decisions/"+got.DecisionID, "", "", h.key, &raw)
	var sig map[string]string
	if err := json.Unmarshal(raw["signals"], &sig); err != nil || sig["a"] != "\U0001F600" {
		t.Errorf("signals = %s, want the emoji", raw["signals"])
	}
}

func TestParamsMustBeCleanText(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	for _, path := range []string{"/v1/decisions/%ff", "/v1/conversations/a%00b", "/v1/alerts?team=%00", "/v1/alerts?team=%ff"} {
		rec := h.do(http.MethodGet, path, "", "", h.key, nil)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400: %s", path, rec.Code, rec.Body.String())
			continue
		}
		decodeError(t, rec)
	}
}

// capturingStore records every decision the server hands to the store.
type capturingStore struct {
	*store.Store
	mu   sync.Mutex
	seen []feedback.Decision
}

func (c *capturingStore) Record(ctx context.Context, d feedback.Decision) (feedback.Recorded, error) {
	c.mu.Lock()
	c.seen = append(c.seen, d)
	c.mu.Unlock()
	return c.Store.Record(ctx, d)
}

// The score path validates the signals once, in the request scanner, and
// tells the store so; what it hands over must then really be valid JSON.
func TestScoreHandsCheckedJSONToStore(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			st := &capturingStore{Store: openStore(t, engine)}
			h := newHarnessOn(t, st.Store, Config{})
			h.srv = New(h.srv.cfg, st, quietLog())
			h.publish(testPolicy)
			for _, body := range []string{
				`{"conversation_id":"c1","channel":"web","signals":{"deal_size":25000,"page":"pricing","vip":true,"x":null}}`,
				`{"conversation_id":"c2","channel":"web"}`,
				`{"conversation_id":"c3","channel":"web","signals":{"note":"quote \" and \\u00e9 and \u00e9"}}`,
			} {
				if _, rec := h.score(body); rec.Code != http.StatusOK {
					t.Fatalf("score %s: %d %s", body, rec.Code, rec.Body.String())
				}
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.seen) != 3 {
				t.Fatalf("store saw %d decisions, want 3", len(st.seen))
			}
			for _, d := range st.seen {
				if !d.Checked {
					t.Errorf("%s: Checked = false: the store would parse the signals again", d.ConversationID)
				}
				for name, b := range map[string][]byte{"signals": d.Signals, "reasons": d.Reasons, "route": d.Route} {
					if !json.Valid(b) {
						t.Errorf("%s: %s %q is not valid JSON", d.ConversationID, name, b)
					}
				}
			}
			if got := string(st.seen[1].Signals); got != "{}" {
				t.Errorf("signals of a request without them = %q, want {}", got)
			}
		})
	}
}
