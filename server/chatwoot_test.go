package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/feedbacktest"
	"github.com/hotlane/hotlane/jobs"
)

// cwFile reads one of the recorded Chatwoot payloads in place.
func cwFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(feedbacktest.SharedData(t, "chatwoot/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cwEdit decodes a payload, lets edit change it, and encodes it again.
func cwEdit(t testing.TB, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const cwSecret = "whsec-test-secret"

// postChatwoot sends a webhook; headers may set X-Chatwoot-* (a
// "sign" key signs the body with cwSecret at the clock's time).
func (h *harness) postChatwoot(body []byte, headers map[string]string) (*httptest.ResponseRecorder, chatwootAnswer) {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/integrations/chatwoot", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if k == "sign" {
			ts := strconv.FormatInt(h.clock.Now().Unix(), 10)
			req.Header.Set("X-Chatwoot-Timestamp", ts)
			req.Header.Set("X-Chatwoot-Signature", SignChatwoot(cwSecret, ts, body))
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	var ans chatwootAnswer
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			h.t.Fatalf("decode %q: %v", rec.Body.String(), err)
		}
	}
	return rec, ans
}

func cwConfig(secret string) *ChatwootConfig {
	return &ChatwootConfig{AccountID: 1, Secret: secret, WriteBack: feedback.ChatwootWriteBack{
		Priority: true, Assign: true, Note: true, Attributes: true,
		Teams: map[string]int64{"sales": 2}, Agents: map[string]int64{"sam@example.com": 7}}}
}

const cwConv = "chatwoot-1-123"

// TestChatwootPayloadFiles feeds every recorded payload verbatim, in the
// order of their timeline, unsigned and signed: the conversation is
// scored from its first message, the agent's changes do not score again,
// resolving closes it, and the other events are acknowledged.
func TestChatwootPayloadFiles(t *testing.T) {
	steps := []struct {
		file, status, reason string
	}{
		{"webhook_contact_created.json", "ignored", "event not used by Hotlane"},
		{"webhook_webwidget_triggered.json", "ignored", "event not used by Hotlane"},
		{"webhook_conversation_created.json", "scored", ""},
		{"webhook_message_created.json", "ignored", "message already scored"},
		{"webhook_conversation_updated_priority.json", "ignored", "no signal changed"},
		{"webhook_conversation_updated_assignee.json", "ignored", "no signal changed"},
		{"webhook_conversation_status_changed.json", "recorded", ""},
	}
	for _, engine := range engines(t) {
		for _, signed := range []bool{false, true} {
			name := engine + "/unsigned"
			if signed {
				name = engine + "/signed"
			}
			t.Run(name, func(t *testing.T) {
				cfg := cwConfig("")
				headers := map[string]string{}
				if signed {
					cfg.Secret, headers["sign"] = cwSecret, "1"
				}
				h := newHarness(t, engine, Config{Chatwoot: cfg})
				h.publish(testPolicy)
				for i, st := range steps {
					body := cwFile(t, st.file)
					if signed {
						// The same body without its signature is refused.
						if rec, _ := h.postChatwoot(body, nil); rec.Code != http.StatusUnauthorized {
							t.Fatalf("%s unsigned: status %d, want 401: %s", st.file, rec.Code, rec.Body.String())
						}
					}
					headers["X-Chatwoot-Delivery"] = "delivery-" + strconv.Itoa(i)
					rec, ans := h.postChatwoot(body, headers)
					if rec.Code != http.StatusOK {
						t.Fatalf("%s: status %d: %s", st.file, rec.Code, rec.Body.String())
					}
					if ans.Status != st.status || ans.Reason != st.reason {
						t.Errorf("%s: %s (%s), want %s (%s)", st.file, ans.Status, ans.Reason, st.status, st.reason)
					}
				}
				ctx := context.Background()
				ds, err := h.store.ConversationDecisions(ctx, cwConv, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != 1 {
					t.Fatalf("%d decisions, want 1: the created conversation, whose first message message_created brings again", len(ds))
				}
				var sig map[string]any
				if err := json.Unmarshal(ds[0].Signals, &sig); err != nil {
					t.Fatal(err)
				}
				want := map[string]any{"browser": "Chrome", "platform": "macOS", "browser_language": "en",
					"referer": "https://www.example.com/pricing", "message_count": 1.0, "returning": false, "inbox_id": 3.0}
				for k, v := range want {
					if sig[k] != v {
						t.Errorf("signal %s = %v, want %v (signals %v)", k, sig[k], v, sig)
					}
				}
				// Waiting since 10:15:00 on 2026-07-28, scored at the clock.
				wait := h.clock.Now().Sub(time.Date(2026, 7, 28, 10, 15, 0, 0, time.UTC)).Seconds()
				if sig["wait_seconds"] != wait {
					t.Errorf("waiting_seconds = %v, want %v", sig["wait_seconds"], wait)
				}
				if ds[0].Channel != "web" {
					t.Errorf("channel %q, want web", ds[0].Channel)
				}
				evs, err := h.store.ConversationEvents(ctx, cwConv)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 || evs[0].Type != feedback.EventClosed {
					t.Errorf("events %+v, want one closed", evs)
				}
			})
		}
	}
}

// TestChatwootSignature: with a secret, a bad signature, a stale or
// future timestamp and a missing signature are refused; a repeated
// delivery id is acknowledged and not handled again.
func TestChatwootSignature(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Chatwoot: cwConfig(cwSecret)})
	h.publish(testPolicy)
	body := cwFile(t, "webhook_conversation_created.json")
	now := h.clock.Now().Unix()
	sign := func(ts int64, b []byte) map[string]string {
		s := strconv.FormatInt(ts, 10)
		return map[string]string{"X-Chatwoot-Timestamp": s, "X-Chatwoot-Signature": SignChatwoot(cwSecret, s, b)}
	}
	cases := []struct {
		name    string
		headers map[string]string
		code    string
	}{
		{"missing", nil, "missing_signature"},
		{"other secret", map[string]string{"X-Chatwoot-Timestamp": strconv.FormatInt(now, 10),
			"X-Chatwoot-Signature": SignChatwoot("other", strconv.FormatInt(now, 10), body)}, "bad_signature"},
		{"other body", sign(now, []byte(`{"event":"conversation_created"}`)), "bad_signature"},
		{"not hex", map[string]string{"X-Chatwoot-Timestamp": strconv.FormatInt(now, 10), "X-Chatwoot-Signature": "sha256=zz"}, "bad_signature"},
		{"stale", sign(now-int64(ChatwootMaxSkew/time.Second)-1, body), "stale_timestamp"},
		{"future", sign(now+int64(ChatwootMaxSkew/time.Second)+1, body), "stale_timestamp"},
		{"bad timestamp", map[string]string{"X-Chatwoot-Timestamp": "yesterday", "X-Chatwoot-Signature": "sha256=00"}, "bad_timestamp"},
	}
	for _, tc := range cases {
		rec, _ := h.postChatwoot(body, tc.headers)
		if rec.Code != http.StatusUnauthorized || decodeError(t, rec).Error.Code != tc.code {
			t.Errorf("%s: status %d %s, want 401 %s", tc.name, rec.Code, rec.Body.String(), tc.code)
		}
	}
	headers := sign(now, body)
	headers["X-Chatwoot-Delivery"] = "8b0f1a52-6d1e-4c1b-9c43-2f0e7d1b5a10"
	if rec, ans := h.postChatwoot(body, headers); rec.Code != http.StatusOK || ans.Status != "scored" {
		t.Fatalf("first delivery: %d %s", rec.Code, rec.Body.String())
	}
	rec, ans := h.postChatwoot(body, headers)
	if rec.Code != http.StatusOK || ans.Status != "ignored" || !strings.Contains(ans.Reason, "already received") {
		t.Errorf("replayed delivery: %d %s, want 200 ignored", rec.Code, rec.Body.String())
	}
	headers["X-Chatwoot-Delivery"] = "another-id"
	if rec, ans := h.postChatwoot(body, headers); rec.Code != http.StatusOK || ans.Status != "ignored" {
		t.Errorf("replay under another delivery id: %d %s, want 200 ignored", rec.Code, rec.Body.String())
	}
	delete(headers, "X-Chatwoot-Delivery")
	if rec, ans := h.postChatwoot(body, headers); rec.Code != http.StatusOK || ans.Status != "ignored" {
		t.Errorf("replay without a delivery id: %d %s, want 200 ignored", rec.Code, rec.Body.String())
	}
	headers["X-Chatwoot-Signature"] = "sha256=" + strings.ToUpper(strings.TrimPrefix(headers["X-Chatwoot-Signature"], "sha256="))
	headers["X-Chatwoot-Delivery"] = "yet-another-id"
	if rec, ans := h.postChatwoot(body, headers); rec.Code != http.StatusOK || ans.Status != "ignored" {
		t.Errorf("replay with the signature in upper case: %d %s, want 200 ignored", rec.Code, rec.Body.String())
	}
	headers["X-Chatwoot-Delivery"] = "bad\xffid"
	if rec, _ := h.postChatwoot(body, headers); rec.Code != http.StatusBadRequest {
		t.Errorf("a delivery id that is not UTF-8: %d %s, want 400", rec.Code, rec.Body.String())
	}
	ds, err := h.store.ConversationDecisions(context.Background(), cwConv, 10)
	if err != nil || len(ds) != 1 {
		t.Errorf("%d decisions (%v), want 1: the replays must not score", len(ds), err)
	}
}

