package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

const testPassword = "correct horse battery"

// addUser creates a user with testPassword.
func (h *harness) addUser(email string, role feedback.Role, team string) {
	h.t.Helper()
	hash, err := feedback.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.CreateUser(context.Background(), feedback.NewUser{Email: email, Role: role, Team: team, PasswordHash: hash}); err != nil {
		h.t.Fatal(err)
	}
}

// page sends a request as a browser on this site would, with the session
// cookie when there is one.
func (h *harness) page(method, path string, form url.Values, cookie *http.Cookie, headers map[string]string) *httptest.ResponseRecorder {
	h.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, "http://hotlane.test"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", "http://hotlane.test")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func sessionCookieOf(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return c
		}
	}
	return nil
}

// login signs email in and returns the session cookie.
func (h *harness) login(email string) *http.Cookie {
	h.t.Helper()
	rec := h.page(http.MethodPost, "/login", url.Values{"email": {email}, "password": {testPassword}, "next": {"/"}}, nil, nil)
	c := sessionCookieOf(rec)
	if rec.Code != http.StatusSeeOther || c == nil {
		h.t.Fatalf("login %s = %d %s", email, rec.Code, rec.Body.String())
	}
	return c
}

// webHarness is a harness with one user of each role, signed in, and a
// scored conversation with an alert.
type webHarness struct {
	*harness
	cookies  map[feedback.Role]*http.Cookie
	alertID  string
	convID   string
	decision string
}

