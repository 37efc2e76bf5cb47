package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

type alertLabelRow struct {
	AlertID        string `gorm:"primaryKey"`
	Agent          string `gorm:"primaryKey"`
	ConversationID string
	Label          string
	Note           string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (alertLabelRow) TableName() string { return "alert_labels" }

func (r alertLabelRow) toLabel() feedback.AlertLabel {
	return feedback.AlertLabel{AlertID: r.AlertID, ConversationID: r.ConversationID, Agent: r.Agent, Label: r.Label,
		Note: r.Note, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// LabelAlert records agent's label for the alert with id: a second label by
// the same agent replaces the first (keeping its creation time), labels by
// different agents are all kept. An unknown alert is ErrNotFound; an invalid
// label, agent or note is ErrInvalid.
func (s *Store) LabelAlert(ctx context.Context, alertID, agent, label, note string) (feedback.AlertLabel, error) {
	if err := feedback.ValidateLabel(agent, label, note); err != nil {
		return feedback.AlertLabel{}, fmt.Errorf("store: label alert %q: %w", alertID, err)
	}
	t := now()
	var out alertLabelRow
	// The upsert is keyed by (alert, agent), so running it twice is the
	// same as once: a transient failure is retried.
	err := retry(ctx, func() error {
		return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var a alertRow
			if err := tx.Select("id, conversation_id").Where("id = ?", alertID).Take(&a).Error; err != nil {
				return err
			}
			row := alertLabelRow{AlertID: alertID, Agent: agent, ConversationID: a.ConversationID, Label: label,
				Note: note, CreatedAt: t, UpdatedAt: t}
			upsert := clause.OnConflict{
				Columns:   []clause.Column{{Name: "alert_id"}, {Name: "agent"}},
				DoUpdates: clause.AssignmentColumns([]string{"label", "note", "updated_at"}),
			}
			if err := tx.Clauses(upsert).Create(&row).Error; err != nil {
				return err
			}
			return tx.Where("alert_id = ? AND agent = ?", alertID, agent).Take(&out).Error
		})
	})
	if err != nil {
		return feedback.AlertLabel{}, fmt.Errorf("store: label alert %q: %w", alertID, translate(err))
	}
	return out.toLabel(), nil
}

// Alert returns the alert with id and its labels; ErrNotFound when there
// is none.
func (s *Store) Alert(ctx context.Context, id string) (feedback.Alert, error) {
	var row alertRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return feedback.Alert{}, fmt.Errorf("store: alert %q: %w", id, translate(err))
	}
	list := []feedback.Alert{row.toAlert()}
	if err := s.attachLabels(ctx, list); err != nil {
		return feedback.Alert{}, fmt.Errorf("store: alert %q: %w", id, err)
	}
	return list[0], nil
}

// Alerts lists alerts newest first, by creation time and then id, with
// keyset paging: a cursor stays valid while alerts are added, and no alert
// appears on two pages. An unknown status or a malformed cursor is
// ErrInvalid.
func (s *Store) Alerts(ctx context.Context, q feedback.AlertQuery) (feedback.AlertPage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	db, err := s.alertsWhere(ctx, q)
	if err != nil {
		return feedback.AlertPage{}, fmt.Errorf("store: alerts: %w", err)
	}
	if q.Cursor != "" {
		at, id, err := feedback.DecodeFeedCursor(q.Cursor)
		if err != nil {
			return feedback.AlertPage{}, fmt.Errorf("store: alerts: %w", err)
		}
		db = db.Where("(created_at < ? OR (created_at = ? AND id < ?))", at, at, id)
	}
	var rows []alertRow
	if err := db.Order("created_at DESC, id DESC").Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return feedback.AlertPage{}, fmt.Errorf("store: alerts: %w", translate(err))
	}
	var page feedback.AlertPage
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		page.NextCursor = feedback.EncodeFeedCursor(last.CreatedAt, last.ID)
	}
	page.Alerts = make([]feedback.Alert, len(rows))
	for i, r := range rows {
		page.Alerts[i] = r.toAlert()
	}
	if err := s.attachLabels(ctx, page.Alerts); err != nil {
		return feedback.AlertPage{}, fmt.Errorf("store: alerts: %w", err)
	}
	return page, nil
}

// alertsWhere is the query of the alerts q selects, before paging.
func (s *Store) alertsWhere(ctx context.Context, q feedback.AlertQuery) (*gorm.DB, error) {
	db := s.db.WithContext(ctx).Model(&alertRow{})
	labelled := "EXISTS (SELECT 1 FROM alert_labels l WHERE l.alert_id = alerts.id)"
	switch q.Status {
	case "":
	case feedback.FeedUnlabelled:
		db = db.Where("status = ? AND NOT "+labelled, "fired")
	case feedback.FeedLabelled:
		db = db.Where(labelled)
	case feedback.FeedSuppressed:
		db = db.Where("status = ?", "suppressed")
	default:
		return nil, fmt.Errorf("%w: status must be unlabelled, labelled or suppressed", feedback.ErrInvalid)
	}
	if q.Team != "" {
		db = db.Where("team = ?", q.Team)
	}
	if q.Tier != model.TierNone {
		db = db.Where("tier = ?", q.Tier.String())
	}
	if q.Channel != "" {
		db = db.Where("channel = ?", q.Channel)
	}
	if q.ConversationID != "" {
		db = db.Where("conversation_id = ?", q.ConversationID)
	}
	if !q.Since.IsZero() {
		db = db.Where("created_at >= ?", normTime(q.Since))
	}
	return db, nil
}

// attachLabels loads the labels of alerts in one query.
func (s *Store) attachLabels(ctx context.Context, alerts []feedback.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	ids := make([]string, len(alerts))
	at := make(map[string]int, len(alerts))
	for i, a := range alerts {
		ids[i], at[a.ID] = a.ID, i
	}
	var rows []alertLabelRow
	if err := s.db.WithContext(ctx).Where("alert_id IN ?", ids).Order("alert_id, created_at, agent").Find(&rows).Error; err != nil {
		return translate(err)
	}
	for _, r := range rows {
		a := &alerts[at[r.AlertID]]
		a.Labels = append(a.Labels, r.toLabel())
	}
	return nil
}

// ConversationLabels returns every label given to the alerts of a
// conversation, oldest first.
func (s *Store) ConversationLabels(ctx context.Context, conversationID string) ([]feedback.AlertLabel, error) {
	var rows []alertLabelRow
	err := s.db.WithContext(ctx).Where("conversation_id = ?", conversationID).
		Order("created_at, alert_id, agent").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: labels of conversation %q: %w", conversationID, translate(err))
	}
	out := make([]feedback.AlertLabel, len(rows))
	for i, r := range rows {
		out[i] = r.toLabel()
	}
	return out, nil
}
