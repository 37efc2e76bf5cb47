package feedback

import (
	"cmp"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

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

// budgetWindow is the span of the hourly budget.
const budgetWindow = time.Hour

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

// AlertOutcome is the alert row a decision produced: a tier alert fired,
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

// Recorded is what recording a decision tells the score path.
type Recorded struct {
	// PreviousTier is the conversation's tier before the decision, "" for a
	// new conversation.
	PreviousTier string
	// Alert is nil when the decision produced no alert row.
	Alert *AlertOutcome
}

// tierRank orders the stored tier names; 0 is no tier.
func tierRank(tier string) int {
	switch tier {
	case "low":
		return 1
	case "medium":
		return 2
	case "high":
		return 3
	case "urgent":
		return 4
	}
	return 0
}

// isTopTier reports whether tier starts the SLA clock (first_top_at).
func isTopTier(tier string) bool { return tier == "urgent" || tier == "high" }

// inSample reports whether a conversation belongs to the exploration
// sample at rate. It hashes the id alone, so every process and every replay
// agree, and a conversation sampled at one rate stays sampled at any higher
// rate.
func inSample(conversationID string, rate float64) bool {
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

// needsAlertState reports whether d's alert outcome depends on the stored
// state of its conversation: it is in an alerting tier, or its
// conversation may be sampled for review.
func needsAlertState(d *Decision) bool {
	if d.Alert.Alerts {
		return tierRank(d.Tier) > 0
	}
	return inSample(d.ConversationID, d.Alert.ExplorationRate)
}

// alertState is the alert state of a conversation as the batch reads it.
type alertState struct {
	alertedTier string
	lastAlertAt *time.Time
	reviewed    bool // has a review alert already
}

// batchAlerts is the result of planAlerts: one outcome per decision (nil
// when none), the rows to insert, and each conversation's state after the
// batch.
type batchAlerts struct {
	outcomes []*AlertOutcome
	rows     []alertRow
	final    map[string]alertState
}

// alertRow is a row of the alerts table, shared by the score path that
// writes it, the outbox that dispatches it and the feed that lists it.
type alertRow struct {
	ID             string `gorm:"primaryKey"`
	Kind           string
	ConversationID string
	DecisionID     string
	Channel        string
	Tier           string
	Score          float64
	Team           string
	Owner          string
	Status         string
	Reason         string
	SampleRate     *float64
	CreatedAt      time.Time
	DispatchedAt   *time.Time
}

func (alertRow) TableName() string { return "alerts" }

// alertTeams returns, sorted, the teams whose budget the batch may spend,
// and the start of the budget window that covers every decision.
func alertTeams(batch []*writeReq) (teams []string, since time.Time) {
	for _, r := range batch {
		d := &r.d
		if !d.Alert.Alerts || tierRank(d.Tier) == 0 || d.Alert.HourlyBudget <= 0 {
			continue
		}
		if !slices.Contains(teams, d.Alert.Team) {
			teams = append(teams, d.Alert.Team)
		}
		if start := d.CreatedAt.Add(-budgetWindow); since.IsZero() || start.Before(since) {
			since = start
		}
	}
	slices.Sort(teams)
	return teams, since
}

// sampledConversations returns the batch's conversations that may get a
// review alert, whose earlier review alerts the batch must know.
func sampledConversations(batch []*writeReq) []string {
	var ids []string
	for _, r := range batch {
		d := &r.d
		if !d.Alert.Alerts && inSample(d.ConversationID, d.Alert.ExplorationRate) && !slices.Contains(ids, d.ConversationID) {
			ids = append(ids, d.ConversationID)
		}
	}
	return ids
}

// planAlerts decides the alert outcome of every decision of a batch, in the
// batch's order, from the conversations' stored state and the tier alerts
// each team fired in the past hour. It is the same for both engines.
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
func planAlerts(batch []*writeReq, stored map[string]alertState, firedPastHour map[string]int) batchAlerts {
	held := map[int]bool{} // candidates that lost the budget
	var out []*AlertOutcome
	var state map[string]alertState
	for {
		out = make([]*AlertOutcome, len(batch))
		state = maps.Clone(stored)
		if state == nil {
			state = map[string]alertState{}
		}
		pending := map[string][]int{} // team -> candidates, tentatively fired
		for i, r := range batch {
			d := &r.d
			p := &d.Alert
			c := state[d.ConversationID]
			switch {
			case !p.Alerts || tierRank(d.Tier) == 0:
				if c.alertedTier == "" && !c.reviewed && inSample(d.ConversationID, p.ExplorationRate) {
					out[i] = &AlertOutcome{Kind: AlertKindReview, Status: AlertStatusFired, SampleRate: p.ExplorationRate}
					c.reviewed = true
				}
			case tierRank(d.Tier) <= tierRank(c.alertedTier):
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusDeduplicated, Reason: AlertReasonDuplicate}
			case c.lastAlertAt != nil && d.CreatedAt.Sub(*c.lastAlertAt) < p.Cooldown:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusSuppressed, Reason: AlertReasonCooldown}
			case held[i]:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusSuppressed, Reason: AlertReasonBudget}
			default:
				out[i] = &AlertOutcome{Kind: AlertKindTier, Status: AlertStatusFired}
				at := d.CreatedAt
				c.alertedTier, c.lastAlertAt = d.Tier, &at
				if p.HourlyBudget > 0 {
					pending[p.Team] = append(pending[p.Team], i)
				}
			}
			state[d.ConversationID] = c
		}
		grew := false
		for team, idx := range pending {
			left := batch[idx[0]].d.Alert.HourlyBudget - firedPastHour[team]
			if len(idx) <= left {
				continue
			}
			slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(batch[b].d.Score, batch[a].d.Score) })
			for _, i := range idx[max(left, 0):] {
				held[i] = true
			}
			grew = true
		}
		if !grew {
			break
		}
	}

	res := batchAlerts{outcomes: out, final: state}
	for i, o := range out {
		if o == nil {
			continue
		}
		o.ID = uuid.Must(uuid.NewV7()).String()
		d := &batch[i].d
		row := alertRow{
			ID: o.ID, Kind: o.Kind, ConversationID: d.ConversationID, DecisionID: d.ID, Channel: d.Channel,
			Tier: d.Tier, Score: d.Score, Team: d.Alert.Team, Owner: d.Alert.Owner, Status: o.Status,
			Reason: o.Reason, CreatedAt: d.CreatedAt,
		}
		if o.Kind == AlertKindReview {
			rate := o.SampleRate
			row.SampleRate = &rate
		}
		res.rows = append(res.rows, row)
	}
	return res
}

// firstTopAt returns, per conversation, when the batch first put it in
// urgent or high.
func firstTopAt(batch []*writeReq) map[string]time.Time {
	var m map[string]time.Time
	for _, r := range batch {
		d := &r.d
		if !isTopTier(d.Tier) {
			continue
		}
		if m == nil {
			m = map[string]time.Time{}
		}
		if _, ok := m[d.ConversationID]; !ok {
			m[d.ConversationID] = d.CreatedAt
		}
	}
	return m
}
