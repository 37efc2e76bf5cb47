package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
)

// ChatwootConfig turns the Chatwoot integration on: the webhook receiver
// at POST /v1/integrations/chatwoot and the write-back it queues.
type ChatwootConfig struct {
	// AccountID is the Chatwoot account whose webhooks are taken; a
	// payload naming another account is refused.
	AccountID int64
	// Secret is the webhook's secret: every request must then carry a
	// valid X-Chatwoot-Signature over a timestamp at most
	// ChatwootMaxSkew old. Empty accepts unsigned webhooks.
	Secret string
	// WriteBack says what to write back and how teams and owners map to
	// Chatwoot's ids; all off when no API token is configured.
	WriteBack feedback.ChatwootWriteBack
	// Wake tells the writer that writes are queued; nil leaves them to its
	// next pass.
	Wake func()
	// URL is Chatwoot's base URL, for links from the UI; "" shows none.
	URL string
}

// Chatwoot webhook limits.
const (
	// ChatwootMaxSkew is how far a signed webhook's timestamp may be from
	// the server's clock.
	ChatwootMaxSkew = 5 * time.Minute
	// chatwootDeadline bounds the handling of one webhook, inside
	// Chatwoot's 5-second timeout.
	chatwootDeadline = 4 * time.Second
	// maxChatwootBody bounds a webhook body: a conversation carries its
	// last message, whose content may be a long email.
	maxChatwootBody = 1 << 20
	// chatwootNoteReasons is how many reasons a private note names.
	chatwootNoteReasons = 3
	// returningAfter: a contact whose inbox record is older than this when
	// the conversation starts has been here before.
	returningAfter = 30 * time.Minute
)

// chatwootStore is what the Chatwoot receiver needs from the store.
type chatwootStore interface {
	ClaimChatwootReceipt(ctx context.Context, deliveryID string, at time.Time) (bool, error)
	ReleaseChatwootReceipt(ctx context.Context, deliveryID string) error
	PurgeChatwootReceipts(ctx context.Context, before time.Time, limit int) (int64, error)
	ChatwootConversation(ctx context.Context, conversationID string) (feedback.ChatwootState, error)
	ObserveChatwoot(ctx context.Context, o feedback.ChatwootObservation) (feedback.ChatwootState, error)
	UpdateChatwoot(ctx context.Context, conversationID string, at time.Time,
		fn func(st *feedback.ChatwootState) []feedback.ChatwootWrite) ([]feedback.ChatwootWrite, error)
	AddEvent(ctx context.Context, e feedback.Event, idem feedback.Idempotency) (feedback.Event, bool, error)
	FirstResponseAt(ctx context.Context, conversationID string) (*time.Time, error)
	Alerts(ctx context.Context, q feedback.AlertQuery) (feedback.AlertPage, error)
	LabelAlert(ctx context.Context, alertID, agent, label, note string) (feedback.AlertLabel, error)
	ChatwootWrites(ctx context.Context, conversationID string) ([]feedback.ChatwootWrite, error)
}

// chatwootEvents are the webhook events Hotlane uses; the others are
// acknowledged and ignored.
var chatwootEvents = []string{"conversation_created", "conversation_updated", "conversation_status_changed", "message_created"}

// chatwootAnswer is the body of a 200 answer to a webhook.
type chatwootAnswer struct {
	Status         string   `json:"status"` // scored, recorded, labelled or ignored
	Event          string   `json:"event,omitempty"`
	ConversationID string   `json:"conversation_id,omitempty"`
	DecisionID     string   `json:"decision_id,omitempty"`
	Tier           string   `json:"tier,omitempty"`
	Score          *float64 `json:"score,omitempty"`
	Writes         []string `json:"writes,omitempty"`
	EventType      string   `json:"event_type,omitempty"`
	AlertID        string   `json:"alert_id,omitempty"`
	Label          string   `json:"label,omitempty"`
	Reason         string   `json:"reason,omitempty"`
}

func ignored(event, conversationID, reason string) chatwootAnswer {
	return chatwootAnswer{Status: "ignored", Event: event, ConversationID: conversationID, Reason: reason}
}

