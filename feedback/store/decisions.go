package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// conversationRow is a row of conversations: each conversation's state
// after its latest decision.
type conversationRow struct {
	ID              string `gorm:"primaryKey"`
	Channel         string
	Tier            string
	Score           float64
	LastDecisionID  string
	Decisions       int64
	FirstSeenAt     time.Time
	UpdatedAt       time.Time
	AlertedTier     string
	LastAlertAt     *time.Time
	FirstTopAt      *time.Time
	FirstResponseAt *time.Time
	SLAEscalatedAt  *time.Time `gorm:"column:sla_escalated_at"`
	ClosedAt        *time.Time
	// RouteTeam and RouteOwner are the last decision's route, for the
	// queue's filters.
	RouteTeam  string
	RouteOwner string
}

func (conversationRow) TableName() string { return "conversations" }

func (r conversationRow) toConversation() feedback.Conversation {
	return feedback.Conversation{
		ID: r.ID, Channel: r.Channel, Tier: parseTier(r.Tier), Score: r.Score, LastDecisionID: r.LastDecisionID,
		Decisions: r.Decisions, FirstSeenAt: r.FirstSeenAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		AlertedTier: parseTier(r.AlertedTier), LastAlertAt: utcPtr(r.LastAlertAt), FirstTopAt: utcPtr(r.FirstTopAt),
		FirstResponseAt: utcPtr(r.FirstResponseAt), SLAEscalatedAt: utcPtr(r.SLAEscalatedAt),
	}
}

type decisionRow struct {
	ID             string `gorm:"primaryKey"`
	ConversationID string
	Channel        string
	Signals        string
	Message        *string
	Score          float64
	Tier           string
	Reasons        string
	Route          string
	Warnings       *string
	ModelVersion   *int
	PolicyVersion  int
	LatencyUs      int64 `gorm:"column:latency_us"`
	OccurredAt     time.Time
	CreatedAt      time.Time
}

func (decisionRow) TableName() string { return "decisions" }

func newDecisionRow(d *feedback.Decision) decisionRow {
	r := decisionRow{
		ID: d.ID, ConversationID: d.ConversationID, Channel: d.Channel, Signals: string(d.Signals),
		Message: d.Message, Score: d.Score, Tier: d.Tier.String(), Reasons: string(d.Reasons), Route: string(d.Route),
		PolicyVersion: d.PolicyVersion, LatencyUs: d.LatencyMicros, OccurredAt: d.OccurredAt, CreatedAt: d.CreatedAt,
	}
	if d.ModelVersion != 0 {
		mv := d.ModelVersion
		r.ModelVersion = &mv
	}
	if d.Warnings != nil {
		w := string(d.Warnings)
		r.Warnings = &w
	}
	return r
}

func (r decisionRow) toDecision() feedback.Decision {
	d := feedback.Decision{
		ID: r.ID, ConversationID: r.ConversationID, Channel: r.Channel, Signals: []byte(r.Signals),
		Message: r.Message, Score: r.Score, Tier: parseTier(r.Tier), Reasons: []byte(r.Reasons), Route: []byte(r.Route),
		PolicyVersion: r.PolicyVersion, LatencyMicros: r.LatencyUs,
		OccurredAt: r.OccurredAt.UTC(), CreatedAt: r.CreatedAt.UTC(),
	}
	if r.ModelVersion != nil {
		d.ModelVersion = *r.ModelVersion
	}
	if r.Warnings != nil {
		d.Warnings = []byte(*r.Warnings)
	}
	return d
}

// RecordDecision stores d and updates its conversation, returning the tier
// the conversation had before d ("" for a new conversation). It returns only
// after the transaction holding d has committed: concurrent calls are
// grouped into one transaction, and if that transaction fails every decision
// in it fails, except that a batch the database refuses for its data (a
// duplicate id, a value PostgreSQL cannot store) is retried one decision at
// a time, so the bad decision fails alone (ErrConflict or ErrInvalid). If ctx
// ends first RecordDecision returns an error wrapping ctx.Err(); the decision
// may still be committed.
func (s *Store) RecordDecision(ctx context.Context, d feedback.Decision) (previousTier model.Tier, err error) {
	rec, err := s.Record(ctx, d)
	return rec.PreviousTier, err
}

