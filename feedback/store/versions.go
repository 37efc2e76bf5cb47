package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
)

type policyRow struct {
	Version     int `gorm:"primaryKey;autoIncrement:false"`
	Document    string
	Source      string
	Author      string
	Note        string
	Live        bool
	Status      string
	CreatedAt   time.Time
	ActivatedAt *time.Time
}

func (policyRow) TableName() string { return "policies" }

func (r policyRow) toPolicyVersion() feedback.PolicyVersion {
	return feedback.PolicyVersion{
		Version: r.Version, Document: []byte(r.Document), Source: r.Source, Author: r.Author, Note: r.Note,
		Live: r.Live, Status: r.Status, CreatedAt: r.CreatedAt.UTC(), ActivatedAt: utcPtr(r.ActivatedAt),
	}
}

type modelRow struct {
	Version      int `gorm:"primaryKey;autoIncrement:false"`
	Status       string
	Body         string
	Note         string
	Trainer      string
	WindowStart  *time.Time
	WindowEnd    *time.Time
	Metrics      string
	ReportID     string
	RolledBackAt *time.Time
	CreatedAt    time.Time
	ActivatedAt  *time.Time
}

func (modelRow) TableName() string { return "models" }

func (r modelRow) toModelVersion() feedback.ModelVersion {
	return feedback.ModelVersion{
		Version: r.Version, Status: r.Status, Body: []byte(r.Body), Note: r.Note,
		Trainer: r.Trainer, WindowStart: utcPtr(r.WindowStart), WindowEnd: utcPtr(r.WindowEnd),
		Metrics: []byte(r.Metrics), ReportID: r.ReportID, RolledBackAt: utcPtr(r.RolledBackAt),
		CreatedAt: r.CreatedAt.UTC(), ActivatedAt: utcPtr(r.ActivatedAt),
	}
}

// lockTable serialises writers of a version table for the rest of the
// transaction. Plain reads are not blocked. SQLite needs nothing: its write
// transactions begin IMMEDIATE and so already exclude each other.
func (s *Store) lockTable(tx *gorm.DB, table string) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	return tx.Exec("LOCK TABLE " + table + " IN EXCLUSIVE MODE").Error
}

func nextVersion(tx *gorm.DB, model any) (int, error) {
	var v int
	err := tx.Model(model).Select("COALESCE(MAX(version), 0) + 1").Scan(&v).Error
	return v, err
}

// PublishPolicy stores document (canonical JSON) as the next policy version
// and makes it live, in one transaction.
func (s *Store) PublishPolicy(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error) {
	pv, err := s.insertPolicy(ctx, document, source, author, note, feedback.PolicyPublished)
	if err != nil {
		return pv, fmt.Errorf("store: publish policy: %w", err)
	}
	return pv, nil
}

// insertPolicy stores document as the next policy version with status: a
// published one is made live, in the same transaction; a draft serves
// nothing.
func (s *Store) insertPolicy(ctx context.Context, document []byte, source, author, note, status string) (feedback.PolicyVersion, error) {
	if !json.Valid(document) {
		return feedback.PolicyVersion{}, fmt.Errorf("%w: document is not valid JSON", feedback.ErrInvalid)
	}
	var row policyRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockTable(tx, "policies"); err != nil {
			return err
		}
		v, err := nextVersion(tx, &policyRow{})
		if err != nil {
			return err
		}
		t := now()
		row = policyRow{Version: v, Document: string(document), Source: source, Author: author, Note: note, Status: status, CreatedAt: t}
		if status == feedback.PolicyPublished {
			if err := tx.Model(&policyRow{}).Where("live = ?", true).Update("live", false).Error; err != nil {
				return err
			}
			row.Live, row.ActivatedAt = true, &t
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return feedback.PolicyVersion{}, translate(err)
	}
	return row.toPolicyVersion(), nil
}

// LivePolicy returns the live policy version, or ErrNotFound before any
// policy has been published.
func (s *Store) LivePolicy(ctx context.Context) (feedback.PolicyVersion, error) {
	var row policyRow
	if err := s.db.WithContext(ctx).Where("live = ?", true).Take(&row).Error; err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("store: live policy: %w", translate(err))
	}
	return row.toPolicyVersion(), nil
}

