package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
)

// feedbackStore is what the label, alert feed and event endpoints need
// from the store.
type feedbackStore interface {
	LabelAlert(ctx context.Context, alertID, agent, label, note string) (feedback.AlertLabel, error)
	Alert(ctx context.Context, id string) (feedback.Alert, error)
	Alerts(ctx context.Context, q feedback.AlertQuery) (feedback.AlertPage, error)
	AddEvent(ctx context.Context, e feedback.Event, idem feedback.Idempotency) (feedback.Event, bool, error)
	ConversationEvents(ctx context.Context, conversationID string) ([]feedback.Event, error)
}

// feedbackAPI serves labels, the alert feed, conversation events and KPIs.
type feedbackAPI struct {
	store feedbackStore
	kpis  kpiStore
}

// feedbackRoutes registers the feedback endpoints on v1; all need the
// feedback scope.
func (s *Server) feedbackRoutes(v1 *gin.RouterGroup) {
	fb := s.requireScope(feedback.ScopeFeedback)
	v1.GET("/alerts", fb, s.handleListAlerts)
	v1.GET("/alerts/:id", fb, s.handleGetAlert)
	v1.POST("/alerts/:id/label", fb, s.handleLabelAlert)
	v1.GET("/conversations/:id/events", fb, s.handleListEvents)
	v1.POST("/conversations/:id/events", fb, s.handleAddEvent)
	v1.GET("/kpis", fb, s.handleKPIs)
	v1.GET("/conversations", fb, s.handleListConversations)
	v1.GET("/stream", fb, s.handleStream)
}

// unprocessable is a well-formed request with a value Hotlane refuses.
// limitParam reads the limit query parameter of a listing: def when
// absent, else an integer from 1 to maxLimit (422 otherwise).
func limitParam(c *gin.Context, def, maxLimit int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, unprocessable("limit", fmt.Sprintf("must be an integer from 1 to %d", maxLimit))
	}
	return n, nil
}

func unprocessable(field, message string) *APIError {
	return &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_value", Message: message, Field: field}
}

// fromInvalid turns a store validation error ("invalid input: field:
// message") into a 422 naming the field.
func fromInvalid(err error) error {
	if !errors.Is(err, feedback.ErrInvalid) {
		return err
	}
	if fromDatabase(err) {
		return unprocessable("", "the database refused a value of this request")
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, feedback.ErrInvalid.Error()+": "); i >= 0 {
		msg = msg[i+len(feedback.ErrInvalid.Error())+2:]
	}
	field, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(field, " \"") {
		return unprocessable("", msg)
	}
	return unprocessable(field, rest)
}

// decodeStrict decodes a JSON object into v, refusing anything that is not
// an object (null included), unknown fields, trailing data and strings
// holding NUL, which PostgreSQL cannot store and SQLite would.
func decodeStrict(body []byte, v any) error {
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the body must be a JSON object"}
	}
	if jsonHasNUL(body) {
		return &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_field", Message: "a string contains a NUL character"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return unprocessable(typeErr.Field, fmt.Sprintf("must be a %s", typeErr.Type.String()))
		}
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the body is not a valid JSON object: " + err.Error()}
	}
	if dec.More() {
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "unexpected data after the JSON object"}
	}
	return nil
}

// jsonHasNUL reports whether a JSON text holds the escape \u0000 (a raw
// NUL is not valid JSON): a backslash-u-0000 preceded by an even number of
// further backslashes, so an escaped backslash followed by "u0000" is not
// one.
func jsonHasNUL(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		n := 0
		for k := at - 1; k >= 0 && body[k] == '\\'; k-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		i = at + 5
	}
}

func idParam(c *gin.Context) (string, error) {
	id := c.Param("id")
	if id == "" || utf8.RuneCountInString(id) > maxConversationID || hasControl(id) {
		return "", unprocessable("id", "must be 1 to 128 characters without control characters")
	}
	return id, nil
}

