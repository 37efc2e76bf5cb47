package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// doHeaders sends a JSON request with extra headers.
func (h *harness) doHeaders(method, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.key)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// testPolicyNoAlerts scores like testPolicy but never alerts, for tests
// that place their alerts by hand.
const testPolicyNoAlerts = testPolicy + "alerts:\n  tiers: {default: []}\n  exploration_rate: 0\n"

func (h *harness) insertAlert(id, conv, decision, channel, tier string) {
	h.t.Helper()
	err := h.store.InsertAlertRow(context.Background(), feedback.Alert{ID: id, Kind: "tier", Status: "fired",
		ConversationID: conv, DecisionID: decision, Channel: channel, Tier: feedback.ParseEventTier(tier), Team: "feedtest", CreatedAt: h.clock.Now()})
	if err != nil {
		h.t.Fatal(err)
	}
}

func TestLabelsAndFeedAPI(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			// Alerts come from insertAlert here, not from scoring.
			h.publish(testPolicyNoAlerts)
			for i := range 3 {
				d, rec := h.score(fmt.Sprintf(`{"conversation_id":"c%d","channel":"web","signals":{"deal_size":20000}}`, i))
				if rec.Code != http.StatusOK {
					t.Fatalf("score: %d %s", rec.Code, rec.Body.String())
				}
				h.insertAlert(fmt.Sprintf("a%d", i), d.ConversationID, d.DecisionID, "web", d.Tier)
				h.clock.Add(time.Second)
			}

			var l labelJSON
			if rec := h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"useful","agent":"ana","note":"buyer"}`, h.key, &l); rec.Code != http.StatusOK {
				t.Fatalf("label: %d %s", rec.Code, rec.Body.String())
			}
			if l.Label != "useful" || l.Agent != "ana" || l.ConversationID != "c1" || l.Note != "buyer" {
				t.Errorf("label = %+v", l)
			}
			h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"noise","agent":"ana"}`, h.key, &l)
			if l.Label != "noise" {
				t.Errorf("relabel = %+v, want noise", l)
			}
			h.do(http.MethodPost, "/v1/alerts/a1/label", "application/json", `{"label":"useful","agent":"bo"}`, h.key, nil)
			var a alertJSON
			h.do(http.MethodGet, "/v1/alerts/a1", "", "", h.key, &a)
			if len(a.Labels) != 2 || a.Labels[0].Agent+a.Labels[0].Label+a.Labels[1].Agent+a.Labels[1].Label != "ananoisebouseful" {
				t.Errorf("labels of a1 = %+v, want ana noise and bo useful", a.Labels)
			}

			errs := []struct {
				name, path, body string
				status           int
				field            string
			}{
				{"unknown alert", "/v1/alerts/nope/label", `{"label":"useful","agent":"ana"}`, 404, ""},
				{"bad label", "/v1/alerts/a1/label", `{"label":"meh","agent":"ana"}`, 422, "label"},
				{"no agent", "/v1/alerts/a1/label", `{"label":"useful"}`, 422, "agent"},
				{"long agent", "/v1/alerts/a1/label", `{"label":"useful","agent":"` + strings.Repeat("x", 129) + `"}`, 422, "agent"},
				{"label not a string", "/v1/alerts/a1/label", `{"label":1,"agent":"ana"}`, 422, "label"},
				{"unknown field", "/v1/alerts/a1/label", `{"label":"useful","agent":"ana","x":1}`, 400, ""},
				{"not JSON", "/v1/alerts/a1/label", `{`, 400, ""},
			}
			for _, tt := range errs {
				rec := h.do(http.MethodPost, tt.path, "application/json", tt.body, h.key, nil)
				if rec.Code != tt.status {
					t.Errorf("%s: status %d, want %d: %s", tt.name, rec.Code, tt.status, rec.Body.String())
					continue
				}
				if e := decodeError(t, rec); e.Error.Field != tt.field {
					t.Errorf("%s: field %q, want %q", tt.name, e.Error.Field, tt.field)
				}
			}

			type page struct {
				Alerts     []alertJSON `json:"alerts"`
				NextCursor *string     `json:"next_cursor"`
			}
			var ids []string
			path := "/v1/alerts?team=feedtest&limit=2"
			for range 5 {
				var p page
				if rec := h.do(http.MethodGet, path, "", "", h.key, &p); rec.Code != http.StatusOK {
					t.Fatalf("feed: %d %s", rec.Code, rec.Body.String())
				}
				for _, a := range p.Alerts {
					ids = append(ids, a.ID)
				}
				if p.NextCursor == nil {
					break
				}
				path = "/v1/alerts?team=feedtest&limit=2&cursor=" + *p.NextCursor
			}
			if got := fmt.Sprint(ids); got != "[a2 a1 a0]" {
				t.Errorf("paged feed = %s, want [a2 a1 a0]", got)
			}
			var p page
			h.do(http.MethodGet, "/v1/alerts?team=feedtest&status=unlabelled", "", "", h.key, &p)
			if len(p.Alerts) != 2 || p.NextCursor != nil {
				t.Errorf("unlabelled = %d alerts, want 2 on one page", len(p.Alerts))
			}
			for _, q := range []string{"status=bogus", "limit=0", "limit=x", "since=yesterday", "cursor=%21%21"} {
				if rec := h.do(http.MethodGet, "/v1/alerts?"+q, "", "", h.key, nil); rec.Code != http.StatusUnprocessableEntity {
					t.Errorf("%s: status %d, want 422", q, rec.Code)
				}
			}

			_, scoreKey, err := h.store.CreateAPIKey(context.Background(), "platform", []string{"score"})
			if err != nil {
				t.Fatal(err)
			}
			if rec := h.do(http.MethodGet, "/v1/alerts", "", "", scoreKey, nil); rec.Code != http.StatusForbidden {
				t.Errorf("score-only key reads the feed: %d, want 403", rec.Code)
			}
		})
	}
}