// Policy returns policy version; ErrNotFound when it does not exist.
func (s *Store) Policy(ctx context.Context, version int) (feedback.PolicyVersion, error) {
	var row policyRow
	if err := s.db.WithContext(ctx).Where("version = ? AND status <> ?", version, policyDeleted).Take(&row).Error; err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("store: policy %d: %w", version, translate(err))
	}
	return row.toPolicyVersion(), nil
}

// ListPolicies returns every policy version, newest first.
func (s *Store) ListPolicies(ctx context.Context) ([]feedback.PolicyVersion, error) {
	var rows []policyRow
	if err := s.db.WithContext(ctx).Where("status <> ?", policyDeleted).Order("version DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: list policies: %w", translate(err))
	}
	out := make([]feedback.PolicyVersion, len(rows))
	for i, r := range rows {
		out[i] = r.toPolicyVersion()
	}
	return out, nil
}

// ActivatePolicy makes an existing version live again (a rollback, or a roll
// forward after one) and returns it; ErrNotFound when it does not exist.
// Activating the live version changes nothing.
func (s *Store) ActivatePolicy(ctx context.Context, version int) (feedback.PolicyVersion, error) {
	var row policyRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockTable(tx, "policies"); err != nil {
			return err
		}
		if err := tx.Where("version = ? AND status <> ?", version, policyDeleted).Take(&row).Error; err != nil {
			return err
		}
		if row.Status == feedback.PolicyDraft {
			return feedback.ErrDraftNotPublished
		}
		if row.Live {
			return nil
		}
		if err := tx.Model(&policyRow{}).Where("live = ?", true).Update("live", false).Error; err != nil {
			return err
		}
		t := now()
		row.Live, row.ActivatedAt = true, &t
		return tx.Model(&policyRow{}).Where("version = ?", version).
			Updates(map[string]any{"live": true, "activated_at": t}).Error
	})
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("store: activate policy %d: %w", version, translate(err))
	}
	return row.toPolicyVersion(), nil
}

// CreateDraft stores document (canonical JSON) as the next policy version,
// a draft: it serves nothing until PublishDraft.
func (s *Store) CreateDraft(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error) {
	pv, err := s.insertPolicy(ctx, document, source, author, note, feedback.PolicyDraft)
	if err != nil {
		return pv, fmt.Errorf("store: create draft: %w", err)
	}
	return pv, nil
}

// draftTx loads version for update inside tx: ErrNotFound when it does not
// exist, ErrPublishedImmutable when it is no longer a draft.
func (s *Store) draftTx(tx *gorm.DB, version int) (policyRow, error) {
	var row policyRow
	if err := s.lockTable(tx, "policies"); err != nil {
		return row, err
	}
	if err := tx.Where("version = ? AND status <> ?", version, policyDeleted).Take(&row).Error; err != nil {
		return row, err
	}
	if row.Status != feedback.PolicyDraft {
		return row, feedback.ErrPublishedImmutable
	}
	return row, nil
}

// UpdateDraft replaces a draft's document, source and note. A published
// version cannot change (ErrPublishedImmutable, a conflict).
func (s *Store) UpdateDraft(ctx context.Context, version int, document []byte, source, author, note string) (feedback.PolicyVersion, error) {
	if !json.Valid(document) {
		return feedback.PolicyVersion{}, fmt.Errorf("store: update draft: %w: document is not valid JSON", feedback.ErrInvalid)
	}
	var row policyRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if row, err = s.draftTx(tx, version); err != nil {
			return err
		}
		row.Document, row.Source, row.Author, row.Note = string(document), source, author, note
		return tx.Model(&policyRow{}).Where("version = ?", version).
			Updates(map[string]any{"document": row.Document, "source": source, "author": author, "note": note}).Error
	})
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("store: update draft %d: %w", version, translate(err))
	}
	return row.toPolicyVersion(), nil
}

