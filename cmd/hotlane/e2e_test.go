package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// received is one webhook delivery as the receiver saw it.
type received struct {
	deliveryID string
	alertID    string
	verified   bool // by the secret the receiver holds when asked
	signed     string
	body       []byte
}

// signedReceiver is a webhook endpoint that checks the Hotlane signature
// with its own HMAC code, independent of the sender's. It checks when its
// deliveries are read, with the secret it holds then: a destination's
// secret is known only once it is created, and the server may deliver
// alerts already fired (the demo's) before the test has stored it.
type signedReceiver struct {
	mu     sync.Mutex
	secret string
	got    []received
}

func (r *signedReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var payload map[string]any
	_ = json.Unmarshal(body, &payload)
	alertID := findString(payload, "id", "alert")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, received{deliveryID: req.Header.Get("Hotlane-Delivery"), alertID: alertID,
		signed: req.Header.Get("Hotlane-Signature"), body: body})
	w.WriteHeader(http.StatusOK)
}

// verifySignature checks a Hotlane-Signature header (t=TS,v1=HEX...) over
// body with secret.
func verifySignature(secret, sig string, body []byte) bool {
	var ts string
	var v1 []string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = append(v1, v)
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	ok := false
	for _, s := range v1 {
		ok = ok || hmac.Equal([]byte(s), []byte(want))
	}
	return ok
}

// findString returns payload[outer][key] or payload[key].
func findString(payload map[string]any, key, outer string) string {
	if o, ok := payload[outer].(map[string]any); ok {
		if s, ok := o[key].(string); ok {
			return s
		}
	}
	s, _ := payload[key].(string)
	return s
}

// subscribe makes a webhook destination of team that delivers to url
// (the receiver's server) through c, and keeps its signing secret for the
// receiver's checks.
func (r *signedReceiver) subscribe(c client, team, url string) {
	c.t.Helper()
	var dest struct {
		Secret string `json:"secret"`
	}
	if code := c.call(http.MethodPost, "/v1/destinations",
		fmt.Sprintf(`{"team":%q,"kind":"webhook","url":%q}`, team, url), &dest); code != http.StatusCreated || dest.Secret == "" {
		c.t.Fatalf("create destination: %d %+v", code, dest)
	}
	r.mu.Lock()
	r.secret = dest.Secret
	r.mu.Unlock()
}

func (r *signedReceiver) deliveries() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]received(nil), r.got...)
	for i := range out {
		out[i].verified = r.secret != "" && verifySignature(r.secret, out[i].signed, out[i].body)
	}
	return out
}

// client talks to a running server with one key.
type client struct {
	t    *testing.T
	base string
	key  string
}

