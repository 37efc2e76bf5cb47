package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// Limits on one score request. They bound the work and the storage a
// single call can cause; each has a test.
const (
	maxBodyBytes       = 64 << 10
	maxSignals         = 100
	maxSignalKeyLen    = 64
	maxSignalStringLen = 1024
	maxMessageLen      = 4096
	maxConversationID  = 128
)

var (
	channelToken = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	signalKey    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// scoreRequest is the wire shape of POST /v1/score. Signals stay raw until
// each value is checked, so the stored copy is exactly what was sent.
type scoreRequest struct {
	ConversationID *string                    `json:"conversation_id"`
	Channel        *string                    `json:"channel"`
	Signals        map[string]json.RawMessage `json:"signals"`
	Message        *string                    `json:"message"`
	OccurredAt     *string                    `json:"occurred_at"`
}

// scoreInput is a validated score request.
type scoreInput struct {
	conversationID string
	channel        string
	message        string
	hasMessage     bool
	signals        map[string]any
	rawSignals     []byte
	occurredAt     time.Time
}

// scoreResponse is the answer of POST /v1/score (PRODUCT.md §7).
type scoreResponse struct {
	DecisionID     string         `json:"decision_id"`
	ConversationID string         `json:"conversation_id"`
	Channel        string         `json:"channel"`
	Score          float64        `json:"score"`
	Tier           string         `json:"tier"`
	PreviousTier   *string        `json:"previous_tier"`
	Reasons        []model.Reason `json:"reasons"`
	Route          model.Route    `json:"route"`
	Alert          *alertRef      `json:"alert"`
	ModelVersion   *int           `json:"model_version"`
	RulesetVersion int            `json:"ruleset_version"`
}

// alertRef names the alert a decision fired, suppressed or deduplicated.
type alertRef struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// decisionRecorder is what the score handler needs from the store.
type decisionRecorder interface {
	RecordDecision(ctx context.Context, d feedback.Decision) (previousTier string, err error)
}

// readJSONBody enforces the content type and size limit shared by every
// JSON endpoint and returns the body once it is known to be valid UTF-8.
func readJSONBody(c *gin.Context) ([]byte, error) {
	if _, err := readJSONContentType(c); err != nil {
		return nil, err
	}
	return readBody(c, maxBodyBytes)
}

// readJSONContentType refuses any body that is not declared as JSON.
func readJSONContentType(c *gin.Context) (string, error) {
	ct := c.GetHeader("Content-Type")
	if ct == "" {
		return "", &APIError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "missing Content-Type: send the body as application/json"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return "", &APIError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the body as application/json"}
	}
	return mt, nil
}

func readBody(c *gin.Context, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &APIError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("the body exceeds %d bytes", limit)}
		}
		return nil, badRequest("", "could not read the request body")
	}
	if !utf8.Valid(body) {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the body is not valid UTF-8"}
	}
	return body, nil
}

// decodeStrict decodes one JSON object into dst, refusing unknown fields
// and trailing data, and names the offending field when it can.
func decodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "unexpected data after the JSON object"}
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		return invalidField(field, fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value))
	case errors.As(err, &syntaxErr):
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json",
			Message: fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the body is empty or truncated"}
	default:
		// DisallowUnknownFields reports `json: unknown field "x"`.
		msg := err.Error()
		if f, ok := unknownField(msg); ok {
			return invalidField(f, "unknown field")
		}
		return &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: msg}
	}
}

var unknownFieldRe = regexp.MustCompile(`^json: unknown field "(.*)"$`)

func unknownField(msg string) (string, bool) {
	m := unknownFieldRe.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// parseScoreRequest validates a score request body. Every refusal names the
// field and says what was expected.
func parseScoreRequest(body []byte, now time.Time) (scoreInput, error) {
	var req scoreRequest
	if err := decodeStrict(body, &req); err != nil {
		return scoreInput{}, err
	}
	var in scoreInput
	switch {
	case req.ConversationID == nil || *req.ConversationID == "":
		return in, invalidField("conversation_id", "required: a string of 1 to 128 characters")
	case utf8.RuneCountInString(*req.ConversationID) > maxConversationID:
		return in, invalidField("conversation_id", "longer than 128 characters")
	case hasControl(*req.ConversationID):
		return in, invalidField("conversation_id", "contains control characters")
	}
	in.conversationID = *req.ConversationID
	if req.Channel == nil || *req.Channel == "" {
		return in, invalidField("channel", "required: a lower-case token such as web or whatsapp")
	}
	if !channelToken.MatchString(*req.Channel) {
		return in, invalidField("channel", "must be a lower-case token of letters, digits, - and _ (at most 32)")
	}
	in.channel = *req.Channel
	if req.Message != nil {
		if len(*req.Message) > maxMessageLen {
			return in, invalidField("message", fmt.Sprintf("longer than %d bytes", maxMessageLen))
		}
		if hasNUL(*req.Message) {
			return in, invalidField("message", "contains a NUL character")
		}
		in.message, in.hasMessage = *req.Message, true
	}
	in.occurredAt = now
	if req.OccurredAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *req.OccurredAt)
		if err != nil {
			return in, invalidField("occurred_at", "must be an RFC 3339 timestamp such as 2026-11-25T10:00:00Z")
		}
		in.occurredAt = t
	}
	if len(req.Signals) > maxSignals {
		return in, invalidField("signals", fmt.Sprintf("has %d keys; at most %d are accepted", len(req.Signals), maxSignals))
	}
	in.signals = make(map[string]any, len(req.Signals))
	for k, raw := range req.Signals {
		v, err := parseSignal(k, raw)
		if err != nil {
			return in, err
		}
		in.signals[k] = v
	}
	if req.Signals == nil {
		in.rawSignals = []byte("{}")
	} else {
		raw, err := json.Marshal(req.Signals)
		if err != nil {
			return in, fmt.Errorf("encode signals: %w", err)
		}
		in.rawSignals = raw
	}
	return in, nil
}