func newWebHarness(t *testing.T, engine string) *webHarness {
	h := newHarness(t, engine, Config{})
	h.publish(testPolicy)
	w := &webHarness{harness: h, cookies: map[feedback.Role]*http.Cookie{}}
	for _, r := range feedback.Roles {
		h.addUser(string(r)+"@example.com", r, "sales")
		w.cookies[r] = h.login(string(r) + "@example.com")
	}
	d, rec := h.score(`{"conversation_id":"chat-1","channel":"whatsapp","signals":{"deal_size":20000}}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("score: %d %s", rec.Code, rec.Body.String())
	}
	var list struct {
		Alerts []struct {
			ID string `json:"id"`
		} `json:"alerts"`
	}
	h.do(http.MethodGet, "/v1/alerts", "", "", h.key, &list)
	if len(list.Alerts) != 1 {
		t.Fatalf("alerts after scoring: %+v", list)
	}
	w.alertID, w.convID, w.decision = list.Alerts[0].ID, d.ConversationID, d.DecisionID
	return w
}

// Every page and action against every role: anonymous visitors are sent to
// sign in, each role reaches what its rank allows. A page route missing
// from pageRoutes fails here.
func TestPageRoles(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	routes := w.srv.pageRoutes()
	known := map[string]bool{}
	for _, r := range routes {
		known[r.method+" "+r.path] = true
	}
	for _, r := range w.srv.engine.Routes() {
		api := strings.HasPrefix(r.Path, "/v1/") || slices.Contains([]string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/static/*path"}, r.Path)
		if !api && !known[r.Method+" "+r.Path] {
			t.Errorf("page route %s %s is not in pageRoutes, so it has no role", r.Method, r.Path)
		}
	}
	// Signing out ends the session the later cases use: it goes last.
	slices.SortStableFunc(routes, func(a, b pageRoute) int {
		if (a.path == "/logout") == (b.path == "/logout") {
			return 0
		}
		if a.path == "/logout" {
			return 1
		}
		return -1
	})
	for _, r := range routes {
		path := strings.Replace(r.path, "/alerts/:id", "/alerts/"+w.alertID, 1)
		path = strings.Replace(path, "/conversations/:id", "/conversations/"+w.convID, 1)
		path = strings.Replace(path, "/rules/:version", "/rules/1", 1) // the live version: edits are conflicts
		var form url.Values
		if r.method == http.MethodPost {
			form = url.Values{"label": {"useful"}, "tier": {"high"}, "email": {"x@example.com"}, "password": {"wrong password"}}
		}
		for _, role := range append([]feedback.Role{""}, feedback.Roles...) {
			t.Run(fmt.Sprintf("%s %s as %q", r.method, r.path, role), func(t *testing.T) {
				if r.path == "/events" {
					return // a stream; TestPageEvents covers it
				}
				rec := w.page(r.method, path, form, w.cookies[role], nil)
				allowed := r.role == "" || (role != "" && role.AtLeast(r.role))
				switch {
				case !allowed && role == "" && r.method == http.MethodGet:
					if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login?next=") {
						t.Errorf("anonymous = %d to %q, want 303 to /login", rec.Code, rec.Header().Get("Location"))
					}
				case !allowed && role == "":
					if rec.Code != http.StatusUnauthorized {
						t.Errorf("anonymous = %d, want 401", rec.Code)
					}
				case !allowed:
					if rec.Code != http.StatusForbidden {
						t.Errorf("%s = %d, want 403", role, rec.Code)
					}
				default:
					// Allowed: never refused; a missing report or model is
					// a 404 or 409, which is not a refusal.
					if r.path == "/login" && r.method == http.MethodPost {
						return // a wrong password in the form: TestLogin covers it
					}
					refused := rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || rec.Code >= 500
					conflict := rec.Code == http.StatusConflict && strings.HasPrefix(r.path, "/rules/")
					// The role table's form fits no settings form: a 404 or
					// 422 there is the form refused, not the role.
					settings := strings.HasPrefix(r.path, "/settings/") && r.method == http.MethodPost
					if refused || rec.Code >= 400 && !conflict && !settings && !strings.HasPrefix(r.path, "/reports") && !strings.HasPrefix(r.path, "/models") {
						t.Errorf("%s = %d %s", role, rec.Code, rec.Body.String())
					}
				}
			})
		}
	}
}

func TestLogin(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			h.addUser("ana@example.com", feedback.RoleAgent, "sales")
			h.addUser("off@example.com", feedback.RoleAgent, "sales")
			if err := h.store.DisableUser(context.Background(), "off@example.com"); err != nil {
				t.Fatal(err)
			}

			// The login page, and an anonymous visit sent to it and back.
			if rec := h.page(http.MethodGet, "/login?next=/alerts", nil, nil, nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `value="/alerts"`) {
				t.Errorf("login page = %d", rec.Code)
			}
			rec := h.page(http.MethodPost, "/login", url.Values{"email": {"Ana@Example.com"}, "password": {testPassword}, "next": {"/alerts?status=unlabelled"}}, nil, nil)
			c := sessionCookieOf(rec)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/alerts?status=unlabelled" || c == nil {
				t.Fatalf("login = %d to %q", rec.Code, rec.Header().Get("Location"))
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, not Secure over http", c)
			}

			// An unknown email, a wrong password and a disabled user get the
			// same answer, the form re-rendered with its message.
			var bodies []string
			for _, email := range []string{"nobody@example.com", "ana@example.com", "off@example.com"} {
				rec := h.page(http.MethodPost, "/login", url.Values{"email": {email}, "password": {"not the password"}}, nil, nil)
				if email == "off@example.com" {
					rec = h.page(http.MethodPost, "/login", url.Values{"email": {email}, "password": {testPassword}}, nil, nil)
				}
				if rec.Code != http.StatusUnauthorized || sessionCookieOf(rec) != nil {
					t.Errorf("%s: %d", email, rec.Code)
				}
				body := strings.Replace(rec.Body.String(), email, "EMAIL", 1)
				bodies = append(bodies, body)
				if !strings.Contains(body, "The email or the password is wrong.") {
					t.Errorf("%s: no message in the re-rendered form", email)
				}
			}
			if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
				t.Error("an unknown email, a wrong password and a disabled user are answered differently")
			}

			// Another site as destination falls back to the queue.
			for _, next := range []string{"//evil.example/x", "https://evil.example", "/\\evil.example"} {
				h.addUser("x"+fmt.Sprint(len(next))+"@example.com", feedback.RoleAgent, "")
				rec := h.page(http.MethodPost, "/login", url.Values{"email": {"x" + fmt.Sprint(len(next)) + "@example.com"}, "password": {testPassword}, "next": {next}}, nil, nil)
				if rec.Header().Get("Location") != "/" {
					t.Errorf("next %q: redirected to %q", next, rec.Header().Get("Location"))
				}
			}

			// Logout ends the session.
			if rec := h.page(http.MethodPost, "/logout", nil, c, nil); rec.Code != http.StatusSeeOther {
				t.Errorf("logout = %d", rec.Code)
			}
			if rec := h.page(http.MethodGet, "/", nil, c, nil); rec.Code != http.StatusSeeOther {
				t.Errorf("queue after logout = %d, want 303 to login", rec.Code)
			}
		})
	}
}

func TestLoginRateLimited(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.addUser("ana@example.com", feedback.RoleAgent, "")
	for i := range loginFailsPerEmail {
		if rec := h.page(http.MethodPost, "/login", url.Values{"email": {"ana@example.com"}, "password": {"wrong"}}, nil, nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d", i, rec.Code)
		}
	}
	// Even the right password is refused now, for this account only.
	rec := h.page(http.MethodPost, "/login", url.Values{"email": {"ana@example.com"}, "password": {testPassword}}, nil, nil)
	if rec.Code != http.StatusTooManyRequests || sessionCookieOf(rec) != nil || rec.Header().Get("Retry-After") == "" {
		t.Errorf("after %d failures = %d", loginFailsPerEmail, rec.Code)
	}
	// An unknown email is limited the same way.
	for range loginFailsPerEmail {
		h.page(http.MethodPost, "/login", url.Values{"email": {"ghost@example.com"}, "password": {"wrong"}}, nil, nil)
	}
	if rec := h.page(http.MethodPost, "/login", url.Values{"email": {"ghost@example.com"}, "password": {"wrong"}}, nil, nil); rec.Code != http.StatusTooManyRequests {
		t.Errorf("unknown email after the limit = %d, want 429 like a known one", rec.Code)
	}
	// Later the window has passed.
	h.clock.Add(loginWindow)
	if rec := h.page(http.MethodPost, "/login", url.Values{"email": {"ana@example.com"}, "password": {testPassword}}, nil, nil); rec.Code != http.StatusSeeOther {
		t.Errorf("after the window = %d", rec.Code)
	}
	// Per address: many accounts from one client.
	for i := range loginFailsPerClient {
		h.page(http.MethodPost, "/login", url.Values{"email": {fmt.Sprintf("u%d@example.com", i)}, "password": {"wrong"}}, nil, nil)
	}
	if rec := h.page(http.MethodPost, "/login", url.Values{"email": {"ana@example.com"}, "password": {testPassword}}, nil, nil); rec.Code != http.StatusTooManyRequests {
		t.Errorf("after %d failures from one address = %d", loginFailsPerClient, rec.Code)
	}
}

// A state-changing request from another origin is refused, whoever's
// cookie it carries.
func TestPagesRefuseCrossOrigin(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	agent := w.cookies[feedback.RoleAgent]
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
	} {
		rec := w.page(http.MethodPost, "/alerts/"+w.alertID+"/label", url.Values{"label": {"noise"}}, agent, hdr)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%v: %d, want 403", hdr, rec.Code)
		}
	}
	for _, path := range []string{"/logout", "/conversations/" + w.convID + "/review"} {
		if rec := w.page(http.MethodPost, path, url.Values{"tier": {"low"}}, agent, map[string]string{"Sec-Fetch-Site": "cross-site"}); rec.Code != http.StatusForbidden {
			t.Errorf("%s cross-site = %d", path, rec.Code)
		}
	}
	a, err := w.store.Alert(context.Background(), w.alertID)
	if err != nil || len(a.Labels) != 0 {
		t.Errorf("a refused label was stored: %+v %v", a.Labels, err)
	}
}

func TestPageHeaders(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	rec := w.page(http.MethodGet, "/", nil, w.cookies[feedback.RoleAgent], nil)
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(rec.Body.String(), " on") && strings.Contains(rec.Body.String(), "onclick=") {
		t.Error("an inline event handler in the page")
	}
	if rec := w.page(http.MethodGet, "/static/hotlane.css", nil, nil, nil); rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("static css = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// A label made in the UI names the signed-in user, whatever the form says;
// nobody can label as someone else.
func TestLabelFormRecordsSignedInUser(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWebHarness(t, engine)
			rec := w.page(http.MethodPost, "/alerts/"+w.alertID+"/label",
				url.Values{"label": {"useful"}, "note": {"buyer"}, "agent": {"someone@else.com"}}, w.cookies[feedback.RoleAgent],
				map[string]string{"Accept": "application/json"})
			if rec.Code != http.StatusOK {
				t.Fatalf("label = %d %s", rec.Code, rec.Body.String())
			}
			var out struct {
				Label      string `json:"label"`
				Unlabelled int    `json:"unlabelled"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Label != "useful" || out.Unlabelled != 0 {
				t.Errorf("answer %s", rec.Body.String())
			}
			a, err := w.store.Alert(context.Background(), w.alertID)
			if err != nil || len(a.Labels) != 1 || a.Labels[0].Agent != "agent@example.com" || a.Labels[0].Note != "buyer" {
				t.Errorf("labels = %+v, %v", a.Labels, err)
			}
			// Without a script: a redirect back to the feed, and the form's
			// errors on a page.
			rec = w.page(http.MethodPost, "/alerts/"+w.alertID+"/label", url.Values{"label": {"noise"}, "return": {"/alerts?status=labelled"}}, w.cookies[feedback.RoleLead], nil)
			if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/alerts?status=labelled#a-") {
				t.Errorf("form label = %d to %q", rec.Code, rec.Header().Get("Location"))
			}
			rec = w.page(http.MethodPost, "/alerts/"+w.alertID+"/label", url.Values{"label": {"maybe"}}, w.cookies[feedback.RoleAgent], nil)
			if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "must be useful or noise") {
				t.Errorf("bad label = %d %s", rec.Code, rec.Body.String())
			}
			rec = w.page(http.MethodPost, "/alerts/nope/label", url.Values{"label": {"noise"}}, w.cookies[feedback.RoleAgent], nil)
			if rec.Code != http.StatusNotFound {
				t.Errorf("unknown alert = %d", rec.Code)
			}
		})
	}
}

