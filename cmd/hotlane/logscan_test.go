package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/server"
)

// syncBuffer is a bytes.Buffer the server's goroutines may write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A run that touches every secret and every kind of message text logs none
// of them, even at the debug level: API keys (right and wrong), passwords
// (right and wrong), the session cookie, a destination's signing secret,
// the Chatwoot webhook secret and API token, the visitor's message and a
// Chatwoot message's content.
func TestLogsHoldNoSecrets(t *testing.T) {
	const (
		webhookSecret = "whsec-Q7u2LmZp9"
		apiToken      = "cwtok-X4r8Nd2Vb"
		password      = "pass-Hq3Wz8Ke2Lm"
		wrongPassword = "wrong-Jx6Tc1Ry7Pn"
		wrongKey      = "hl_guess0Zk4Vq8Ws2"
		visitorText   = "visitor-text-M3k8Pq my card is 4111"
		chatwootText  = "chatwoot-text-R5n2Wx call me at 555"
	)
	db := filepath.Join(t.TempDir(), "h.db")
	var logs syncBuffer
	srv := startServeLogging(t, &logs, "--db", db, "--demo", "--demo-history=false", "--log-level", "debug",
		"--chatwoot-account-id", "1", "--chatwoot-webhook-secret", webhookSecret,
		"--chatwoot-url", "http://127.0.0.1:9", "--chatwoot-api-token", apiToken)
	if srv.key == "" {
		t.Fatalf("the demo printed no key: %s", srv.out)
	}
	base := "http://" + srv.addr
	if out, err := runCLIStdin(t, password+"\n", "user", "create", "--db", db, "--email", "lead@example.com",
		"--role", "admin", "--team", "sales", "--password-stdin"); err != nil {
		t.Fatalf("user create: %s %v", out, err)
	}

	call := func(method, path, key, body string, header http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	score := fmt.Sprintf(`{"conversation_id":"log-1","channel":"web","message":%q,"signals":{"deal_size":50000}}`, visitorText)
	if code, body := call(http.MethodPost, "/v1/score", srv.key, score, nil); code != http.StatusOK {
		t.Fatalf("score: %d %s", code, body)
	}
	if code, _ := call(http.MethodPost, "/v1/score", wrongKey, score, nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d, want 401", code)
	}
	code, body := call(http.MethodPost, "/v1/destinations", srv.key, `{"team":"sales","kind":"webhook","url":"https://hooks.example.com/x"}`, nil)
	if code != http.StatusCreated {
		t.Fatalf("create destination: %d %s", code, body)
	}
	var dest struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(body), &dest); err != nil || dest.Secret == "" {
		t.Fatalf("destination answer %s: %v", body, err)
	}
	code, body = call(http.MethodPost, "/v1/destinations/"+dest.ID+"/rotate-secret", srv.key, "", nil)
	var rotated struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(body), &rotated); code != http.StatusOK || err != nil || rotated.Secret == "" {
		t.Fatalf("rotate secret: %d %s", code, body)
	}

	// The web UI: a wrong password, then the right one, then a page.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for _, pw := range []string{wrongPassword, password} {
		res, err := browser.PostForm(base+"/login", url.Values{"email": {"lead@example.com"}, "password": {pw}, "next": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	u, _ := url.Parse(base)
	var session string
	for _, c := range jar.Cookies(u) {
		session = c.Value
	}
	if session == "" {
		t.Fatal("no session cookie after signing in")
	}
	res, err := browser.Get(base + "/settings/keys")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("settings page: %v %v", res, err)
	}
	res.Body.Close()

	// A signed Chatwoot message, and one with a bad signature.
	hook := fmt.Sprintf(`{"event":"message_created","id":9,"content":%q,"message_type":"incoming","account":{"id":1},`+
		`"conversation":{"id":77,"display_id":77,"status":"open","channel":"Channel::WebWidget"}}`, chatwootText)
	ts := fmt.Sprint(time.Now().Unix())
	if code, body := call(http.MethodPost, "/v1/integrations/chatwoot", "", hook, http.Header{
		"X-Chatwoot-Timestamp": {ts}, "X-Chatwoot-Signature": {server.SignChatwoot(webhookSecret, ts, []byte(hook))},
	}); code >= 300 {
		t.Fatalf("chatwoot webhook: %d %s", code, body)
	}
	if code, _ := call(http.MethodPost, "/v1/integrations/chatwoot", "", hook, http.Header{
		"X-Chatwoot-Timestamp": {ts}, "X-Chatwoot-Signature": {"sha256=" + strings.Repeat("0", 64)},
	}); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d, want 401", code)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}

	out := logs.String()
	// The log is the run's: it holds the requests made above.
	for _, want := range []string{`"route":"/v1/score"`, `"route":"/login"`, `"route":"/v1/integrations/chatwoot"`, `"level":"DEBUG"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("the log lacks %s; it is not this run's:\n%s", want, out)
		}
	}
	// Durations are logged in milliseconds, the unit in the key, not as
	// Go's nanosecond integers.
	if !strings.Contains(out, `"timeout_ms":20000`) || strings.Contains(out, `"timeout":20000000000`) {
		t.Errorf("the shutdown's timeout is not logged as timeout_ms")
	}
	for name, secret := range map[string]string{
		"the demo API key": srv.key, "a wrong API key": wrongKey,
		"the password": password, "a wrong password": wrongPassword,
		"the session token": session, "a destination's secret": dest.Secret, "a rotated secret": rotated.Secret,
		"the Chatwoot webhook secret": webhookSecret, "the Chatwoot API token": apiToken,
		"the visitor's message": visitorText, "a Chatwoot message": chatwootText,
		"part of the visitor's message": "M3k8Pq", "part of a Chatwoot message": "R5n2Wx",
	} {
		if i := strings.Index(out, secret); i >= 0 {
			line := out[strings.LastIndex(out[:i], "\n")+1:]
			line, _, _ = strings.Cut(line, "\n")
			t.Errorf("the log holds %s: %s", name, line)
		}
	}
}
