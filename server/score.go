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
	"strconv"

	"slices"
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
	// Warnings is present only when some rule could not be evaluated or
	// the model could not read some signal, and says why.
	Warnings       []model.Warning `json:"warnings,omitempty"`
	Route          model.Route     `json:"route"`
	Alert          *alertRef       `json:"alert"`
	ModelVersion   *int            `json:"model_version"`
	RulesetVersion int             `json:"ruleset_version"`
}

// alertRef names the alert a decision fired, suppressed or deduplicated,
// or the review request it raised (kind review).
type alertRef struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// decisionRecorder is what the score handler needs from the store.
type decisionRecorder interface {
	Record(ctx context.Context, d feedback.Decision) (feedback.Recorded, error)
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

// parseScoreRequest validates a score request body. Every refusal names the
// field and says what was expected.
func parseScoreRequest(body []byte, now time.Time) (scoreInput, error) {
	req, err := scanScoreRequest(body)
	if err != nil {
		return scoreInput{}, err
	}
	var in scoreInput
	switch {
	case !req.hasConversationID || req.conversationID == "":
		return in, invalidField("conversation_id", "required: a string of 1 to 128 characters")
	case len(req.conversationID) > maxConversationID && utf8.RuneCountInString(req.conversationID) > maxConversationID:
		return in, invalidField("conversation_id", "longer than 128 characters")
	case hasControl(req.conversationID):
		return in, invalidField("conversation_id", "contains control characters")
	}
	in.conversationID = req.conversationID
	if !req.hasChannel || req.channel == "" {
		return in, invalidField("channel", "required: a lower-case token such as web or whatsapp")
	}
	if !validChannel(req.channel) {
		return in, invalidField("channel", "must be a lower-case token of letters, digits, - and _ (at most 32)")
	}
	in.channel = req.channel
	if req.hasMessage {
		if len(req.message) > maxMessageLen {
			return in, invalidField("message", fmt.Sprintf("longer than %d bytes", maxMessageLen))
		}
		if hasNUL(req.message) {
			return in, invalidField("message", "contains a NUL character")
		}
		in.message, in.hasMessage = req.message, true
	}
	in.occurredAt = now
	if req.hasOccurredAt {
		t, err := parseEventTime("occurred_at", req.occurredAt, now, http.StatusBadRequest)
		if err != nil {
			return in, err
		}
		in.occurredAt = t
	}
	in.signals = req.signals
	if in.signals == nil {
		in.signals = map[string]any{}
	}
	in.rawSignals = req.rawSignals
	if len(in.rawSignals) == 0 {
		in.rawSignals = []byte("{}")
	}
	return in, nil
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
	dec, err := s.decide(c.Request.Context(), in, start)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8",
		appendScoreResponse(make([]byte, 0, 320+len(dec.reasons)), &dec.rec, dec.out, dec.reasons, dec.route))
}

// decided is a decision made and committed.
type decided struct {
	rec            feedback.Decision
	out            feedback.Recorded
	d              model.Decision
	reasons, route []byte // JSON as stored
}

// decide scores a validated request with the live ruleset and model and
// records the decision, its conversation's new state and its alert; it
// returns once they are committed. start is when the request came in.
func (s *Server) decide(ctx context.Context, in scoreInput, start time.Time) (decided, error) {
	live := s.live.Current()
	if live == nil {
		return decided{}, &APIError{Status: http.StatusConflict, Code: "no_ruleset",
			Message: "no ruleset is published yet: run `hotlane rules apply FILE` or PUT /v1/rules"}
	}
	scoreStart := time.Now()
	d := live.Scorer.Score(model.Input{Channel: in.channel, Message: in.message, Signals: in.signals})
	s.metrics.scoreTime.Observe(time.Since(scoreStart).Seconds())

	id, err := uuid.NewV7()
	if err != nil {
		return decided{}, fmt.Errorf("decision id: %w", err)
	}
	reasonsJSON, err := appendReasons(make([]byte, 0, 64+96*len(d.Reasons)), d.Reasons)
	if err != nil {
		return decided{}, fmt.Errorf("encode reasons: %w", err)
	}
	routeJSON := appendRoute(make([]byte, 0, 64), d.Route)
	var warningsJSON []byte
	if len(d.Warnings) > 0 {
		if warningsJSON, err = encodeWarnings(d.Warnings); err != nil {
			return decided{}, fmt.Errorf("encode warnings: %w", err)
		}
	}
	rec := feedback.Decision{
		ID:             id.String(),
		ConversationID: in.conversationID,
		Channel:        in.channel,
		Signals:        in.rawSignals,
		Score:          d.Score,
		Tier:           d.Tier,
		Reasons:        reasonsJSON,
		Route:          routeJSON,
		Warnings:       warningsJSON,
		ModelVersion:   live.ModelVersion,
		PolicyVersion:  live.PolicyVersion,
		LatencyMicros:  time.Since(start).Microseconds(),
		OccurredAt:     in.occurredAt,
		CreatedAt:      s.now().UTC(),
		// The signals were checked by the request scanner (or encoded by
		// the Chatwoot handler); reasons and route were encoded above.
		Checked: true,
	}
	if in.hasMessage && s.cfg.StoreMessages {
		msg := in.message
		rec.Message = &msg
	}
	rec.Alert = feedback.PlanAlert(live.Scorer.Policy().Alerts(), in.channel, d)
	out, err := s.decisions.Record(ctx, rec)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("record decision: %w: %w", errUnavailable, err)
		}
		return decided{}, err
	}
	s.countDecision(live, in.channel, d)
	if s.emitting() {
		ev := liveEvent{Type: "decision", ConversationID: rec.ConversationID, Tier: rec.Tier.String(), Channel: rec.Channel, Team: d.Route.Team}
		s.emit(ev)
		if out.Alert != nil && out.Alert.Status == feedback.AlertStatusFired {
			ev.Type, ev.AlertID = "alert", out.Alert.ID
			s.emit(ev)
		}
	}

	return decided{rec: rec, out: out, d: d, reasons: reasonsJSON, route: routeJSON}, nil
}