// TestChatwootBadInput: malformed or foreign bodies are JSON 4xx, never
// 500, and an integration that is off says how to turn it on.
func TestChatwootBadInput(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Chatwoot: cwConfig("")})
	h.publish(testPolicy)
	created := cwFile(t, "webhook_conversation_created.json")
	cases := []struct {
		name, body, ctype string
		status            int
		code              string
	}{
		{"not json", `{"event":`, "application/json", 400, "invalid_json"},
		{"array", `[1,2]`, "application/json", 400, "invalid_json"},
		{"no event", `{"id":1}`, "application/json", 400, "invalid_field"},
		{"wrong type", `{"event":"conversation_created","id":"abc"}`, "application/json", 422, "invalid_payload"},
		{"no id", `{"event":"conversation_created"}`, "application/json", 400, "invalid_field"},
		{"labels not a list", `{"event":"conversation_created","id":5,"labels":"vip"}`, "application/json", 422, "invalid_payload"},
		{"message without conversation", `{"event":"message_created","id":5,"message_type":"incoming"}`, "application/json", 400, "invalid_field"},
		{"bad message type", `{"event":"message_created","id":5,"message_type":9,"conversation":{"id":1}}`, "application/json", 422, "invalid_payload"},
		{"bad time", `{"event":"conversation_created","id":5,"created_at":"soon"}`, "application/json", 422, "invalid_payload"},
		{"form", `event=conversation_created`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"other account", string(cwEdit(t, created, func(m map[string]any) { m["account"] = map[string]any{"id": 9} })), "application/json", 403, "wrong_account"},
		{"too big", `{"event":"conversation_created","pad":"` + strings.Repeat("x", maxChatwootBody) + `"}`, "application/json", 413, "body_too_large"},
	}
	for _, tc := range cases {
		rec := h.do(http.MethodPost, "/v1/integrations/chatwoot", tc.ctype, tc.body, "", nil)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d %s, want %d", tc.name, rec.Code, rec.Body.String(), tc.status)
			continue
		}
		if e := decodeError(t, rec); tc.code != "" && e.Error.Code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, e.Error.Code, tc.code)
		}
	}
	var ans chatwootAnswer
	if rec := h.do(http.MethodPost, "/v1/integrations/chatwoot", "application/json", `{"event":"inbox_created","id":3}`, "", &ans); rec.Code != 200 || ans.Status != "ignored" {
		t.Errorf("unknown event: %d %s, want 200 ignored", rec.Code, rec.Body.String())
	}

	off := newHarness(t, "sqlite", Config{})
	rec := off.do(http.MethodPost, "/v1/integrations/chatwoot", "application/json", string(created), "", nil)
	if rec.Code != http.StatusNotFound || !strings.Contains(decodeError(t, rec).Error.Message, "--chatwoot-account-id") {
		t.Errorf("integration off: %d %s, want 404 naming --chatwoot-account-id", rec.Code, rec.Body.String())
	}
}

