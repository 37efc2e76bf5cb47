package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
)

// The authorization matrix (issue 15): authzTable says who may call each
// route, TestAuthzMatrix checks that it names every registered route and
// nothing else, then sends every credential to every route and compares
// the answer with what the table allows. The table is written by hand,
// not derived from pageRoutes or the route registrations, so that a route
// registered without its middleware, or a page given another role, fails.

// authzKind is how a route authenticates its caller.
type authzKind int

const (
	// authzPublic routes answer anyone: probes, metrics, the OpenAPI
	// document, static files.
	authzPublic authzKind = iota
	// authzPublicPage routes are pages open to anyone (signing in), still
	// behind the pages' same-origin check.
	authzPublicPage
	// authzScope routes need an API key holding a scope.
	authzScope
	// authzRole routes are pages that need a session of at least a role.
	authzRole
	// authzChatwoot is the Chatwoot webhook, authenticated by the
	// signature of its body with the webhook's secret.
	authzChatwoot
)

// authzAccess is who may call a route.
type authzAccess struct {
	kind  authzKind
	scope string        // for authzScope
	role  feedback.Role // for authzRole
}

func (a authzAccess) String() string {
	switch a.kind {
	case authzPublic:
		return "public"
	case authzPublicPage:
		return "public page"
	case authzScope:
		return "scope " + a.scope
	case authzRole:
		return "role " + string(a.role)
	case authzChatwoot:
		return "chatwoot signature"
	}
	return "unknown"
}

// authzRoute is one row of the matrix: a registered route and who may
// call it, and the body to send when the default does not fit.
type authzRoute struct {
	method, path string
	who          authzAccess
	body         string
}

