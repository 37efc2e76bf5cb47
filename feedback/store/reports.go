package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
)

type reportRow struct {
	ID             string `gorm:"primaryKey"`
	RunID          string
	AsOf           time.Time
	CandidateModel *int
	Promoted       bool
	AppliedPolicy  *int
	Body           string
	CreatedAt      time.Time
}

func (reportRow) TableName() string { return "reports" }

func (r reportRow) toReport() feedback.StoredReport {
	out := feedback.StoredReport{ID: r.ID, RunID: r.RunID, AsOf: r.AsOf.UTC(), Promoted: r.Promoted, Body: []byte(r.Body), CreatedAt: r.CreatedAt.UTC()}
	if r.CandidateModel != nil {
		out.CandidateModel = *r.CandidateModel
	}
	if r.AppliedPolicy != nil {
		out.AppliedPolicy = *r.AppliedPolicy
	}
	return out
}

// SaveReport stores a tuning report; an empty ID gets a new one, and the
// stored report is returned.
func (s *Store) SaveReport(ctx context.Context, r feedback.StoredReport) (feedback.StoredReport, error) {
	if !json.Valid(r.Body) {
		return feedback.StoredReport{}, fmt.Errorf("store: save report: %w: body is not valid JSON", feedback.ErrInvalid)
	}
	if r.ID == "" {
		r.ID = uuid.Must(uuid.NewV7()).String()
	}
	row := reportRow{ID: r.ID, RunID: r.RunID, AsOf: normTime(r.AsOf), Promoted: r.Promoted, Body: string(r.Body), CreatedAt: now()}
	if r.CandidateModel > 0 {
		v := r.CandidateModel
		row.CandidateModel = &v
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return feedback.StoredReport{}, fmt.Errorf("store: save report: %w", translate(err))
	}
	return row.toReport(), nil
}

// Report returns one report; ErrNotFound when it does not exist.
func (s *Store) Report(ctx context.Context, id string) (feedback.StoredReport, error) {
	var row reportRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return feedback.StoredReport{}, fmt.Errorf("store: report %s: %w", id, translate(err))
	}
	return row.toReport(), nil
}

// LatestReport returns the newest report; ErrNotFound before any.
func (s *Store) LatestReport(ctx context.Context) (feedback.StoredReport, error) {
	var row reportRow
	if err := s.db.WithContext(ctx).Order("created_at DESC, id DESC").Take(&row).Error; err != nil {
		return feedback.StoredReport{}, fmt.Errorf("store: latest report: %w", translate(err))
	}
	return row.toReport(), nil
}

// ListReports returns the newest reports without their bodies; limit 0
// means 50.
func (s *Store) ListReports(ctx context.Context, limit int) ([]feedback.StoredReport, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []reportRow
	err := s.db.WithContext(ctx).Select("id, run_id, as_of, candidate_model, promoted, applied_policy, '{}' AS body, created_at").
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: list reports: %w", translate(err))
	}
	out := make([]feedback.StoredReport, len(rows))
	for i, r := range rows {
		out[i] = r.toReport()
	}
	return out, nil
}

// MarkReportApplied records the policy version a report's proposal was
// published as.
func (s *Store) MarkReportApplied(ctx context.Context, id string, policyVersion int) error {
	res := s.db.WithContext(ctx).Model(&reportRow{}).Where("id = ?", id).Update("applied_policy", policyVersion)
	if res.Error != nil {
		return fmt.Errorf("store: mark report %s applied: %w", id, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: mark report %s applied: %w", id, feedback.ErrNotFound)
	}
	return nil
}