// fakeChatwoot stands in for Chatwoot's API: it records each request,
// answers with fail(request number) (0: 200), and keeps the
// conversation's custom attributes as Chatwoot does: GET shows them, and
// POST custom_attributes replaces the whole set.
type fakeChatwoot struct {
	t     *testing.T
	mu    sync.Mutex
	reqs  []cwRequest
	fail  func(n int, path string) int
	attrs map[string]any
	srv   *httptest.Server
}

type cwRequest struct {
	Method, Path, Token, ContentType string
	Body                             map[string]any
	Status                           int
}

func newFakeChatwoot(t *testing.T, fail func(n int, path string) int) *fakeChatwoot {
	f := &fakeChatwoot{t: t, fail: fail, attrs: map[string]any{"deal_size": 50000.0, "owner": "sam@example.com", "plan": "pro"}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if r.Method == http.MethodPost {
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("%s: body %q is not a JSON object", r.URL.Path, b)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		status := 200
		if f.fail != nil {
			if s := f.fail(len(f.reqs), r.URL.Path); s != 0 {
				status = s
			}
		}
		f.reqs = append(f.reqs, cwRequest{Method: r.Method, Path: r.URL.Path, Token: r.Header.Get("api_access_token"),
			ContentType: r.Header.Get("Content-Type"), Body: body, Status: status})
		w.WriteHeader(status)
		switch {
		case status != 200:
		case r.Method == http.MethodGet:
			_ = json.NewEncoder(w).Encode(map[string]any{"id": 123, "custom_attributes": f.attrs})
		case strings.HasSuffix(r.URL.Path, "/custom_attributes"):
			f.attrs, _ = body["custom_attributes"].(map[string]any)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeChatwoot) requests() []cwRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// kindOf names the write a request makes.
func kindOf(r cwRequest) string {
	switch {
	case strings.HasSuffix(r.Path, "/toggle_priority"):
		return "priority"
	case strings.HasSuffix(r.Path, "/assignments") && r.Body["team_id"] != nil:
		return "team"
	case strings.HasSuffix(r.Path, "/assignments"):
		return "assignee"
	case strings.HasSuffix(r.Path, "/messages"):
		return "note"
	case strings.HasSuffix(r.Path, "/custom_attributes"):
		return "attributes"
	}
	return r.Method + " " + r.Path
}

// posts are the writes among the requests.
func (f *fakeChatwoot) posts() []cwRequest {
	return slices.DeleteFunc(f.requests(), func(r cwRequest) bool { return r.Method != http.MethodPost })
}

func (f *fakeChatwoot) writer(h *harness) *jobs.ChatwootWriter {
	return &jobs.ChatwootWriter{Store: h.store, BaseURL: f.srv.URL, Token: "cw-token", Now: h.clock.Now, Log: quietLog()}
}

// bigDeal is the recorded conversation with a deal size that floors it at
// high (team sales) and an owner.
func bigDeal(t *testing.T, file string) []byte {
	return cwEdit(t, cwFile(t, file), func(m map[string]any) {
		conv := m
		if c, ok := m["conversation"].(map[string]any); ok {
			conv = c
		}
		conv["custom_attributes"] = map[string]any{"deal_size": 50000, "owner": "sam@example.com", "plan": "pro"}
	})
}

// apiSpec reads one recorded API call.
func apiSpec(t *testing.T, file string) map[string]any {
	var spec map[string]any
	if err := json.Unmarshal(cwFile(t, file), &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestChatwootWriteBack: a conversation that scores high has its priority,
// team, agent, a private note and the custom attributes written back, each
// request as Chatwoot's API documents it, in the order queued.
func TestChatwootWriteBack(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{Chatwoot: cwConfig("")})
			h.publish(testPolicy)
			api := newFakeChatwoot(t, nil)
			rec, ans := h.postChatwoot(bigDeal(t, "webhook_conversation_created.json"), nil)
			if rec.Code != 200 || ans.Tier != "high" {
				t.Fatalf("created: %d %s, want tier high", rec.Code, rec.Body.String())
			}
			wantKinds := []string{"priority", "team", "assignee", "note", "attributes"}
			if !slices.Equal(ans.Writes, wantKinds) {
				t.Fatalf("writes %v, want %v", ans.Writes, wantKinds)
			}
			if n := len(api.requests()); n != 0 {
				t.Fatalf("the webhook called Chatwoot %d times; writes go through the outbox", n)
			}
			// An agent sets an attribute after the webhook: the write
			// keeps it.
			api.mu.Lock()
			api.attrs["region"] = "emea"
			api.mu.Unlock()
			if _, err := api.writer(h).RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			posts := api.posts()
			reqs := map[string]cwRequest{}
			var sent []string
			for _, r := range posts {
				reqs[kindOf(r)] = r
				sent = append(sent, kindOf(r))
			}
			if len(reqs) != len(wantKinds) || len(posts) != len(wantKinds) {
				t.Fatalf("requests %v, want one of each of %v", sent, wantKinds)
			}
			if slices.Index(sent, "team") > slices.Index(sent, "assignee") {
				t.Errorf("the agent was assigned before the team: %v", sent)
			}
			prio, assign := apiSpec(t, "api_toggle_priority.json"), apiSpec(t, "api_assign_conversation.json")
			check := func(r cwRequest, spec map[string]any, body map[string]any) {
				t.Helper()
				if r.Method != spec["method"] || r.Path != spec["example_path"] {
					t.Errorf("request %s %s, want %s %s", r.Method, r.Path, spec["method"], spec["example_path"])
				}
				if r.Token != "cw-token" || r.ContentType != "application/json" {
					t.Errorf("%s: token %q, content type %q", r.Path, r.Token, r.ContentType)
				}
				if mustJSON(t, r.Body) != mustJSON(t, body) {
					t.Errorf("%s: body %v, want %v", r.Path, r.Body, body)
				}
			}
			check(reqs["priority"], prio, prio["body"].(map[string]any)) // {"priority":"high"}
			check(reqs["team"], assign, map[string]any{"team_id": 2.0})
			check(reqs["assignee"], assign, assign["body_assign_agent"].(map[string]any)) // {"assignee_id":7}
			for _, key := range []string{"team_id"} {
				if _, ok := assign["body_assign_team"].(map[string]any)[key]; !ok {
					t.Errorf("the recorded team assignment has no %s", key)
				}
			}
			note := reqs["note"]
			if note.Path != "/api/v1/accounts/1/conversations/123/messages" || note.Body["private"] != true || note.Body["message_type"] != "outgoing" {
				t.Errorf("note: %s %v, want a private outgoing message", note.Path, note.Body)
			}
			if text, _ := note.Body["content"].(string); !strings.Contains(text, "HIGH priority (score 0.") || !strings.Contains(text, "Why: big-deal (at least high") || !strings.Contains(text, "team sales") {
				t.Errorf("note text %q lacks the tier, score, team or reason", text)
			}
			attrs := reqs["attributes"]
			ca, _ := attrs.Body["custom_attributes"].(map[string]any)
			all := api.requests()
			i := slices.IndexFunc(all, func(r cwRequest) bool { return kindOf(r) == "attributes" })
			if i < 0 || !slices.ContainsFunc(all[:i], func(r cwRequest) bool {
				return r.Method == http.MethodGet && r.Path == "/api/v1/accounts/1/conversations/123"
			}) {
				t.Errorf("the attributes were not read before they were written: %v", all)
			}
			if attrs.Path != "/api/v1/accounts/1/conversations/123/custom_attributes" || ca["hotlane_tier"] != "high" ||
				ca["deal_size"] != 50000.0 || ca["region"] != "emea" || attrs.Body["merge"] != true {
				t.Errorf("attributes: %s %v", attrs.Path, attrs.Body)
			}
			if _, ok := ca["hotlane_score"].(float64); !ok {
				t.Errorf("hotlane_score %v is not a number", ca["hotlane_score"])
			}
			ws, err := h.store.ChatwootWrites(context.Background(), cwConv)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if w.Status != feedback.DeliveryDelivered || w.Attempts != 1 {
					t.Errorf("write %s: %s after %d attempts, want delivered after 1", w.Kind, w.Status, w.Attempts)
				}
			}
		})
	}
}