func TestEventsAPI(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.publish(testPolicy)
			h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":20000}}`)
			key := map[string]string{"Idempotency-Key": "evt-1"}
			body := `{"type":"first_response","at":"2026-11-25T10:02:00Z","agent":"ana"}`
			first := h.doHeaders(http.MethodPost, "/v1/conversations/c1/events", body, key)
			if first.Code != http.StatusCreated {
				t.Fatalf("event: %d %s", first.Code, first.Body.String())
			}
			// The same body (spaced differently) answers the same response.
			retry := h.doHeaders(http.MethodPost, "/v1/conversations/c1/events", strings.ReplaceAll(body, ",", ", "), key)
			if retry.Code != http.StatusCreated || retry.Body.String() != first.Body.String() ||
				retry.Header().Get("Idempotent-Replayed") != "true" {
				t.Errorf("retry = %d %s (replayed %q), want %s", retry.Code, retry.Body.String(),
					retry.Header().Get("Idempotent-Replayed"), first.Body.String())
			}
			other := h.doHeaders(http.MethodPost, "/v1/conversations/c1/events", `{"type":"lost"}`, key)
			if other.Code != http.StatusConflict {
				t.Errorf("same key, other body = %d, want 409", other.Code)
			}
			// Without a key every call writes.
			h.doHeaders(http.MethodPost, "/v1/conversations/c1/events", `{"type":"first_response","at":"2026-11-25T10:01:00Z"}`, nil)
			var list struct {
				Events []eventJSON `json:"events"`
			}
			h.do(http.MethodGet, "/v1/conversations/c1/events", "", "", h.key, &list)
			if len(list.Events) != 2 {
				t.Errorf("events = %d, want 2", len(list.Events))
			}
			fr, err := h.store.FirstResponseAt(context.Background(), "c1")
			if want := time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC); err != nil || fr == nil || !fr.Equal(want) {
				t.Errorf("first_response_at = %v, %v; want %v", fr, err, want)
			}

			errs := []struct {
				name, path, body string
				headers          map[string]string
				status           int
				field            string
			}{
				{"unknown conversation", "/v1/conversations/nope/events", `{"type":"lost"}`, nil, 404, ""},
				{"unknown type", "/v1/conversations/c1/events", `{"type":"won"}`, nil, 422, "type"},
				{"tier_feedback without tier", "/v1/conversations/c1/events", `{"type":"tier_feedback"}`, nil, 422, "tier"},
				{"value on lost", "/v1/conversations/c1/events", `{"type":"lost","value":3}`, nil, 422, "value"},
				{"negative value", "/v1/conversations/c1/events", `{"type":"converted","value":-3}`, nil, 422, "value"},
				{"bad at", "/v1/conversations/c1/events", `{"type":"lost","at":"noon"}`, nil, 422, "at"},
				{"bad key", "/v1/conversations/c1/events", `{"type":"lost"}`, map[string]string{"Idempotency-Key": "a b"}, 400, "Idempotency-Key"},
			}
			for _, tt := range errs {
				rec := h.doHeaders(http.MethodPost, tt.path, tt.body, tt.headers)
				if rec.Code != tt.status {
					t.Errorf("%s: status %d, want %d: %s", tt.name, rec.Code, tt.status, rec.Body.String())
					continue
				}
				if e := decodeError(t, rec); e.Error.Field != tt.field {
					t.Errorf("%s: field %q, want %q", tt.name, e.Error.Field, tt.field)
				}
			}
		})
	}
}

