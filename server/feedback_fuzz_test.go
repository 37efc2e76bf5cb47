package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
	"github.com/hotlane/hotlane/templates"
)

// The handler fuzz targets drive the real router (middleware, handlers,
// templates) over fuzzStore, an in-memory store that never changes: every
// input meets the same state, and a run does thousands of requests a
// second without a database growing under it.

// fuzzStore answers as the store does for one admin, one live ruleset
// (version 1), one draft (version 2), alert a1 of conversation c1 and one
// destination. Its writes validate with the feedback functions the store
// calls, and refuse what PostgreSQL refuses (text holding NUL or invalid
// UTF-8) with the error the store gives then; they store nothing. A
// method the targets do not expect panics through the nil Store, and the
// router answers that with a 500 the targets report.
type fuzzStore struct {
	Store
	now    time.Time
	admin  feedback.User
	live   []byte
	source string
}

// fuzzIdemKey is an Idempotency-Key already used, for the event below.
const fuzzIdemKey = "retry-1"

// fuzzIdemEvent is the event fuzzIdemKey was first used for.
var fuzzIdemEvent = feedback.Event{ConversationID: "c1", Type: feedback.EventClosed}

// fuzzLivePolicy is the live ruleset: every section the settings form
// edits is present.
const fuzzLivePolicy = testPolicy + `alerts:
  hourly_budget: {default: 30, sales: 10}
  sla: {urgent: 60s, high: 3m}
`

func newFuzzStore(tb testing.TB) *fuzzStore {
	tb.Helper()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	doc, err := model.ParsePolicy([]byte(fuzzLivePolicy))
	if err != nil {
		tb.Fatal(err)
	}
	live, err := doc.Canonical()
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzStore{now: now, live: live, source: fuzzLivePolicy,
		admin: feedback.User{ID: 1, Email: "admin@example.com", Role: feedback.RoleAdmin, Team: "sales", CreatedAt: now.Add(-time.Hour)}}
}

// pgRefusal is PostgreSQL's error for text it cannot store (SQLSTATE
// 22021); the store wraps it in ErrInvalid, as translate does.
type pgRefusal struct{}

func (pgRefusal) Error() string {
	return `ERROR: invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)`
}
func (pgRefusal) SQLState() string { return "22021" }

// storable returns the error the store gives when PostgreSQL refuses one
// of texts, else nil.
func storable(op string, texts ...string) error {
	for _, s := range texts {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return fmt.Errorf("store: %s: %w: %w", op, feedback.ErrInvalid, pgRefusal{})
		}
	}
	return nil
}

func (s *fuzzStore) AuthenticateAPIKey(ctx context.Context, secret string) (feedback.APIKey, error) {
	if secret != "fuzz" {
		return feedback.APIKey{}, fmt.Errorf("store: api key: %w", feedback.ErrNotFound)
	}
	return feedback.APIKey{ID: 1, Name: "fuzz", Prefix: "fuzz", CreatedAt: s.now,
		Scopes: []string{feedback.ScopeScore, feedback.ScopeFeedback, feedback.ScopeAdmin}}, nil
}

func (s *fuzzStore) SharesLiveEvents() bool { return false }

func (s *fuzzStore) LiveVersions(ctx context.Context) (int, int, error) { return 1, 0, nil }

func (s *fuzzStore) ActiveModel(ctx context.Context) (feedback.ModelVersion, error) {
	return feedback.ModelVersion{}, fmt.Errorf("store: active model: %w", feedback.ErrNotFound)
}

func (s *fuzzStore) LivePolicy(ctx context.Context) (feedback.PolicyVersion, error) {
	return s.Policy(ctx, 1)
}

func (s *fuzzStore) Policy(ctx context.Context, version int) (feedback.PolicyVersion, error) {
	pv := feedback.PolicyVersion{Version: version, Document: s.live, Source: s.source, Author: s.admin.Email, CreatedAt: s.now.Add(-time.Hour)}
	switch version {
	case 1:
		pv.Status, pv.Live, pv.ActivatedAt = feedback.PolicyPublished, true, &pv.CreatedAt
	case 2:
		pv.Status, pv.Note = feedback.PolicyDraft, "try a lower bar"
	default:
		return feedback.PolicyVersion{}, fmt.Errorf("store: policy %d: %w", version, feedback.ErrNotFound)
	}
	return pv, nil
}

func (s *fuzzStore) PublishPolicy(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error) {
	if !json.Valid(document) {
		return feedback.PolicyVersion{}, fmt.Errorf("store: publish policy: %w: document is not valid JSON", feedback.ErrInvalid)
	}
	if err := storable("publish policy", string(document), source, author, note); err != nil {
		return feedback.PolicyVersion{}, err
	}
	return feedback.PolicyVersion{Version: 3, Document: document, Source: source, Author: author, Note: note,
		Status: feedback.PolicyPublished, Live: true, CreatedAt: s.now}, nil
}

