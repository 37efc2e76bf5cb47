package feedback

import (
	"time"

	"github.com/hotlane/hotlane/model"
)

// MaxAhead is how far a decision's OccurredAt (or any reported time) may
// be after the time it is recorded: clocks drift, but an event a day ahead
// is a bug in the sender. Readers of a window of occurrence rely on it to
// read only the decisions recorded since the window began, less this.
const MaxAhead = 24 * time.Hour

// DecisionMaintenance is what one pass of the decisions' retention did:
// the monthly partitions created ahead and dropped as expired
// (PostgreSQL), those left for the next pass because their lock was busy,
// and the decisions deleted (SQLite, which has no partitions).
type DecisionMaintenance struct {
	Created, Dropped, Skipped []string
	Deleted                   int64
}

// Decision is one scoring decision as stored. The store fills CreatedAt
// (and OccurredAt from it) when they are zero.
type Decision struct {
	ID             string // UUIDv7 string made by the caller
	ConversationID string
	Channel        string
	Signals        []byte  // raw JSON object; nil is stored as {}
	Message        *string // nil when message text is not stored
	Score          float64
	Tier           model.Tier
	Reasons        []byte // JSON array; nil is stored as []
	Route          []byte // JSON object; nil is stored as {}
	// Warnings is the JSON array of the decision's model.Warning, nil
	// (stored as NULL) when it has none.
	Warnings      []byte
	ModelVersion  int // 0 when no model was active
	PolicyVersion int
	LatencyMicros int64
	OccurredAt    time.Time
	CreatedAt     time.Time
	// Checked says Signals, Reasons, Route and Warnings are already known
	// to be valid JSON (the score path validated or encoded them), so the store
	// does not parse them again. It is not stored.
	Checked bool
	// Alert is how the policy alerts on this decision; it is not stored
	// with the decision but decides the alert written beside it
	// (PlanAlerts).
	Alert AlertPlan
}

// Conversation is the current state of a conversation: the outcome of its
// latest decision, how many decisions it has had, and its alert state.
type Conversation struct {
	ID             string
	Channel        string
	Tier           model.Tier
	Score          float64
	LastDecisionID string
	Decisions      int64
	FirstSeenAt    time.Time
	UpdatedAt      time.Time
	// AlertedTier is the highest tier a tier alert fired for, TierNone if
	// none.
	AlertedTier model.Tier
	// LastAlertAt is when the last tier alert fired, for the cooldown.
	LastAlertAt *time.Time
	// FirstTopAt is the first urgent or high decision: the SLA clock.
	FirstTopAt *time.Time
	// FirstResponseAt is the first human response reported by an event.
	FirstResponseAt *time.Time
	// SLAEscalatedAt is when the SLA escalation was raised.
	SLAEscalatedAt *time.Time
}

// Recorded is what recording a decision tells the score path.
type Recorded struct {
	// PreviousTier is the conversation's tier before the decision,
	// TierNone for a new conversation.
	PreviousTier model.Tier
	// Alert is nil when the decision produced no alert row.
	Alert *AlertOutcome
}

// IsTopTier reports whether tier starts the SLA clock (a conversation's
// first urgent or high decision) and counts towards the top-tier KPIs.
func IsTopTier(tier model.Tier) bool { return tier >= model.TierHigh }