// PublishDraft makes a draft a published version and live, in one
// transaction; from then on it cannot change.
func (s *Store) PublishDraft(ctx context.Context, version int) (feedback.PolicyVersion, error) {
	var row policyRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if row, err = s.draftTx(tx, version); err != nil {
			return err
		}
		if err := tx.Model(&policyRow{}).Where("live = ?", true).Update("live", false).Error; err != nil {
			return err
		}
		t := now()
		row.Live, row.Status, row.ActivatedAt = true, feedback.PolicyPublished, &t
		return tx.Model(&policyRow{}).Where("version = ?", version).
			Updates(map[string]any{"live": true, "status": feedback.PolicyPublished, "activated_at": t}).Error
	})
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("store: publish draft %d: %w", version, translate(err))
	}
	return row.toPolicyVersion(), nil
}

// policyDeleted marks a deleted draft. Its row stays, hidden, so that its
// version number is never given to another document: the audit log's
// "ruleset 5" always means one document.
const policyDeleted = "deleted"

// DeleteDraft deletes a draft; a published version is kept for ever
// (ErrPublishedImmutable).
func (s *Store) DeleteDraft(ctx context.Context, version int) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := s.draftTx(tx, version); err != nil {
			return err
		}
		return tx.Model(&policyRow{}).Where("version = ?", version).Update("status", policyDeleted).Error
	})
	if err != nil {
		return fmt.Errorf("store: delete draft %d: %w", version, translate(err))
	}
	return nil
}

// CreateModel stores body (the model as JSON) as the next model version,
// with status candidate.
func (s *Store) CreateModel(ctx context.Context, body []byte, note string) (feedback.ModelVersion, error) {
	return s.CreateTrainedModel(ctx, body, feedback.ModelMeta{Note: note})
}

// CreateTrainedModel stores body as the next model version, a candidate,
// with how it was made.
func (s *Store) CreateTrainedModel(ctx context.Context, body []byte, meta feedback.ModelMeta) (feedback.ModelVersion, error) {
	metrics := meta.Metrics
	if len(metrics) == 0 {
		metrics = []byte("{}")
	}
	if !json.Valid(metrics) {
		return feedback.ModelVersion{}, fmt.Errorf("store: create model: %w: metrics are not valid JSON", feedback.ErrInvalid)
	}
	if !json.Valid(body) {
		return feedback.ModelVersion{}, fmt.Errorf("store: create model: %w: body is not valid JSON", feedback.ErrInvalid)
	}
	var row modelRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockTable(tx, "models"); err != nil {
			return err
		}
		v, err := nextVersion(tx, &modelRow{})
		if err != nil {
			return err
		}
		row = modelRow{Version: v, Status: feedback.ModelCandidate, Body: string(body), Note: meta.Note, Trainer: meta.Trainer,
			WindowStart: normPtr(meta.WindowStart), WindowEnd: normPtr(meta.WindowEnd), Metrics: string(metrics),
			ReportID: meta.ReportID, CreatedAt: now()}
		return tx.Create(&row).Error
	})
	if err != nil {
		return feedback.ModelVersion{}, fmt.Errorf("store: create model: %w", translate(err))
	}
	return row.toModelVersion(), nil
}

// ActivateModel makes model version active, retiring the one active before;
// any stored version can be activated, so this is also the rollback.
// ErrNotFound when the version does not exist.
func (s *Store) ActivateModel(ctx context.Context, version int) (feedback.ModelVersion, error) {
	var row modelRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockTable(tx, "models"); err != nil {
			return err
		}
		if err := tx.Where("version = ?", version).Take(&row).Error; err != nil {
			return err
		}
		if row.Status == feedback.ModelActive {
			return nil
		}
		if err := tx.Model(&modelRow{}).Where("status = ?", feedback.ModelActive).Update("status", feedback.ModelRetired).Error; err != nil {
			return err
		}
		t := now()
		row.Status, row.ActivatedAt, row.RolledBackAt = feedback.ModelActive, &t, nil
		return tx.Model(&modelRow{}).Where("version = ?", version).
			Updates(map[string]any{"status": feedback.ModelActive, "activated_at": t, "rolled_back_at": nil,
				"first_activated_at": gorm.Expr("COALESCE(first_activated_at, ?)", t)}).Error
	})
	if err != nil {
		return feedback.ModelVersion{}, fmt.Errorf("store: activate model %d: %w", version, translate(err))
	}
	return row.toModelVersion(), nil
}