func (c client) call(method, path, body string, out any, headers ...string) int {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// TestAlertLoopEndToEnd runs the whole feedback half through HTTP on a
// real server: a conversation scores urgent, its alert is delivered to a
// webhook that checks the signature, an agent labels it, the platform
// reports the first response and the conversion, and the week's KPIs
// show all of it.
func TestAlertLoopEndToEnd(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			dsn := storetest.DSN(t, engine)
			srv := startServe(t, "--db", dsn, "--demo", "--demo-history=false", "--log-level", "error", "--allow-destination-ranges", "loopback",
				"--delivery-interval", "100ms", "--sla-interval", "1h")
			defer func() {
				if err := srv.stop(t); err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			c := client{t: t, base: "http://" + srv.addr, key: srv.key}

			rcv := &signedReceiver{}
			hook := httptest.NewServer(rcv)
			defer hook.Close()
			rcv.subscribe(c, "enterprise-sales", hook.URL)

			var scored struct {
				Tier  string `json:"tier"`
				Alert *struct {
					ID     string `json:"id"`
					Status string `json:"status"`
				} `json:"alert"`
			}
			body := `{"conversation_id":"e2e-1","channel":"web","signals":{"deal_size":60000,"lifecycle_stage":"opportunity"}}`
			if code := c.call(http.MethodPost, "/v1/score", body, &scored); code != http.StatusOK {
				t.Fatalf("score: %d", code)
			}
			if scored.Tier != "urgent" || scored.Alert == nil || scored.Alert.Status != "fired" {
				t.Fatalf("score = %+v, want urgent with a fired alert", scored)
			}
			// The same tier again is a duplicate, not a second alert.
			c.call(http.MethodPost, "/v1/score", body, &scored)
			if scored.Alert == nil || scored.Alert.Status != "deduplicated" {
				t.Errorf("second score alert = %+v, want deduplicated", scored.Alert)
			}
			c.call(http.MethodPost, "/v1/score", body, nil)

			deadline := time.Now().Add(15 * time.Second)
			for len(rcv.deliveries()) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			got := rcv.deliveries()
			if len(got) == 0 {
				t.Fatal("the webhook received nothing")
			}
			first := got[0]
			if !first.verified || first.deliveryID == "" {
				t.Errorf("delivery %+v: signature not verified or no delivery id", first)
			}
			var alertID string
			var feed struct {
				Alerts []struct {
					ID     string `json:"id"`
					Status string `json:"status"`
				} `json:"alerts"`
			}
			c.call(http.MethodGet, "/v1/alerts?status=unlabelled", "", &feed)
			for _, a := range feed.Alerts {
				if a.Status == "fired" {
					alertID = a.ID
				}
			}
			if alertID == "" {
				t.Fatalf("no unlabelled fired alert in the feed: %+v", feed)
			}
			if first.alertID != alertID {
				t.Errorf("delivered alert %s, feed alert %s", first.alertID, alertID)
			}

			if code := c.call(http.MethodPost, "/v1/alerts/"+alertID+"/label", `{"label":"useful","agent":"ana"}`, nil); code != http.StatusOK {
				t.Fatalf("label: %d", code)
			}
			if code := c.call(http.MethodPost, "/v1/alerts/"+alertID+"/label", `{"label":"maybe","agent":"ana"}`, nil); code != http.StatusUnprocessableEntity {
				t.Errorf("label maybe: %d, want 422", code)
			}
			if code := c.call(http.MethodPost, "/v1/alerts/no-such-alert/label", `{"label":"noise","agent":"ana"}`, nil); code != http.StatusNotFound {
				t.Errorf("label of an unknown alert: %d, want 404", code)
			}
			at := time.Now().UTC().Add(30 * time.Second).Format(time.RFC3339)
			ev := fmt.Sprintf(`{"type":"first_response","agent":"ana","at":%q}`, at)
			for range 2 { // a retry with the same key writes once
				if code := c.call(http.MethodPost, "/v1/conversations/e2e-1/events", ev, nil, "Idempotency-Key", "fr-1"); code != http.StatusCreated {
					t.Fatalf("first_response: %d", code)
				}
			}
			if code := c.call(http.MethodPost, "/v1/conversations/e2e-1/events", `{"type":"converted","value":1200}`, nil, "Idempotency-Key", "fr-1"); code != http.StatusConflict {
				t.Errorf("same key, other body: %d, want 409", code)
			}
			if code := c.call(http.MethodPost, "/v1/conversations/e2e-1/events", `{"type":"converted","value":1200}`, nil); code != http.StatusCreated {
				t.Fatalf("converted: %d", code)
			}

			var kpis struct {
				Weeks []struct {
					Overall struct {
						TruePositive struct {
							Useful int      `json:"useful"`
							Noise  int      `json:"noise"`
							Rate   *float64 `json:"rate"`
						} `json:"alert_true_positive_rate"`
						Conversion struct {
							Converted     int      `json:"converted"`
							Conversations int      `json:"conversations"`
							Rate          *float64 `json:"rate"`
						} `json:"priority_conversion"`
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
			if o.TruePositive.Useful != 1 || o.TruePositive.Noise != 0 || o.TruePositive.Rate == nil || *o.TruePositive.Rate != 1 {
				t.Errorf("alert true-positive rate = %+v, want 1 useful of 1", o.TruePositive)
			}
			if o.Conversion.Converted != 1 || o.Conversion.Conversations != 1 {
				t.Errorf("priority conversion = %+v, want 1 of 1", o.Conversion)
			}
			if o.Response.Responded != 1 || o.Response.MedianSeconds == nil || *o.Response.MedianSeconds < 25 || *o.Response.MedianSeconds > 60 {
				t.Errorf("top-tier response time = %+v, want one response about 30 s after the first urgent decision", o.Response)
			}
		})
	}
}
