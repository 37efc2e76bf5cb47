package feedback

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ImportedConversation is one labelled conversation of history loaded by
// `hotlane import`: a conversation with one decision and its outcome. IDs
// are chosen by the importer so that loading the same history twice adds
// nothing the second time.
type ImportedConversation struct {
	Decision Decision // its ID, ConversationID and OccurredAt are required
	// Outcome is EventConverted or EventLost, dated at the decision.
	Outcome string
	EventID string
}

// ImportResult counts what an import added; rows already present from an
// earlier import of the same history are skipped.
type ImportResult struct {
	Added   int
	Skipped int
}

// ImportHistory stores labelled history in transactions of a few hundred
// conversations, without alerts: these conversations are past. A
// conversation that already exists is skipped whole.
func (s *Store) ImportHistory(ctx context.Context, rows []ImportedConversation) (ImportResult, error) {
	var res ImportResult
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
			return res, fmt.Errorf("feedback: import history: %w", translate(err))
		}
		res.Added += added
		res.Skipped += skipped
	}
	return res, nil
}

func importOne(tx *gorm.DB, c *ImportedConversation) (bool, error) {
	d := &c.Decision
	if d.ID == "" || d.ConversationID == "" || d.OccurredAt.IsZero() {
		return false, fmt.Errorf("%w: decision id, conversation id and time are required", ErrInvalid)
	}
	if c.Outcome != EventConverted && c.Outcome != EventLost {
		return false, fmt.Errorf("%w: outcome %q is not converted or lost", ErrInvalid, c.Outcome)
	}
	if err := prepareDecision(d); err != nil {
		return false, err
	}
	at := normTime(d.OccurredAt)
	d.OccurredAt = at
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now()
	}
	conv := conversationRow{ID: d.ConversationID, Channel: d.Channel, Tier: d.Tier, Score: d.Score,
		LastDecisionID: d.ID, Decisions: 1, FirstSeenAt: at, UpdatedAt: at}
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