// TestChatwootRetry: while Chatwoot fails, each write is retried on the
// schedule and delivered once when it is back; a 404 fails for good.
func TestChatwootRetry(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Chatwoot: cwConfig("")})
	h.publish(testPolicy)
	down := true
	var mu sync.Mutex
	api := newFakeChatwoot(t, func(int, string) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	if rec, _ := h.postChatwoot(bigDeal(t, "webhook_conversation_created.json"), nil); rec.Code != 200 {
		t.Fatalf("created: %d %s", rec.Code, rec.Body.String())
	}
	w := api.writer(h)
	ctx := context.Background()
	for range 3 {
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(11 * time.Second)
	}
	// While Chatwoot is down the first write of each lane is tried, and
	// the agent waits behind its team.
	for _, r := range api.posts() {
		if kindOf(r) == "assignee" {
			t.Errorf("the agent write was sent while its team's waited")
		}
	}
	mu.Lock()
	down = false
	mu.Unlock()
	for range 4 {
		h.clock.Add(2 * time.Minute)
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ok := map[string]int{}
	var order []string
	for _, r := range api.posts() {
		if r.Status == 200 {
			ok[kindOf(r)]++
			order = append(order, kindOf(r))
		}
	}
	if len(ok) != 5 {
		t.Errorf("%d kinds of writes delivered, want 5: %v", len(ok), ok)
	}
	for k, n := range ok {
		if n != 1 {
			t.Errorf("%s delivered %d times, want once", k, n)
		}
	}
	if slices.Index(order, "team") > slices.Index(order, "assignee") {
		t.Errorf("delivered in the order %v: the agent before the team", order)
	}
	ws, err := h.store.ChatwootWrites(ctx, cwConv)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Status != feedback.DeliveryDelivered || (w.Kind != "assignee") != (w.Attempts > 1) {
			t.Errorf("write %s: %s after %d attempts, want delivered, after a retry unless it waited", w.Kind, w.Status, w.Attempts)
		}
	}

	// A conversation Chatwoot does not know fails at once.
	gone := newFakeChatwoot(t, func(int, string) int { return http.StatusNotFound })
	other := cwEdit(t, bigDeal(t, "webhook_conversation_created.json"), func(m map[string]any) { m["id"] = 124 })
	if rec, _ := h.postChatwoot(other, nil); rec.Code != 200 {
		t.Fatalf("created: %d %s", rec.Code, rec.Body.String())
	}
	if _, err := gone.writer(h).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err = h.store.ChatwootWrites(ctx, "chatwoot-1-124")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Status != feedback.DeliveryFailed || w.LastStatus != 404 {
			t.Errorf("write %s: %s (last %d), want failed on 404", w.Kind, w.Status, w.LastStatus)
		}
	}
}

