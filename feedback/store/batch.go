package store

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// A batch is the decisions one flush commits together. The pure parts of
// committing it, shared by both engines, are here: combining its decisions
// per conversation, and answering its requests once committed. Its alerts
// are planned by feedback.PlanAlerts.

// decisionsOf returns the batch's decisions, in order, for the planning
// functions of package feedback.
func decisionsOf(batch []*writeReq) []*feedback.Decision {
	out := make([]*feedback.Decision, len(batch))
	for i, r := range batch {
		out[i] = &r.d
	}
	return out
}

// needsAlertState reports whether any decision of the batch depends on its
// conversation's stored alert state.
func needsAlertState(batch []*writeReq) bool {
	return slices.ContainsFunc(batch, func(r *writeReq) bool { return feedback.NeedsAlertState(&r.d) })
}

// convPlan is the combined effect of a batch on one conversation: the last
// decision wins, counts add up.
type convPlan struct {
	row   conversationRow
	first int // index in the batch of the conversation's first decision
}

// planConversations combines the batch's decisions per conversation, sorted
// by id so that concurrent writers lock rows in the same order. FirstTopAt
// is the batch's first urgent or high decision; the upsert keeps a stored
// one.
func planConversations(batch []*writeReq) []convPlan {
	idx := make(map[string]int, len(batch))
	plans := make([]convPlan, 0, len(batch))
	for i, r := range batch {
		d := &r.d
		j, ok := idx[d.ConversationID]
		if !ok {
			j = len(plans)
			idx[d.ConversationID] = j
			plans = append(plans, convPlan{first: i, row: conversationRow{ID: d.ConversationID, FirstSeenAt: d.CreatedAt}})
		}
		p := &plans[j]
		p.row.Channel, p.row.Tier, p.row.Score, p.row.LastDecisionID = d.Channel, d.Tier.String(), d.Score, d.ID
		p.row.RouteTeam, p.row.RouteOwner = routeOf(d)
		p.row.UpdatedAt = d.CreatedAt
		p.row.Decisions++
		if p.row.FirstTopAt == nil && feedback.IsTopTier(d.Tier) {
			at := d.CreatedAt
			p.row.FirstTopAt = &at
		}
	}
	slices.SortFunc(plans, func(a, b convPlan) int { return strings.Compare(a.row.ID, b.row.ID) })
	return plans
}

// setAlertState copies the conversations' alert state after the batch into
// their plans.
func setAlertState(plans []convPlan, final map[string]feedback.AlertState) {
	for i := range plans {
		st := final[plans[i].row.ID]
		plans[i].row.AlertedTier, plans[i].row.LastAlertAt = st.AlertedTier.String(), st.LastAlertAt
	}
}

// finishBatch answers each request: its previous tier, from the tiers
// stored before the batch then from the batch's own earlier decisions in
// order, and its alert (alerts may be nil when no decision needed one).
func finishBatch(batch []*writeReq, stored map[string]model.Tier, alerts *feedback.BatchAlerts) {
	for i, r := range batch {
		r.rec = feedback.Recorded{PreviousTier: stored[r.d.ConversationID]}
		if alerts != nil {
			r.rec.Alert = alerts.Outcomes[i]
		}
		stored[r.d.ConversationID] = r.d.Tier
	}
}

// routeOf is a decision's team and owner: from its alert plan, which the
// score path fills from the route it already has, else from the stored
// route.
func routeOf(d *feedback.Decision) (team, owner string) {
	if d.Alert.Team != "" || d.Alert.Owner != "" {
		return d.Alert.Team, d.Alert.Owner
	}
	if len(d.Route) <= 2 {
		return "", ""
	}
	var r struct {
		Team  string `json:"team"`
		Owner string `json:"owner"`
	}
	_ = json.Unmarshal(d.Route, &r)
	return r.Team, r.Owner
}
