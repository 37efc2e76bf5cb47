package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
)

type chatwootConversationRow struct {
	ConversationID   string `gorm:"primaryKey"`
	AccountID        int64
	DisplayID        int64
	ContactID        int64
	ReturningVisitor bool
	Messages         int
	LastMessageID    int64
	LastMessage      *string
	Priority         string
	TeamID           int64
	AssigneeID       int64
	NotedTier        string
	AttrTier         string
	AttrScore        string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

func (chatwootConversationRow) TableName() string { return "chatwoot_conversations" }

func (r chatwootConversationRow) toState() feedback.ChatwootState {
	return feedback.ChatwootState{
		ConversationID: r.ConversationID, AccountID: r.AccountID, DisplayID: r.DisplayID, ContactID: r.ContactID,
		Returning: r.ReturningVisitor, Messages: r.Messages, LastMessageID: r.LastMessageID, LastMessage: r.LastMessage,
		Priority: r.Priority, TeamID: r.TeamID, AssigneeID: r.AssigneeID, NotedTier: parseTier(r.NotedTier),
		AttrTier: r.AttrTier, AttrScore: r.AttrScore,
	}
}

type chatwootWriteRow struct {
	ID             string `gorm:"primaryKey"`
	ConversationID string
	AccountID      int64
	DisplayID      int64
	Kind           string
	Body           string
	Status         string
	Attempts       int
	NextAttemptAt  time.Time
	Claim          string
	LastStatus     int
	LastError      string
	CreatedAt      time.Time
	DeliveredAt    *time.Time
}

func (chatwootWriteRow) TableName() string { return "chatwoot_writes" }

func (r chatwootWriteRow) toWrite() feedback.ChatwootWrite {
	return feedback.ChatwootWrite{
		ID: r.ID, ConversationID: r.ConversationID, AccountID: r.AccountID, DisplayID: r.DisplayID, Kind: r.Kind,
		Body: []byte(r.Body), Status: r.Status, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.UTC(),
		LastStatus: r.LastStatus, LastError: r.LastError, CreatedAt: r.CreatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt),
	}
}

type chatwootReceiptRow struct {
	DeliveryID string `gorm:"primaryKey"`
	ReceivedAt time.Time
}

func (chatwootReceiptRow) TableName() string { return "chatwoot_receipts" }