// echoChatwoot plays Chatwoot: it applies one of Hotlane's writes to the
// conversation conv (a conversation payload) and returns the webhook
// Chatwoot sends for that change.
func echoChatwoot(t *testing.T, conv map[string]any, r cwRequest) []byte {
	t.Helper()
	meta := conv["meta"].(map[string]any)
	change := func(key string, prev, cur any) {
		conv["event"] = "conversation_updated"
		conv["changed_attributes"] = []any{map[string]any{key: map[string]any{"previous_value": prev, "current_value": cur}},
			map[string]any{"updated_at": map[string]any{"previous_value": "a", "current_value": "b"}}}
	}
	switch {
	case strings.HasSuffix(r.Path, "/toggle_priority"):
		change("priority", conv["priority"], r.Body["priority"])
		conv["priority"] = r.Body["priority"]
	case strings.HasSuffix(r.Path, "/assignments") && r.Body["team_id"] != nil:
		var prev any
		if team, ok := meta["team"].(map[string]any); ok {
			prev = team["id"]
		}
		change("team_id", prev, r.Body["team_id"])
		meta["team"] = map[string]any{"id": r.Body["team_id"], "name": "sales"}
	case strings.HasSuffix(r.Path, "/assignments"):
		var prev any
		if a, ok := meta["assignee"].(map[string]any); ok {
			prev = a["id"]
		}
		change("assignee_id", prev, r.Body["assignee_id"])
		meta["assignee"] = map[string]any{"id": r.Body["assignee_id"], "name": "Sam Agent", "type": "user"}
	case strings.HasSuffix(r.Path, "/custom_attributes"):
		change("custom_attributes", conv["custom_attributes"], r.Body["custom_attributes"])
		conv["custom_attributes"] = r.Body["custom_attributes"]
	case strings.HasSuffix(r.Path, "/messages"):
		// The note arrives as the token's user's private message.
		return cwEdit(t, cwFile(t, "webhook_message_created.json"), func(m map[string]any) {
			m["id"], m["message_type"], m["private"], m["content"] = 9990, "outgoing", true, r.Body["content"]
			m["sender"] = map[string]any{"id": 1, "name": "Hotlane", "type": "user"}
			m["conversation"] = conv
		})
	default:
		t.Fatalf("unexpected write %s", r.Path)
	}
	b, err := json.Marshal(conv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChatwootNoLoop: Chatwoot answers each of Hotlane's writes with the
// webhook that change causes; fed back, none scores or writes again, so
// the loop ends. A signal an agent changes does score and writes only
// what changed, and a value an agent changes stays theirs.
func TestChatwootNoLoop(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Chatwoot: cwConfig("")})
	h.publish(testPolicy)
	api := newFakeChatwoot(t, nil)
	created := bigDeal(t, "webhook_conversation_created.json")
	if rec, _ := h.postChatwoot(created, nil); rec.Code != 200 {
		t.Fatalf("created: %d %s", rec.Code, rec.Body.String())
	}
	var conv map[string]any
	if err := json.Unmarshal(created, &conv); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := api.writer(h)
	sent := 0
	for round := 0; ; round++ {
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		posts := api.posts()
		if len(posts) == sent {
			break
		}
		if round > 0 {
			t.Fatalf("round %d: Hotlane wrote again after its own changes: %+v", round, posts[sent:])
		}
		for _, r := range posts[sent:] {
			rec, ans := h.postChatwoot(echoChatwoot(t, conv, r), nil)
			if rec.Code != 200 || ans.Status != "ignored" {
				t.Errorf("echo of %s: %d %s, want ignored", r.Path, rec.Code, rec.Body.String())
			}
		}
		sent = len(posts)
	}
	ds, _ := h.store.ConversationDecisions(ctx, cwConv, 10)
	if len(ds) != 1 || sent != 5 {
		t.Errorf("%d decisions and %d writes after the echoes, want 1 and 5", len(ds), sent)
	}

	// An agent changes the plan: scored again, same tier and score,
	// nothing to write.
	cur := map[string]any{}
	for k, v := range conv["custom_attributes"].(map[string]any) {
		cur[k] = v
	}
	cur["plan"] = "enterprise"
	conv["changed_attributes"] = []any{map[string]any{"custom_attributes": map[string]any{"previous_value": conv["custom_attributes"], "current_value": cur}}}
	conv["custom_attributes"], conv["event"] = cur, "conversation_updated"
	body, _ := json.Marshal(conv)
	rec, ans := h.postChatwoot(body, nil)
	if rec.Code != 200 || ans.Status != "scored" || len(ans.Writes) != 0 {
		t.Errorf("agent change: %d %s, want scored with no writes", rec.Code, rec.Body.String())
	}

	// An agent sets the priority to low and takes the conversation: both
	// stay theirs when a new message makes it urgent.
	for _, ch := range []map[string]any{
		{"priority": map[string]any{"previous_value": "high", "current_value": "low"}},
		{"assignee_id": map[string]any{"previous_value": 7, "current_value": 9}},
	} {
		conv["changed_attributes"] = []any{ch}
		body, _ := json.Marshal(conv)
		if rec, ans := h.postChatwoot(body, nil); rec.Code != 200 || ans.Status != "ignored" {
			t.Errorf("agent's change %v: %d %s", ch, rec.Code, rec.Body.String())
		}
	}
	conv["priority"] = "low"
	conv["meta"].(map[string]any)["assignee"] = map[string]any{"id": 9, "name": "Kim Agent", "type": "user"}
	cur["deal_size"] = 500000
	msg := cwEdit(t, cwFile(t, "webhook_message_created.json"), func(m map[string]any) {
		m["id"], m["content"], m["conversation"] = 9877, "We need this today, urgent", conv
	})
	h.publish(strings.Replace(testPolicy, "- {name: big-deal,", "- {name: huge, expression: \"deal_size >= 100000\", points: 3, tier_floor: urgent}\n  - {name: big-deal,", 1))
	rec, ans = h.postChatwoot(msg, nil)
	if rec.Code != 200 || ans.Tier != "urgent" || slices.Contains(ans.Writes, "priority") || slices.Contains(ans.Writes, "assignee") {
		t.Errorf("after the agent's changes: %d %s, want urgent without priority or agent writes", rec.Code, rec.Body.String())
	}
	if !slices.Contains(ans.Writes, "note") {
		t.Errorf("the rise to urgent wrote no note: %v", ans.Writes)
	}
}