// authzTable is the matrix: every route the server registers, with who
// may call it.
func authzTable() []authzRoute {
	var (
		public   = authzAccess{kind: authzPublic}
		login    = authzAccess{kind: authzPublicPage}
		score    = authzAccess{kind: authzScope, scope: feedback.ScopeScore}
		fb       = authzAccess{kind: authzScope, scope: feedback.ScopeFeedback}
		adminKey = authzAccess{kind: authzScope, scope: feedback.ScopeAdmin}
		agent    = authzAccess{kind: authzRole, role: feedback.RoleAgent}
		lead     = authzAccess{kind: authzRole, role: feedback.RoleLead}
		admin    = authzAccess{kind: authzRole, role: feedback.RoleAdmin}
		chatwoot = authzAccess{kind: authzChatwoot}
	)
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	// Signing in with a real password shows the form reached its handler:
	// a wrong one would answer 401 like a refusal.
	loginForm := url.Values{"email": {"admin@example.com"}, "password": {testPassword}, "next": {"/"}}.Encode()
	return []authzRoute{
		// Operations.
		{method: get, path: "/healthz", who: public},
		{method: get, path: "/readyz", who: public},
		{method: get, path: "/metrics", who: public},
		{method: get, path: "/openapi.yaml", who: public},
		{method: get, path: "/static/*path", who: public},

		// The API: scoring.
		{method: post, path: "/v1/score", who: score},
		{method: get, path: "/v1/decisions/:id", who: score},
		{method: get, path: "/v1/conversations/:id", who: score},

		// The API: rules and drafts.
		{method: get, path: "/v1/rules", who: adminKey},
		{method: put, path: "/v1/rules", who: adminKey},
		{method: post, path: "/v1/rules/validate", who: adminKey},
		{method: get, path: "/v1/rulesets", who: adminKey},
		{method: post, path: "/v1/rulesets", who: adminKey},
		{method: get, path: "/v1/rulesets/:version", who: adminKey},
		{method: put, path: "/v1/rulesets/:version", who: adminKey},
		{method: del, path: "/v1/rulesets/:version", who: adminKey},
		{method: post, path: "/v1/rulesets/:version/activate", who: adminKey},
		{method: post, path: "/v1/rulesets/:version/publish", who: adminKey},
		{method: post, path: "/v1/rulesets/:version/backtest", who: adminKey},

		// The API: models, tuning, reports, audit.
		{method: get, path: "/v1/models", who: adminKey},
		{method: post, path: "/v1/models", who: adminKey},
		{method: get, path: "/v1/models/:version", who: adminKey},
		{method: post, path: "/v1/models/:version/activate", who: adminKey},
		{method: post, path: "/v1/models/:version/promote", who: adminKey},
		{method: post, path: "/v1/models/rollback", who: adminKey},
		{method: post, path: "/v1/jobs/tune", who: adminKey},
		{method: get, path: "/v1/jobs/runs", who: adminKey},
		{method: get, path: "/v1/reports", who: adminKey},
		{method: get, path: "/v1/reports/:id", who: adminKey},
		{method: post, path: "/v1/reports/:id/apply", who: adminKey},
		{method: get, path: "/v1/audit", who: adminKey},

		// The API: alert destinations.
		{method: get, path: "/v1/destinations", who: adminKey},
		{method: post, path: "/v1/destinations", who: adminKey},
		{method: del, path: "/v1/destinations/:id", who: adminKey},
		{method: post, path: "/v1/destinations/:id/rotate-secret", who: adminKey},

		// The API: the feedback loop.
		{method: get, path: "/v1/alerts", who: fb},
		{method: get, path: "/v1/alerts/:id", who: fb},
		{method: post, path: "/v1/alerts/:id/label", who: fb},
		{method: get, path: "/v1/conversations/:id/events", who: fb},
		{method: post, path: "/v1/conversations/:id/events", who: fb},
		{method: get, path: "/v1/kpis", who: fb},
		{method: get, path: "/v1/conversations", who: fb},
		{method: get, path: "/v1/stream", who: fb},

		// Chatwoot's webhook: an event Hotlane does not use, so a signed
		// request is acknowledged and changes nothing.
		{method: post, path: "/v1/integrations/chatwoot", who: chatwoot, body: `{"event":"authz_probe"}`},

		// The web UI: anyone.
		{method: get, path: "/login", who: login},
		{method: post, path: "/login", who: login, body: loginForm},
		{method: get, path: "/api", who: login},

		// The web UI: agents.
		{method: post, path: "/logout", who: agent},
		{method: get, path: "/", who: agent},
		{method: get, path: "/events", who: agent},
		{method: get, path: "/alerts", who: agent},
		{method: post, path: "/alerts/:id/label", who: agent},
		{method: get, path: "/conversations/:id", who: agent},
		{method: post, path: "/conversations/:id/review", who: agent},

		// The web UI: leads.
		{method: get, path: "/reports", who: lead},
		{method: get, path: "/reports/:id", who: lead},
		{method: post, path: "/reports/:id/apply", who: lead},
		{method: get, path: "/models", who: lead},
		{method: post, path: "/models/:version/promote", who: lead},
		{method: post, path: "/models/rollback", who: lead},
		{method: get, path: "/rules", who: lead},
		{method: post, path: "/rules/drafts", who: lead},
		{method: get, path: "/rules/:version", who: lead},
		{method: post, path: "/rules/:version", who: lead},
		{method: post, path: "/rules/:version/publish", who: lead},
		{method: post, path: "/rules/:version/backtest", who: lead},
		{method: post, path: "/rules/:version/rollback", who: lead},
		{method: post, path: "/rules/:version/delete", who: lead},
		{method: get, path: "/audit", who: lead},
		{method: get, path: "/kpis", who: lead},

		// The web UI: admins.
		{method: get, path: "/settings", who: admin},
		{method: get, path: "/settings/scoring", who: admin},
		{method: post, path: "/settings/scoring", who: admin},
		{method: get, path: "/settings/destinations", who: admin},
		{method: post, path: "/settings/destinations", who: admin},
		{method: post, path: "/settings/destinations/:id/delete", who: admin},
		{method: post, path: "/settings/destinations/:id/rotate", who: admin},
		{method: get, path: "/settings/keys", who: admin},
		{method: post, path: "/settings/keys", who: admin},
		{method: post, path: "/settings/keys/:id/revoke", who: admin},
		{method: get, path: "/settings/users", who: admin},
		{method: post, path: "/settings/users", who: admin},
		{method: post, path: "/settings/users/disable", who: admin},
	}
}

