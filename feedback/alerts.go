package feedback

import (
	"cmp"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/model"
)

// Alert kinds, as stored in alerts.kind.
const (
	// AlertKindTier is raised by a decision entering an alerting tier.
	AlertKindTier = "tier"
	// AlertKindReview asks agents to label a conversation of the
	// exploration sample.
	AlertKindReview = "review"
	// AlertKindSLA escalates a conversation that waited past its tier's
	// SLA to the team lead.
	AlertKindSLA = "sla"
)

// AlertKinds lists every alert kind.
var AlertKinds = []string{AlertKindTier, AlertKindReview, AlertKindSLA}

// Alert statuses, as stored in alerts.status.
const (
	AlertStatusFired        = "fired"
	AlertStatusSuppressed   = "suppressed"
	AlertStatusDeduplicated = "deduplicated"
)

// Reasons an alert was held back, as stored in alerts.reason.
const (
	AlertReasonCooldown  = "cooldown"
	AlertReasonBudget    = "budget"
	AlertReasonDuplicate = "duplicate"
)

// BudgetWindow is the span of a team's hourly alert budget.
const BudgetWindow = time.Hour

// Alert is one alert: written by the score path beside its decision (or
// raised later, as an SLA escalation), dispatched to destinations by the
// outbox, and listed and labelled in the feed. Labels and Reasons are
// filled only by the reads that need them.
type Alert struct {
	ID             string
	Kind           string // AlertKindTier, AlertKindReview or AlertKindSLA
	ConversationID string
	DecisionID     string
	Channel        string
	Tier           model.Tier
	Score          float64
	Team           string
	Owner          string
	Status         string // AlertStatusFired, AlertStatusSuppressed or AlertStatusDeduplicated
	Reason         string // AlertReasonCooldown, AlertReasonBudget or AlertReasonDuplicate when held back
	// SampleRate is, for a review alert, the probability its conversation
	// was sampled with; 0 for other kinds.
	SampleRate   float64
	CreatedAt    time.Time
	DispatchedAt *time.Time
	// Labels are the agents' labels, oldest first: filled by the feed.
	Labels []AlertLabel
	// Reasons is the JSON array of the decision's reasons: filled when a
	// delivery is claimed.
	Reasons []byte
}

// AlertPlan is what the live policy says about alerting on one decision.
// The score path fills it from the policy's alerts section, so the store
// applies the rules without knowing the policy. The zero value never alerts
// and never samples.
type AlertPlan struct {
	// Alerts is set when the decision's tier alerts on its channel.
	Alerts bool
	// Team and Owner are the decision's route; the budget is per team.
	Team  string
	Owner string
	// Cooldown is the least time between two fired alerts of the
	// conversation; 0 means none.
	Cooldown time.Duration
	// HourlyBudget is the most tier alerts fired for Team in any hour; 0
	// means no limit.
	HourlyBudget int
	// ExplorationRate is the probability that a conversation that does not
	// alert is sampled for review.
	ExplorationRate float64
}

// AlertOutcome is the alert a decision produced: a tier alert fired,
// suppressed or deduplicated, or a review request of the exploration
// sample.
type AlertOutcome struct {
	ID     string
	Kind   string // AlertKindTier or AlertKindReview
	Status string // AlertStatusFired, AlertStatusSuppressed or AlertStatusDeduplicated
	Reason string // for suppressed and deduplicated alerts
	// SampleRate is the probability a review alert was sampled with.
	SampleRate float64
}

// InSample reports whether a conversation belongs to the exploration
// sample at rate. It hashes the id alone, so every process and every replay
// agree, and a conversation sampled at one rate stays sampled at any higher
// rate.
func InSample(conversationID string, rate float64) bool {
	if rate <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(conversationID))
	// FNV alone leaves similar ids (conv-1, conv-2) close in the high
	// bits; the splitmix64 finaliser spreads them uniformly.
	x := h.Sum64()
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/(1<<53) < rate
}

// NeedsAlertState reports whether d's alert outcome depends on the stored
// state of its conversation: it is in an alerting tier, or its
// conversation may be sampled for review.
func NeedsAlertState(d *Decision) bool {
	if d.Alert.Alerts {
		return d.Tier != model.TierNone
	}
	return InSample(d.ConversationID, d.Alert.ExplorationRate)
}

// AlertState is the alert state of a conversation as a batch reads it
// before planning and leaves it after.
type AlertState struct {
	// AlertedTier is the highest tier a tier alert fired for.
	AlertedTier model.Tier
	// LastAlertAt is when the last tier alert fired.
	LastAlertAt *time.Time
	// Reviewed is set once the conversation has a review alert.
	Reviewed bool
}

// BatchAlerts is what PlanAlerts decided for a batch.
type BatchAlerts struct {
	// Outcomes has one entry per decision, nil when it produced no alert.
	Outcomes []*AlertOutcome
	// Alerts are the alerts to write, in the batch's order.
	Alerts []Alert
	// Final is each conversation's alert state after the batch.
	Final map[string]AlertState
}