// TestChatwootConcurrentWebhooks: webhooks of one conversation handled
// at once plan one after the other: one note for the rise, not one per
// webhook.
func TestChatwootConcurrentWebhooks(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{Chatwoot: cwConfig("")})
			h.publish(testPolicy)
			var wg sync.WaitGroup
			for i := range 8 {
				body := bigDeal(t, "webhook_message_created.json")
				body = cwEdit(t, body, func(m map[string]any) { m["id"] = 9876 + i })
				wg.Go(func() {
					if rec, _ := h.postChatwoot(body, nil); rec.Code != 200 {
						t.Errorf("message %d: %d %s", i, rec.Code, rec.Body.String())
					}
				})
			}
			wg.Wait()
			ws, err := h.store.ChatwootWrites(context.Background(), cwConv)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, w := range ws {
				if w.Status == feedback.DeliveryPending {
					kinds[w.Kind]++
				}
			}
			if kinds["note"] != 1 || kinds["priority"] != 1 || kinds["attributes"] != 1 {
				t.Errorf("pending writes %v, want one note, one priority, one attributes", kinds)
			}
		})
	}
}

// TestChatwootLabelsAndEvents: an agent's hotlane-noise label labels the
// latest alert with the agent; a human reply is the first response once;
// bots' and private messages are not.
func TestChatwootLabelsAndEvents(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{Chatwoot: cwConfig("")})
			h.publish(alertPolicy)
			ctx := context.Background()
			if rec, ans := h.postChatwoot(bigDeal(t, "webhook_conversation_created.json"), nil); rec.Code != 200 || ans.Tier != "high" {
				t.Fatalf("created: %d %s", rec.Code, rec.Body.String())
			}
			label := func(assignee map[string]any, prev, cur []string) (int, chatwootAnswer) {
				body := cwEdit(t, cwFile(t, "webhook_conversation_updated_assignee.json"), func(m map[string]any) {
					m["meta"].(map[string]any)["assignee"] = assignee
					m["labels"] = cur
					m["changed_attributes"] = []any{map[string]any{"label_list": map[string]any{"previous_value": prev, "current_value": cur}}}
				})
				rec, ans := h.postChatwoot(body, nil)
				return rec.Code, ans
			}
			code, ans := label(map[string]any{"id": 7, "name": "Sam Agent", "type": "user"}, []string{}, []string{"vip", "hotlane-noise"})
			if code != 200 || ans.Status != "labelled" || ans.Label != "noise" || ans.AlertID == "" {
				t.Fatalf("label: %d %+v, want labelled noise", code, ans)
			}
			a, err := h.store.Alert(ctx, ans.AlertID)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Labels) != 1 || a.Labels[0].Agent != "sam@example.com" || a.Labels[0].Label != "noise" {
				t.Errorf("labels %+v, want noise by sam@example.com (agent 7 mapped)", a.Labels)
			}
			code, ans = label(map[string]any{"id": 9, "name": "Kim Other", "type": "user"}, []string{"hotlane-noise"}, []string{"hotlane-noise", "hotlane-useful"})
			if code != 200 || ans.Label != "useful" {
				t.Fatalf("second label: %d %+v", code, ans)
			}
			a, _ = h.store.Alert(ctx, ans.AlertID)
			agents := []string{}
			for _, l := range a.Labels {
				agents = append(agents, l.Agent+"="+l.Label)
			}
			slices.Sort(agents)
			if want := []string{"Kim Other (chatwoot 9)=useful", "sam@example.com=noise"}; !slices.Equal(agents, want) {
				t.Errorf("labels %v, want %v", agents, want)
			}

			reply := func(id int, sender map[string]any, private bool) chatwootAnswer {
				body := cwEdit(t, cwFile(t, "webhook_message_created.json"), func(m map[string]any) {
					m["id"], m["message_type"], m["private"], m["sender"] = id, "outgoing", private, sender
					m["created_at"] = "2026-11-25T09:59:00.000Z"
				})
				rec, ans := h.postChatwoot(body, nil)
				if rec.Code != 200 {
					t.Fatalf("reply: %d %s", rec.Code, rec.Body.String())
				}
				return ans
			}
			sam := map[string]any{"id": 7, "name": "Sam Agent", "email": "sam.agent@example.com", "type": "user"}
			if ans := reply(9878, map[string]any{"id": 5, "name": "Bot", "type": "agent_bot"}, false); ans.Status != "ignored" {
				t.Errorf("bot reply: %+v, want ignored", ans)
			}
			if ans := reply(9879, sam, true); ans.Status != "ignored" || ans.Reason != "private note" {
				t.Errorf("private note: %+v, want ignored", ans)
			}
			if ans := reply(9880, sam, false); ans.Status != "recorded" || ans.EventType != "first_response" {
				t.Errorf("agent reply: %+v, want first_response", ans)
			}
			if ans := reply(9881, sam, false); ans.Status != "ignored" {
				t.Errorf("second reply: %+v, want ignored", ans)
			}
			evs, _ := h.store.ConversationEvents(ctx, cwConv)
			if len(evs) != 1 || evs[0].Agent != "sam@example.com" || !evs[0].At.Equal(time.Date(2026, 11, 25, 9, 59, 0, 0, time.UTC)) {
				t.Errorf("events %+v, want one first_response by sam@example.com at the message's time", evs)
			}
		})
	}
}