// authzGaps compares the table with the registered routes: a route the
// table lacks, a row naming no route, and a route listed twice are each a
// problem.
func authzGaps(table []authzRoute, routes gin.RoutesInfo) []string {
	var problems []string
	rows := map[string]bool{}
	for _, r := range table {
		k := r.method + " " + r.path
		if rows[k] {
			problems = append(problems, fmt.Sprintf("%s is in the table twice", k))
		}
		rows[k] = true
	}
	registered := map[string]bool{}
	for _, r := range routes {
		k := r.Method + " " + r.Path
		registered[k] = true
		if !rows[k] {
			problems = append(problems, fmt.Sprintf("route %s is registered but not in the table: say who may call it", k))
		}
	}
	for _, r := range table {
		if k := r.method + " " + r.path; !registered[k] {
			problems = append(problems, fmt.Sprintf("table row %s names no registered route", k))
		}
	}
	return problems
}

// authzParams fills a route's parameters with ids that exist nowhere: a
// request that passes authorization then answers 404 (or 4xx for its
// body) without changing anything.
var authzParams = strings.NewReplacer(":id", "999999", ":version", "999999", "*path", "hotlane.css")

// authzCred is one credential a request may carry.
type authzCred struct {
	name string
	// key is the bearer secret sent; keyScope is its one scope, "" when
	// the key is not valid.
	key, keyScope string
	// session makes a fresh session cookie for each request (signing out
	// ends only its own); role is the role of a valid one, "" when the
	// session must not count.
	session func(t *testing.T) *http.Cookie
	role    feedback.Role
	// origin replaces the headers of a same-origin browser request, for
	// a request from another site.
	origin map[string]string
	// sign signs the body as Chatwoot does, with this secret.
	sign string
}

// authzOutcome is what a request should get.
type authzOutcome int

const (
	authzAllowed     authzOutcome = iota // past authorization: not 401/403, no sign-in redirect
	authzNoKey                           // 401 with a Bearer challenge
	authzBadKey                          // 401 with invalid_token
	authzWrongScope                      // 403 forbidden
	authzSignIn                          // a page: 303 to /login?next=, or 401 for a POST
	authzLowRole                         // 403 from requireRole
	authzCrossOrigin                     // 403 from withSameOrigin
	authzUnsigned                        // 401 from the webhook's signature check
)

var authzOutcomeNames = map[authzOutcome]string{
	authzAllowed: "allowed", authzNoKey: "401 no key", authzBadKey: "401 invalid key",
	authzWrongScope: "403 wrong scope", authzSignIn: "sign in", authzLowRole: "403 role",
	authzCrossOrigin: "403 cross-origin", authzUnsigned: "401 unsigned",
}

