package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotlane/hotlane/feedback"
)

const (
	keyPrefix     = "hl_"
	keyRandomLen  = 40
	keyDisplayLen = 11 // "hl_" and 8 random characters
	maxKeyNameLen = 100
	base62        = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

type apiKeyRow struct {
	ID         int64 `gorm:"primaryKey"`
	Name       string
	Prefix     string
	SecretHash string
	Scopes     string
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

func (apiKeyRow) TableName() string { return "api_keys" }

func (r apiKeyRow) toAPIKey() feedback.APIKey {
	k := feedback.APIKey{ID: r.ID, Name: r.Name, Prefix: r.Prefix, CreatedAt: r.CreatedAt.UTC(), RevokedAt: utcPtr(r.RevokedAt)}
	if r.Scopes != "" {
		k.Scopes = strings.Split(r.Scopes, ",")
	}
	return k
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// CreateAPIKey stores a new key named name with the given scopes and returns
// it with its secret, which is shown once and cannot be recovered. An empty
// name or an unknown, missing or repeated scope is refused with ErrInvalid.
func (s *Store) CreateAPIKey(ctx context.Context, name string, scopes []string) (feedback.APIKey, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return feedback.APIKey{}, "", fmt.Errorf("store: create api key: %w: name is required", feedback.ErrInvalid)
	}
	if utf8.RuneCountInString(name) > maxKeyNameLen || !utf8.ValidString(name) {
		return feedback.APIKey{}, "", fmt.Errorf("store: create api key: %w: name must be valid UTF-8 of at most %d characters", feedback.ErrInvalid, maxKeyNameLen)
	}
	if err := feedback.ValidateScopes(scopes); err != nil {
		return feedback.APIKey{}, "", fmt.Errorf("store: create api key: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return feedback.APIKey{}, "", fmt.Errorf("store: create api key: %w", err)
	}
	row := apiKeyRow{
		Name:       name,
		Prefix:     secret[:keyDisplayLen],
		SecretHash: hashSecret(secret),
		Scopes:     strings.Join(scopes, ","),
		CreatedAt:  now(),
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return feedback.APIKey{}, "", fmt.Errorf("store: create api key: %w", translate(err))
	}
	return row.toAPIKey(), secret, nil
}

// newSecret returns "hl_" and 40 base62 characters from crypto/rand
// (about 238 bits), drawn without modulo bias.
func newSecret() (string, error) {
	var b strings.Builder
	b.Grow(len(keyPrefix) + keyRandomLen)
	b.WriteString(keyPrefix)
	buf := make([]byte, 64)
	for n := 0; n < keyRandomLen; {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random secret: %w", err)
		}
		for _, c := range buf {
			if c >= 248 { // 248 = 4*62: larger values would bias the draw
				continue
			}
			b.WriteByte(base62[c%62])
			if n++; n == keyRandomLen {
				break
			}
		}
	}
	return b.String(), nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]feedback.APIKey, error) {
	var rows []apiKeyRow
	if err := s.db.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", translate(err))
	}
	keys := make([]feedback.APIKey, len(rows))
	for i, r := range rows {
		keys[i] = r.toAPIKey()
	}
	return keys, nil
}

// RevokeAPIKey revokes the key with id; it fails with ErrNotFound when no
// such key exists or it is already revoked.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Model(&apiKeyRow{}).
		Where("id = ? AND revoked_at IS NULL", id).
		Update("revoked_at", now())
	if res.Error != nil {
		return fmt.Errorf("store: revoke api key %d: %w", id, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: revoke api key %d: %w", id, feedback.ErrNotFound)
	}
	return nil
}

// AuthenticateAPIKey returns the live key whose secret is secret; unknown,
// malformed and revoked secrets all give ErrNotFound.
func (s *Store) AuthenticateAPIKey(ctx context.Context, secret string) (feedback.APIKey, error) {
	if !strings.HasPrefix(secret, keyPrefix) || len(secret) != len(keyPrefix)+keyRandomLen {
		return feedback.APIKey{}, fmt.Errorf("store: authenticate api key: %w", feedback.ErrNotFound)
	}
	var row apiKeyRow
	err := s.db.WithContext(ctx).
		Where("secret_hash = ? AND revoked_at IS NULL", hashSecret(secret)).
		Take(&row).Error
	if err != nil {
		return feedback.APIKey{}, fmt.Errorf("store: authenticate api key: %w", translate(err))
	}
	return row.toAPIKey(), nil
}
