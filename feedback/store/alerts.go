package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// alertRow is a row of the alerts table, shared by the decision writer
// that writes it, the outbox that dispatches it and the feed that lists it.
type alertRow struct {
	ID             string `gorm:"primaryKey"`
	Kind           string
	ConversationID string
	DecisionID     string
	Channel        string
	Tier           string
	Score          float64
	Team           string
	Owner          string
	Status         string
	Reason         string
	SampleRate     *float64
	CreatedAt      time.Time
	DispatchedAt   *time.Time
}

func (alertRow) TableName() string { return "alerts" }

// newAlertRow is the row of a; a sample rate of 0 is stored as NULL.
func newAlertRow(a *feedback.Alert) alertRow {
	r := alertRow{
		ID: a.ID, Kind: a.Kind, ConversationID: a.ConversationID, DecisionID: a.DecisionID, Channel: a.Channel,
		Tier: a.Tier.String(), Score: a.Score, Team: a.Team, Owner: a.Owner, Status: a.Status, Reason: a.Reason,
		CreatedAt: a.CreatedAt, DispatchedAt: a.DispatchedAt,
	}
	if a.SampleRate > 0 {
		rate := a.SampleRate
		r.SampleRate = &rate
	}
	return r
}

func (r alertRow) toAlert() feedback.Alert {
	a := feedback.Alert{
		ID: r.ID, Kind: r.Kind, ConversationID: r.ConversationID, DecisionID: r.DecisionID, Channel: r.Channel,
		Tier: parseTier(r.Tier), Score: r.Score, Team: r.Team, Owner: r.Owner, Status: r.Status, Reason: r.Reason,
		CreatedAt: r.CreatedAt.UTC(), DispatchedAt: utcPtr(r.DispatchedAt),
	}
	if r.SampleRate != nil {
		a.SampleRate = *r.SampleRate
	}
	return a
}

// parseTier reads a stored tier; the database only holds names the
// writers wrote, and "" (no tier) for a placeholder row.
func parseTier(s string) model.Tier {
	t, err := model.ParseTier(s)
	if err != nil {
		return model.TierNone
	}
	return t
}

// InsertAlertRow writes one alert exactly as given. The score path writes
// its alerts inside the decision transaction; this is for imports and for
// tests that need alerts without scoring. A duplicate id is ErrConflict.
func (s *Store) InsertAlertRow(ctx context.Context, a feedback.Alert) error {
	if a.ID == "" || a.ConversationID == "" {
		return fmt.Errorf("store: insert alert: %w: id and conversation id are required", feedback.ErrInvalid)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	a.CreatedAt = normTime(a.CreatedAt)
	row := newAlertRow(&a)
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("store: insert alert %q: %w", a.ID, translate(err))
	}
	return nil
}

// RaiseAlert stores a fired alert outside the score path (an SLA
// escalation, an alert raised by hand) and returns it. Its deliveries are
// queued by the next DispatchAlerts. ID and CreatedAt are filled when zero;
// Status is always fired.
func (s *Store) RaiseAlert(ctx context.Context, a feedback.Alert) (feedback.Alert, error) {
	if err := raiseAlert(s.db.WithContext(ctx), &a); err != nil {
		return feedback.Alert{}, fmt.Errorf("store: raise alert: %w", err)
	}
	return a, nil
}

func raiseAlert(tx *gorm.DB, a *feedback.Alert) error {
	if !slices.Contains(feedback.AlertKinds, a.Kind) {
		return fmt.Errorf("%w: alert kind must be tier, review or sla", feedback.ErrInvalid)
	}
	if a.ConversationID == "" {
		return fmt.Errorf("%w: conversation id is required", feedback.ErrInvalid)
	}
	if a.ID == "" {
		a.ID = uuid.Must(uuid.NewV7()).String()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	} else {
		a.CreatedAt = normTime(a.CreatedAt)
	}
	a.Status = feedback.AlertStatusFired
	row := newAlertRow(a)
	return translate(tx.Create(&row).Error)
}
