package store

import (
	"context"
	"fmt"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

type auditRow struct {
	ID      int64 `gorm:"primaryKey"`
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Before  *string
	After   *string
}

func (auditRow) TableName() string { return "audit_log" }

func jsonPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func bytesOf(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

// Audit records one change. Before and After must be JSON or nil.
func (s *Store) Audit(ctx context.Context, e feedback.AuditEntry) error {
	if e.Actor == "" || e.Action == "" {
		return fmt.Errorf("store: audit: %w: actor and action are required", feedback.ErrInvalid)
	}
	if e.At.IsZero() {
		e.At = now()
	}
	row := auditRow{At: normTime(e.At), Actor: e.Actor, Action: e.Action, Subject: e.Subject, Before: jsonPtr(e.Before), After: jsonPtr(e.After)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Action, translate(err))
	}
	return nil
}

// AuditLog lists the audit log newest first.
func (s *Store) AuditLog(ctx context.Context, q feedback.AuditQuery) ([]feedback.AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	db := s.db.WithContext(ctx).Order("id DESC").Limit(min(q.Limit, 500))
	if q.Before > 0 {
		db = db.Where("id < ?", q.Before)
	}
	var rows []auditRow
	if err := db.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: audit log: %w", translate(err))
	}
	out := make([]feedback.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = feedback.AuditEntry{ID: r.ID, At: r.At.UTC(), Actor: r.Actor, Action: r.Action, Subject: r.Subject,
			Before: bytesOf(r.Before), After: bytesOf(r.After)}
	}
	return out, nil
}