func TestQueueAndConversationPages(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	agent := w.cookies[feedback.RoleAgent]
	w.score(`{"conversation_id":"chat-2","channel":"web","signals":{"pricing_page_views":1}}`)
	body := w.page(http.MethodGet, "/", nil, agent, nil).Body.String()
	for _, want := range []string{"1 high chat waiting, of 2 open conversations.", `id="c-chat-1"`, `id="c-chat-2"`, "big-deal (at least high, +2.5)", "retention"} {
		if !strings.Contains(strings.ReplaceAll(body, "&#43;", "+"), want) {
			t.Errorf("queue lacks %q", want)
		}
	}
	if strings.Index(body, `id="c-chat-1"`) > strings.Index(body, `id="c-chat-2"`) {
		t.Error("the high conversation is not above the low one")
	}
	body = w.page(http.MethodGet, "/?tier=low", nil, agent, nil).Body.String()
	if strings.Contains(body, `id="c-chat-1"`) || !strings.Contains(body, `id="c-chat-2"`) {
		t.Error("the tier filter does not filter")
	}
	body = w.page(http.MethodGet, "/?tier=urgent&team=nobody", nil, agent, nil).Body.String()
	if !strings.Contains(body, "No open conversation matches these filters.") {
		t.Error("no empty state for an empty filter")
	}

	// Conversation page and the tier review.
	rec := w.page(http.MethodGet, "/conversations/"+w.convID, nil, agent, nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "deal_size") || !strings.Contains(rec.Body.String(), "Is <span class=\"tier tier-high\">high</span> the right tier") {
		t.Errorf("conversation page = %d", rec.Code)
	}
	rec = w.page(http.MethodPost, "/conversations/"+w.convID+"/review", url.Values{"action": {"correct"}, "correct": {"medium"}}, agent, nil)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("review = %d %s", rec.Code, rec.Body.String())
	}
	events, err := w.store.ConversationEvents(context.Background(), w.convID)
	if err != nil || len(events) != 1 || events[0].Type != feedback.EventTierFeedback || events[0].Agent != "agent@example.com" || events[0].Tier.String() != "medium" {
		t.Errorf("events = %+v, %v", events, err)
	}
	if rec := w.page(http.MethodPost, "/conversations/"+w.convID+"/review", url.Values{"tier": {"huge"}}, agent, nil); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Choose urgent, high, medium or low.") {
		t.Errorf("bad review = %d", rec.Code)
	}
	if rec := w.page(http.MethodGet, "/conversations/nope", nil, agent, nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown conversation = %d", rec.Code)
	}
	body = w.page(http.MethodGet, "/alerts?status=unlabelled", nil, agent, nil).Body.String()
	if !strings.Contains(body, "1 alert of the last 7 days waits for your label") || !strings.Contains(body, `id="a-`+w.alertID+`"`) {
		t.Errorf("alerts page lacks the alert or the verdict")
	}
}

