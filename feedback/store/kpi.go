package store

import (
	"context"
	"fmt"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// KPIs computes the KPI report of q (feedback.ComputeKPIs over the facts
// of its weeks). Weeks outside 1..MaxKPIWeeks is ErrInvalid.
func (s *Store) KPIs(ctx context.Context, q feedback.KPIQuery) (feedback.KPIReport, error) {
	start, end, err := feedback.KPIWindow(q)
	if err != nil {
		return feedback.KPIReport{}, fmt.Errorf("store: kpis: %w", err)
	}
	facts, err := s.kpiFacts(ctx, start, end, q.Channel)
	if err != nil {
		return feedback.KPIReport{}, fmt.Errorf("store: kpis: %w", err)
	}
	return feedback.ComputeKPIs(facts, start, q.Weeks), nil
}

// KPIBaseline computes the KPIs of [start, end) as one period, to set
// weeks beside (feedback.ComputeKPIPeriod).
func (s *Store) KPIBaseline(ctx context.Context, start, end time.Time, channel string) (feedback.KPIWeek, error) {
	if !end.After(start) {
		return feedback.KPIWeek{}, fmt.Errorf("store: kpi baseline: %w: the period is empty", feedback.ErrInvalid)
	}
	facts, err := s.kpiFacts(ctx, start, end, channel)
	if err != nil {
		return feedback.KPIWeek{}, fmt.Errorf("store: kpi baseline: %w", err)
	}
	return feedback.ComputeKPIPeriod(facts, start, end), nil
}

// FirstPromotion is when a model was first made active, nil when none
// ever was.
func (s *Store) FirstPromotion(ctx context.Context) (*time.Time, error) {
	var at []time.Time
	if err := s.db.WithContext(ctx).Model(&modelRow{}).Where("first_activated_at IS NOT NULL").
		Order("first_activated_at").Limit(1).Pluck("first_activated_at", &at).Error; err != nil {
		return nil, fmt.Errorf("store: first promotion: %w", translate(err))
	}
	if len(at) == 0 {
		return nil, nil
	}
	t := at[0].UTC()
	return &t, nil
}

// kpiLead is how far before a KPI window a review's decision is looked
// for.
const kpiLead = 30 * 24 * time.Hour

// kpiFacts reads the facts the KPIs of [start, end) are computed from.
func (s *Store) kpiFacts(ctx context.Context, start, end time.Time, channel string) (feedback.KPIFacts, error) {
	var f feedback.KPIFacts
	db := s.db.WithContext(ctx)

	// Reviews: tier feedback, with the tier of the conversation's latest
	// decision at the time of the review.
	// The decision is looked for among those recorded since kpiLead
	// before the window (older ones would be read from every month's
	// partition for each review); a conversation with none that recent
	// counts with its tier now.
	reviewSQL := `SELECT e.conversation_id, c.channel, e.tier AS agent_tier, e.at,
  COALESCE((SELECT d.tier FROM decisions d WHERE d.conversation_id = e.conversation_id AND d.created_at <= e.at AND d.created_at >= ?
            ORDER BY d.created_at DESC, d.id DESC LIMIT 1), c.tier) AS model_tier
FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id
WHERE e.type = 'tier_feedback' AND e.at >= ? AND e.at < ?`
	args := []any{start.Add(-kpiLead), start, end}
	if channel != "" {
		reviewSQL += " AND c.channel = ?"
		args = append(args, channel)
	}
	reviewSQL += " ORDER BY e.at, e.id"
	var reviews []struct {
		ConversationID string
		Channel        string
		ModelTier      string
		AgentTier      string
		At             time.Time
	}
	if err := db.Raw(reviewSQL, args...).Scan(&reviews).Error; err != nil {
		return f, fmt.Errorf("reviews: %w", translate(err))
	}
	for _, r := range reviews {
		f.Reviews = append(f.Reviews, feedback.KPIReview{ConversationID: r.ConversationID, Channel: r.Channel,
			ModelTier: parseTier(r.ModelTier), AgentTier: parseTier(r.AgentTier), At: r.At})
	}

	// Conversations that reached urgent or high in the window.
	// The events are looked up by conversation only (the type is tested
	// in the select list): with "AND e.type = 'converted'" SQLite walks the
	// index of every conversion of all time for each conversation instead.
	//
	// Their decisions that matter (the urgent ones, the latest) come at or
	// after the first urgent or high one, so were recorded after
	// start-MaxAhead: the bound spares PostgreSQL a lookup in every older
	// month's partition for each conversation.
	recordedFrom := start.Add(-feedback.MaxAhead)
	topSQL := `SELECT c.id AS conversation_id, c.channel, c.first_top_at, c.first_response_at,
  EXISTS (SELECT 1 FROM decisions d WHERE d.conversation_id = c.id AND d.tier = 'urgent' AND d.created_at >= ?) AS reached_urgent,
  COALESCE((SELECT MAX(CASE WHEN e.type = 'converted' THEN 1 ELSE 0 END) FROM conversation_events e WHERE e.conversation_id = c.id), 0) = 1 AS converted,
  (SELECT MAX(CASE WHEN e.type = 'converted' THEN e.value END) FROM conversation_events e WHERE e.conversation_id = c.id) AS converted_value,
  (SELECT d.signals FROM decisions d WHERE d.conversation_id = c.id AND d.created_at >= ? ORDER BY d.created_at DESC, d.id DESC LIMIT 1) AS signals
FROM conversations c WHERE c.first_top_at >= ? AND c.first_top_at < ?`
	args = []any{recordedFrom, recordedFrom, start, end}
	if channel != "" {
		topSQL += " AND c.channel = ?"
		args = append(args, channel)
	}
	var tops []struct {
		ConversationID  string
		Channel         string
		FirstTopAt      time.Time
		FirstResponseAt *time.Time
		ReachedUrgent   bool
		Converted       bool
		ConvertedValue  *float64
		Signals         []byte
	}
	if err := db.Raw(topSQL, args...).Scan(&tops).Error; err != nil {
		return f, fmt.Errorf("top conversations: %w", translate(err))
	}
	for _, t := range tops {
		top := feedback.KPITopConversation{ConversationID: t.ConversationID, Channel: t.Channel, FirstTopAt: t.FirstTopAt,
			FirstResponseAt: t.FirstResponseAt, ReachedUrgent: t.ReachedUrgent, Converted: t.Converted}
		top.Value = t.ConvertedValue
		if top.Value == nil {
			top.Value = feedback.DealValue(t.Signals)
		}
		f.Tops = append(f.Tops, top)
	}

	// Labels of the tier alerts fired in the window, with the reasons of
	// the decisions that fired them.
	alertSQL := `SELECT a.id AS alert_id, a.channel, a.tier, a.created_at, l.label, COALESCE(d.reasons, '[]') AS reasons
FROM alert_labels l JOIN alerts a ON a.id = l.alert_id LEFT JOIN decisions d ON d.id = a.decision_id AND d.created_at >= ?
WHERE a.kind = 'tier' AND a.status = 'fired' AND a.created_at >= ? AND a.created_at < ?`
	// The decision that fired an alert occurred before it, so was recorded
	// after start-MaxAhead.
	args = []any{recordedFrom, start, end}
	if channel != "" {
		alertSQL += " AND a.channel = ?"
		args = append(args, channel)
	}
	alertSQL += " ORDER BY a.id"
	var labelled []struct {
		AlertID   string
		Channel   string
		Tier      string
		CreatedAt time.Time
		Label     string
		Reasons   string
	}
	if err := db.Raw(alertSQL, args...).Scan(&labelled).Error; err != nil {
		return f, fmt.Errorf("alert labels: %w", translate(err))
	}
	for _, r := range labelled {
		if n := len(f.Alerts); n > 0 && f.Alerts[n-1].AlertID == r.AlertID {
			f.Alerts[n-1].Labels = append(f.Alerts[n-1].Labels, r.Label)
			continue
		}
		f.Alerts = append(f.Alerts, feedback.KPILabelledAlert{AlertID: r.AlertID, Channel: r.Channel, Tier: parseTier(r.Tier),
			CreatedAt: r.CreatedAt.UTC(), Labels: []string{r.Label}, Rules: feedback.RuleNames(r.Reasons)})
	}

	// Every tier alert fired in the window, for the alert volume.
	firedSQL := `SELECT channel, tier, created_at FROM alerts
WHERE kind = 'tier' AND status = 'fired' AND created_at >= ? AND created_at < ?`
	args = []any{start, end}
	if channel != "" {
		firedSQL += " AND channel = ?"
		args = append(args, channel)
	}
	var fired []struct {
		Channel   string
		Tier      string
		CreatedAt time.Time
	}
	if err := db.Raw(firedSQL, args...).Scan(&fired).Error; err != nil {
		return f, fmt.Errorf("fired alerts: %w", translate(err))
	}
	for _, r := range fired {
		f.Fired = append(f.Fired, feedback.KPIFiredAlert{Channel: r.Channel, Tier: parseTier(r.Tier), CreatedAt: r.CreatedAt.UTC()})
	}
	return f, nil
}
