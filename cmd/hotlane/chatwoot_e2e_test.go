package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/feedbacktest"
	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// chatwootAPI stands in for Chatwoot's API and records what it is sent.
type chatwootAPI struct {
	mu   sync.Mutex
	got  []string // "path body"
	auth []string
}

func (a *chatwootAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.got = append(a.got, r.URL.Path+" "+string(b))
	a.auth = append(a.auth, r.Header.Get("api_access_token"))
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet { // the conversation, before attributes are merged
		_, _ = w.Write([]byte(`{"id":123,"custom_attributes":{"deal_size":60000}}`))
	}
}

func (a *chatwootAPI) calls() ([]string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...), append([]string(nil), a.auth...)
}

// TestChatwootEndToEnd runs the hotlane process configured for Chatwoot
// with flags and variables (the secret from a _FILE), and plays a chat as
// Chatwoot sends it, signed: created, a visitor message, an agent's
// hotlane-noise label, the agent's reply, resolved. The write-back reaches
// Chatwoot's API, and the KPIs and the alert's label show the chat.
func TestChatwootEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := feedbacktest.SharedData(t, "chatwoot")
	read := func(name string) map[string]any {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			api := &chatwootAPI{}
			fake := httptest.NewServer(api)
			defer fake.Close()
			secretFile := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(secretFile, []byte("cw-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("HOTLANE_CHATWOOT_WEBHOOK_SECRET_FILE", secretFile)
			t.Setenv("HOTLANE_CHATWOOT_API_TOKEN", "cw-token")
			addr := freeAddr(t)
			_, key := startProcess(t, "--demo", "--demo-history=false", "--addr", addr, "--db", storetest.DSN(t, engine),
				"--log-level", "error", "--delivery-interval", "100ms", "--sla-interval", "1h",
				"--chatwoot-account-id", "1", "--chatwoot-url", fake.URL,
				"--chatwoot-teams", "enterprise-sales=2", "--chatwoot-agents", "sam@example.com=7")
			base := "http://" + addr
			waitReady(t, base+"/readyz")

			post := func(m map[string]any, delivery string) map[string]any {
				t.Helper()
				body, _ := json.Marshal(m)
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				mac := hmac.New(sha256.New, []byte("cw-secret"))
				mac.Write([]byte(ts + "." + string(body)))
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/integrations/chatwoot", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Chatwoot-Delivery", delivery)
				req.Header.Set("X-Chatwoot-Timestamp", ts)
				req.Header.Set("X-Chatwoot-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
				resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
				if err != nil {
					t.Fatalf("%s: %v", m["event"], err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var out map[string]any
				if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
					t.Fatalf("%s: %d %s", m["event"], resp.StatusCode, b)
				}
				return out
			}
			attrs := map[string]any{"deal_size": 60000, "lifecycle_stage": "opportunity", "owner": "sam@example.com"}
			now := time.Now().UTC()

			created := read("webhook_conversation_created.json")
			created["custom_attributes"] = attrs
			created["waiting_since"] = now.Unix()
			if got := post(created, "d-1"); got["status"] != "scored" || got["tier"] != "urgent" {
				t.Fatalf("created: %v, want scored urgent", got)
			}
			msg := read("webhook_message_created.json")
			msg["id"], msg["content"] = 9877, "Can we get a quote for 50 seats?"
			conv := msg["conversation"].(map[string]any)
			conv["custom_attributes"], conv["waiting_since"] = attrs, now.Unix()
			if got := post(msg, "d-2"); got["status"] != "scored" {
				t.Fatalf("message: %v, want scored", got)
			}
			labelled := read("webhook_conversation_updated_assignee.json")
			labelled["custom_attributes"], labelled["labels"] = attrs, []string{"hotlane-noise"}
			labelled["changed_attributes"] = []any{map[string]any{"label_list": map[string]any{"previous_value": []string{}, "current_value": []string{"hotlane-noise"}}}}
			got := post(labelled, "d-3")
			if got["status"] != "labelled" || got["label"] != "noise" {
				t.Fatalf("label: %v, want labelled noise", got)
			}
			alertID, _ := got["alert_id"].(string)
			reply := read("webhook_message_created.json")
			reply["id"], reply["message_type"], reply["content"] = 9879, "outgoing", "Sure, sending it now."
			reply["created_at"] = now.Add(40 * time.Second).Format(time.RFC3339)
			reply["sender"] = map[string]any{"id": 7, "name": "Sam Agent", "email": "sam.agent@example.com", "type": "user"}
			if got := post(reply, "d-4"); got["event_type"] != "first_response" {
				t.Fatalf("reply: %v, want first_response", got)
			}
			if got := post(reply, "d-4"); got["status"] != "ignored" {
				t.Errorf("replayed delivery: %v, want ignored", got)
			}
			resolved := read("webhook_conversation_status_changed.json")
			resolved["updated_at"] = float64(now.Add(10 * time.Minute).Unix())
			if got := post(resolved, "d-5"); got["event_type"] != "closed" {
				t.Fatalf("resolved: %v, want closed", got)
			}

			c := client{t: t, base: base, key: key}
			var alert struct {
				Labels []struct {
					Agent string `json:"agent"`
					Label string `json:"label"`
				} `json:"labels"`
			}
			if code := c.call(http.MethodGet, "/v1/alerts/"+alertID, "", &alert); code != http.StatusOK {
				t.Fatalf("alert %s: %d", alertID, code)
			}
			if len(alert.Labels) != 1 || alert.Labels[0].Label != "noise" || alert.Labels[0].Agent != "sam@example.com" {
				t.Errorf("alert labels %+v, want noise by sam@example.com", alert.Labels)
			}
			var kpis struct {
				Weeks []struct {
					Overall struct {
						TruePositive struct {
							Useful int `json:"useful"`
							Noise  int `json:"noise"`
						} `json:"alert_true_positive_rate"`
						Response struct {
							Responded     int      `json:"responded"`
							MedianSeconds *float64 `json:"median_seconds"`
						} `json:"top_tier_response_time"`
					} `json:"overall"`
				} `json:"weeks"`
			}
			if code := c.call(http.MethodGet, "/v1/kpis?weeks=1", "", &kpis); code != http.StatusOK || len(kpis.Weeks) != 1 {
				t.Fatalf("kpis: %d %+v", code, kpis)
			}
			o := kpis.Weeks[0].Overall
			if o.TruePositive.Useful != 0 || o.TruePositive.Noise != 1 {
				t.Errorf("alert labels in the KPIs = %+v, want 1 noise", o.TruePositive)
			}
			if o.Response.Responded != 1 || o.Response.MedianSeconds == nil || *o.Response.MedianSeconds < 30 || *o.Response.MedianSeconds > 90 {
				t.Errorf("top-tier response time = %d responded, median %v s; want the reply about 40 s after the first urgent decision", o.Response.Responded, fmtPtr(o.Response.MedianSeconds, "%.1f"))
			}
			// The write-back reached Chatwoot: urgent, the team, Sam, a note
			// and the attributes.
			deadline := time.Now().Add(15 * time.Second)
			want := []string{"/toggle_priority {\"priority\":\"urgent\"}", "/assignments {\"team_id\":2}", "/assignments {\"assignee_id\":7}", "/messages ", "/custom_attributes "}
			for {
				calls, auth := api.calls()
				missing := ""
				for _, w := range want {
					found := false
					for _, c := range calls {
						found = found || strings.Contains(c, w)
					}
					if !found {
						missing = w
					}
				}
				if missing == "" {
					for _, a := range auth {
						if a != "cw-token" {
							t.Errorf("api_access_token %q, want the configured token", a)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Chatwoot never got %q; it got %v", missing, calls)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
