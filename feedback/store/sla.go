package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// The SLA checks of the jobs package: which conversations waited past
// their tier's time to first response, and the escalation each gets once.

// openConversation keeps conversations that are not closed: never closed,
// or active again after their close (as the queue counts them). A closed
// conversation is past waiting for a response; imported history is closed.
const openConversation = "(closed_at IS NULL OR closed_at < updated_at)"

// SLABreaches returns up to limit ids of open conversations that reached an
// alerting tier, have had no first response and no escalation yet, whose
// current tier has a deadline in deadlines (tier -> latest first_top_at
// still in breach) and whose first_top_at is at or before it.
func (s *Store) SLABreaches(ctx context.Context, deadlines map[model.Tier]time.Time, limit int) ([]string, error) {
	if len(deadlines) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = 100
	}
	tiers := slices.Sorted(maps.Keys(deadlines))
	var breach *gorm.DB
	for _, t := range tiers {
		cond := s.db.Where("tier = ? AND first_top_at <= ?", t.String(), normTime(deadlines[t]))
		if breach == nil {
			breach = cond
		} else {
			breach = breach.Or(cond)
		}
	}
	var ids []string
	err := s.db.WithContext(ctx).Table("conversations").
		Where("first_top_at IS NOT NULL AND first_response_at IS NULL AND sla_escalated_at IS NULL AND "+openConversation).
		Where(breach).Order("first_top_at, id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("store: sla breaches: %w", translate(err))
	}
	return ids, nil
}

// EscalateSLA raises the SLA escalation of a conversation, once: in one
// transaction it marks the conversation escalated at `at` and stores a
// fired alert of kind sla for the team and owner of its latest decision.
// It returns false, and no alert, when the conversation was escalated
// already or has had its first response meanwhile.
func (s *Store) EscalateSLA(ctx context.Context, conversationID string, at time.Time) (feedback.Alert, bool, error) {
	at = normTime(at)
	var out feedback.Alert
	var raised bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Table("conversations").
			Where("id = ? AND first_top_at IS NOT NULL AND first_response_at IS NULL AND sla_escalated_at IS NULL AND "+openConversation, conversationID).
			Update("sla_escalated_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		var conv conversationRow
		if err := tx.Where("id = ?", conversationID).Take(&conv).Error; err != nil {
			return translate(err)
		}
		var route struct{ Route string }
		// The latest decision was recorded after the first urgent or high
		// one occurred (less feedback.MaxAhead): the bound keeps the lookup,
		// made while the conversation's row is locked against the decision
		// writer, out of older months' partitions.
		recordedFrom := conv.UpdatedAt.Add(-feedback.MaxAhead)
		if conv.FirstTopAt != nil {
			recordedFrom = conv.FirstTopAt.Add(-feedback.MaxAhead)
		}
		// A decision retention has dropped (--retain-decisions) leaves no
		// route: the escalation still goes out, to the unnamed team, rather
		// than fail on every pass.
		err := tx.Table("decisions").Select("route").Where("id = ? AND created_at >= ?", conv.LastDecisionID, recordedFrom).Take(&route).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return translate(err)
		}
		var r struct {
			Team  string `json:"team"`
			Owner string `json:"owner"`
		}
		_ = json.Unmarshal([]byte(route.Route), &r) // a route without team or owner escalates to the unnamed team
		out = feedback.Alert{
			Kind: feedback.AlertKindSLA, ConversationID: conv.ID, DecisionID: conv.LastDecisionID, Channel: conv.Channel,
			Tier: parseTier(conv.Tier), Score: conv.Score, Team: r.Team, Owner: r.Owner, CreatedAt: at,
		}
		if err := raiseAlert(tx, &out); err != nil {
			return err
		}
		raised = true
		return nil
	})
	if err != nil {
		return feedback.Alert{}, false, fmt.Errorf("store: escalate sla of conversation %q: %w", conversationID, err)
	}
	return out, raised, nil
}
