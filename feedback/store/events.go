package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
)

type eventRow struct {
	ID             string `gorm:"primaryKey"`
	ConversationID string
	Type           string
	At             time.Time
	Value          *float64
	Tier           string
	Agent          string
	CreatedAt      time.Time
}

func (eventRow) TableName() string { return "conversation_events" }

func (r eventRow) toEvent() feedback.Event {
	return feedback.Event{ID: r.ID, ConversationID: r.ConversationID, Type: r.Type, At: r.At.UTC(), Value: r.Value,
		Tier: parseTier(r.Tier), Agent: r.Agent, CreatedAt: r.CreatedAt.UTC()}
}

type idempotencyRow struct {
	APIKeyID    int64  `gorm:"primaryKey;column:api_key_id"`
	Key         string `gorm:"primaryKey"`
	Fingerprint string
	EventID     string
	CreatedAt   time.Time
}

func (idempotencyRow) TableName() string { return "idempotency_keys" }

// AddEvent records an event of an existing conversation (ErrNotFound
// otherwise). A first_response event sets the conversation's
// first_response_at when it is the earliest so far. With an idempotency key
// (Key not empty), a retry of the same request within IdempotencyTTL returns
// the event the first request wrote, with replayed true and nothing written;
// the same key with a different request is ErrIdempotencyConflict (which
// is also ErrConflict). The event, its
// effect on the conversation and the key are committed together.
func (s *Store) AddEvent(ctx context.Context, e feedback.Event, idem feedback.Idempotency) (ev feedback.Event, replayed bool, err error) {
	if err := feedback.ValidateEvent(e); err != nil {
		return feedback.Event{}, false, fmt.Errorf("store: add event: %w", err)
	}
	if utf8.RuneCountInString(idem.Key) > feedback.MaxIdempotencyKeyLen {
		return feedback.Event{}, false, fmt.Errorf("store: add event: %w: idempotency key longer than %d characters", feedback.ErrInvalid, feedback.MaxIdempotencyKeyLen)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return feedback.Event{}, false, fmt.Errorf("store: add event: %w", err)
	}
	t := now()
	fp := feedback.EventFingerprint(e)
	row := eventRow{ID: id.String(), ConversationID: e.ConversationID, Type: e.Type, At: normTime(e.At),
		Value: e.Value, Tier: e.Tier.String(), Agent: e.Agent, CreatedAt: t}
	if e.At.IsZero() {
		row.At = t
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if idem.Key != "" {
			prior, err := claimIdempotencyKey(tx, idem, fp, row.ID, t)
			if err != nil {
				return err
			}
			if prior != "" {
				replayed = true
				var earlier eventRow
				if err := tx.Where("id = ?", prior).Take(&earlier).Error; err != nil {
					return err
				}
				row = earlier
				return nil
			}
		}
		var n int64
		if err := tx.Model(&conversationRow{}).Where("id = ?", e.ConversationID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("conversation %q: %w", e.ConversationID, feedback.ErrNotFound)
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		switch e.Type {
		case feedback.EventFirstResponse:
			return tx.Exec(`UPDATE conversations SET first_response_at = ?
WHERE id = ? AND (first_response_at IS NULL OR first_response_at > ?)`, row.At, row.ConversationID, row.At).Error
		case feedback.EventClosed, feedback.EventConverted, feedback.EventLost:
			// The conversation leaves the live queue until a later decision.
			return tx.Exec(`UPDATE conversations SET closed_at = ?
WHERE id = ? AND (closed_at IS NULL OR closed_at < ?)`, row.At, row.ConversationID, row.At).Error
		}
		return nil
	})
	if err != nil {
		return feedback.Event{}, false, fmt.Errorf("store: add event: %w", translate(err))
	}
	if idem.Key != "" && !replayed {
		// Keep the table at about a day of keys. Best effort, outside the
		// transaction: a failure here costs nothing but space.
		if err := s.PurgeIdempotencyKeys(ctx, t.Add(-feedback.IdempotencyTTL)); err != nil {
			s.log.Warn("purge idempotency keys", slog.Any("error", err))
		}
	}
	return row.toEvent(), replayed, nil
}

// PurgeIdempotencyKeys deletes the idempotency keys created before before.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, before time.Time) error {
	err := s.db.WithContext(ctx).Where("created_at < ?", normTime(before)).Delete(&idempotencyRow{}).Error
	if err != nil {
		return fmt.Errorf("store: purge idempotency keys: %w", translate(err))
	}
	return nil
}

// claimIdempotencyKey takes the key for a new write and returns "", or
// returns the id of the event an earlier identical request wrote, or fails
// with ErrIdempotencyConflict when the key was used for a different request. A
// concurrent first use of the same key waits on the row lock (PostgreSQL) or
// the write lock (SQLite) and then sees the committed row.
func claimIdempotencyKey(tx *gorm.DB, idem feedback.Idempotency, fp, eventID string, t time.Time) (string, error) {
	// A key past its time is free again.
	err := tx.Where("api_key_id = ? AND key = ? AND created_at < ?", idem.APIKeyID, idem.Key, t.Add(-feedback.IdempotencyTTL)).
		Delete(&idempotencyRow{}).Error
	if err != nil {
		return "", err
	}
	row := idempotencyRow{APIKeyID: idem.APIKeyID, Key: idem.Key, Fingerprint: fp, EventID: eventID, CreatedAt: t}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return "", res.Error
	}
	if res.RowsAffected == 1 {
		return "", nil
	}
	var prior idempotencyRow
	if err := tx.Where("api_key_id = ? AND key = ?", idem.APIKeyID, idem.Key).Take(&prior).Error; err != nil {
		return "", err
	}
	if prior.Fingerprint != fp {
		return "", feedback.ErrIdempotencyConflict
	}
	return prior.EventID, nil
}

// ConversationEvents returns the events of a conversation in the order they
// happened.
func (s *Store) ConversationEvents(ctx context.Context, conversationID string) ([]feedback.Event, error) {
	var rows []eventRow
	err := s.db.WithContext(ctx).Where("conversation_id = ?", conversationID).Order("at, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: events of conversation %q: %w", conversationID, translate(err))
	}
	out := make([]feedback.Event, len(rows))
	for i, r := range rows {
		out[i] = r.toEvent()
	}
	return out, nil
}

// FirstResponseAt returns when the conversation first got a human
// response, or nil; ErrNotFound for an unknown conversation.
func (s *Store) FirstResponseAt(ctx context.Context, conversationID string) (*time.Time, error) {
	var row struct{ FirstResponseAt *time.Time }
	err := s.db.WithContext(ctx).Model(&conversationRow{}).Select("first_response_at").
		Where("id = ?", conversationID).Take(&row).Error
	if err != nil {
		return nil, fmt.Errorf("store: first response of %q: %w", conversationID, translate(err))
	}
	return utcPtr(row.FirstResponseAt), nil
}