// A disabled user's session stops working at the next request.
func TestDisabledUserSessionRefused(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	agent := w.cookies[feedback.RoleAgent]
	if rec := w.page(http.MethodGet, "/", nil, agent, nil); rec.Code != http.StatusOK {
		t.Fatalf("queue = %d", rec.Code)
	}
	if err := w.store.DisableUser(context.Background(), "agent@example.com"); err != nil {
		t.Fatal(err)
	}
	if rec := w.page(http.MethodGet, "/", nil, agent, nil); rec.Code != http.StatusSeeOther {
		t.Errorf("queue after disabling = %d, want 303 to login", rec.Code)
	}
	if rec := w.page(http.MethodPost, "/alerts/"+w.alertID+"/label", url.Values{"label": {"useful"}}, agent, nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("label after disabling = %d, want 401", rec.Code)
	}
}

// readEvents reads SSE events from a stream until n arrived or the
// deadline passed.
func readEvents(t *testing.T, resp *http.Response, n int) []liveEvent {
	t.Helper()
	var out []liveEvent
	got := make(chan liveEvent)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev liveEvent
				if json.Unmarshal([]byte(data), &ev) == nil {
					got <- ev
				}
			}
		}
		close(got)
	}()
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-got:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-deadline:
			return out
		}
	}
	return out
}

