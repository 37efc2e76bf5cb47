package feedback

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Alert labels an agent may give.
const (
	LabelUseful = "useful"
	LabelNoise  = "noise"
)

// Limits on the text of a label.
const (
	MaxAgentLen = 128
	MaxNoteLen  = 2000
)

// Alert feed filters accepted by AlertQuery.Status.
const (
	// FeedUnlabelled lists fired alerts no agent has labelled yet.
	FeedUnlabelled = "unlabelled"
	// FeedLabelled lists alerts at least one agent has labelled.
	FeedLabelled = "labelled"
	// FeedSuppressed lists alerts held back by cooldown, budget or dedup.
	FeedSuppressed = "suppressed"
)

// FeedAlert is an alert as the feed and the labelling endpoints show it,
// with the labels agents gave it.
type FeedAlert struct {
	ID             string
	Kind           string // tier, review or sla
	ConversationID string
	DecisionID     string
	Channel        string
	Tier           string
	Score          float64
	Team           string
	Owner          string
	Status         string  // fired, suppressed or deduplicated
	Reason         string  // cooldown, budget or duplicate when held back
	SampleRate     float64 // review alerts: the probability they were sampled with; 0 otherwise
	CreatedAt      time.Time
	DispatchedAt   *time.Time
	Labels         []AlertLabel
}

// AlertLabel is one agent's verdict on an alert.
type AlertLabel struct {
	AlertID        string
	ConversationID string
	Agent          string
	Label          string // useful or noise
	Note           string
	CreatedAt      time.Time
	UpdatedAt      time.Time // when the agent last changed it
}

func (r alertRow) toFeedAlert() FeedAlert {
	a := FeedAlert{
		ID: r.ID, Kind: r.Kind, ConversationID: r.ConversationID, DecisionID: r.DecisionID, Channel: r.Channel,
		Tier: r.Tier, Score: r.Score, Team: r.Team, Owner: r.Owner, Status: r.Status, Reason: r.Reason,
		CreatedAt: r.CreatedAt.UTC(), DispatchedAt: utcPtr(r.DispatchedAt),
	}
	if r.SampleRate != nil {
		a.SampleRate = *r.SampleRate
	}
	return a
}

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