func (s *fuzzStore) UpdateDraft(ctx context.Context, version int, document []byte, source, author, note string) (feedback.PolicyVersion, error) {
	if !json.Valid(document) {
		return feedback.PolicyVersion{}, fmt.Errorf("store: update draft: %w: document is not valid JSON", feedback.ErrInvalid)
	}
	if err := storable(fmt.Sprintf("update draft %d", version), string(document), source, author, note); err != nil {
		return feedback.PolicyVersion{}, err
	}
	if version != 2 {
		return feedback.PolicyVersion{}, fmt.Errorf("store: update draft %d: %w", version, feedback.ErrNotFound)
	}
	return feedback.PolicyVersion{Version: version, Document: document, Source: source, Author: author, Note: note,
		Status: feedback.PolicyDraft, CreatedAt: s.now}, nil
}

func (s *fuzzStore) Session(ctx context.Context, tokenHash string, at time.Time) (feedback.Session, error) {
	if tokenHash != feedback.HashSessionToken("fuzz") {
		return feedback.Session{}, fmt.Errorf("store: session: %w", feedback.ErrNotFound)
	}
	return feedback.Session{User: s.admin, CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)}, nil
}

func (s *fuzzStore) CountAlerts(ctx context.Context, q feedback.AlertQuery) (int, error) {
	return 1, nil
}

func (s *fuzzStore) Users(ctx context.Context) ([]feedback.User, error) {
	return []feedback.User{s.admin}, nil
}

func (s *fuzzStore) CreateUser(ctx context.Context, u feedback.NewUser) (feedback.User, error) {
	email, err := feedback.NormalizeEmail(u.Email)
	if err != nil {
		return feedback.User{}, fmt.Errorf("store: create user: %w", err)
	}
	u.Email = email
	if err := feedback.ValidateUser(u); err != nil {
		return feedback.User{}, fmt.Errorf("store: create user: %w", err)
	}
	if err := storable("create user "+u.Email, u.Email, string(u.Role), u.Team, u.PasswordHash); err != nil {
		return feedback.User{}, err
	}
	if u.Email == s.admin.Email {
		return feedback.User{}, fmt.Errorf("store: create user %s: %w", u.Email, feedback.ErrConflict)
	}
	return feedback.User{ID: 2, Email: u.Email, Role: u.Role, Team: u.Team, CreatedAt: s.now}, nil
}

func (s *fuzzStore) ListDestinations(ctx context.Context, team string) ([]feedback.Destination, error) {
	return []feedback.Destination{{ID: "d1", Team: "sales", Kind: feedback.DestinationSlack,
		URL: "https://hooks.slack.com/services/T0/B0/x", Tiers: []model.Tier{model.TierUrgent}, CreatedAt: s.now.Add(-time.Hour)}}, nil
}

func (s *fuzzStore) CreateDestination(ctx context.Context, nd feedback.NewDestination) (feedback.Destination, string, error) {
	if err := feedback.ValidateDestination(nd); err != nil {
		return feedback.Destination{}, "", fmt.Errorf("store: create destination: %w", err)
	}
	if err := storable("create destination", nd.Team, nd.Kind, nd.URL); err != nil {
		return feedback.Destination{}, "", err
	}
	var secret string
	if nd.Kind == feedback.DestinationWebhook {
		secret = "whsec_fuzz"
	}
	return feedback.Destination{ID: "d2", Team: nd.Team, Kind: nd.Kind, URL: nd.URL, Lead: nd.Lead, Tiers: nd.Tiers, CreatedAt: s.now}, secret, nil
}

func (s *fuzzStore) LabelAlert(ctx context.Context, alertID, agent, label, note string) (feedback.AlertLabel, error) {
	if err := feedback.ValidateLabel(agent, label, note); err != nil {
		return feedback.AlertLabel{}, fmt.Errorf("store: label alert %q: %w", alertID, err)
	}
	if err := storable(fmt.Sprintf("label alert %q", alertID), alertID, agent, label, note); err != nil {
		return feedback.AlertLabel{}, err
	}
	if alertID != "a1" {
		return feedback.AlertLabel{}, fmt.Errorf("store: label alert %q: %w", alertID, feedback.ErrNotFound)
	}
	return feedback.AlertLabel{AlertID: alertID, ConversationID: "c1", Agent: agent, Label: label, Note: note,
		CreatedAt: s.now, UpdatedAt: s.now}, nil
}