// encodeWarnings writes warnings as JSON without escaping <, > and &: a
// warning quotes expressions such as "string >= int" for people to read.
func encodeWarnings(ws []model.Warning) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ws); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// appendScoreResponse writes the JSON of scoreResponse by hand, reusing
// the reasons and route already encoded for storage; a test checks it
// against encoding/json.
func appendScoreResponse(b []byte, rec *feedback.Decision, out feedback.Recorded, reasons, route []byte) []byte {
	prev := out.PreviousTier
	b = append(b, `{"decision_id":`...)
	b = appendJSONString(b, rec.ID)
	b = append(b, `,"conversation_id":`...)
	b = appendJSONString(b, rec.ConversationID)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, rec.Channel)
	b = append(b, `,"score":`...)
	b = strconv.AppendFloat(b, rec.Score, 'g', -1, 64)
	b = append(b, `,"tier":`...)
	b = appendJSONString(b, rec.Tier.String())
	b = append(b, `,"previous_tier":`...)
	if prev == model.TierNone {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, prev.String())
	}
	b = append(b, `,"reasons":`...)
	b = append(b, reasons...)
	if rec.Warnings != nil {
		b = append(b, `,"warnings":`...)
		b = append(b, rec.Warnings...)
	}
	b = append(b, `,"route":`...)
	b = append(b, route...)
	b = append(b, `,"alert":`...)
	if a := out.Alert; a == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = appendJSONString(b, a.ID)
		b = append(b, `,"kind":`...)
		b = appendJSONString(b, a.Kind)
		b = append(b, `,"status":`...)
		b = appendJSONString(b, a.Status)
		if a.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendJSONString(b, a.Reason)
		}
		b = append(b, '}')
	}
	b = append(b, `,"model_version":`...)
	if rec.ModelVersion == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(rec.ModelVersion), 10)
	}
	b = append(b, `,"ruleset_version":`...)
	b = strconv.AppendInt(b, int64(rec.PolicyVersion), 10)
	return append(b, '}')
}

// appendReasons writes reasons as encoding/json would (an empty list as
// []), by hand: it runs on every decision. A test checks it against
// encoding/json.
func appendReasons(b []byte, reasons []model.Reason) ([]byte, error) {
	b = append(b, '[')
	for i := range reasons {
		r := &reasons[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"kind":`...)
		b = appendJSONString(b, r.Kind)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, r.Name)
		b = append(b, `,"contribution":`...)
		if math.IsNaN(r.Contribution) || math.IsInf(r.Contribution, 0) {
			return nil, fmt.Errorf("reason %q: contribution %v is not a JSON number", r.Name, r.Contribution)
		}
		b = strconv.AppendFloat(b, r.Contribution, 'g', -1, 64)
		if r.TierFloor != "" {
			b = append(b, `,"tier_floor":`...)
			b = appendJSONString(b, r.TierFloor)
		}
		if r.Value != nil {
			b = append(b, `,"value":`...)
			switch v := r.Value.(type) {
			case string:
				b = appendJSONString(b, v)
			case bool:
				b = strconv.AppendBool(b, v)
			case float64:
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("reason %q: value %v is not a JSON number", r.Name, v)
				}
				b = strconv.AppendFloat(b, v, 'g', -1, 64)
			default:
				q, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("reason %q: %w", r.Name, err)
				}
				b = append(b, q...)
			}
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendRoute writes a route as encoding/json would.
func appendRoute(b []byte, r model.Route) []byte {
	b = append(b, '{')
	if r.Team != "" {
		b = append(b, `"team":`...)
		b = appendJSONString(b, r.Team)
		b = append(b, ',')
	}
	if r.Owner != "" {
		b = append(b, `"owner":`...)
		b = appendJSONString(b, r.Owner)
		b = append(b, ',')
	}
	b = append(b, `"via":`...)
	b = appendJSONString(b, r.Via)
	return append(b, '}')
}

// appendJSONString quotes s as a JSON string; plain strings, the common
// case, are copied as they are.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// commonChannels are counted under their own name in metrics even when the
// policy gives them no thresholds of their own.
var commonChannels = map[string]struct{}{
	"web": {}, "whatsapp": {}, "email": {}, "sms": {}, "messenger": {}, "instagram": {}, "telegram": {}, "api": {},
}

// countDecision updates the decision metrics. Channels without thresholds
// of their own are counted as "other" so that any token a platform sends
// cannot grow the label set without bound.
func (s *Server) countDecision(live *feedback.Scoring, channel string, d model.Decision) {
	label := "other"
	if _, ok := commonChannels[channel]; ok || slices.Contains(live.Scorer.Policy().Channels(), channel) {
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
	if len(d.NowFailing) > 0 {
		s.log.Warn("rules fail on every score; they count as not fired until the ruleset is fixed",
			slog.Any("rules", d.NowFailing), slog.Int("in_a_row", model.FailingStreak),
			slog.Int("ruleset_version", live.PolicyVersion))
	}
}