func parseSignal(key string, raw json.RawMessage) (any, error) {
	field := "signals." + key
	switch {
	case len(key) > maxSignalKeyLen:
		return nil, invalidField("signals", fmt.Sprintf("key %.20q... is longer than %d characters", key, maxSignalKeyLen))
	case !signalKey.MatchString(key):
		return nil, invalidField(field, "a signal name is letters, digits and _ and does not start with a digit")
	case key == "channel" || key == "message":
		return nil, invalidField(field, "channel and message travel beside the signals, not inside them")
	}
	if len(raw) == 0 {
		return nil, invalidField(field, "empty value")
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidField(field, "invalid string")
		}
		if len(s) > maxSignalStringLen {
			return nil, invalidField(field, fmt.Sprintf("string longer than %d bytes", maxSignalStringLen))
		}
		if hasNUL(s) {
			return nil, invalidField(field, "contains a NUL character")
		}
		return s, nil
	case '{', '[':
		return nil, invalidField(field, "must be a number, boolean, string or null, not an object or array")
	default:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, invalidField(field, "number out of range")
		}
		return f, nil
	}
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// handleScore scores a conversation and answers only after the decision and
// the conversation's new state are committed.
func (s *Server) handleScore(c *gin.Context) {
	start := time.Now()
	body, err := readJSONBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	in, err := parseScoreRequest(body, s.now().UTC())
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	live := s.live.current()
	if live == nil {
		writeError(c, s.log, &APIError{Status: http.StatusConflict, Code: "no_ruleset",
			Message: "no ruleset is published yet: run `hotlane rules apply FILE` or PUT /v1/rules"})
		return
	}
	scoreStart := time.Now()
	d := live.scorer.Score(model.Input{Channel: in.channel, Message: in.message, Signals: in.signals})
	s.metrics.scoreTime.Observe(time.Since(scoreStart).Seconds())

	id, err := uuid.NewV7()
	if err != nil {
		writeError(c, s.log, fmt.Errorf("decision id: %w", err))
		return
	}
	reasons := d.Reasons
	if reasons == nil {
		reasons = []model.Reason{}
	}
	reasonsJSON, err := json.Marshal(reasons)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("encode reasons: %w", err))
		return
	}
	routeJSON, err := json.Marshal(d.Route)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("encode route: %w", err))
		return
	}
	rec := feedback.Decision{
		ID:             id.String(),
		ConversationID: in.conversationID,
		Channel:        in.channel,
		Signals:        in.rawSignals,
		Score:          d.Score,
		Tier:           d.Tier.String(),
		Reasons:        reasonsJSON,
		Route:          routeJSON,
		ModelVersion:   live.modelVersion,
		PolicyVersion:  live.policyVersion,
		LatencyMicros:  time.Since(start).Microseconds(),
		OccurredAt:     in.occurredAt,
		CreatedAt:      s.now().UTC(),
	}
	if in.hasMessage && s.cfg.StoreMessages {
		msg := in.message
		rec.Message = &msg
	}
	prev, err := s.decisions.RecordDecision(c.Request.Context(), rec)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("record decision: %w: %w", errUnavailable, err)
		}
		writeError(c, s.log, err)
		return
	}
	s.countDecision(live, in.channel, d)

	resp := scoreResponse{
		DecisionID:     rec.ID,
		ConversationID: in.conversationID,
		Channel:        in.channel,
		Score:          d.Score,
		Tier:           rec.Tier,
		Reasons:        reasons,
		Route:          d.Route,
		RulesetVersion: live.policyVersion,
	}
	if prev != "" {
		resp.PreviousTier = &prev
	}
	if live.modelVersion != 0 {
		mv := live.modelVersion
		resp.ModelVersion = &mv
	}
	c.JSON(http.StatusOK, resp)
}

// commonChannels are counted under their own name in metrics even when the
// policy gives them no thresholds of their own.
var commonChannels = map[string]struct{}{
	"web": {}, "whatsapp": {}, "email": {}, "sms": {}, "messenger": {}, "instagram": {}, "telegram": {}, "api": {},
}

// countDecision updates the decision metrics. Channels without thresholds
// of their own are counted as "other" so that any token a platform sends
// cannot grow the label set without bound.
func (s *Server) countDecision(live *liveScorer, channel string, d model.Decision) {
	label := "other"
	if _, ok := commonChannels[channel]; ok || slices.Contains(live.scorer.Policy().Channels(), channel) {
		label = channel
	}
	s.metrics.decisions.WithLabelValues(d.Tier.String(), label).Inc()
	for _, name := range d.Hits {
		s.metrics.ruleHits.WithLabelValues(name).Inc()
	}
	for _, name := range d.Errors {
		s.metrics.ruleErrs.WithLabelValues(name).Inc()
	}
	if len(d.Errors) > 0 && s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("rules failed at run time", slog.Any("rules", d.Errors))
	}
}