// handleChatwoot receives a Chatwoot webhook. It checks the signature, the
// timestamp and the delivery id, then scores, records an event or labels
// an alert, and queues the write-back; it never calls Chatwoot itself, so
// it answers within Chatwoot's timeout whatever Chatwoot's API is doing.
func (s *Server) handleChatwoot(c *gin.Context) {
	cw := s.cfg.Chatwoot
	if cw == nil {
		writeError(c, s.log, &APIError{Status: http.StatusNotFound, Code: "chatwoot_off",
			Message: "the Chatwoot integration is off: start hotlane serve with --chatwoot-account-id (see Connect Chatwoot in the README)"})
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(c.Request.Context(), chatwootDeadline)
	defer cancel()
	if _, err := readJSONContentType(c); err != nil {
		s.countHook("", "refused")
		writeError(c, s.log, err)
		return
	}
	body, err := readBody(c, maxChatwootBody)
	if err != nil {
		s.countHook("", "refused")
		writeError(c, s.log, err)
		return
	}
	now := s.now().UTC()
	var mac string
	if cw.Secret != "" {
		if mac, err = verifyChatwoot(cw.Secret, c.GetHeader("X-Chatwoot-Timestamp"), c.GetHeader("X-Chatwoot-Signature"), body, now); err != nil {
			s.countHook("", "refused")
			if s.anonFailed(c) {
				return
			}
			writeError(c, s.log, err)
			return
		}
	}
	var head struct {
		Event string `json:"event"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		s.countHook("", "refused")
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			err = &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the body must be a JSON object with an event"}
		} else {
			err = jsonError(body, err)
		}
		writeError(c, s.log, err)
		return
	}
	if head.Event == "" {
		s.countHook("", "refused")
		writeError(c, s.log, invalidField("event", "required: the Chatwoot event name"))
		return
	}
	event := head.Event
	if !slices.Contains(chatwootEvents, event) {
		s.countHook("other", "ignored")
		c.JSON(http.StatusOK, ignored(event, "", "event not used by Hotlane"))
		return
	}
	p, err := parseChatwoot(event, body)
	if err != nil {
		s.countHook(event, "refused")
		writeError(c, s.log, err)
		return
	}
	if p.accountID != 0 && p.accountID != cw.AccountID {
		s.countHook(event, "refused")
		s.log.Warn("chatwoot webhook of another account", slog.Int64("account_id", p.accountID),
			slog.Int64("configured_account_id", cw.AccountID))
		writeError(c, s.log, &APIError{Status: http.StatusForbidden, Code: "wrong_account",
			Message: fmt.Sprintf("this webhook is for Chatwoot account %d; Hotlane takes account %d (--chatwoot-account-id)", p.accountID, cw.AccountID)})
		return
	}
	p.accountID = cw.AccountID
	store := s.chatwoot
	s.purgeReceipts(now)
	// A delivery is taken once: by its id, and with a secret also by its
	// signature, so that a captured request replayed within the timestamp
	// window under another (or no) delivery id is not taken again.
	var receipts []string
	delivery := c.GetHeader("X-Chatwoot-Delivery")
	if delivery != "" {
		if len(delivery) > 128 || hasControl(delivery) || !utf8.ValidString(delivery) {
			s.countHook(event, "refused")
			writeError(c, s.log, badRequest("X-Chatwoot-Delivery", "must be at most 128 printable characters"))
			return
		}
		receipts = append(receipts, "delivery:"+delivery)
	}
	if mac != "" {
		receipts = append(receipts, "signature:"+mac)
	}
	release := func(ids []string) {
		for _, id := range ids {
			if err := store.ReleaseChatwootReceipt(context.WithoutCancel(ctx), id); err != nil {
				s.log.Warn("release chatwoot receipt", slog.Any("err", err))
			}
		}
	}
	for i, id := range receipts {
		fresh, err := store.ClaimChatwootReceipt(ctx, id, now)
		if err != nil {
			release(receipts[:i])
			s.countHook(event, "error")
			writeError(c, s.log, fmt.Errorf("chatwoot receipt: %w: %w", errUnavailable, err))
			return
		}
		if !fresh {
			release(receipts[:i])
			s.countHook(event, "duplicate")
			c.JSON(http.StatusOK, ignored(event, "", "this delivery was already received"))
			return
		}
	}
	ans, err := s.chatwootEvent(ctx, cw, event, p, now, start)
	if err != nil {
		release(receipts) // let Chatwoot's retry of this delivery be taken
		s.countHook(event, "error")
		var apiErr *APIError
		if !errors.As(err, &apiErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, errUnavailable) {
			err = fmt.Errorf("chatwoot %s: %w: %w", event, errUnavailable, err)
		}
		writeError(c, s.log, err)
		return
	}
	s.countHook(event, ans.Status)
	c.JSON(http.StatusOK, ans)
}

// purgeReceipts forgets, about once a minute, up to purgeBatch delivery
// receipts older than feedback.ChatwootReceiptTTL, within a quarter of a
// second of its own, so a webhook never spends its time budget on it.
// Best effort: a failure costs space until the next minute.
func (s *Server) purgeReceipts(now time.Time) {
	last := s.receiptsPurged.Load()
	if now.Unix()-last < 60 || !s.receiptsPurged.CompareAndSwap(last, now.Unix()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	if _, err := s.chatwoot.PurgeChatwootReceipts(ctx, now.Add(-feedback.ChatwootReceiptTTL), purgeBatch); err != nil {
		s.log.Warn("purge chatwoot receipts", slog.Any("err", err))
	}
}

// purgeBatch bounds the receipts one purge forgets: two per webhook, so
// a minute of up to 5,000 webhooks a minute.
const purgeBatch = 10_000

func (s *Server) countHook(event, outcome string) {
	if event == "" {
		event = "unknown"
	}
	s.metrics.cwHooks.WithLabelValues(event, outcome).Inc()
}

// verifyChatwoot checks a webhook's signature: sha256= and the hex
// HMAC-SHA256 of "<timestamp>.<body>" with the secret, over a timestamp
// within ChatwootMaxSkew of now.
//
// It returns the signature in lower-case hex, which names the request
// however its hex was written.
func verifyChatwoot(secret, timestamp, signature string, body []byte, now time.Time) (string, error) {
	unauthorized := func(code, msg string) error {
		return &APIError{Status: http.StatusUnauthorized, Code: code, Message: msg}
	}
	if timestamp == "" || signature == "" {
		return "", unauthorized("missing_signature", "a webhook secret is configured: X-Chatwoot-Timestamp and X-Chatwoot-Signature are required")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return "", unauthorized("bad_timestamp", "X-Chatwoot-Timestamp must be Unix seconds")
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > ChatwootMaxSkew || skew < -ChatwootMaxSkew {
		return "", unauthorized("stale_timestamp", "X-Chatwoot-Timestamp is more than 5 minutes from the server's clock")
	}
	got, ok := strings.CutPrefix(signature, "sha256=")
	sig, err := hex.DecodeString(got)
	if !ok || err != nil {
		return "", unauthorized("bad_signature", "X-Chatwoot-Signature must be sha256= and a hex HMAC-SHA256")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", unauthorized("bad_signature", "X-Chatwoot-Signature does not match the body and the webhook secret")
	}
	return hex.EncodeToString(sig), nil
}

// SignChatwoot returns the X-Chatwoot-Signature Chatwoot sends for body at
// timestamp, for tests and tools that stand in for Chatwoot.
func SignChatwoot(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// chatwootEvent handles one parsed webhook.
func (s *Server) chatwootEvent(ctx context.Context, cw *ChatwootConfig, event string, p chatwootPayload, now, start time.Time) (chatwootAnswer, error) {
	conv := p.conversation
	convID := feedback.ChatwootConversationID(p.accountID, conv.ID.v)
	switch event {
	case "conversation_created":
		return s.chatwootScore(ctx, cw, event, p, nil, now, start)
	case "message_created":
		m := p.message
		switch {
		case m.Private:
			return ignored(event, convID, "private note"), nil
		case m.MessageType.v == "incoming":
			return s.chatwootScore(ctx, cw, event, p, m, now, start)
		case m.MessageType.v == "outgoing" && m.Sender != nil && strings.EqualFold(m.Sender.Type, "user"):
			return s.chatwootFirstResponse(ctx, cw, convID, m, now)
		default:
			return ignored(event, convID, "not a visitor message nor an agent's reply"), nil
		}
	case "conversation_status_changed":
		if conv.Status != "resolved" {
			return ignored(event, convID, "status "+conv.Status+" is not resolved"), nil
		}
		at := eventTime(conv.UpdatedAt.t, now)
		ev, _, err := s.chatwoot.AddEvent(ctx, feedback.Event{ConversationID: convID, Type: feedback.EventClosed, At: at}, feedback.Idempotency{})
		if errors.Is(err, feedback.ErrNotFound) {
			return ignored(event, convID, "conversation never scored"), nil
		}
		if err != nil {
			return chatwootAnswer{}, err
		}
		return chatwootAnswer{Status: "recorded", Event: event, ConversationID: convID, EventType: ev.Type}, nil
	default: // conversation_updated
		ans, labelled, err := s.chatwootLabel(ctx, cw, convID, conv)
		if err != nil || labelled {
			return ans, err
		}
		st, err := s.chatwoot.ChatwootConversation(ctx, convID)
		switch {
		case errors.Is(err, feedback.ErrNotFound):
			// First sight of a conversation that started before Hotlane
			// was connected: score it.
			return s.chatwootScore(ctx, cw, event, p, nil, now, start)
		case err != nil:
			return chatwootAnswer{}, err
		}
		if prio, team, assignee := overrideChanges(conv.Changes); prio != nil || team != nil || assignee != nil {
			// Someone may have taken over a value Hotlane set: from then on
			// it is theirs (MarkChatwootOverrides).
			_, err := s.chatwoot.UpdateChatwoot(ctx, convID, now, func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
				feedback.MarkChatwootOverrides(st, prio, team, assignee)
				return nil
			})
			if err != nil {
				return chatwootAnswer{}, err
			}
		}
		if reason := signalsUnchanged(conv.Changes, st); reason != "" {
			return ignored(event, convID, reason), nil
		}
		return s.chatwootScore(ctx, cw, event, p, nil, now, start)
	}
}

// overrideChanges reads the changes of priority, team and assignee in a
// conversation_updated; nil for those it does not carry.
func overrideChanges(changes []map[string]cwChange) (prio, team, assignee *feedback.ChatwootChange) {
	for _, ch := range changes {
		for key, v := range ch {
			switch key {
			case "priority":
				prio = &feedback.ChatwootChange{Previous: v.prevStr(), Current: v.str()}
			case "team_id":
				team = &feedback.ChatwootChange{PreviousID: v.prevInt(), CurrentID: v.int()}
			case "assignee_id":
				assignee = &feedback.ChatwootChange{PreviousID: v.prevInt(), CurrentID: v.int()}
			}
		}
	}
	return prio, team, assignee
}

// signalsUnchanged says why a conversation_updated does not score again,
// or "" when it changed a signal: a custom attribute or a label other
// than Hotlane's own. Changes of priority, team and assignee (Hotlane's
// own writes among them), status and times are not signals; scoring on
// them would loop on Hotlane's own writes.
func signalsUnchanged(changes []map[string]cwChange, st feedback.ChatwootState) string {
	var own bool
	for _, ch := range changes {
		for key, v := range ch {
			switch key {
			case "custom_attributes":
				prev, cur := v.objects()
				if !sameExceptOwn(prev, cur) {
					return ""
				}
				own = true
			case "label_list":
				prev, cur := v.labels()
				if !slices.Equal(signalLabels(prev), signalLabels(cur)) {
					return ""
				}
			case "priority":
				if cur := v.str(); cur != "" && cur == st.Priority {
					own = true
				}
			case "team_id":
				own = own || v.int() == st.TeamID && st.TeamID != 0
			case "assignee_id":
				own = own || v.int() == st.AssigneeID && st.AssigneeID != 0
			}
		}
	}
	if own {
		return "Hotlane's own change"
	}
	return "no signal changed"
}

// sameExceptOwn reports whether two custom attribute sets differ only in
// Hotlane's own attributes.
func sameExceptOwn(a, b map[string]any) bool {
	for k, v := range a {
		if w, ok := b[k]; !strings.HasPrefix(k, feedback.ChatwootOwnPrefix) && (!ok || !jsonEqual(v, w)) {
			return false
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && !strings.HasPrefix(k, feedback.ChatwootOwnPrefix) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// signalLabels is the sorted labels that are signals: all but Hotlane's.
func signalLabels(labels []string) []string {
	out := slices.DeleteFunc(slices.Clone(labels), func(l string) bool { return strings.HasPrefix(l, feedback.ChatwootOwnPrefix) })
	slices.Sort(out)
	return out
}

// chatwootLabel labels the conversation's latest alert when an agent
// added hotlane-useful or hotlane-noise; labelled is false when the
// update added neither.
func (s *Server) chatwootLabel(ctx context.Context, cw *ChatwootConfig, convID string, conv *cwConversation) (chatwootAnswer, bool, error) {
	var added []string
	for _, ch := range conv.Changes {
		if v, ok := ch["label_list"]; ok {
			prev, cur := v.labels()
			if cur == nil {
				cur = conv.Labels
			}
			for _, l := range cur {
				if !slices.Contains(prev, l) {
					added = append(added, l)
				}
			}
		}
	}
	var label string
	for _, l := range added {
		switch l {
		case feedback.ChatwootLabelUseful:
			label = feedback.LabelUseful
		case feedback.ChatwootLabelNoise:
			label = feedback.LabelNoise
		}
	}
	if label == "" {
		return chatwootAnswer{}, false, nil
	}
	page, err := s.chatwoot.Alerts(ctx, feedback.AlertQuery{ConversationID: convID, Limit: 20})
	if err != nil {
		return chatwootAnswer{}, true, err
	}
	var alert *feedback.Alert
	for i, a := range page.Alerts {
		if a.Status == feedback.AlertStatusFired {
			alert = &page.Alerts[i]
			break
		}
	}
	if alert == nil {
		return ignored("conversation_updated", convID, "the conversation has no alert to label"), true, nil
	}
	agent := chatwootAgent(cw, conv.Meta.Assignee)
	if _, err := s.chatwoot.LabelAlert(ctx, alert.ID, agent, label, "labelled in Chatwoot"); err != nil {
		return chatwootAnswer{}, true, err
	}
	return chatwootAnswer{Status: "labelled", Event: "conversation_updated", ConversationID: convID, AlertID: alert.ID, Label: label}, true, nil
}

// chatwootAgent names the Chatwoot agent a label or a reply is credited
// to: the Hotlane owner mapped to their id, else their name and id.
// Chatwoot does not say who added a label, so a label is credited to the
// conversation's assignee.
func chatwootAgent(cw *ChatwootConfig, p *cwPerson) string {
	if p == nil || p.ID.v == 0 {
		return "chatwoot"
	}
	for owner, id := range cw.WriteBack.Agents {
		if id == p.ID.v {
			return strings.TrimSpace(truncateRunes(owner, feedback.MaxAgentLen))
		}
	}
	name := strings.TrimSpace(p.Name)
	if p.Email != nil && strings.TrimSpace(*p.Email) != "" {
		name = strings.TrimSpace(*p.Email)
	}
	agent := fmt.Sprintf("chatwoot agent %d", p.ID.v)
	if name != "" && !hasControl(name) {
		// The id stays whole however long the name is.
		suffix := fmt.Sprintf(" (chatwoot %d)", p.ID.v)
		agent = strings.TrimSpace(truncateRunes(name, feedback.MaxAgentLen-len(suffix))) + suffix
	}
	return agent
}

// chatwootFirstResponse records an agent's reply as the conversation's
// first response, unless it has one.
func (s *Server) chatwootFirstResponse(ctx context.Context, cw *ChatwootConfig, convID string, m *cwMessage, now time.Time) (chatwootAnswer, error) {
	const event = "message_created"
	first, err := s.chatwoot.FirstResponseAt(ctx, convID)
	if errors.Is(err, feedback.ErrNotFound) {
		return ignored(event, convID, "conversation never scored"), nil
	}
	if err != nil {
		return chatwootAnswer{}, err
	}
	if first != nil {
		return ignored(event, convID, "the first response is already recorded"), nil
	}
	at := eventTime(m.CreatedAt.t, now)
	ev, _, err := s.chatwoot.AddEvent(ctx, feedback.Event{ConversationID: convID, Type: feedback.EventFirstResponse, At: at,
		Agent: chatwootAgent(cw, m.Sender)}, feedback.Idempotency{})
	if errors.Is(err, feedback.ErrNotFound) {
		return ignored(event, convID, "conversation never scored"), nil
	}
	if err != nil {
		return chatwootAnswer{}, err
	}
	return chatwootAnswer{Status: "recorded", Event: event, ConversationID: convID, EventType: ev.Type}, nil
}

// chatwootScore scores the conversation of a webhook (m: the visitor's
// message it brings, if any) and queues the write-back.
func (s *Server) chatwootScore(ctx context.Context, cw *ChatwootConfig, event string, p chatwootPayload, m *cwMessage, now, start time.Time) (chatwootAnswer, error) {
	conv := p.conversation
	convID := feedback.ChatwootConversationID(p.accountID, conv.ID.v)
	if conv.Status == "resolved" {
		return ignored(event, convID, "the conversation is resolved"), nil
	}
	obs := feedback.ChatwootObservation{ConversationID: convID, AccountID: p.accountID, DisplayID: conv.ID.v, At: now}
	if conv.Meta.Sender != nil {
		obs.ContactID = conv.Meta.Sender.ID.v
	}
	if ci := conv.ContactInbox; ci != nil && !ci.CreatedAt.t.IsZero() && !conv.CreatedAt.t.IsZero() {
		obs.Returning = conv.CreatedAt.t.Sub(ci.CreatedAt.t) > returningAfter
	}
	if m == nil {
		m = latestIncoming(conv.Messages)
	}
	var text string
	var hasText bool
	if m != nil {
		obs.MessageID = m.ID.v
		if m.Content != nil {
			text, hasText = cleanMessage(*m.Content), true
			if s.cfg.StoreMessages {
				obs.Message = &text
			}
		}
	}
	st, err := s.chatwoot.ObserveChatwoot(ctx, obs)
	if err != nil {
		return chatwootAnswer{}, err
	}
	if event == "message_created" && obs.MessageID <= st.ScoredMessageID {
		// Scored with the conversation_created that brought it, or a
		// repeated webhook. (A webhook whose handling failed has not moved
		// ScoredMessageID, so its retry is scored.)
		return ignored(event, convID, "message already scored"), nil
	}
	if !hasText && st.LastMessage != nil {
		text, hasText = *st.LastMessage, true
	}
	signals := chatwootSignals(conv, st, now)
	raw, err := json.Marshal(signals)
	if err != nil {
		return chatwootAnswer{}, fmt.Errorf("encode signals: %w", err)
	}
	in := scoreInput{conversationID: convID, channel: feedback.ChatwootChannel(conv.Channel), message: text, hasMessage: hasText,
		signals: signals, rawSignals: raw, occurredAt: now}
	dec, err := s.decide(ctx, in, start)
	if err != nil {
		return chatwootAnswer{}, err
	}
	var view feedback.ChatwootView
	if conv.Priority != nil {
		view.Priority = *conv.Priority
	}
	if conv.Meta.Team != nil {
		view.TeamID = conv.Meta.Team.ID.v
	}
	if conv.Meta.Assignee != nil {
		view.AssigneeID = conv.Meta.Assignee.ID.v
	}
	scored := feedback.ChatwootScored{Tier: dec.d.Tier, Score: dec.d.Score, Reasons: dec.d.Reasons, Route: dec.d.Route, Partial: !hasText}
	if cw.WriteBack.Note {
		scored.Why = reasonText(dec.d.Reasons, s.policyView("").describe, chatwootNoteReasons)
	}
	ans := chatwootAnswer{Status: "scored", Event: event, ConversationID: convID, DecisionID: dec.rec.ID,
		Tier: dec.rec.Tier.String(), Score: &dec.rec.Score}
	// Planned on the state as committed, with the row held: concurrent
	// webhooks of the conversation plan one after the other.
	writes, err := s.chatwoot.UpdateChatwoot(ctx, convID, now, func(st *feedback.ChatwootState) []feedback.ChatwootWrite {
		writes, next := feedback.PlanChatwootWrites(*st, view, scored, cw.WriteBack)
		*st = next
		st.ScoredMessageID = max(st.ScoredMessageID, obs.MessageID)
		return writes
	})
	if err != nil {
		return chatwootAnswer{}, err
	}
	for _, w := range writes {
		ans.Writes = append(ans.Writes, w.Kind)
	}
	if len(writes) > 0 && cw.Wake != nil {
		cw.Wake()
	}
	return ans, nil
}

// eventTime is when an event happened by Chatwoot's clock, which may be
// a little ahead of ours; a missing time, or one further ahead than
// ChatwootMaxSkew, is now.
func eventTime(at, now time.Time) time.Time {
	if at.IsZero() || at.After(now.Add(ChatwootMaxSkew)) {
		return now
	}
	return at
}

// latestIncoming returns the newest visitor message of a conversation
// payload's messages, nil when there is none.
func latestIncoming(ms []cwMessage) *cwMessage {
	var out *cwMessage
	for i := range ms {
		m := &ms[i]
		if m.MessageType.v == "incoming" && !m.Private && (out == nil || m.ID.v > out.ID.v) {
			out = m
		}
	}
	return out
}

// cleanMessage makes message text acceptable as a score request's
// message: no NUL, at most maxMessageLen bytes cut at a character.
func cleanMessage(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "")
	return truncateBytes(s, maxMessageLen)
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// chatwootSignals maps a conversation to signals (README, Connect
// Chatwoot): the contact's custom attributes, then the conversation's
// (which win), labels as label_<name>, then what Hotlane derives, which
// wins over an attribute of the same name. Hotlane's own attributes and
// labels are left out, and so are values that are not a number, a
// boolean or a string. At most maxSignals are kept, Hotlane's first.
func chatwootSignals(conv *cwConversation, st feedback.ChatwootState, now time.Time) map[string]any {
	derived := map[string]any{
		"message_count": float64(st.Messages),
		"returning":     st.Returning,
	}
	if ws := conv.WaitingSince.t; !ws.IsZero() {
		derived["wait_seconds"] = math.Max(0, math.Round(now.Sub(ws).Seconds()))
	}
	if conv.InboxID.v != 0 {
		derived["inbox_id"] = float64(conv.InboxID.v)
	}
	add := conv.AdditionalAttributes
	if b, ok := add["browser"].(map[string]any); ok {
		for key, name := range map[string]string{"browser_name": "browser", "platform_name": "platform"} {
			if v, ok := b[key].(string); ok && v != "" {
				derived[name] = truncateBytes(v, maxSignalStringLen)
			}
		}
	}
	for key, name := range map[string]string{"referer": "referer", "browser_language": "browser_language"} {
		if v, ok := add[key].(string); ok && v != "" {
			derived[name] = truncateBytes(v, maxSignalStringLen)
		}
	}
	out := make(map[string]any, len(derived)+16)
	for k, v := range derived {
		out[k] = v
	}
	put := func(key string, v any) {
		if len(out) >= maxSignals {
			return
		}
		if _, taken := derived[key]; taken {
			return
		}
		out[key] = v
	}
	labels := signalLabels(conv.Labels)
	for _, l := range labels {
		if key := signalKey("label_" + l); key != "" {
			put(key, true)
		}
	}
	attrs := map[string]any{}
	if conv.Meta.Sender != nil {
		for k, v := range conv.Meta.Sender.CustomAttributes {
			attrs[k] = v
		}
	}
	for k, v := range conv.CustomAttributes {
		attrs[k] = v
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		if !strings.HasPrefix(k, feedback.ChatwootOwnPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := signalKey(k)
		if key == "" {
			continue
		}
		switch v := attrs[k].(type) {
		case float64:
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				put(key, v)
			}
		case bool:
			put(key, v)
		case string:
			put(key, truncateBytes(strings.ReplaceAll(strings.ToValidUTF8(v, ""), "\x00", ""), maxSignalStringLen))
		}
	}
	return out
}

// signalKey makes a Chatwoot attribute key or label a signal name:
// characters other than letters, digits and _ become _, a leading digit
// gets a _ before it, and it is cut to maxSignalKeyLen; "" when nothing
// is left or the name is channel or message.
func signalKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxSignalKeyLen; i++ {
		c := s[i]
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			b.WriteByte(c)
		case c >= '0' && c <= '9':
			if b.Len() == 0 {
				b.WriteByte('_')
			}
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	key := b.String()
	if strings.Trim(key, "_") == "" || checkSignalKey(key) != nil {
		return ""
	}
	return key
}

// chatwootPayload is a parsed webhook: the conversation it is about and,
// for message_created, the message.
type chatwootPayload struct {
	accountID    int64
	conversation *cwConversation
	message      *cwMessage
}

// parseChatwoot reads a webhook body of a used event; a body that does
// not have the shape Chatwoot sends is a 4xx naming what is wrong.
func parseChatwoot(event string, body []byte) (chatwootPayload, error) {
	var p chatwootPayload
	if event == "message_created" {
		var m cwMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return p, jsonError(body, err)
		}
		if m.Conversation == nil {
			return p, invalidField("conversation", "required in message_created")
		}
		if m.ID.v <= 0 {
			return p, invalidField("id", "required: the message id")
		}
		if m.Account != nil {
			p.accountID = m.Account.ID.v
		}
		p.message, p.conversation = &m, m.Conversation
	} else {
		var conv cwConversation
		if err := json.Unmarshal(body, &conv); err != nil {
			return p, jsonError(body, err)
		}
		p.conversation = &conv
	}
	conv := p.conversation
	if conv.ID.v <= 0 {
		return p, invalidField("id", "required: the conversation's display id")
	}
	if conv.Account != nil && p.accountID == 0 {
		p.accountID = conv.Account.ID.v
	}
	if p.accountID == 0 {
		for _, m := range conv.Messages {
			if m.AccountID.v != 0 {
				p.accountID = m.AccountID.v
				break
			}
		}
	}
	return p, nil
}

// jsonError turns a decoding error into the 4xx of a body that is not
// JSON or not of the expected shape.
func jsonError(body []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_payload", Field: field,
			Message: fmt.Sprintf("%s: expected %s, got JSON %s", field, typeErr.Type, typeErr.Value)}
	}
	var fieldErr *cwFieldError
	if errors.As(err, &fieldErr) {
		return &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_payload", Message: fieldErr.Error()}
	}
	return syntaxError(body)
}

// The webhook shapes, as Chatwoot's serializers write them. Numbers that
// Chatwoot writes as integers are read from numbers or numeric strings,
// times from Unix seconds or ISO 8601, message types from integers or
// names, so that both the conversation's messages and message_created
// read the same.

type cwConversation struct {
	ID                   cwInt                 `json:"id"`
	InboxID              cwInt                 `json:"inbox_id"`
	Channel              string                `json:"channel"`
	Status               string                `json:"status"`
	Priority             *string               `json:"priority"`
	Labels               []string              `json:"labels"`
	CustomAttributes     map[string]any        `json:"custom_attributes"`
	AdditionalAttributes map[string]any        `json:"additional_attributes"`
	Meta                 cwMeta                `json:"meta"`
	Messages             []cwMessage           `json:"messages"`
	WaitingSince         cwTime                `json:"waiting_since"`
	CreatedAt            cwTime                `json:"created_at"`
	UpdatedAt            cwTime                `json:"updated_at"`
	ContactInbox         *cwContactInbox       `json:"contact_inbox"`
	Account              *cwRef                `json:"account"`
	Changes              []map[string]cwChange `json:"changed_attributes"`
}

type cwContactInbox struct {
	ContactID cwInt  `json:"contact_id"`
	CreatedAt cwTime `json:"created_at"`
}

type cwRef struct {
	ID   cwInt  `json:"id"`
	Name string `json:"name"`
}

type cwMeta struct {
	Sender   *cwPerson `json:"sender"`
	Assignee *cwPerson `json:"assignee"`
	Team     *cwRef    `json:"team"`
}

type cwPerson struct {
	ID               cwInt          `json:"id"`
	Name             string         `json:"name"`
	Email            *string        `json:"email"`
	Type             string         `json:"type"`
	CustomAttributes map[string]any `json:"custom_attributes"`
}

type cwMessage struct {
	ID           cwInt           `json:"id"`
	AccountID    cwInt           `json:"account_id"`
	Content      *string         `json:"content"`
	MessageType  cwMessageType   `json:"message_type"`
	Private      bool            `json:"private"`
	CreatedAt    cwTime          `json:"created_at"`
	Sender       *cwPerson       `json:"sender"`
	Account      *cwRef          `json:"account"`
	Conversation *cwConversation `json:"conversation"`
}

// cwFieldError is a value of the wrong kind for a field.
type cwFieldError struct{ msg string }

func (e *cwFieldError) Error() string { return e.msg }

// cwInt is an id: a JSON number or numeric string, 0 for null.
type cwInt struct{ v int64 }

func (i *cwInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" || s == "" {
		i.v = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return &cwFieldError{msg: fmt.Sprintf("expected an integer id, got %.40s", string(b))}
	}
	i.v = int64(f)
	return nil
}

// cwTime is a time: Unix seconds (integer or fraction), an ISO 8601
// string, or null; 0 (Chatwoot's never-set time) is the zero time.
type cwTime struct{ t time.Time }

func (t *cwTime) UnmarshalJSON(b []byte) error {
	t.t = time.Time{}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02T15:04:05.999999999"} {
			if v, err := time.Parse(layout, s); err == nil {
				t.t = v.UTC()
				return nil
			}
		}
		return &cwFieldError{msg: fmt.Sprintf("expected a time, got %.40q", s)}
	}
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return &cwFieldError{msg: fmt.Sprintf("expected Unix seconds, got %.40s", string(b))}
	}
	if f > 0 {
		sec, frac := math.Modf(f)
		t.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	return nil
}

// cwMessageType is a message type by name: Chatwoot writes the integer
// inside a conversation's messages and the name in message_created.
type cwMessageType struct{ v string }

var cwMessageTypes = []string{"incoming", "outgoing", "activity", "template"}

func (m *cwMessageType) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		m.v = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &m.v)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n >= len(cwMessageTypes) {
		return &cwFieldError{msg: fmt.Sprintf("message_type: expected 0 to 3 or a name, got %.20s", string(b))}
	}
	m.v = cwMessageTypes[n]
	return nil
}

// cwChange is one entry of changed_attributes.
type cwChange struct {
	Previous json.RawMessage `json:"previous_value"`
	Current  json.RawMessage `json:"current_value"`
}

func (c cwChange) objects() (prev, cur map[string]any) {
	_ = json.Unmarshal(c.Previous, &prev)
	_ = json.Unmarshal(c.Current, &cur)
	return prev, cur
}

// labels reads a label_list change: arrays, or comma-separated strings
// (Chatwoot's cached label list). A missing side is nil.
func (c cwChange) labels() (prev, cur []string) {
	read := func(raw json.RawMessage) []string {
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			return list
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			list = []string{}
			for l := range strings.SplitSeq(s, ",") {
				if l = strings.TrimSpace(l); l != "" {
					list = append(list, l)
				}
			}
			return list
		}
		return nil
	}
	prev = read(c.Previous)
	if prev == nil {
		prev = []string{}
	}
	return prev, read(c.Current)
}

func (c cwChange) str() string { return rawString(c.Current) }

func (c cwChange) prevStr() string { return rawString(c.Previous) }

func (c cwChange) int() int64 { return rawInt(c.Current) }

func (c cwChange) prevInt() int64 { return rawInt(c.Previous) }

func rawString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func rawInt(raw json.RawMessage) int64 {
	var i cwInt
	if len(raw) > 0 {
		_ = i.UnmarshalJSON(raw)
	}
	return i.v
}