// AlertTeams returns, sorted, the teams whose budget the batch may spend,
// and the start of the budget window that covers every decision.
func AlertTeams(batch []*Decision) (teams []string, since time.Time) {
	for _, d := range batch {
		if !d.Alert.Alerts || d.Tier == model.TierNone || d.Alert.HourlyBudget <= 0 {
			continue
		}
		if !slices.Contains(teams, d.Alert.Team) {
			teams = append(teams, d.Alert.Team)
		}
		if start := d.CreatedAt.Add(-BudgetWindow); since.IsZero() || start.Before(since) {
			since = start
		}
	}
	slices.Sort(teams)
	return teams, since
}

// SampledConversations returns the batch's conversations that may get a
// review alert, whose earlier review alerts the batch must know.
func SampledConversations(batch []*Decision) []string {
	var ids []string
	for _, d := range batch {
		if !d.Alert.Alerts && InSample(d.ConversationID, d.Alert.ExplorationRate) && !slices.Contains(ids, d.ConversationID) {
			ids = append(ids, d.ConversationID)
		}
	}
	return ids
}

// PlanAlerts decides the alert outcome of every decision of a batch, in the
// batch's order, from the conversations' stored state and the tier alerts
// each team fired in the past hour. Both engines' writers plan with it.
//
// Per decision: a tier that does not alert on its channel may be sampled
// for review (once per conversation, never after a tier alert fired). A
// tier that alerts but is not above the conversation's alerted tier is a
// duplicate. Otherwise the decision is a candidate: held back by the
// cooldown when the conversation's last alert is too recent, else by the
// team's hourly budget, else fired. When a team's candidates in the batch
// exceed what is left of its budget, the higher scores fire and the lower
// ones are held back; a conversation whose candidate is held back is judged
// again without it, until the outcome is stable.
func PlanAlerts(batch []*Decision, stored map[string]AlertState, firedPastHour map[string]int) BatchAlerts {
	held := map[int]bool{} // candidates that lost the budget
	var out []*AlertOutcome
	var state map[string]AlertState
	for {
		out = make([]*AlertOutcome, len(batch))
		state = maps.Clone(stored)
		if state == nil {
			state = map[string]AlertState{}
		}
		pending := map[string][]int{} // team -> candidates, tentatively fired
		for i, d := range batch {
			p := &d.Alert
			c := state[d.ConversationID]
			switch {
			case !p.Alerts || d.Tier == model.TierNone:
				if c.AlertedTier == model.TierNone && !c.Reviewed && InSample(d.ConversationID, p.ExplorationRate) {
					out[i] = &AlertOutcome{Kind: AlertKindReview, Status: AlertStatusFired, SampleRate: p.ExplorationRate}
					c.Reviewed = true
				}
			case d.Tier <= c.AlertedTier:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusDeduplicated, Reason: AlertReasonDuplicate}
			case c.LastAlertAt != nil && d.CreatedAt.Sub(*c.LastAlertAt) < p.Cooldown:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusSuppressed, Reason: AlertReasonCooldown}
			case held[i]:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusSuppressed, Reason: AlertReasonBudget}
			default:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusFired}
				at := d.CreatedAt
				c.AlertedTier, c.LastAlertAt = d.Tier, &at
				if p.HourlyBudget > 0 {
					pending[p.Team] = append(pending[p.Team], i)
				}
			}
			state[d.ConversationID] = c
		}
		grew := false
		for team, idx := range pending {
			left := batch[idx[0]].Alert.HourlyBudget - firedPastHour[team]
			if len(idx) <= left {
				continue
			}
			slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(batch[b].Score, batch[a].Score) })
			for _, i := range idx[max(left, 0):] {
				held[i] = true
			}
			grew = true
		}
		if !grew {
			break
		}
	}

	res := BatchAlerts{Outcomes: out, Final: state}
	for i, o := range out {
		if o == nil {
			continue
		}
		o.ID = uuid.Must(uuid.NewV7()).String()
		d := batch[i]
		res.Alerts = append(res.Alerts, Alert{
			ID: o.ID, Kind: o.Kind, ConversationID: d.ConversationID, DecisionID: d.ID, Channel: d.Channel,
			Tier: d.Tier, Score: d.Score, Team: d.Alert.Team, Owner: d.Alert.Owner, Status: o.Status,
			Reason: o.Reason, SampleRate: o.SampleRate, CreatedAt: d.CreatedAt,
		})
	}
	return res
}

// PlanAlert is what a policy's alerts section says about decision d on
// channel, in the terms the store applies it.
func PlanAlert(ap *model.AlertPolicy, channel string, d model.Decision) AlertPlan {
	return AlertPlan{
		Alerts:          ap.Alerts(channel, d.Tier),
		Team:            d.Route.Team,
		Owner:           d.Route.Owner,
		Cooldown:        ap.Cooldown(),
		HourlyBudget:    ap.HourlyBudget(d.Route.Team),
		ExplorationRate: ap.ExplorationRate(),
	}
}