// TestChatwootAnswersWhileAPIHangs: with Chatwoot's API hanging and the
// writer running, webhooks are still answered within Chatwoot's timeout.
func TestChatwootAnswersWhileAPIHangs(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	h := newHarness(t, "sqlite", Config{Chatwoot: cwConfig("")})
	h.publish(testPolicy)
	w := &jobs.ChatwootWriter{Store: h.store, BaseURL: hang.URL, Token: "t", Interval: 10 * time.Millisecond, Log: quietLog()}
	h.srv.cfg.Chatwoot.Wake = w.Wake
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(h.srv.Handler())
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second} // Chatwoot's webhook timeout
	for i := range 3 {
		body := cwEdit(t, bigDeal(t, "webhook_conversation_created.json"), func(m map[string]any) { m["id"] = 200 + i })
		resp, err := client.Post(srv.URL+"/v1/integrations/chatwoot", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("webhook %d not answered within Chatwoot's timeout: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("webhook %d: status %d", i, resp.StatusCode)
		}
	}
}

// TestChatwootConversationPanel: the conversation page links to the
// conversation in Chatwoot and lists what was written back and how it went.
func TestChatwootConversationPanel(t *testing.T) {
	cfg := cwConfig("")
	cfg.URL = "https://chat.example.com/"
	h := newHarness(t, "sqlite", Config{Chatwoot: cfg})
	h.publish(testPolicy)
	h.addUser("agent@example.com", feedback.RoleAgent, "")
	cookie := h.login("agent@example.com")
	failed := false
	api := newFakeChatwoot(t, func(_ int, path string) int {
		if strings.HasSuffix(path, "/assignments") && !failed { // the team, the first time
			failed = true
			return http.StatusBadGateway
		}
		return 0
	})
	if rec, _ := h.postChatwoot(bigDeal(t, "webhook_conversation_created.json"), nil); rec.Code != 200 {
		t.Fatalf("created: %d %s", rec.Code, rec.Body.String())
	}
	w := api.writer(h)
	for i, wants := range [][]string{
		{`href="https://chat.example.com/app/accounts/1/conversations/123"`, "priority high",
			"retrying after 1 failed attempts (chatwoot answered 502)", "queued", "<td>delivered</td>",
			"assign team 2", "assign agent 7", "private note: Hotlane: HIGH priority", "attributes hotlane_tier high"},
		{"delivered after 2 attempts", "<td>delivered</td>"},
	} {
		if _, err := w.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec := h.page(http.MethodGet, "/conversations/"+cwConv, nil, cookie, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("page: %d %s", rec.Code, rec.Body.String())
		}
		for _, want := range wants {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("pass %d: the conversation page lacks %q", i, want)
			}
		}
		h.clock.Add(11 * time.Second)
	}
	// Another platform's conversation has no Chatwoot panel.
	h.score(`{"conversation_id":"web-1","channel":"web","signals":{}}`)
	if rec := h.page(http.MethodGet, "/conversations/web-1", nil, cookie, nil); strings.Contains(rec.Body.String(), "<h2>Chatwoot</h2>") {
		t.Error("a conversation from elsewhere shows a Chatwoot panel")
	}
}

// TestChatwootRetryAfterFailure: a webhook whose handling failed is
// handled in full when Chatwoot (or an operator) sends it again.
func TestChatwootRetryAfterFailure(t *testing.T) {
	h := newHarness(t, "sqlite", Config{Chatwoot: cwConfig("")})
	msg := bigDeal(t, "webhook_message_created.json")
	headers := map[string]string{"X-Chatwoot-Delivery": "d-1"}
	// No ruleset yet: the message cannot be scored.
	if rec, _ := h.postChatwoot(msg, headers); rec.Code != http.StatusConflict {
		t.Fatalf("without a ruleset: %d %s, want 409", rec.Code, rec.Body.String())
	}
	h.publish(testPolicy)
	rec, ans := h.postChatwoot(msg, headers)
	if rec.Code != http.StatusOK || ans.Status != "scored" || len(ans.Writes) == 0 {
		t.Errorf("the same delivery again: %d %s, want scored with its writes", rec.Code, rec.Body.String())
	}
	st, err := h.store.ChatwootConversation(context.Background(), cwConv)
	if err != nil || st.Messages != 1 {
		t.Errorf("state %+v (%v), want the message counted once", st, err)
	}
}