// TestKPIsAPI scores conversations, labels alerts and reports events
// through HTTP, then checks the KPIs against values computed by hand.
func TestKPIsAPI(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{}) // clock: Wed 2026-11-25 10:00 UTC, week 2026-W48
			// Alerts come from insertAlert here, not from scoring.
			h.publish(testPolicyNoAlerts)
			post := func(path, body string) {
				t.Helper()
				rec := h.do(http.MethodPost, path, "application/json", body, h.key, nil)
				if rec.Code/100 != 2 {
					t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body.String())
				}
			}
			// c1 web high at 10:00 (big-deal).
			d1, _ := h.score(`{"conversation_id":"c1","channel":"web","signals":{"deal_size":20000}}`)
			h.clock.Add(time.Minute)
			// c2 whatsapp urgent at 10:01 (big-deal, angry-whatsapp, pricing).
			d2, _ := h.score(`{"conversation_id":"c2","channel":"whatsapp","message":"I want a refund","signals":{"deal_size":20000,"pricing_page_views":3}}`)
			// c3 web low.
			d3, _ := h.score(`{"conversation_id":"c3","channel":"web","signals":{}}`)
			if d1.Tier != "high" || d2.Tier != "urgent" || d3.Tier != "low" {
				t.Fatalf("tiers = %s %s %s, want high urgent low", d1.Tier, d2.Tier, d3.Tier)
			}
			h.insertAlert("a1", "c1", d1.DecisionID, "web", "high")
			h.insertAlert("a2", "c2", d2.DecisionID, "whatsapp", "urgent")
			post("/v1/alerts/a1/label", `{"label":"useful","agent":"ana"}`)
			post("/v1/alerts/a2/label", `{"label":"noise","agent":"ana"}`)
			post("/v1/alerts/a2/label", `{"label":"noise","agent":"bo"}`)
			post("/v1/conversations/c1/events", `{"type":"first_response","at":"2026-11-25T10:02:00Z"}`) // 120 s
			post("/v1/conversations/c2/events", `{"type":"first_response","at":"2026-11-25T10:01:30Z"}`) // 30 s
			post("/v1/conversations/c1/events", `{"type":"converted","value":5000,"at":"2026-11-25T11:00:00Z"}`)
			post("/v1/conversations/c2/events", `{"type":"lost","at":"2026-11-25T11:00:00Z"}`)
			post("/v1/conversations/c1/events", `{"type":"tier_feedback","tier":"high","agent":"ana","at":"2026-11-25T10:03:00Z"}`)
			post("/v1/conversations/c3/events", `{"type":"tier_feedback","tier":"medium","agent":"ana","at":"2026-11-25T10:05:00Z"}`)

			var rep kpiReportJSON
			if rec := h.do(http.MethodGet, "/v1/kpis?weeks=2", "", "", h.key, &rep); rec.Code != http.StatusOK {
				t.Fatalf("kpis: %d %s", rec.Code, rec.Body.String())
			}
			if len(rep.Weeks) != 2 || rep.Weeks[0].Week != "2026-W47" || rep.Weeks[1].Week != "2026-W48" {
				t.Fatalf("weeks = %+v", rep.Weeks)
			}
			rate := func(p *float64) string {
				if p == nil {
					return "-"
				}
				return fmt.Sprintf("%.4g", *p)
			}
			set := func(s kpiSetJSON) string {
				return fmt.Sprintf("acc %d/%d=%s rt %d/%d med %s p90 %s tp %d/%d/%d=%s conv %d/%d=%s",
					s.Accuracy.Confirmed, s.Accuracy.Reviewed, rate(s.Accuracy.Rate),
					s.ResponseTime.Conversations, s.ResponseTime.Responded, rate(s.ResponseTime.MedianSeconds), rate(s.ResponseTime.P90Seconds),
					s.TruePositive.Useful, s.TruePositive.Noise, s.TruePositive.Tied, rate(s.TruePositive.Rate),
					s.Conversion.Converted, s.Conversion.Conversations, rate(s.Conversion.Rate))
			}
			tp := func(k truePosJSON) string { return fmt.Sprintf("%d/%d/%d=%s", k.Useful, k.Noise, k.Tied, rate(k.Rate)) }
			w := rep.Weeks[1]
			checks := []struct{ name, got, want string }{
				// Responses after 30 s and 120 s: median 75, p90 30+0.9*90 = 111.
				{"overall", set(w.Overall), "acc 1/2=0.5 rt 2/2 med 75 p90 111 tp 1/1/0=0.5 conv 1/2=0.5"},
				{"urgent", set(w.ByTier["urgent"]), "acc 0/0=- rt 1/1 med 30 p90 30 tp 0/1/0=0 conv 0/1=0"},
				{"high", set(w.ByTier["high"]), "acc 1/1=1 rt 1/1 med 120 p90 120 tp 1/0/0=1 conv 1/1=1"},
				{"low", set(w.ByTier["low"]), "acc 0/1=0 rt 0/0 med - p90 - tp 0/0/0=- conv 0/0=-"},
				{"web", set(w.ByChannel["web"]), "acc 1/2=0.5 rt 1/1 med 120 p90 120 tp 1/0/0=1 conv 1/1=1"},
				{"rule big-deal", tp(w.ByRule["big-deal"]), "1/1/0=0.5"},
				{"rule angry-whatsapp", tp(w.ByRule["angry-whatsapp"]), "0/1/0=0"},
				{"rule pricing", tp(w.ByRule["pricing"]), "0/1/0=0"},
				{"W47", set(rep.Weeks[0].Overall), "acc 0/0=- rt 0/0 med - p90 - tp 0/0/0=- conv 0/0=-"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s:\n got  %s\n want %s", c.name, c.got, c.want)
				}
			}
			rep = kpiReportJSON{}
			h.do(http.MethodGet, "/v1/kpis?weeks=1&channel=whatsapp", "", "", h.key, &rep)
			if len(rep.Weeks) != 1 || set(rep.Weeks[0].Overall) != "acc 0/0=- rt 1/1 med 30 p90 30 tp 0/1/0=0 conv 0/1=0" {
				t.Errorf("whatsapp only = %+v", rep.Weeks)
			}
			for _, q := range []string{"weeks=0", "weeks=105", "weeks=x", "channel=Bad!"} {
				if rec := h.do(http.MethodGet, "/v1/kpis?"+q, "", "", h.key, nil); rec.Code != http.StatusUnprocessableEntity {
					t.Errorf("%s: status %d, want 422", q, rec.Code)
				}
			}
		})
	}
}

// An event time Go cannot encode back as JSON must be refused, not stored
// and then break every read of the conversation's events and the KPIs.
func TestEventTimeOutOfRange(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(testPolicy)
	if _, rec := h.score(`{"conversation_id":"c1","channel":"web"}`); rec.Code != http.StatusOK {
		t.Fatalf("score: %d", rec.Code)
	}
	for _, at := range []string{"9999-12-31T23:59:59-10:00", "0000-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z"} {
		rec := h.do(http.MethodPost, "/v1/conversations/c1/events", "application/json",
			`{"type":"first_response","at":"`+at+`"}`, h.key, nil)
		if rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("at %s: status %d, want 422: %s", at, rec.Code, rec.Body.String())
		}
	}
	rec := h.do(http.MethodGet, "/v1/conversations/c1/events", "", "", h.key, nil)
	if rec.Code != http.StatusOK {
		t.Errorf("events after refused writes: %d %s", rec.Code, rec.Body.String())
	}
}
