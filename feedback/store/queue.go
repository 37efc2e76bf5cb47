package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// tierRank orders tiers in SQL, urgent first.
const tierRank = `CASE c.tier WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END`

// OpenConversations reads the live queue: conversations started within
// feedback.QueueWindow of q.Now and not ended by a closed, converted or
// lost event since their last decision, most urgent first, then longest
// waiting, then highest score; with the counts of the whole queue.
//
// The conversations are chosen from their own table, which keeps the last
// decision's team and owner for the filters (an index on first_seen_at
// bounds the scan to the window), and only the page's rows read their
// last decision's reasons.
func (s *Store) OpenConversations(ctx context.Context, q feedback.QueueQuery) (feedback.QueuePage, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit, q.Offset = min(q.Limit, 500), max(q.Offset, 0)
	if q.Now.IsZero() {
		q.Now = now()
	}
	where := []string{"c.first_seen_at >= ?", "(c.closed_at IS NULL OR c.closed_at < c.updated_at)"}
	args := []any{normTime(q.Now.Add(-feedback.QueueWindow))}
	if q.Tier != model.TierNone {
		where, args = append(where, "c.tier = ?"), append(args, q.Tier.String())
	}
	if q.Channel != "" {
		where, args = append(where, "c.channel = ?"), append(args, q.Channel)
	}
	switch {
	case q.Mine:
		where = append(where, "((c.route_team = ? AND c.route_team <> '') OR (c.route_owner = ? AND c.route_owner <> ''))")
		args = append(args, q.Team, q.Owner)
	case q.Team != "":
		where, args = append(where, "c.route_team = ?"), append(args, q.Team)
	}
	from := " FROM conversations c"
	from += " WHERE " + strings.Join(where, " AND ")

	var rows []conversationRow
	err := s.db.WithContext(ctx).Raw(`SELECT c.*`+from+
		` ORDER BY `+tierRank+` DESC, c.first_seen_at ASC, c.score DESC, c.id ASC LIMIT ? OFFSET ?`,
		append(args, q.Limit, q.Offset)...).Scan(&rows).Error
	if err != nil {
		return feedback.QueuePage{}, fmt.Errorf("store: open conversations: %w", translate(err))
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.LastDecisionID
	}
	var last []struct {
		ID      string
		Route   string
		Reasons string
	}
	if len(ids) > 0 {
		if err := s.db.WithContext(ctx).Raw(`SELECT id, route, reasons FROM decisions WHERE id IN ?`, ids).Scan(&last).Error; err != nil {
			return feedback.QueuePage{}, fmt.Errorf("store: open conversations: %w", translate(err))
		}
	}
	byID := make(map[string]int, len(last))
	for i, d := range last {
		byID[d.ID] = i
	}
	page := feedback.QueuePage{ByTier: map[model.Tier]int{}}
	page.Items = make([]feedback.QueueItem, len(rows))
	for i, r := range rows {
		var route, reasons []byte
		if j, ok := byID[r.LastDecisionID]; ok {
			route, reasons = []byte(last[j].Route), []byte(last[j].Reasons)
		}
		page.Items[i] = feedback.NewQueueItem(r.toConversation(), route, reasons, q.Now, q.SLA)
	}

	// The counts: per tier, and past the SLA (its clock starts at the first
	// urgent or high decision and stops at the first response).
	pastSLA := "0"
	var slaArgs []any
	if q.SLA != nil {
		var cases []string
		for _, t := range []model.Tier{model.TierUrgent, model.TierHigh, model.TierMedium, model.TierLow} {
			if d := q.SLA(t); d > 0 {
				cases = append(cases, "(c.tier = ? AND c.first_top_at < ?)")
				slaArgs = append(slaArgs, t.String(), normTime(q.Now.Add(-d)))
			}
		}
		if len(cases) > 0 {
			pastSLA = "CASE WHEN c.first_response_at IS NULL AND (" + strings.Join(cases, " OR ") + ") THEN 1 ELSE 0 END"
		}
	}
	var counts []struct {
		Tier    string
		N       int
		PastSLA int
	}
	err = s.db.WithContext(ctx).Raw(`SELECT c.tier AS tier, COUNT(*) AS n, SUM(`+pastSLA+`) AS past_sla`+from+` GROUP BY c.tier`,
		append(slaArgs, args...)...).Scan(&counts).Error
	if err != nil {
		return feedback.QueuePage{}, fmt.Errorf("store: open conversations: count: %w", translate(err))
	}
	for _, c := range counts {
		page.ByTier[parseTier(c.Tier)] += c.N
		page.Total += c.N
		page.PastSLA += c.PastSLA
	}
	return page, nil
}

// CountAlerts counts the alerts q selects (its Cursor and Limit aside):
// the navigation's count of unlabelled alerts.
func (s *Store) CountAlerts(ctx context.Context, q feedback.AlertQuery) (int, error) {
	db, err := s.alertsWhere(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("store: count alerts: %w", err)
	}
	var n int64
	if err := db.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("store: count alerts: %w", translate(err))
	}
	return int(n), nil
}
