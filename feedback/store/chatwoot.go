package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	ScoredMessageID  int64
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
		Returning: r.ReturningVisitor, Messages: r.Messages, LastMessageID: r.LastMessageID, LastMessage: r.LastMessage, ScoredMessageID: r.ScoredMessageID,
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
	Lane           string
	Value          string
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
		Value: r.Value, Body: []byte(r.Body), Status: r.Status, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.UTC(),
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
// ignored. The receiver purges ids older than feedback.ChatwootReceiptTTL
// (PurgeChatwootReceipts).
func (s *Store) ClaimChatwootReceipt(ctx context.Context, deliveryID string, at time.Time) (bool, error) {
	at = normTime(at)
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&chatwootReceiptRow{DeliveryID: deliveryID, ReceivedAt: at})
	if res.Error != nil {
		return false, fmt.Errorf("store: chatwoot receipt: %w", translate(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// PurgeChatwootReceipts forgets up to limit of the delivery ids received
// before before, oldest first, and returns how many it forgot.
func (s *Store) PurgeChatwootReceipts(ctx context.Context, before time.Time, limit int) (int64, error) {
	db := s.db.WithContext(ctx)
	old := db.Model(&chatwootReceiptRow{}).Select("delivery_id").Where("received_at < ?", normTime(before)).
		Order("received_at").Limit(limit)
	res := db.Where("delivery_id IN (?)", old).Delete(&chatwootReceiptRow{})
	if res.Error != nil {
		return 0, fmt.Errorf("store: purge chatwoot receipts: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
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
func (s *Store) ObserveChatwoot(ctx context.Context, o feedback.ChatwootObservation) (feedback.ChatwootState, error) {
	at := normTime(o.At)
	var out chatwootConversationRow
	err := retry(ctx, func() error {
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
				}
			}
			out = row
			return nil
		})
	})
	if err != nil {
		return feedback.ChatwootState{}, fmt.Errorf("store: observe chatwoot conversation %q: %w", o.ConversationID, translate(err))
	}
	return out.toState(), nil
}

// UpdateChatwoot changes what Hotlane remembers of a Chatwoot
// conversation and queues writes, in one transaction that holds the
// conversation's row: fn gets the state as committed (with Written
// filled) and returns the writes to queue, changing the state as it goes.
// Concurrent webhooks of one conversation so plan one after the other,
// each seeing what the last queued. Queued with them:
//
//   - a pending write of the same kind that no worker holds is
//     superseded, so only the latest priority, assignment or attributes go
//     out (notes never are);
//   - a field fn left to someone else (ChatwootLeftAlone) has its pending
//     writes superseded, so a queued write does not overwrite them;
//   - a pending agent write behind a new team write is queued again after
//     it, so the agent is assigned after their team.
//
// The conversation must have been observed (ErrNotFound otherwise).
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
			var asked []struct{ Kind, Value string }
			err := tx.Model(&chatwootWriteRow{}).Distinct("kind", "value").
				Where("conversation_id = ? AND kind IN ? AND status IN ?", conversationID,
					[]string{feedback.ChatwootPriority, feedback.ChatwootTeam, feedback.ChatwootAssignee},
					[]string{feedback.DeliveryPending, feedback.DeliveryDelivered}).Find(&asked).Error
			if err != nil {
				return err
			}
			st := row.toState()
			st.Written = map[string][]string{}
			for _, a := range asked {
				st.Written[a.Kind] = append(st.Written[a.Kind], a.Value)
			}
			writes := fn(&st)
			err = tx.Model(&chatwootConversationRow{}).Where("conversation_id = ?", conversationID).
				Updates(map[string]any{"priority": st.Priority, "team_id": st.TeamID, "assignee_id": st.AssigneeID,
					"noted_tier": st.NotedTier.String(), "attr_tier": st.AttrTier, "attr_score": st.AttrScore,
					"scored_message_id": max(st.ScoredMessageID, row.ScoredMessageID), "updated_at": at}).Error
			if err != nil {
				return err
			}
			supersede := map[string]bool{}
			for _, w := range writes {
				if w.Kind != feedback.ChatwootNote {
					supersede[w.Kind] = true
				}
			}
			if st.Priority == feedback.ChatwootLeftAlone {
				supersede[feedback.ChatwootPriority] = true
			}
			if st.TeamID == feedback.ChatwootLeftAloneID {
				supersede[feedback.ChatwootTeam] = true
			}
			if st.AssigneeID == feedback.ChatwootLeftAloneID {
				supersede[feedback.ChatwootAssignee] = true
			}
			if supersede[feedback.ChatwootTeam] && st.TeamID != feedback.ChatwootLeftAloneID && !supersede[feedback.ChatwootAssignee] {
				// Queue the waiting agent write again, after the team.
				var behind []chatwootWriteRow
				err := tx.Where("conversation_id = ? AND kind = ? AND status = ? AND (claim = '' OR next_attempt_at <= ?)",
					conversationID, feedback.ChatwootAssignee, feedback.DeliveryPending, at).Order("created_at, id").Find(&behind).Error
				if err != nil {
					return err
				}
				for _, b := range behind {
					writes = append(writes, feedback.ChatwootWrite{Kind: b.Kind, Value: b.Value, Body: []byte(b.Body)})
				}
				if len(behind) > 0 {
					supersede[feedback.ChatwootAssignee] = true
				}
			}
			var kinds []string
			for k := range supersede {
				kinds = append(kinds, k)
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
			if len(writes) == 0 {
				return nil
			}
			rows := make([]chatwootWriteRow, len(writes))
			for i, w := range writes {
				// A microsecond apart, so they are sent in the order planned.
				created := at.Add(time.Duration(i) * time.Microsecond)
				rows[i] = chatwootWriteRow{ID: uuid.Must(uuid.NewV7()).String(), ConversationID: conversationID,
					AccountID: row.AccountID, DisplayID: row.DisplayID, Kind: w.Kind, Lane: feedback.ChatwootLane(w.Kind),
					Value: w.Value, Body: string(w.Body), Status: feedback.DeliveryPending, NextAttemptAt: at, CreatedAt: created}
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
// at and leases them until at+lease. Of each lane of a conversation
// (feedback.ChatwootLane) it takes only the oldest pending write, and
// only when it is due: a write leased to a worker or waiting for its
// retry holds the ones queued after it in its lane, so they reach
// Chatwoot in the order they were queued. Safe to run from several
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
		// The predicates are checked again on the rows PostgreSQL locks,
		// so a write another worker claimed or superseded meanwhile is
		// skipped.
		q := tx.Model(&chatwootWriteRow{}).Select("id").
			Where("status = ? AND next_attempt_at <= ?", feedback.DeliveryPending, at).
			Where(`NOT EXISTS (SELECT 1 FROM chatwoot_writes e WHERE e.status = ? AND e.conversation_id = chatwoot_writes.conversation_id
  AND e.lane = chatwoot_writes.lane AND (e.created_at < chatwoot_writes.created_at
  OR (e.created_at = chatwoot_writes.created_at AND e.id < chatwoot_writes.id)))`, feedback.DeliveryPending).
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
// write. A priority, team or agent write that fails for good gives its
// request up: the conversation's asked-for value goes back to the last
// one delivered, so a later decision may ask again.
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
		return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			res := tx.Model(&chatwootWriteRow{}).Where("id = ? AND claim = ? AND status = ?", o.ID, o.Claim, feedback.DeliveryPending).Updates(upd)
			if res.Error != nil || res.RowsAffected == 0 || o.Delivered || o.RetryAt != nil {
				return res.Error
			}
			var w chatwootWriteRow
			if err := tx.Where("id = ?", o.ID).Take(&w).Error; err != nil {
				return err
			}
			column := map[string]string{feedback.ChatwootPriority: "priority", feedback.ChatwootTeam: "team_id",
				feedback.ChatwootAssignee: "assignee_id"}[w.Kind]
			if column == "" {
				return nil
			}
			var last []chatwootWriteRow
			err := tx.Where("conversation_id = ? AND kind = ? AND status = ?", w.ConversationID, w.Kind, feedback.DeliveryDelivered).
				Order("delivered_at DESC, id DESC").Limit(1).Find(&last).Error
			if err != nil {
				return err
			}
			var delivered string
			if len(last) == 1 {
				delivered = last[0].Value
			}
			var back, failed any = delivered, w.Value
			if column != "priority" {
				back, failed = idOf(delivered), idOf(w.Value)
			}
			return tx.Model(&chatwootConversationRow{}).Where("conversation_id = ? AND "+column+" = ?", w.ConversationID, failed).
				Update(column, back).Error
		})
	})
	if err != nil {
		return fmt.Errorf("store: finish chatwoot write %q: %w", o.ID, translate(err))
	}
	return nil
}

// idOf reads a write's team or agent id; 0 for none.
func idOf(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
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
