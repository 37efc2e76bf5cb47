package feedback

import (
	"encoding/json"
	"time"

	"github.com/hotlane/hotlane/model"
)

// QueueWindow is how long after it started a conversation stays in the
// live queue when no closed, converted or lost event ends it first: a
// platform that never reports the end of a chat does not fill the queue
// forever, and a live chat is over long before.
const QueueWindow = 24 * time.Hour

// QueueQuery selects open conversations for the live queue. Empty fields
// do not filter.
type QueueQuery struct {
	Tier    model.Tier // TierNone: every tier
	Channel string
	Team    string
	// Mine keeps the conversations routed to Team or owned by Owner
	// (either may be empty); it replaces the Team filter.
	Mine  bool
	Owner string
	// Now is the queue's clock; conversations that started before
	// Now - QueueWindow are left out.
	Now time.Time
	// SLA gives each tier's time to first response (0: none), to count
	// and mark the conversations past it.
	SLA func(model.Tier) time.Duration
	// Limit caps the page; <= 0 means 100, and it is capped at 500.
	// Offset skips that many: the queue moves, so a page is a view of
	// the moment it was read.
	Limit, Offset int
}

// QueueItem is one open conversation as the queue shows it.
type QueueItem struct {
	Conversation
	Team    string
	Owner   string
	Via     string
	Reasons []model.Reason
	// Waiting is how long the conversation has waited for a first
	// response (zero once it had one).
	Waiting time.Duration
	// SLALeft is the time left to the tier's SLA from the first urgent or
	// high decision, negative past it; HasSLA is false when the tier has
	// none or the conversation was answered.
	SLALeft time.Duration
	HasSLA  bool
}

// PastSLA reports whether the conversation waits past its SLA.
func (q QueueItem) PastSLA() bool { return q.HasSLA && q.SLALeft < 0 }

// QueuePage is a page of the live queue and the counts of the whole queue
// under the same filters.
type QueuePage struct {
	Items []QueueItem
	// Total is the number of open conversations the filters keep;
	// ByTier splits it, and PastSLA counts those waiting past their SLA.
	Total   int
	ByTier  map[model.Tier]int
	PastSLA int
}

// route is the stored form of a decision's route.
type route struct {
	Team  string `json:"team"`
	Owner string `json:"owner"`
	Via   string `json:"via"`
}

// NewQueueItem builds a queue item from a conversation and its latest
// decision's stored route and reasons, at now.
func NewQueueItem(c Conversation, routeJSON, reasonsJSON []byte, now time.Time, sla func(model.Tier) time.Duration) QueueItem {
	it := QueueItem{Conversation: c}
	var r route
	if json.Unmarshal(routeJSON, &r) == nil {
		it.Team, it.Owner, it.Via = r.Team, r.Owner, r.Via
	}
	_ = json.Unmarshal(reasonsJSON, &it.Reasons)
	if c.FirstResponseAt == nil {
		it.Waiting = max(now.Sub(c.FirstSeenAt), 0)
		if c.FirstTopAt != nil && sla != nil {
			if d := sla(c.Tier); d > 0 {
				it.SLALeft, it.HasSLA = c.FirstTopAt.Add(d).Sub(now), true
			}
		}
	}
	return it
}
