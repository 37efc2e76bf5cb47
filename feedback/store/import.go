package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// ImportHistory stores labelled history in transactions of a few hundred
// conversations, without alerts: these conversations are past. A
// conversation that already exists is skipped whole.
func (s *Store) ImportHistory(ctx context.Context, rows []feedback.ImportedConversation) (feedback.ImportResult, error) {
	var res feedback.ImportResult
	const batch = 500
	for start := 0; start < len(rows); start += batch {
		part := rows[start:min(start+batch, len(rows))]
		var added, skipped int // counted into res only once committed
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			for i := range part {
				ok, err := importOne(tx, &part[i])
				if err != nil {
					return fmt.Errorf("conversation %s: %w", part[i].Decision.ConversationID, err)
				}
				if ok {
					added++
				} else {
					skipped++
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("store: import history: %w", translate(err))
		}
		res.Added += added
		res.Skipped += skipped
	}
	return res, nil
}

func importOne(tx *gorm.DB, c *feedback.ImportedConversation) (bool, error) {
	d := &c.Decision
	if d.ID == "" || d.ConversationID == "" || d.OccurredAt.IsZero() {
		return false, fmt.Errorf("%w: decision id, conversation id and time are required", feedback.ErrInvalid)
	}
	if c.Outcome != feedback.EventConverted && c.Outcome != feedback.EventLost {
		return false, fmt.Errorf("%w: outcome %q is not converted or lost", feedback.ErrInvalid, c.Outcome)
	}
	if err := prepareDecision(d); err != nil {
		return false, err
	}
	at := normTime(d.OccurredAt)
	d.OccurredAt = at
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now()
	}
	conv := conversationRow{ID: d.ConversationID, Channel: d.Channel, Tier: d.Tier.String(), Score: d.Score,
		LastDecisionID: d.ID, Decisions: 1, FirstSeenAt: at, UpdatedAt: at, ClosedAt: &at}
	conv.RouteTeam, conv.RouteOwner = routeOf(d)
	if feedback.IsTopTier(d.Tier) {
		conv.FirstTopAt = &at
	}
	for _, e := range c.Events {
		if e.ID == "" || e.At.IsZero() || !slices.Contains(feedback.EventTypes, e.Type) {
			return false, fmt.Errorf("%w: event %q of type %q needs an id, a known type and a time", feedback.ErrInvalid, e.ID, e.Type)
		}
		if e.Type == feedback.EventFirstResponse && (conv.FirstResponseAt == nil || e.At.Before(*conv.FirstResponseAt)) {
			t := normTime(e.At)
			conv.FirstResponseAt = &t
		}
	}
	if c.Alert != nil {
		if c.Alert.ID == "" {
			return false, fmt.Errorf("%w: an imported alert needs an id", feedback.ErrInvalid)
		}
		conv.AlertedTier, conv.LastAlertAt = c.Alert.Tier.String(), &at
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&conv)
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	row := newDecisionRow(d)
	if err := tx.Create(&row).Error; err != nil {
		return false, err
	}
	created := time.Now().UTC()
	ev := eventRow{ID: c.EventID, ConversationID: d.ConversationID, Type: c.Outcome, At: at, Value: c.Value, CreatedAt: created}
	if err := tx.Create(&ev).Error; err != nil {
		return false, err
	}
	for _, e := range c.Events {
		row := eventRow{ID: e.ID, ConversationID: d.ConversationID, Type: e.Type, At: normTime(e.At), Value: e.Value,
			Tier: e.Tier.String(), Agent: e.Agent, CreatedAt: created}
		if err := tx.Create(&row).Error; err != nil {
			return false, err
		}
	}
	if c.Alert != nil {
		a := *c.Alert
		a.Kind, a.Status, a.ConversationID, a.DecisionID = feedback.AlertKindTier, feedback.AlertStatusFired, d.ConversationID, d.ID
		a.Channel, a.CreatedAt, a.DispatchedAt = d.Channel, at, &at
		if a.Tier == model.TierNone {
			a.Tier = d.Tier
		}
		a.Team, a.Owner = routeOf(d)
		if a.Score == 0 {
			a.Score = d.Score
		}
		row := newAlertRow(&a)
		if err := tx.Create(&row).Error; err != nil {
			return false, err
		}
		for _, l := range c.Labels {
			if l.Label != feedback.LabelUseful && l.Label != feedback.LabelNoise || l.Agent == "" {
				return false, fmt.Errorf("%w: label %q by %q", feedback.ErrInvalid, l.Label, l.Agent)
			}
			when := normTime(l.UpdatedAt)
			if l.UpdatedAt.IsZero() {
				when = at
			}
			lr := alertLabelRow{AlertID: a.ID, Agent: l.Agent, ConversationID: d.ConversationID, Label: l.Label, Note: l.Note,
				CreatedAt: when, UpdatedAt: when}
			if err := tx.Create(&lr).Error; err != nil {
				return false, err
			}
		}
	}
	return true, nil
}
