package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// webhookSecretPfx starts every webhook signing secret.
const webhookSecretPfx = "whsec_"

type destinationRow struct {
	ID                      string `gorm:"primaryKey"`
	Team                    string
	Kind                    string
	URL                     string `gorm:"column:url"`
	Lead                    bool
	Tiers                   string
	Secret                  string
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
	DeletedAt               *time.Time
}

func (destinationRow) TableName() string { return "destinations" }

func (r destinationRow) toDestination(at time.Time) feedback.Destination {
	d := feedback.Destination{ID: r.ID, Team: r.Team, Kind: r.Kind, URL: r.URL, Lead: r.Lead, Tiers: parseTiers(r.Tiers), CreatedAt: r.CreatedAt.UTC()}
	if r.PreviousSecret != "" && r.PreviousSecretExpiresAt != nil && r.PreviousSecretExpiresAt.After(at) {
		d.HasPreviousSecret = true
		d.PreviousSecretExpiresAt = utcPtr(r.PreviousSecretExpiresAt)
	}
	return d
}

// activeSecrets returns the secrets a request sent at is signed with:
// the current one first, then the previous one while it is still valid.
func (r destinationRow) activeSecrets(at time.Time) []string {
	var out []string
	if r.Secret != "" {
		out = append(out, r.Secret)
	}
	if r.PreviousSecret != "" && r.PreviousSecretExpiresAt != nil && r.PreviousSecretExpiresAt.After(at) {
		out = append(out, r.PreviousSecret)
	}
	return out
}

func newWebhookSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return webhookSecretPfx + hex.EncodeToString(b[:]), nil
}

// CreateDestination stores a destination and returns it with its signing
// secret: a fresh one for a webhook (shown once, never again), "" for the
// other kinds. An invalid destination is refused with ErrInvalid.
func (s *Store) CreateDestination(ctx context.Context, nd feedback.NewDestination) (feedback.Destination, string, error) {
	if err := feedback.ValidateDestination(nd); err != nil {
		return feedback.Destination{}, "", fmt.Errorf("store: create destination: %w", err)
	}
	row := destinationRow{
		ID: uuid.Must(uuid.NewV7()).String(), Team: nd.Team, Kind: nd.Kind, URL: nd.URL, Lead: nd.Lead, Tiers: joinTiers(nd.Tiers), CreatedAt: now(),
	}
	if nd.Kind == feedback.DestinationWebhook {
		secret, err := newWebhookSecret()
		if err != nil {
			return feedback.Destination{}, "", fmt.Errorf("store: create destination: %w", err)
		}
		row.Secret = secret
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return feedback.Destination{}, "", fmt.Errorf("store: create destination: %w", translate(err))
	}
	return row.toDestination(row.CreatedAt), row.Secret, nil
}

// ListDestinations returns the destinations in use, of one team or of all
// when team is "", ordered by team and creation.
func (s *Store) ListDestinations(ctx context.Context, team string) ([]feedback.Destination, error) {
	q := s.db.WithContext(ctx).Where("deleted_at IS NULL")
	if team != "" {
		q = q.Where("team = ?", team)
	}
	var rows []destinationRow
	if err := q.Order("team, created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: list destinations: %w", translate(err))
	}
	at := now()
	out := make([]feedback.Destination, len(rows))
	for i, r := range rows {
		out[i] = r.toDestination(at)
	}
	return out, nil
}

// Destination returns the destination with id; ErrNotFound when there is
// none or it is deleted.
func (s *Store) Destination(ctx context.Context, id string) (feedback.Destination, error) {
	var row destinationRow
	if err := s.db.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", id).Take(&row).Error; err != nil {
		return feedback.Destination{}, fmt.Errorf("store: destination %q: %w", id, translate(err))
	}
	return row.toDestination(now()), nil
}

// DeleteDestination stops sending to a destination: it is marked deleted
// and its pending deliveries are canceled, in one transaction. ErrNotFound
// when there is no such destination in use.
func (s *Store) DeleteDestination(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		at := now()
		res := tx.Model(&destinationRow{}).Where("id = ? AND deleted_at IS NULL", id).Update("deleted_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return feedback.ErrNotFound
		}
		return translate(tx.Model(&deliveryRow{}).Where("destination_id = ? AND status = ?", id, feedback.DeliveryPending).
			Updates(map[string]any{"status": feedback.DeliveryCanceled, "claim": ""}).Error)
	})
	if err != nil {
		return fmt.Errorf("store: delete destination %q: %w", id, err)
	}
	return nil
}

// RotateDestinationSecret gives a webhook destination a new signing secret
// and returns it (shown once). The previous secret keeps signing requests
// until grace has passed, so receivers can switch without losing alerts; a
// rotation during a grace period drops the older secret. ErrNotFound for an
// unknown destination, ErrInvalid for one that is not a webhook or a
// negative grace.
func (s *Store) RotateDestinationSecret(ctx context.Context, id string, grace time.Duration) (feedback.Destination, string, error) {
	if grace < 0 {
		return feedback.Destination{}, "", fmt.Errorf("store: rotate secret: %w: grace must not be negative", feedback.ErrInvalid)
	}
	secret, err := newWebhookSecret()
	if err != nil {
		return feedback.Destination{}, "", fmt.Errorf("store: rotate secret: %w", err)
	}
	var out feedback.Destination
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row destinationRow
		if err := lockForUpdate(tx, s.dialect).Where("id = ? AND deleted_at IS NULL", id).Take(&row).Error; err != nil {
			return translate(err)
		}
		if row.Kind != feedback.DestinationWebhook {
			return fmt.Errorf("%w: only webhook destinations have a signing secret", feedback.ErrInvalid)
		}
		at := now()
		expires := at.Add(grace)
		row.PreviousSecret, row.PreviousSecretExpiresAt, row.Secret = row.Secret, &expires, secret
		if grace == 0 {
			row.PreviousSecret, row.PreviousSecretExpiresAt = "", nil
		}
		if err := tx.Model(&destinationRow{}).Where("id = ?", id).Updates(map[string]any{
			"secret": row.Secret, "previous_secret": row.PreviousSecret, "previous_secret_expires_at": row.PreviousSecretExpiresAt,
		}).Error; err != nil {
			return translate(err)
		}
		out = row.toDestination(at)
		return nil
	})
	if err != nil {
		return feedback.Destination{}, "", fmt.Errorf("store: rotate secret of destination %q: %w", id, err)
	}
	return out, secret, nil
}

// lockForUpdate adds FOR UPDATE on PostgreSQL; SQLite write transactions
// hold the database lock already.
func lockForUpdate(tx *gorm.DB, dialect string) *gorm.DB {
	if dialect == DialectPostgres {
		return tx.Clauses(clauseForUpdate)
	}
	return tx
}

// joinTiers and parseTiers store a destination's tiers as a
// comma-separated list, "" for every tier.
func joinTiers(ts []model.Tier) string {
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		names = append(names, t.String())
	}
	return strings.Join(names, ",")
}

func parseTiers(s string) []model.Tier {
	var out []model.Tier
	for _, name := range strings.Split(s, ",") {
		if t := parseTier(name); t != model.TierNone {
			out = append(out, t)
		}
	}
	return out
}