// The queue's stream (on the session) and /v1/stream (on a key) carry a
// decision, its alert, a label and an event as they happen.
func TestPageEvents(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	ts := httptest.NewServer(w.srv.Handler())
	defer ts.Close()
	defer w.srv.CloseStreams()
	open := func(path string, cookie *http.Cookie, key string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s = %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	page := open("/events", w.cookies[feedback.RoleAgent], "")
	api := open("/v1/stream", nil, w.key)
	for w.srv.events.streams() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	w.score(`{"conversation_id":"chat-7","channel":"whatsapp","signals":{"deal_size":20000}}`)
	w.do(http.MethodPost, "/v1/conversations/chat-7/events", "application/json", `{"type":"first_response"}`, w.key, nil)
	evs := readEvents(t, api, 3)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type+":"+ev.ConversationID)
	}
	if want := []string{"decision:chat-7", "alert:chat-7", "event:chat-7"}; !slices.Equal(types, want) {
		t.Errorf("/v1/stream = %v, want %v", types, want)
	}
	// The page's stream says that something changed, however much did.
	sc := bufio.NewScanner(page.Body)
	changed := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "event: ") {
				changed <- line
				return
			}
		}
	}()
	select {
	case line := <-changed:
		if line != "event: changed" {
			t.Errorf("page stream sent %q, want event: changed", line)
		}
	case <-time.After(10 * time.Second):
		t.Error("the page stream sent nothing after a decision")
	}
	if rec := w.page(http.MethodGet, "/v1/stream", nil, nil, nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("/v1/stream without a key = %d", rec.Code)
	}
}