func (r alertLabelRow) toLabel() AlertLabel {
	return AlertLabel{AlertID: r.AlertID, ConversationID: r.ConversationID, Agent: r.Agent, Label: r.Label,
		Note: r.Note, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// InsertAlertRow writes one alert exactly as given. The score path writes
// its alerts inside the decision transaction; this is for imports and for
// tests that need alerts without scoring. A duplicate id is ErrConflict.
func (s *Store) InsertAlertRow(ctx context.Context, a FeedAlert) error {
	if a.ID == "" || a.ConversationID == "" {
		return fmt.Errorf("feedback: insert alert: %w: id and conversation id are required", ErrInvalid)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	row := alertRow{
		ID: a.ID, Kind: a.Kind, ConversationID: a.ConversationID, DecisionID: a.DecisionID, Channel: a.Channel,
		Tier: a.Tier, Score: a.Score, Team: a.Team, Owner: a.Owner, Status: a.Status, Reason: a.Reason,
		CreatedAt: normTime(a.CreatedAt), DispatchedAt: a.DispatchedAt,
	}
	if a.SampleRate > 0 {
		rate := a.SampleRate
		row.SampleRate = &rate
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("feedback: insert alert %q: %w", a.ID, translate(err))
	}
	return nil
}

// ValidateLabel checks a label request: label useful or noise, agent of 1 to
// MaxAgentLen characters without control characters, note of at most
// MaxNoteLen characters. Its errors wrap ErrInvalid and name the field first.
func ValidateLabel(agent, label, note string) error {
	if label != LabelUseful && label != LabelNoise {
		return fmt.Errorf("%w: label: must be useful or noise", ErrInvalid)
	}
	if err := validAgent(agent, true); err != nil {
		return err
	}
	if utf8.RuneCountInString(note) > MaxNoteLen {
		return fmt.Errorf("%w: note: longer than %d characters", ErrInvalid, MaxNoteLen)
	}
	return nil
}

func validAgent(agent string, required bool) error {
	switch {
	case agent == "" && required:
		return fmt.Errorf("%w: agent: required, 1 to %d characters", ErrInvalid, MaxAgentLen)
	case utf8.RuneCountInString(agent) > MaxAgentLen:
		return fmt.Errorf("%w: agent: longer than %d characters", ErrInvalid, MaxAgentLen)
	case strings.TrimSpace(agent) != agent && agent != "":
		return fmt.Errorf("%w: agent: has leading or trailing spaces", ErrInvalid)
	}
	for _, r := range agent {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: agent: contains control characters", ErrInvalid)
		}
	}
	return nil
}

// LabelAlert records agent's label for the alert with id: a second label by
// the same agent replaces the first (keeping its creation time), labels by
// different agents are all kept. An unknown alert is ErrNotFound; an invalid
// label, agent or note is ErrInvalid.
func (s *Store) LabelAlert(ctx context.Context, alertID, agent, label, note string) (AlertLabel, error) {
	if err := ValidateLabel(agent, label, note); err != nil {
		return AlertLabel{}, fmt.Errorf("feedback: label alert %q: %w", alertID, err)
	}
	t := now()
	var out alertLabelRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
	if err != nil {
		return AlertLabel{}, fmt.Errorf("feedback: label alert %q: %w", alertID, translate(err))
	}
	return out.toLabel(), nil
}

// FeedAlert returns the alert with id and its labels; ErrNotFound when there
// is none.
func (s *Store) FeedAlert(ctx context.Context, id string) (FeedAlert, error) {
	var row alertRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return FeedAlert{}, fmt.Errorf("feedback: alert %q: %w", id, translate(err))
	}
	list := []FeedAlert{row.toFeedAlert()}
	if err := s.attachLabels(ctx, list); err != nil {
		return FeedAlert{}, fmt.Errorf("feedback: alert %q: %w", id, err)
	}
	return list[0], nil
}

// AlertQuery selects a page of the alert feed. The zero value lists every
// alert, newest first.
type AlertQuery struct {
	// Status is "" (every alert), FeedUnlabelled, FeedLabelled or
	// FeedSuppressed.
	Status string
	// Team keeps the alerts routed to one team when set.
	Team string
	// Since keeps alerts created at or after it when set.
	Since time.Time
	// Limit caps the page; <= 0 means 50, and it is capped at 500.
	Limit int
	// Cursor continues after the page that returned it; "" starts at the
	// newest alert.
	Cursor string
}

// AlertPage is one page of the alert feed. NextCursor is "" on the last
// page.
type AlertPage struct {
	Alerts     []FeedAlert
	NextCursor string
}

// Alerts lists alerts newest first, by creation time and then id, with
// keyset paging: a cursor stays valid while alerts are added, and no alert
// appears on two pages. An unknown status or a malformed cursor is
// ErrInvalid.
func (s *Store) Alerts(ctx context.Context, q AlertQuery) (AlertPage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	db := s.db.WithContext(ctx).Model(&alertRow{})
	labelled := "EXISTS (SELECT 1 FROM alert_labels l WHERE l.alert_id = alerts.id)"
	switch q.Status {
	case "":
	case FeedUnlabelled:
		db = db.Where("status = ? AND NOT "+labelled, "fired")
	case FeedLabelled:
		db = db.Where(labelled)
	case FeedSuppressed:
		db = db.Where("status = ?", "suppressed")
	default:
		return AlertPage{}, fmt.Errorf("feedback: alerts: %w: status must be unlabelled, labelled or suppressed", ErrInvalid)
	}
	if q.Team != "" {
		db = db.Where("team = ?", q.Team)
	}
	if !q.Since.IsZero() {
		db = db.Where("created_at >= ?", normTime(q.Since))
	}
	if q.Cursor != "" {
		at, id, err := decodeCursor(q.Cursor)
		if err != nil {
			return AlertPage{}, fmt.Errorf("feedback: alerts: %w", err)
		}
		db = db.Where("(created_at < ? OR (created_at = ? AND id < ?))", at, at, id)
	}
	var rows []alertRow
	if err := db.Order("created_at DESC, id DESC").Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return AlertPage{}, fmt.Errorf("feedback: alerts: %w", translate(err))
	}
	var page AlertPage
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		page.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	page.Alerts = make([]FeedAlert, len(rows))
	for i, r := range rows {
		page.Alerts[i] = r.toFeedAlert()
	}
	if err := s.attachLabels(ctx, page.Alerts); err != nil {
		return AlertPage{}, fmt.Errorf("feedback: alerts: %w", err)
	}
	return page, nil
}

// attachLabels loads the labels of alerts in one query.
func (s *Store) attachLabels(ctx context.Context, alerts []FeedAlert) error {
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
func (s *Store) ConversationLabels(ctx context.Context, conversationID string) ([]AlertLabel, error) {
	var rows []alertLabelRow
	err := s.db.WithContext(ctx).Where("conversation_id = ?", conversationID).
		Order("created_at, alert_id, agent").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("feedback: labels of conversation %q: %w", conversationID, translate(err))
	}
	out := make([]AlertLabel, len(rows))
	for i, r := range rows {
		out[i] = r.toLabel()
	}
	return out, nil
}

// A cursor is the creation time (Unix microseconds) and id of the last
// alert of a page, base64url-encoded so that clients treat it as opaque.
func encodeCursor(at time.Time, id string) string {
	raw := strconv.FormatInt(at.UTC().UnixMicro(), 10) + "|" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: cursor: malformed", ErrInvalid)
	}
	us, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", fmt.Errorf("%w: cursor: malformed", ErrInvalid)
	}
	return time.UnixMicro(n).UTC(), id, nil
}