// labelJSON is an agent's label as the API shows it.
type labelJSON struct {
	AlertID        string    `json:"alert_id"`
	ConversationID string    `json:"conversation_id"`
	Agent          string    `json:"agent"`
	Label          string    `json:"label"`
	Note           string    `json:"note,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toLabelJSON(l feedback.AlertLabel) labelJSON {
	return labelJSON{AlertID: l.AlertID, ConversationID: l.ConversationID, Agent: l.Agent, Label: l.Label,
		Note: l.Note, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
}

// alertJSON is an alert as the feed shows it.
type alertJSON struct {
	ID             string      `json:"id"`
	Kind           string      `json:"kind"`
	ConversationID string      `json:"conversation_id"`
	DecisionID     string      `json:"decision_id"`
	Channel        string      `json:"channel"`
	Tier           string      `json:"tier"`
	Score          float64     `json:"score"`
	Team           string      `json:"team"`
	Owner          string      `json:"owner,omitempty"`
	Status         string      `json:"status"`
	Reason         string      `json:"reason,omitempty"`
	SampleRate     *float64    `json:"sample_rate,omitempty"`
	CreatedAt      time.Time   `json:"created_at"`
	DispatchedAt   *time.Time  `json:"dispatched_at,omitempty"`
	Labels         []labelJSON `json:"labels"`
}

func toAlertJSON(a feedback.Alert) alertJSON {
	out := alertJSON{ID: a.ID, Kind: a.Kind, ConversationID: a.ConversationID, DecisionID: a.DecisionID,
		Channel: a.Channel, Tier: a.Tier.String(), Score: a.Score, Team: a.Team, Owner: a.Owner, Status: a.Status,
		Reason: a.Reason, CreatedAt: a.CreatedAt, DispatchedAt: a.DispatchedAt, Labels: []labelJSON{}}
	if a.SampleRate > 0 {
		r := a.SampleRate
		out.SampleRate = &r
	}
	for _, l := range a.Labels {
		out.Labels = append(out.Labels, toLabelJSON(l))
	}
	return out
}

type labelRequest struct {
	Label string `json:"label"`
	Agent string `json:"agent"`
	Note  string `json:"note"`
}

// handleLabelAlert records an agent's useful/noise verdict on an alert.
func (s *Server) handleLabelAlert(c *gin.Context) {
	id, err := idParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	body, err := readJSONBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	var req labelRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(c, s.log, err)
		return
	}
	if err := feedback.ValidateLabel(req.Agent, req.Label, req.Note); err != nil {
		writeError(c, s.log, fromInvalid(err))
		return
	}
	l, err := s.fb.store.LabelAlert(c.Request.Context(), id, req.Agent, req.Label, req.Note)
	if err != nil {
		writeError(c, s.log, fromInvalid(fmt.Errorf("label alert: %w", err)))
		return
	}
	s.emit(liveEvent{Type: "label", ConversationID: l.ConversationID, AlertID: l.AlertID})
	c.JSON(http.StatusOK, toLabelJSON(l))
}

func (s *Server) handleGetAlert(c *gin.Context) {
	id, err := idParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	a, err := s.fb.store.Alert(c.Request.Context(), id)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("get alert: %w", err))
		return
	}
	c.JSON(http.StatusOK, toAlertJSON(a))
}

// handleListAlerts serves the alert feed, newest first, a page at a time.
func (s *Server) handleListAlerts(c *gin.Context) {
	q := feedback.AlertQuery{Status: c.Query("status"), Team: c.Query("team"), Cursor: c.Query("cursor")}
	switch q.Status {
	case "", feedback.FeedUnlabelled, feedback.FeedLabelled, feedback.FeedSuppressed:
	default:
		writeError(c, s.log, unprocessable("status", "must be unlabelled, labelled or suppressed"))
		return
	}
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(c, s.log, unprocessable("since", "must be an RFC 3339 timestamp such as 2026-11-25T10:00:00Z"))
			return
		}
		q.Since = t
	}
	if c.Query("limit") != "" {
		n, err := limitParam(c, 0, 500)
		if err != nil {
			writeError(c, s.log, err)
			return
		}
		q.Limit = n
	}
	page, err := s.fb.store.Alerts(c.Request.Context(), q)
	if err != nil {
		writeError(c, s.log, fromInvalid(fmt.Errorf("list alerts: %w", err)))
		return
	}
	out := struct {
		Alerts     []alertJSON `json:"alerts"`
		NextCursor *string     `json:"next_cursor"`
	}{Alerts: make([]alertJSON, 0, len(page.Alerts))}
	for _, a := range page.Alerts {
		out.Alerts = append(out.Alerts, toAlertJSON(a))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	c.JSON(http.StatusOK, out)
}

// eventRequest is the body of POST /v1/conversations/{id}/events.
type eventRequest struct {
	Type  string   `json:"type"`
	At    *string  `json:"at"`
	Value *float64 `json:"value"`
	Tier  string   `json:"tier"`
	Agent string   `json:"agent"`
}

// eventJSON is an event as the API shows it.
type eventJSON struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversation_id"`
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	Value          *float64  `json:"value,omitempty"`
	Tier           string    `json:"tier,omitempty"`
	Agent          string    `json:"agent,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

func toEventJSON(e feedback.Event) eventJSON {
	return eventJSON{ID: e.ID, ConversationID: e.ConversationID, Type: e.Type, At: e.At, Value: e.Value,
		Tier: e.Tier.String(), Agent: e.Agent, CreatedAt: e.CreatedAt}
}

// validIdempotencyKey accepts 1 to 255 printable ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > feedback.MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// handleAddEvent records an event of a conversation. With an
// Idempotency-Key header a retry answers the first response (marked
// Idempotent-Replayed: true) without writing again; the same key with a
// different body is a 409.
func (s *Server) handleAddEvent(c *gin.Context) {
	id, err := idParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	var idem feedback.Idempotency
	if h := c.Request.Header.Values("Idempotency-Key"); len(h) > 0 {
		if len(h) > 1 || !validIdempotencyKey(h[0]) {
			writeError(c, s.log, badRequest("Idempotency-Key", "must be one header of 1 to 255 printable ASCII characters"))
			return
		}
		idem.Key = h[0]
		if v, ok := c.Get(ctxAPIKey); ok {
			if k, ok := v.(feedback.APIKey); ok {
				idem.APIKeyID = k.ID
			}
		}
	}
	body, err := readJSONBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	var req eventRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(c, s.log, err)
		return
	}
	e := feedback.Event{ConversationID: id, Type: req.Type, Value: req.Value, Tier: feedback.ParseEventTier(req.Tier), Agent: req.Agent}
	if req.At != nil {
		t, err := parseEventTime("at", *req.At, s.now(), http.StatusUnprocessableEntity)
		if err != nil {
			writeError(c, s.log, err)
			return
		}
		e.At = t
	}
	// An event without "at" stays undated here: the store dates it when it
	// writes it, and a retry of the same body still matches its key.
	if err := feedback.ValidateEvent(e); err != nil {
		writeError(c, s.log, fromInvalid(err))
		return
	}
	ev, replayed, err := s.fb.store.AddEvent(c.Request.Context(), e, idem)
	if err != nil {
		if errors.Is(err, feedback.ErrIdempotencyConflict) {
			writeError(c, s.log, &APIError{Status: http.StatusConflict, Code: "idempotency_conflict",
				Message: "this Idempotency-Key was already used with a different request"})
			return
		}
		if errors.Is(err, feedback.ErrNotFound) {
			writeError(c, s.log, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "no such conversation"})
			return
		}
		writeError(c, s.log, fromInvalid(fmt.Errorf("add event: %w", err)))
		return
	}
	if !replayed {
		s.emit(liveEvent{Type: "event", ConversationID: ev.ConversationID})
	}
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusCreated, toEventJSON(ev))
}

func (s *Server) handleListEvents(c *gin.Context) {
	id, err := idParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	list, err := s.fb.store.ConversationEvents(c.Request.Context(), id)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("list events: %w", err))
		return
	}
	out := make([]eventJSON, 0, len(list))
	for _, e := range list {
		out = append(out, toEventJSON(e))
	}
	c.JSON(http.StatusOK, gin.H{"events": out})
}