// ClaimChatwootReceipt records a webhook delivery id and reports whether
// it is new; false means the delivery was taken before and must be
// ignored. The writer forgets ids older than feedback.ChatwootReceiptTTL.
func (s *Store) ClaimChatwootReceipt(ctx context.Context, deliveryID string, at time.Time) (bool, error) {
	at = normTime(at)
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&chatwootReceiptRow{DeliveryID: deliveryID, ReceivedAt: at})
	if res.Error != nil {
		return false, fmt.Errorf("store: chatwoot receipt: %w", translate(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// PurgeChatwootReceipts forgets the delivery ids received before before.
func (s *Store) PurgeChatwootReceipts(ctx context.Context, before time.Time) error {
	if err := s.db.WithContext(ctx).Where("received_at < ?", normTime(before)).Delete(&chatwootReceiptRow{}).Error; err != nil {
		return fmt.Errorf("store: purge chatwoot receipts: %w", translate(err))
	}
	return nil
}

// ReleaseChatwootReceipt forgets a delivery id whose handling failed, so
// that a retry of the delivery is taken.
func (s *Store) ReleaseChatwootReceipt(ctx context.Context, deliveryID string) error {
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Delete(&chatwootReceiptRow{}).Error; err != nil {
		return fmt.Errorf("store: release chatwoot receipt: %w", translate(err))
	}
	return nil
}

// ChatwootConversation returns what Hotlane remembers of a Chatwoot
// conversation; ErrNotFound when it has seen none of its webhooks.
func (s *Store) ChatwootConversation(ctx context.Context, conversationID string) (feedback.ChatwootState, error) {
	var row chatwootConversationRow
	if err := s.db.WithContext(ctx).Where("conversation_id = ?", conversationID).Take(&row).Error; err != nil {
		return feedback.ChatwootState{}, fmt.Errorf("store: chatwoot conversation %q: %w", conversationID, translate(err))
	}
	return row.toState(), nil
}

// ObserveChatwoot records what a webhook says about a conversation and
// returns the state to score with: on first sight the conversation is
// remembered, returning when the webhook says so or when an earlier
// conversation of the same contact is known; a visitor message newer than
// the last one counted is counted once (so a message seen in both
// conversation_created and message_created, or a repeated webhook, counts
// once).
func (s *Store) ObserveChatwoot(ctx context.Context, o feedback.ChatwootObservation) (st feedback.ChatwootState, newMessage bool, err error) {
	at := normTime(o.At)
	var out chatwootConversationRow
	err = retry(ctx, func() error {
		newMessage = false
		return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var row chatwootConversationRow
			q := tx.Where("conversation_id = ?", o.ConversationID)
			if s.dialect == DialectPostgres {
				q = q.Clauses(clauseForUpdate)
			}
			err := q.Take(&row).Error
			switch {
			case err == nil:
			case errors.Is(translate(err), feedback.ErrNotFound):
				returning := o.Returning
				if !returning && o.ContactID != 0 {
					var n int64
					err := tx.Model(&chatwootConversationRow{}).
						Where("contact_id = ? AND account_id = ? AND display_id < ?", o.ContactID, o.AccountID, o.DisplayID).
						Limit(1).Count(&n).Error
					if err != nil {
						return err
					}
					returning = n > 0
				}
				row = chatwootConversationRow{ConversationID: o.ConversationID, AccountID: o.AccountID, DisplayID: o.DisplayID,
					ContactID: o.ContactID, ReturningVisitor: returning, CreatedAt: at, UpdatedAt: at}
				if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
					return err
				}
				// A concurrent first sight may have won; read what is stored.
				if err := tx.Where("conversation_id = ?", o.ConversationID).Take(&row).Error; err != nil {
					return err
				}
			default:
				return err
			}
			if o.MessageID > row.LastMessageID {
				row.Messages++
				row.LastMessageID = o.MessageID
				row.LastMessage = o.Message
				row.UpdatedAt = at
				res := tx.Model(&chatwootConversationRow{}).
					Where("conversation_id = ? AND last_message_id < ?", o.ConversationID, o.MessageID).
					Updates(map[string]any{"messages": gorm.Expr("messages + 1"), "last_message_id": o.MessageID,
						"last_message": o.Message, "updated_at": at})
				if res.Error != nil {
					return res.Error
				}
				if res.RowsAffected == 0 { // counted by a concurrent webhook meanwhile
					if err := tx.Where("conversation_id = ?", o.ConversationID).Take(&row).Error; err != nil {
						return err
					}
				} else {
					newMessage = true
				}
			}
			out = row
			return nil
		})
	})
	if err != nil {
		return feedback.ChatwootState{}, false, fmt.Errorf("store: observe chatwoot conversation %q: %w", o.ConversationID, translate(err))
	}
	return out.toState(), newMessage, nil
}

