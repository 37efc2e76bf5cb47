package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
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
	ev := eventRow{ID: c.EventID, ConversationID: d.ConversationID, Type: c.Outcome, At: at, CreatedAt: time.Now().UTC()}
	if err := tx.Create(&ev).Error; err != nil {
		return false, err
	}
	return true, nil
}