func (s *fuzzStore) AddEvent(ctx context.Context, e feedback.Event, idem feedback.Idempotency) (feedback.Event, bool, error) {
	if err := feedback.ValidateEvent(e); err != nil {
		return feedback.Event{}, false, fmt.Errorf("store: add event: %w", err)
	}
	if utf8.RuneCountInString(idem.Key) > feedback.MaxIdempotencyKeyLen {
		return feedback.Event{}, false, fmt.Errorf("store: add event: %w: idempotency key longer than %d characters", feedback.ErrInvalid, feedback.MaxIdempotencyKeyLen)
	}
	if err := storable("add event", e.ConversationID, e.Type, e.Agent, idem.Key); err != nil {
		return feedback.Event{}, false, err
	}
	if !e.At.IsZero() && (e.At.Year() < 1 || e.At.Year() > 9999) {
		return feedback.Event{}, false, fmt.Errorf("store: add event: at %v cannot be stored", e.At)
	}
	ev := e
	ev.ID, ev.CreatedAt = "e1", s.now
	if ev.At.IsZero() {
		ev.At = s.now
	}
	if idem.Key == fuzzIdemKey {
		if feedback.EventFingerprint(e) != feedback.EventFingerprint(fuzzIdemEvent) {
			return feedback.Event{}, false, fmt.Errorf("store: add event: %w", feedback.ErrIdempotencyConflict)
		}
		return ev, true, nil
	}
	if e.ConversationID != "c1" {
		return feedback.Event{}, false, fmt.Errorf("store: add event: conversation %q: %w", e.ConversationID, feedback.ErrNotFound)
	}
	return ev, false, nil
}

func (s *fuzzStore) Audit(ctx context.Context, e feedback.AuditEntry) error { return nil }

// logBuffer keeps what the server logs during one input, for the report
// of a failure: a 500 logs its cause, a recovered panic its stack.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// fuzzPages are the parsed templates, shared by the targets' servers.
var fuzzPages = sync.OnceValues(templates.Load)

// newFuzzServer builds the server the handler targets drive, on a
// fuzzStore and a fixed clock, logging into logs.
func newFuzzServer(tb testing.TB) (*Server, *logBuffer) {
	tb.Helper()
	pages, err := fuzzPages()
	if err != nil {
		tb.Fatal(err)
	}
	st := newFuzzStore(tb)
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return New(Config{Now: func() time.Time { return st.now }, Pages: pages}, st, log), logs
}

// serveFuzz sends one request and returns the answer.
func serveFuzz(s *Server, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// checkAPIAnswer checks an API answer: want when the request is
// accepted, else a 4xx with the JSON error shape (code and message).
func checkAPIAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder, want int, logs *logBuffer) {
	t.Helper()
	if rec.Code == want {
		return
	}
	if rec.Code < 400 || rec.Code > 499 {
		t.Fatalf("%s: status %d, want %d or a 4xx: %s\nlog:\n%s", what, rec.Code, want, rec.Body.String(), logs)
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%s: status %d with body %q, want the JSON error shape", what, rec.Code, rec.Body.String())
	}
}

// The bound on what one event or label request may allocate, through the
// whole router. Measured: about 10 KiB for a small request (the context,
// the recorder, the JSON answer), plus 4 to 8 bytes per body byte for
// plain bodies and up to 37 for a body nested thousands deep, which
// encoding/json reads through before refusing it. The bound is some
// twenty times the base and twice the worst per byte; decoding a body
// into a tree of values, or once more per field, goes past it.
const (
	bodyAllocBase    = 256 << 10
	bodyAllocPerByte = 64
)