// UpdateChatwoot changes what Hotlane remembers of a Chatwoot
// conversation and queues writes, in one transaction that holds the
// conversation's row: fn gets the state as committed and returns the
// writes to queue, changing the state as it goes (what it asked
// Chatwoot to show). Concurrent webhooks of one conversation so plan one
// after the other, each seeing what the last queued. A pending write of
// the same kind that no worker holds is superseded: only the latest
// priority, assignment or attributes go out; notes never are. The
// conversation must have been observed (ErrNotFound otherwise).
func (s *Store) UpdateChatwoot(ctx context.Context, conversationID string, at time.Time,
	fn func(st *feedback.ChatwootState) []feedback.ChatwootWrite) ([]feedback.ChatwootWrite, error) {
	at = normTime(at)
	var queued []feedback.ChatwootWrite
	err := retry(ctx, func() error {
		queued = nil
		return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var row chatwootConversationRow
			q := tx.Where("conversation_id = ?", conversationID)
			if s.dialect == DialectPostgres {
				q = q.Clauses(clauseForUpdate)
			}
			if err := q.Take(&row).Error; err != nil {
				return err
			}
			st := row.toState()
			writes := fn(&st)
			err := tx.Model(&chatwootConversationRow{}).Where("conversation_id = ?", conversationID).
				Updates(map[string]any{"priority": st.Priority, "team_id": st.TeamID, "assignee_id": st.AssigneeID,
					"noted_tier": st.NotedTier.String(), "attr_tier": st.AttrTier, "attr_score": st.AttrScore, "updated_at": at}).Error
			if err != nil {
				return err
			}
			var kinds []string
			rows := make([]chatwootWriteRow, 0, len(writes))
			for _, w := range writes {
				if w.Kind != feedback.ChatwootNote {
					kinds = append(kinds, w.Kind)
				}
				rows = append(rows, chatwootWriteRow{ID: uuid.Must(uuid.NewV7()).String(), ConversationID: conversationID,
					AccountID: row.AccountID, DisplayID: row.DisplayID, Kind: w.Kind, Body: string(w.Body),
					Status: feedback.DeliveryPending, NextAttemptAt: at, CreatedAt: at})
			}
			if len(kinds) > 0 {
				err := tx.Model(&chatwootWriteRow{}).
					Where("conversation_id = ? AND kind IN ? AND status = ? AND (claim = '' OR next_attempt_at <= ?)",
						conversationID, kinds, feedback.DeliveryPending, at).
					Updates(map[string]any{"status": feedback.ChatwootSuperseded, "claim": ""}).Error
				if err != nil {
					return err
				}
			}
			if len(rows) == 0 {
				return nil
			}
			if err := tx.Create(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				queued = append(queued, r.toWrite())
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: update chatwoot conversation %q: %w", conversationID, translate(err))
	}
	return queued, nil
}

// ClaimChatwootWrites takes up to limit pending writes due at or before
// at and leases them until at+lease. Of each conversation it takes only
// the oldest pending write, and only when it is due: a write leased to a
// worker or waiting for its retry holds the ones queued after it, so the
// writes of one conversation reach Chatwoot in the order they were queued
// (a team before the agent of that team). Safe to run from several
// processes at once.
func (s *Store) ClaimChatwootWrites(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]feedback.PendingChatwootWrite, error) {
	at = normTime(at)
	if limit <= 0 {
		limit = 50
	}
	claim := uuid.Must(uuid.NewV7()).String()
	var out []feedback.PendingChatwootWrite
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []string
		// PostgreSQL does not lock rows of a window query, so the
		// candidates are chosen first and locked here; the outer
		// predicates are checked again on the locked rows, so a write
		// another worker claimed or superseded meanwhile is skipped.
		q := tx.Model(&chatwootWriteRow{}).Select("id").
			Where("status = ? AND next_attempt_at <= ?", feedback.DeliveryPending, at).
			Where(`id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS rn
  FROM chatwoot_writes WHERE status = ?) ranked WHERE rn = 1)`, feedback.DeliveryPending).
			Order("next_attempt_at, id").Limit(limit)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clauseSkipLock)
		}
		if err := q.Find(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if err := tx.Model(&chatwootWriteRow{}).Where("id IN ? AND status = ? AND next_attempt_at <= ?", ids, feedback.DeliveryPending, at).
			Updates(map[string]any{"claim": claim, "next_attempt_at": at.Add(lease)}).Error; err != nil {
			return err
		}
		var rows []chatwootWriteRow
		if err := tx.Where("id IN ? AND claim = ?", ids, claim).Order("created_at, id").Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, feedback.PendingChatwootWrite{ChatwootWrite: r.toWrite(), Claim: claim})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim chatwoot writes: %w", translate(err))
	}
	return out, nil
}

// FinishChatwootWrite records the outcome of an attempt: delivered, due
// again at RetryAt, or failed. Only the holder of the claim moves the
// write.
func (s *Store) FinishChatwootWrite(ctx context.Context, o feedback.ChatwootOutcome) error {
	at := normTime(o.At)
	errText := o.Error
	if len(errText) > 1000 {
		errText = errText[:1000]
	}
	upd := map[string]any{"attempts": gorm.Expr("attempts + 1"), "claim": "", "last_status": o.StatusCode, "last_error": errText}
	switch {
	case o.Delivered:
		upd["status"], upd["delivered_at"] = feedback.DeliveryDelivered, at
	case o.RetryAt != nil:
		upd["next_attempt_at"] = normTime(*o.RetryAt)
	default:
		upd["status"] = feedback.DeliveryFailed
	}
	err := retry(ctx, func() error {
		return s.db.WithContext(ctx).Model(&chatwootWriteRow{}).
			Where("id = ? AND claim = ? AND status = ?", o.ID, o.Claim, feedback.DeliveryPending).Updates(upd).Error
	})
	if err != nil {
		return fmt.Errorf("store: finish chatwoot write %q: %w", o.ID, translate(err))
	}
	return nil
}

// ChatwootWrites returns the writes queued for a conversation, oldest
// first.
func (s *Store) ChatwootWrites(ctx context.Context, conversationID string) ([]feedback.ChatwootWrite, error) {
	var rows []chatwootWriteRow
	if err := s.db.WithContext(ctx).Where("conversation_id = ?", conversationID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: chatwoot writes of %q: %w", conversationID, translate(err))
	}
	out := make([]feedback.ChatwootWrite, len(rows))
	for i, r := range rows {
		out[i] = r.toWrite()
	}
	return out, nil
}

// ChatwootWriteCounts counts the writes by status, for the settings page
// and the metrics.
func (s *Store) ChatwootWriteCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	if err := s.db.WithContext(ctx).Model(&chatwootWriteRow{}).Select("status, COUNT(*) AS n").Group("status").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: count chatwoot writes: %w", translate(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}
