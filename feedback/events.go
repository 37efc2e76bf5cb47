package feedback

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/hotlane/hotlane/model"
)

// Conversation event types.
const (
	EventFirstResponse = "first_response"
	EventConverted     = "converted"
	EventLost          = "lost"
	EventClosed        = "closed"
	EventTierFeedback  = "tier_feedback"
)

// EventTypes lists every event type.
var EventTypes = []string{EventFirstResponse, EventConverted, EventLost, EventClosed, EventTierFeedback}

// IdempotencyTTL is how long an idempotency key is remembered; after it the
// same key writes again.
const IdempotencyTTL = 24 * time.Hour

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

// Event is something that happened to a conversation, reported by a
// platform or an agent.
type Event struct {
	ID             string
	ConversationID string
	Type           string
	At             time.Time  // when it happened; defaults to when it was recorded
	Value          *float64   // converted: the deal value, when known
	Tier           model.Tier // tier_feedback: the tier the agent says is right
	Agent          string
	CreatedAt      time.Time
}

// Idempotency names a request that may be retried: Key is the client's
// Idempotency-Key, scoped by the API key that sent it.
type Idempotency struct {
	APIKeyID int64
	Key      string
}

// unknownTier stands for a tier name no tier has, so that ValidateEvent
// refuses it with the message of the event's type.
const unknownTier = model.Tier(math.MaxUint8)

// ParseEventTier reads the tier name of an event request: "" is TierNone,
// and a name that is no tier gives a tier that ValidateEvent refuses.
func ParseEventTier(name string) model.Tier {
	t, err := model.ParseTier(name)
	if err != nil {
		return unknownTier
	}
	return t
}

// ValidateEvent checks an event as a client sent it: a known type, a tier
// only (and always) for tier_feedback, a finite non-negative value only for
// converted, an agent of at most MaxAgentLen characters. Its errors wrap
// ErrInvalid and name the field first.
func ValidateEvent(e Event) error {
	switch e.Type {
	case EventFirstResponse, EventConverted, EventLost, EventClosed, EventTierFeedback:
	default:
		return fmt.Errorf("%w: type: must be first_response, converted, lost, closed or tier_feedback", ErrInvalid)
	}
	if e.Type == EventTierFeedback {
		if e.Tier < model.TierLow || e.Tier > model.TierUrgent {
			return fmt.Errorf("%w: tier: tier_feedback needs a tier: urgent, high, medium or low", ErrInvalid)
		}
	} else if e.Tier != model.TierNone {
		return fmt.Errorf("%w: tier: only tier_feedback carries a tier", ErrInvalid)
	}
	if e.Value != nil {
		if e.Type != EventConverted {
			return fmt.Errorf("%w: value: only converted carries a value", ErrInvalid)
		}
		if math.IsNaN(*e.Value) || math.IsInf(*e.Value, 0) || *e.Value < 0 {
			return fmt.Errorf("%w: value: must be a non-negative number", ErrInvalid)
		}
	}
	return validAgent(e.Agent, false)
}

// EventFingerprint identifies the request an event came from: the same
// event sent twice has the same fingerprint, whatever its JSON spacing. A
// zero At (the client let the server choose) is part of it as such; a set
// one counts to the microsecond, the precision the store keeps.
func EventFingerprint(e Event) string {
	var at string
	if !e.At.IsZero() {
		at = e.At.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal([]any{e.ConversationID, e.Type, at, e.Value, e.Tier.String(), e.Agent})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