func authzStateChanging(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// expect is what cred should get from route r, by the table.
func (c authzCred) expect(r authzRoute) authzOutcome {
	switch r.who.kind {
	case authzPublicPage:
		if authzStateChanging(r.method) && c.origin != nil {
			return authzCrossOrigin
		}
	case authzRole:
		switch {
		case authzStateChanging(r.method) && c.origin != nil:
			return authzCrossOrigin
		case c.role == "":
			return authzSignIn
		case !c.role.AtLeast(r.who.role):
			return authzLowRole
		}
	case authzScope:
		switch {
		case c.key == "":
			return authzNoKey
		case c.keyScope == "":
			return authzBadKey
		case c.keyScope != r.who.scope:
			return authzWrongScope
		}
	case authzChatwoot:
		if c.sign != cwSecret {
			return authzUnsigned
		}
	}
	return authzAllowed
}

// authzMatrix is a server on a real store with a credential of each kind.
type authzMatrix struct {
	*harness
	creds []authzCred
}

func newAuthzMatrix(t *testing.T, engine string, limits Limits) *authzMatrix {
	t.Helper()
	h := newHarness(t, engine, Config{Chatwoot: cwConfig(cwSecret), Limits: limits})
	h.publish(testPolicy)
	// A stream answers 200 and returns at once instead of running until
	// the request ends.
	h.srv.CloseStreams()
	ctx := context.Background()
	for _, r := range feedback.Roles {
		h.addUser(string(r)+"@example.com", r, "sales")
	}
	userID := func(email string) int64 {
		u, _, err := h.store.UserByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	// session makes a session of email's user that started at now minus
	// age, as login would have.
	session := func(email string, age time.Duration) func(t *testing.T) *http.Cookie {
		id := userID(email)
		return func(t *testing.T) *http.Cookie {
			token, hash := feedback.NewSessionToken()
			if _, err := h.store.CreateSession(ctx, id, hash, h.clock.Now().Add(-age)); err != nil {
				t.Fatalf("create session: %v", err)
			}
			return &http.Cookie{Name: sessionCookie, Value: token}
		}
	}
	// disabled makes an admin, signs them in and disables them, as an
	// admin would in the settings while the session is open.
	disabled := 0
	disabledSession := func(t *testing.T) *http.Cookie {
		disabled++
		email := fmt.Sprintf("disabled-%d@example.com", disabled)
		h.addUser(email, feedback.RoleAdmin, "sales")
		cookie := session(email, 0)(t)
		if err := h.store.DisableUser(ctx, email); err != nil {
			t.Fatal(err)
		}
		return cookie
	}
	key := func(scopes ...string) string {
		_, secret, err := h.store.CreateAPIKey(ctx, "authz-"+strings.Join(scopes, "-"), scopes)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	// The revoked key held every scope, and is revoked before its first
	// use, so no cache still trusts it.
	revoked, revokedSecret, err := h.store.CreateAPIKey(ctx, "authz-revoked", feedback.Scopes)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.RevokeAPIKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	m := &authzMatrix{harness: h}
	m.creds = []authzCred{
		{name: "no credential"},
		{name: "score key", key: key(feedback.ScopeScore), keyScope: feedback.ScopeScore},
		{name: "feedback key", key: key(feedback.ScopeFeedback), keyScope: feedback.ScopeFeedback},
		{name: "admin key", key: key(feedback.ScopeAdmin), keyScope: feedback.ScopeAdmin},
		{name: "revoked key", key: revokedSecret},
		{name: "unknown key", key: "hl_" + strings.Repeat("x", 40)},
		{name: "agent session", session: session("agent@example.com", 0), role: feedback.RoleAgent},
		{name: "lead session", session: session("lead@example.com", 0), role: feedback.RoleLead},
		{name: "admin session", session: session("admin@example.com", 0), role: feedback.RoleAdmin},
		{name: "expired admin session", session: session("admin@example.com", feedback.SessionMax+time.Minute)},
		{name: "idle admin session", session: session("admin@example.com", feedback.SessionIdle+time.Minute)},
		{name: "disabled admin's session", session: disabledSession},
		{name: "unknown session", session: func(*testing.T) *http.Cookie {
			return &http.Cookie{Name: sessionCookie, Value: "not-a-session"}
		}},
		{name: "admin session cross-site", session: session("admin@example.com", 0), role: feedback.RoleAdmin,
			origin: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{name: "admin session other origin", session: session("admin@example.com", 0), role: feedback.RoleAdmin,
			origin: map[string]string{"Origin": "https://evil.example"}},
		{name: "chatwoot signature", sign: cwSecret},
		{name: "chatwoot signature other secret", sign: "not-the-secret"},
	}
	return m
}

// send makes the request r with cred and returns the answer.
func (m *authzMatrix) send(t *testing.T, r authzRoute, cred authzCred) *httptest.ResponseRecorder {
	t.Helper()
	path := authzParams.Replace(r.path)
	body, contentType := r.body, ""
	page := r.who.kind == authzRole || r.who.kind == authzPublicPage
	switch {
	case page && authzStateChanging(r.method):
		contentType = "application/x-www-form-urlencoded"
	case authzStateChanging(r.method):
		// A body no handler takes: an authorized request stops at
		// validation and changes nothing.
		if body == "" {
			body = `{"authz_probe":true}`
		}
		contentType = "application/json"
	}
	req := httptest.NewRequest(r.method, "http://hotlane.test"+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case cred.origin != nil:
		for k, v := range cred.origin {
			req.Header.Set(k, v)
		}
	case authzStateChanging(r.method):
		// What a browser sends from the UI's own pages.
		req.Header.Set("Origin", "http://hotlane.test")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if cred.key != "" {
		req.Header.Set("Authorization", "Bearer "+cred.key)
	}
	if cred.session != nil {
		req.AddCookie(cred.session(t))
	}
	if cred.sign != "" {
		ts := strconv.FormatInt(m.clock.Now().Unix(), 10)
		req.Header.Set("X-Chatwoot-Timestamp", ts)
		req.Header.Set("X-Chatwoot-Signature", SignChatwoot(cred.sign, ts, []byte(body)))
	}
	rec := httptest.NewRecorder()
	m.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// authzCheck says what is wrong with rec as the answer to a request for
// path that should get want, or "" when nothing is.
func authzCheck(want authzOutcome, path, method string, rec *httptest.ResponseRecorder) string {
	body := rec.Body.String()
	var apiErr struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &apiErr)
	code, loc := apiErr.Error.Code, rec.Header().Get("Location")
	got := fmt.Sprintf("%d %q (Location %q)", rec.Code, trimBody(body), loc)
	switch {
	case rec.Code >= 500:
		return "got " + got + ": a server error"
	case code == "not_found" && strings.Contains(body, "no such endpoint"), code == "method_not_allowed":
		return "got " + got + ": the filled path matched no route"
	}
	ok := false
	switch want {
	case authzAllowed:
		ok = rec.Code != http.StatusUnauthorized && rec.Code != http.StatusForbidden && rec.Code != http.StatusTooManyRequests &&
			!strings.HasPrefix(loc, "/login?")
	case authzNoKey:
		ok = rec.Code == http.StatusUnauthorized && code == "unauthorized" &&
			strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ")
	case authzBadKey:
		ok = rec.Code == http.StatusUnauthorized && code == "unauthorized" &&
			strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
	case authzWrongScope:
		ok = rec.Code == http.StatusForbidden && code == "forbidden"
	case authzSignIn:
		if method == http.MethodGet {
			ok = rec.Code == http.StatusSeeOther && loc == "/login?next="+url.QueryEscape(path)
		} else {
			ok = rec.Code == http.StatusUnauthorized && code == "unauthorized"
		}
	case authzLowRole:
		ok = rec.Code == http.StatusForbidden && strings.Contains(body, "Your role cannot open this page")
	case authzCrossOrigin:
		ok = rec.Code == http.StatusForbidden && strings.HasPrefix(body, "Cross-site request refused.")
	case authzUnsigned:
		ok = rec.Code == http.StatusUnauthorized && (code == "missing_signature" || code == "bad_signature")
	}
	if !ok {
		return fmt.Sprintf("got %s, want %s", got, authzOutcomeNames[want])
	}
	return ""
}

func trimBody(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// probe sends every credential to route r and returns what went wrong,
// one line per credential.
func (m *authzMatrix) probe(t *testing.T, r authzRoute) map[string]string {
	t.Helper()
	problems := map[string]string{}
	for _, cred := range m.creds {
		want := cred.expect(r)
		rec := m.send(t, r, cred)
		if p := authzCheck(want, authzParams.Replace(r.path), r.method, rec); p != "" {
			problems[cred.name] = p
		}
	}
	return problems
}

func TestAuthzMatrix(t *testing.T) {
	type variant struct {
		name, engine string
		limits       Limits
	}
	var variants []variant
	for _, engine := range engines(t) {
		variants = append(variants, variant{name: engine, engine: engine})
	}
	// The abuse limits sit in the authentication middleware: on (as
	// serve's defaults turn the per-address one on) but far from
	// reached, they must not change who gets in.
	variants = append(variants, variant{name: "sqlite with limits", engine: "sqlite",
		limits: Limits{KeyRate: 1e6, KeyBurst: 1_000_000, AnonRate: 1e6, AnonBurst: 1_000_000}})
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m := newAuthzMatrix(t, v.engine, v.limits)
			table := authzTable()
			for _, p := range authzGaps(table, m.srv.engine.Routes()) {
				t.Error(p)
			}
			for _, r := range table {
				t.Run(r.method+" "+r.path, func(t *testing.T) {
					for _, cred := range m.creds {
						t.Run(cred.name, func(t *testing.T) {
							want := cred.expect(r)
							rec := m.send(t, r, cred)
							if p := authzCheck(want, authzParams.Replace(r.path), r.method, rec); p != "" {
								t.Errorf("%s %s (%s) with %s: %s", r.method, r.path, r.who, cred.name, p)
							}
						})
					}
				})
			}
		})
	}
}

// The matching of table and routes reports a route without a row, a row
// without a route and a row listed twice.
func TestAuthzMatrixGaps(t *testing.T) {
	table := []authzRoute{
		{method: http.MethodGet, path: "/healthz"},
		{method: http.MethodGet, path: "/v1/rules"},
		{method: http.MethodGet, path: "/v1/rules"},
		{method: http.MethodPost, path: "/v1/gone"},
	}
	routes := gin.RoutesInfo{
		{Method: http.MethodGet, Path: "/healthz"},
		{Method: http.MethodGet, Path: "/v1/rules"},
		{Method: http.MethodPut, Path: "/v1/rules"},
		{Method: http.MethodGet, Path: "/settings/new"},
	}
	got := authzGaps(table, routes)
	want := []string{
		"GET /v1/rules is in the table twice",
		"route PUT /v1/rules is registered but not in the table: say who may call it",
		"route GET /settings/new is registered but not in the table: say who may call it",
		"table row POST /v1/gone names no registered route",
	}
	if !slices.Equal(got, want) {
		t.Errorf("authzGaps =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := authzGaps(table[:2], routes[:2]); len(got) != 0 {
		t.Errorf("authzGaps of a matching table = %q, want none", got)
	}
}

// The matrix fails when a route's middleware and its row disagree: each
// case is a row that says something else than the route does, as the row
// of a route registered without its middleware (or with another) would,
// and the credentials that must then see a difference.
func TestAuthzMatrixDetectsDrift(t *testing.T) {
	m := newAuthzMatrix(t, "sqlite", Limits{})
	var (
		scope = func(s string) authzAccess { return authzAccess{kind: authzScope, scope: s} }
		role  = func(r feedback.Role) authzAccess { return authzAccess{kind: authzRole, role: r} }
	)
	tests := []struct {
		name string
		row  authzRoute
		// caught are credentials that must report a problem.
		caught []string
	}{
		{"admin route registered with the score scope",
			authzRoute{method: http.MethodGet, path: "/v1/rules", who: scope(feedback.ScopeScore)},
			[]string{"score key", "admin key"}},
		{"API route registered without requireScope",
			authzRoute{method: http.MethodGet, path: "/v1/kpis", who: authzAccess{kind: authzPublic}},
			[]string{"no credential", "score key", "admin key", "revoked key", "admin session"}},
		{"admin page open to agents",
			authzRoute{method: http.MethodGet, path: "/settings/keys", who: role(feedback.RoleAgent)},
			[]string{"agent session", "lead session"}},
		{"agent action raised to lead",
			authzRoute{method: http.MethodPost, path: "/alerts/:id/label", who: role(feedback.RoleLead)},
			[]string{"agent session"}},
		{"page registered without a session",
			authzRoute{method: http.MethodGet, path: "/kpis", who: authzAccess{kind: authzPublic}},
			[]string{"no credential", "agent session", "expired admin session", "disabled admin's session", "admin key"}},
		{"webhook taking API keys",
			authzRoute{method: http.MethodPost, path: "/v1/integrations/chatwoot", who: scope(feedback.ScopeAdmin), body: `{"event":"authz_probe"}`},
			[]string{"admin key", "chatwoot signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := m.probe(t, tt.row)
			for _, name := range tt.caught {
				if problems[name] == "" {
					t.Errorf("%s: no problem reported; all problems: %v", name, problems)
				}
			}
		})
	}
	// The same routes as the table says report nothing.
	for _, r := range authzTable() {
		for _, tt := range tests {
			if tt.row.method == r.method && tt.row.path == r.path {
				if problems := m.probe(t, r); len(problems) != 0 {
					t.Errorf("%s %s as the table says: %v", r.method, r.path, problems)
				}
			}
		}
	}
}