// ActiveModel returns the active model, or ErrNotFound before any model has
// been activated.
func (s *Store) ActiveModel(ctx context.Context) (feedback.ModelVersion, error) {
	var row modelRow
	if err := s.db.WithContext(ctx).Where("status = ?", feedback.ModelActive).Take(&row).Error; err != nil {
		return feedback.ModelVersion{}, fmt.Errorf("store: active model: %w", translate(err))
	}
	return row.toModelVersion(), nil
}

// Model returns model version; ErrNotFound when it does not exist.
func (s *Store) Model(ctx context.Context, version int) (feedback.ModelVersion, error) {
	var row modelRow
	if err := s.db.WithContext(ctx).Where("version = ?", version).Take(&row).Error; err != nil {
		return feedback.ModelVersion{}, fmt.Errorf("store: model %d: %w", version, translate(err))
	}
	return row.toModelVersion(), nil
}

// ListModels returns every model version, newest first.
func (s *Store) ListModels(ctx context.Context) ([]feedback.ModelVersion, error) {
	var rows []modelRow
	if err := s.db.WithContext(ctx).Order("version DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: list models: %w", translate(err))
	}
	out := make([]feedback.ModelVersion, len(rows))
	for i, r := range rows {
		out[i] = r.toModelVersion()
	}
	return out, nil
}

// LiveVersions reports the live policy version and the active model version
// (0 for none) in one cheap query, for callers that poll for changes.
func (s *Store) LiveVersions(ctx context.Context) (policy, model int, err error) {
	var out struct{ Policy, Model int }
	err = s.db.WithContext(ctx).Raw(
		`SELECT COALESCE((SELECT version FROM policies WHERE live = ?), 0) AS policy,
		        COALESCE((SELECT version FROM models WHERE status = ?), 0) AS model`,
		true, feedback.ModelActive).Scan(&out).Error
	if err != nil {
		return 0, 0, fmt.Errorf("store: live versions: %w", translate(err))
	}
	return out.Policy, out.Model, nil
}

func normPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := normTime(*t)
	return &u
}

// RollbackModel retires the active model and makes the one active before
// it active again: the most recently activated model that no rollback has
// retired, so repeated rollbacks walk back through the promotions.
// Without such a model scoring goes back to the policy's hand-set points.
// ErrNotFound when no model is active. It returns the model now active, or
// a zero ModelVersion when scoring is back to rules only.
func (s *Store) RollbackModel(ctx context.Context) (feedback.ModelVersion, error) {
	var out modelRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockTable(tx, "models"); err != nil {
			return err
		}
		var active modelRow
		if err := tx.Where("status = ?", feedback.ModelActive).Take(&active).Error; err != nil {
			return err
		}
		t := now()
		if err := tx.Model(&modelRow{}).Where("version = ?", active.Version).
			Updates(map[string]any{"status": feedback.ModelRetired, "rolled_back_at": t}).Error; err != nil {
			return err
		}
		var prev modelRow
		err := tx.Where("version <> ? AND activated_at IS NOT NULL AND rolled_back_at IS NULL", active.Version).
			Order("activated_at DESC, version DESC").Take(&prev).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			return nil
		case err != nil:
			return err
		}
		prev.Status, prev.ActivatedAt = feedback.ModelActive, &t
		out = prev
		return tx.Model(&modelRow{}).Where("version = ?", prev.Version).
			Updates(map[string]any{"status": feedback.ModelActive, "activated_at": t,
				"first_activated_at": gorm.Expr("COALESCE(first_activated_at, ?)", t)}).Error
	})
	if err != nil {
		return feedback.ModelVersion{}, fmt.Errorf("store: roll back model: %w", translate(err))
	}
	if out.Version == 0 {
		return feedback.ModelVersion{}, nil
	}
	return out.toModelVersion(), nil
}