// FuzzEventBody: no body, conversation id or Idempotency-Key makes
// POST /v1/conversations/:id/events panic, answer a 5xx or allocate past
// the bound. A request is recorded (201) or refused with a 4xx and the
// JSON error shape; a recorded event passed the store's validation.
func FuzzEventBody(f *testing.F) {
	for _, seed := range []struct{ id, key, body string }{
		{"c1", "", `{"type":"first_response","at":"2026-11-25T09:59:30Z","agent":"ana@example.com"}`},
		{"c1", "", `{"type":"converted","value":12000.5}`},
		{"c1", "", `{"type":"tier_feedback","tier":"urgent","agent":"bo"}`},
		{"c1", fuzzIdemKey, `{"type":"closed"}`},
		{"c1", fuzzIdemKey, `{"type":"lost"}`},
		{"c1", "k\x01", `{"type":"closed"}`},
		{"nope", "", `{"type":"closed"}`},
		{"c1", "", `{"type":"converted","value":-1}`},
		{"c1", "", `{"type":"converted","value":1e400}`},
		{"c1", "", `{"type":"lost","tier":"high"}`},
		{"c1", "", `{"type":"closed","at":"1999-01-01T00:00:00Z"}`},
		{"c1", "", `{"type":"closed","at":"+10000-01-01T00:00:00Z"}`},
		{"c1", "", `{"type":"closed","at":"tomorrow"}`},
		{"c1", "", `{"type":"closed","agent":" ana"}`},
		{"c1", "", `{"type":"closed","agent":"a\u0000b"}`},
		{"c1", "", `{"type":"closed","agent":"\ud800"}`},
		{"c1", "", `{"type":"closed","extra":1}`},
		{"c1", "", `{"type":5}`},
		{"c1", "", `{"type":"closed"} {}`},
		{"c1", "", `[{"type":"closed"}]`},
		{"c1", "", `null`},
		{"c1", "", ``},
		{"c1", "", "{\"type\":\"closed\",\"agent\":\"\xff\"}"},
		{"c\x00", "", `{"type":"closed"}`},
		{strings.Repeat("c", 129), "", `{"type":"closed"}`},
	} {
		f.Add(seed.id, seed.key, []byte(seed.body))
	}
	s, logs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, id, key string, body []byte) {
		logs.Reset()
		target := "/v1/conversations/" + url.PathEscape(id) + "/events"
		var rec *httptest.ResponseRecorder
		n := allocated(func() {
			req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer fuzz")
			if key != "" {
				req.Header["Idempotency-Key"] = []string{key}
			}
			rec = serveFuzz(s, req)
		})
		what := fmt.Sprintf("id %q, key %q, body %q", id, key, body)
		if bound := uint64(bodyAllocBase + bodyAllocPerByte*(len(body)+len(id)+len(key))); n > bound {
			t.Fatalf("%s: allocated %d bytes; the bound is %d", what, n, bound)
		}
		checkAPIAnswer(t, what, rec, http.StatusCreated, logs)
		if rec.Code != http.StatusCreated {
			return
		}
		var ev eventJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &ev); err != nil {
			t.Fatalf("%s: answer %q: %v", what, rec.Body.String(), err)
		}
		e := feedback.Event{ConversationID: ev.ConversationID, Type: ev.Type, Value: ev.Value,
			Tier: feedback.ParseEventTier(ev.Tier), Agent: ev.Agent}
		if err := feedback.ValidateEvent(e); err != nil || ev.ConversationID != "c1" || ev.At.IsZero() {
			t.Fatalf("%s: recorded %+v: %v", what, ev, err)
		}
	})
}

// FuzzLabelBody: no body or alert id makes POST /v1/alerts/:id/label
// panic, answer a 5xx or allocate past the bound. A label is recorded
// (200) or refused with a 4xx and the JSON error shape; a recorded one
// passed the store's validation.
func FuzzLabelBody(f *testing.F) {
	for _, seed := range []struct{ id, body string }{
		{"a1", `{"label":"useful","agent":"ana","note":"asked for a quote"}`},
		{"a1", `{"label":"noise","agent":"bo@example.com"}`},
		{"a1", `{"label":"meh","agent":"ana"}`},
		{"a1", `{"label":"useful"}`},
		{"a1", `{"label":"useful","agent":"` + strings.Repeat("x", 129) + `"}`},
		{"a1", `{"label":"useful","agent":"ana","note":"` + strings.Repeat("n", 2001) + `"}`},
		{"a1", `{"label":"useful","agent":"ana","note":"a\u0000b"}`},
		{"a1", `{"label":"useful","agent":"a\tb"}`},
		{"a1", `{"label":1,"agent":"ana"}`},
		{"a1", `{"label":"useful","agent":"ana","x":1}`},
		{"a1", `{"label":"useful","agent":"ana"}]`},
		{"a1", `{`},
		{"a1", `"useful"`},
		{"nope", `{"label":"useful","agent":"ana"}`},
		{"a\x7f", `{"label":"useful","agent":"ana"}`},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	s, logs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		logs.Reset()
		target := "/v1/alerts/" + url.PathEscape(id) + "/label"
		var rec *httptest.ResponseRecorder
		n := allocated(func() {
			req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer fuzz")
			rec = serveFuzz(s, req)
		})
		what := fmt.Sprintf("id %q, body %q", id, body)
		if bound := uint64(bodyAllocBase + bodyAllocPerByte*(len(body)+len(id))); n > bound {
			t.Fatalf("%s: allocated %d bytes; the bound is %d", what, n, bound)
		}
		checkAPIAnswer(t, what, rec, http.StatusOK, logs)
		if rec.Code != http.StatusOK {
			return
		}
		var l labelJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
			t.Fatalf("%s: answer %q: %v", what, rec.Body.String(), err)
		}
		if err := feedback.ValidateLabel(l.Agent, l.Label, l.Note); err != nil || l.AlertID != "a1" {
			t.Fatalf("%s: recorded %+v: %v", what, l, err)
		}
	})
}