// On PostgreSQL a decision scored by one process reaches the streams of
// another through LISTEN/NOTIFY.
func TestLiveEventsAcrossProcesses(t *testing.T) {
	dsn, _ := postgresThrough(t, "", nil)
	a := newHarnessOn(t, openStoreAt(t, dsn), Config{})
	b := newHarnessOn(t, openStoreAt(t, dsn), Config{})
	a.publish(testPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.srv.RunLiveEvents(ctx) }()
	go func() { _ = b.srv.RunLiveEvents(ctx) }()
	seq, wake := b.srv.events.position()
	if err := b.srv.live.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		// Scored on a until b's listener is up and hears one.
		if _, rec := a.score(fmt.Sprintf(`{"conversation_id":"x%d","channel":"web","signals":{}}`, i)); rec.Code != http.StatusOK {
			t.Fatalf("score on a = %d", rec.Code)
		}
		select {
		case <-wake:
			evs, _, _, _ := b.srv.events.since(seq, nil)
			if len(evs) == 0 || evs[0].Type != "decision" || !strings.HasPrefix(evs[0].ConversationID, "x") {
				t.Errorf("b got %+v", evs)
			}
			return
		case <-time.After(300 * time.Millisecond):
		case <-deadline:
			t.Fatal("a decision on one process never reached the other's streams")
		}
	}
}

func TestReasonText(t *testing.T) {
	reasons := []model.Reason{
		{Kind: "rule", Name: "tiny", Contribution: 0.01},
		{Kind: "feature", Name: "deal_size", Contribution: 1.3, Value: 80000.0},
		{Kind: "rule", Name: "enterprise", Contribution: -0.04, TierFloor: "urgent"},
		{Kind: "feature", Name: "plan=pro", Contribution: -0.7, Value: "pro"},
		{Kind: "rule", Name: "angry", Contribution: 2},
	}
	got := reasonText(reasons, map[string]string{"angry": "The visitor is angry"}, 3)
	want := "enterprise (at least urgent), The visitor is angry (+2.0), deal_size 80000 (+1.3), 1 more"
	if got != want {
		t.Errorf("reasonText = %q\nwant          %q", got, want)
	}
	if got := reasonText(nil, nil, 3); !strings.Contains(got, "base rate") {
		t.Errorf("no reasons: %q", got)
	}
}

// A stream that falls more than the ring behind is told it lost events;
// publishing costs the same with or without readers.
func TestBrokerRing(t *testing.T) {
	b := newBroker()
	seq, wake := b.position()
	b.publish(liveEvent{Type: "decision", ConversationID: "c0"})
	select {
	case <-wake:
	default:
		t.Fatal("publish did not wake the stream")
	}
	evs, next, _, lost := b.since(seq, nil)
	if len(evs) != 1 || lost || next != seq+1 {
		t.Fatalf("since = %d events, lost %v, next %d", len(evs), lost, next)
	}
	for i := range brokerRing + 10 {
		b.publish(liveEvent{Type: "decision", ConversationID: fmt.Sprint(i)})
	}
	evs, _, _, lost = b.since(next, nil)
	if !lost || len(evs) != brokerRing || evs[len(evs)-1].ConversationID != fmt.Sprint(brokerRing+9) {
		t.Errorf("after overflow: %d events, lost %v", len(evs), lost)
	}
}