// Record is RecordDecision that also reports the alert row written with the
// decision, in the same transaction, as d.Alert and the conversation's
// alert state decide (see feedback.PlanAlerts).
func (s *Store) Record(ctx context.Context, d feedback.Decision) (feedback.Recorded, error) {
	if err := prepareDecision(&d); err != nil {
		return feedback.Recorded{}, fmt.Errorf("store: record decision: %w", err)
	}
	rec, err := s.w.submit(ctx, d)
	if err != nil {
		return feedback.Recorded{}, fmt.Errorf("store: record decision: %w", err)
	}
	return rec, nil
}

func prepareDecision(d *feedback.Decision) error {
	switch {
	case d.ID == "":
		return fmt.Errorf("%w: decision id is required", feedback.ErrInvalid)
	case d.ConversationID == "":
		return fmt.Errorf("%w: conversation id is required", feedback.ErrInvalid)
	}
	if err := defaultJSON(&d.Signals, "{}", "signals", d.Checked); err != nil {
		return err
	}
	if err := defaultJSON(&d.Reasons, "[]", "reasons", d.Checked); err != nil {
		return err
	}
	if err := defaultJSON(&d.Route, "{}", "route", d.Checked); err != nil {
		return err
	}
	if d.Warnings != nil {
		if err := defaultJSON(&d.Warnings, "[]", "warnings", d.Checked); err != nil {
			return err
		}
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now()
	} else {
		d.CreatedAt = normTime(d.CreatedAt)
	}
	if d.OccurredAt.IsZero() {
		d.OccurredAt = d.CreatedAt
	} else {
		d.OccurredAt = normTime(d.OccurredAt)
	}
	if d.OccurredAt.After(d.CreatedAt.Add(feedback.MaxAhead)) {
		return fmt.Errorf("%w: the decision occurred more than %s after it was recorded", feedback.ErrInvalid, feedback.MaxAhead)
	}
	return nil
}

// defaultJSON fills an empty field with its empty JSON value and checks a
// field not checked already.
func defaultJSON(b *[]byte, empty, field string, checked bool) error {
	if len(*b) == 0 {
		*b = []byte(empty)
		return nil
	}
	if !checked && !json.Valid(*b) {
		return fmt.Errorf("%w: %s is not valid JSON", feedback.ErrInvalid, field)
	}
	return nil
}

// Decision returns the decision with id; ErrNotFound when there is none.
func (s *Store) Decision(ctx context.Context, id string) (feedback.Decision, error) {
	var row decisionRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return feedback.Decision{}, fmt.Errorf("store: decision %q: %w", id, translate(err))
	}
	return row.toDecision(), nil
}

// ConversationDecisions returns up to limit decisions of a conversation,
// newest first (limit <= 0 means 100).
func (s *Store) ConversationDecisions(ctx context.Context, conversationID string, limit int) ([]feedback.Decision, error) {
	if limit <= 0 {
		limit = 100
	}
	var rows []decisionRow
	err := s.db.WithContext(ctx).Where("conversation_id = ?", conversationID).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: decisions of conversation %q: %w", conversationID, translate(err))
	}
	out := make([]feedback.Decision, len(rows))
	for i, r := range rows {
		out[i] = r.toDecision()
	}
	return out, nil
}

// WarnedDecisions returns up to limit of the decisions recorded after
// since that carry warnings, newest first.
func (s *Store) WarnedDecisions(ctx context.Context, since time.Time, limit int) ([]feedback.Decision, error) {
	var rows []decisionRow
	err := s.db.WithContext(ctx).Where("warnings IS NOT NULL AND created_at > ?", normTime(since)).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: decisions with warnings: %w", translate(err))
	}
	out := make([]feedback.Decision, len(rows))
	for i, r := range rows {
		out[i] = r.toDecision()
	}
	return out, nil
}

// Decisions returns the decisions with the given ids that exist, by id.
func (s *Store) Decisions(ctx context.Context, ids []string) (map[string]feedback.Decision, error) {
	out := make(map[string]feedback.Decision, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []decisionRow
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: decisions: %w", translate(err))
	}
	for _, r := range rows {
		out[r.ID] = r.toDecision()
	}
	return out, nil
}

// Conversation returns the conversation with id; ErrNotFound when there is
// none.
func (s *Store) Conversation(ctx context.Context, id string) (feedback.Conversation, error) {
	var row conversationRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return feedback.Conversation{}, fmt.Errorf("store: conversation %q: %w", id, translate(err))
	}
	return row.toConversation(), nil
}