// The leads' pages on a real tuning run: the report's verdict, metrics,
// rules and thresholds, promoting its candidate and rolling it back, and
// applying its proposal, each recorded as the signed-in lead.
func TestReportAndModelPages(t *testing.T) {
	h, report := tunedHarness(t, 3, false)
	h.addUser("lead@example.com", feedback.RoleLead, "")
	h.addUser("agent@example.com", feedback.RoleAgent, "")
	lead, agent := h.login("lead@example.com"), h.login("agent@example.com")

	if body := h.page(http.MethodGet, "/", nil, agent, nil).Body.String(); strings.Contains(body, `href="/reports"`) {
		t.Error("an agent's navigation links to the reports")
	}
	body := h.page(http.MethodGet, "/reports", nil, lead, nil).Body.String()
	if !strings.Contains(body, "/reports/"+report.ID) || !strings.Contains(body, `href="/models"`) {
		t.Fatalf("reports page lacks the report or the lead's navigation")
	}
	rec := h.page(http.MethodGet, "/reports/"+report.ID, nil, lead, nil)
	body = rec.Body.String()
	for _, want := range []string{"PR-AUC", "ROC-AUC", "Calibration error", "big-deal", "Proposed thresholds", "Alerts and KPIs by week", "too small to judge"} {
		if !strings.Contains(body, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	// The charts: both models' curves, the calibration plot with its
	// diagonal, the weeks' alerts and the four KPIs, each with points.
	for _, id := range []string{"pr-chart", "calibration-chart", "alerts-chart"} {
		i := strings.Index(body, `id="`+id+`"`)
		if i < 0 {
			t.Errorf("report page lacks the %s", id)
			continue
		}
		fig := body[i : i+strings.Index(body[i:], "</figure>")]
		if strings.Count(fig, `class="pt"`) < 3 || !strings.Contains(fig, "<svg") {
			t.Errorf("%s has %d points", id, strings.Count(fig, `class="pt"`))
		}
	}
	if n := strings.Count(body, "<polyline"); n < 4 {
		t.Errorf("report page draws %d lines, want both PR curves and both calibration lines at least", n)
	}
	if report.CandidateModelVersion != 0 && !strings.Contains(body, fmt.Sprintf("Promote model %d", report.CandidateModelVersion)) {
		t.Errorf("report page offers no promotion of the candidate")
	}
	if rec := h.page(http.MethodGet, "/reports/latest", nil, lead, nil); rec.Code != http.StatusOK {
		t.Errorf("latest report = %d", rec.Code)
	}
	if rec := h.page(http.MethodGet, "/reports/nope", nil, lead, nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown report = %d", rec.Code)
	}
	if report.CandidateModelVersion == 0 {
		t.Fatal("the run trained no candidate")
	}
	v := strconv.Itoa(report.CandidateModelVersion)
	// Judged on a small holdout: promoting needs the confirmation.
	rec = h.page(http.MethodPost, "/models/"+v+"/promote", url.Values{}, lead, nil)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "too small to judge") {
		t.Errorf("promotion without confirmation = %d", rec.Code)
	}
	if cur := h.srv.live.Current(); cur != nil && cur.ModelVersion != 0 {
		t.Fatalf("an unconfirmed promotion went live: model %d", cur.ModelVersion)
	}
	rec = h.page(http.MethodPost, "/models/"+v+"/promote", url.Values{"return": {"/reports/" + report.ID}, "confirm": {"small-holdout"}}, lead, nil)
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "done=promoted") {
		t.Fatalf("promote = %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if cur := h.srv.live.Current(); cur == nil || cur.ModelVersion != report.CandidateModelVersion {
		t.Errorf("after promoting, the server scores with %+v", cur)
	}
	body = h.page(http.MethodGet, "/models", nil, lead, nil).Body.String()
	if !regexp.MustCompile(`<td class="num">\d+ chats, \d+ positive</td><td class="num">0\.\d{3}</td>`).MatchString(body) {
		t.Errorf("models page lacks the holdout size and metrics")
	}
	if !strings.Contains(body, "Model "+v+" scores every conversation") || !strings.Contains(body, "Roll back model "+v) {
		t.Errorf("models page after promotion lacks the verdict or the rollback")
	}
	if rec := h.page(http.MethodPost, "/models/rollback", url.Values{}, lead, nil); rec.Code != http.StatusSeeOther {
		t.Errorf("rollback = %d", rec.Code)
	}
	if cur := h.srv.live.Current(); cur == nil || cur.ModelVersion != 0 {
		t.Errorf("after the rollback, the server scores with model %d, want the rules", cur.ModelVersion)
	}
	if rec := h.page(http.MethodPost, "/models/rollback", url.Values{}, lead, nil); rec.Code != http.StatusConflict {
		t.Errorf("second rollback = %d, want 409", rec.Code)
	}
	if rec := h.page(http.MethodPost, "/models/"+v+"/promote", url.Values{}, agent, nil); rec.Code != http.StatusForbidden {
		t.Errorf("an agent promoting = %d, want 403", rec.Code)
	}

	// The audit log names the lead for each step, with the live pair
	// before and after.
	var audit struct {
		Entries []struct {
			Actor   string         `json:"actor"`
			Action  string         `json:"action"`
			Subject string         `json:"subject"`
			Before  map[string]any `json:"before"`
			After   map[string]any `json:"after"`
		} `json:"entries"`
	}
	h.do(http.MethodGet, "/v1/audit", "", "", h.key, &audit)
	var steps []string
	for _, e := range audit.Entries {
		steps = append(steps, e.Actor+" "+e.Action+" "+e.Subject)
	}
	want := []string{"user:lead@example.com model.rollback model", "user:lead@example.com model.promote model " + v, "apikey:test ruleset.publish ruleset 1"}
	if !slices.Equal(steps, want) {
		t.Errorf("audit log = %q\nwant %q", steps, want)
	}
	if len(audit.Entries) > 1 && (audit.Entries[1].Before["model"] != 0.0 || audit.Entries[1].After["model"] != float64(report.CandidateModelVersion) ||
		audit.Entries[1].After["confirmed_small_holdout"] != true) {
		t.Errorf("promotion entry before %v after %v", audit.Entries[1].Before, audit.Entries[1].After)
	}
	body = h.page(http.MethodGet, "/audit", nil, lead, nil).Body.String()
	if !strings.Contains(body, "model.rollback") || !strings.Contains(body, "user:lead@example.com") {
		t.Error("the audit page lacks the lead's rollback")
	}
	if rec := h.page(http.MethodGet, "/audit", nil, agent, nil); rec.Code != http.StatusForbidden {
		t.Errorf("an agent on /audit = %d", rec.Code)
	}

	// The KPIs: the four charts and conversion by deal value, and the
	// numbers behind them, for a tier too.
	for _, path := range []string{"/kpis", "/kpis?weeks=4&tier=high&channel=web"} {
		rec := h.page(http.MethodGet, path, nil, lead, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || strings.Count(body, "<svg") != 5 || !strings.Contains(body, "Priority conversion") {
			t.Errorf("%s = %d with %d charts", path, rec.Code, strings.Count(body, "<svg"))
		}
	}
}

// tunedHarness is a SQLite harness whose tuning job (manual promotion) ran
// once, as of 2026-11-20, on 300 conversations scored in the two weeks
// before with their outcomes: deals of 5000 or more convert (and, with
// plan, conversations on the pro plan too), one in ten the other way.
// seed makes the history.
func tunedHarness(t *testing.T, seed uint64, plan bool) (*harness, feedback.Report) {
	t.Helper()
	st := openStore(t, "sqlite")
	m := NewMetrics()
	live := feedback.NewLive(st, m.LiveOptions(quietLog()))
	h := newHarnessOn(t, st, Config{Metrics: m, Live: live,
		Tuning: &jobs.Tuner{Store: st, Live: live, Log: quietLog(), Promotion: model.PromoteManual}})
	h.publish(tuningPolicy)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for i := range 300 {
		deal := 1000 + rng.IntN(9000)
		signals := fmt.Sprintf(`{"deal_size":%d}`, deal)
		converts := deal >= 5000
		if plan {
			p := []string{"free", "pro", "team"}[rng.IntN(3)]
			signals = fmt.Sprintf(`{"deal_size":%d,"plan":%q}`, deal, p)
			converts = converts || p == "pro"
		}
		at := fmt.Sprintf("2026-11-%02dT%02d:00:00Z", 6+i/24, i%24)
		id := fmt.Sprintf("c%d", i)
		if _, rec := h.score(fmt.Sprintf(`{"conversation_id":%q,"channel":"web","occurred_at":%q,"signals":%s}`, id, at, signals)); rec.Code != http.StatusOK {
			t.Fatalf("score: %d", rec.Code)
		}
		typ := "lost"
		if converts != (rng.IntN(10) == 0) {
			typ = "converted"
		}
		h.do(http.MethodPost, "/v1/conversations/"+id+"/events", "application/json", fmt.Sprintf(`{"type":%q,"at":%q}`, typ, at), h.key, nil)
	}
	var tuned struct {
		Report feedback.Report `json:"report"`
	}
	if rec := h.do(http.MethodPost, "/v1/jobs/tune", "application/json", `{"as_of":"2026-11-20T00:00:00Z"}`, h.key, &tuned); rec.Code != http.StatusOK {
		t.Fatalf("tune: %d %s", rec.Code, rec.Body.String())
	}
	return h, tuned.Report
}
