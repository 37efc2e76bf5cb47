package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
)

type userRow struct {
	ID           int64 `gorm:"primaryKey"`
	Email        string
	Role         string
	Team         string
	PasswordHash string
	DisabledAt   *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (userRow) TableName() string { return "users" }

func (r userRow) toUser() feedback.User {
	return feedback.User{ID: r.ID, Email: r.Email, Role: feedback.Role(r.Role), Team: r.Team,
		DisabledAt: utcPtr(r.DisabledAt), CreatedAt: r.CreatedAt.UTC()}
}

type sessionRow struct {
	TokenHash  string `gorm:"primaryKey"`
	UserID     int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

func (sessionRow) TableName() string { return "sessions" }

// CreateUser stores a new user; an email already taken is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u feedback.NewUser) (feedback.User, error) {
	email, err := feedback.NormalizeEmail(u.Email)
	if err != nil {
		return feedback.User{}, fmt.Errorf("store: create user: %w", err)
	}
	u.Email = email
	if err := feedback.ValidateUser(u); err != nil {
		return feedback.User{}, fmt.Errorf("store: create user: %w", err)
	}
	t := now()
	row := userRow{Email: u.Email, Role: string(u.Role), Team: u.Team, PasswordHash: u.PasswordHash, CreatedAt: t, UpdatedAt: t}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return feedback.User{}, fmt.Errorf("store: create user %s: %w", u.Email, translate(err))
	}
	return row.toUser(), nil
}

// UserByEmail returns the user with email and their password hash;
// ErrNotFound when there is none.
func (s *Store) UserByEmail(ctx context.Context, email string) (feedback.User, string, error) {
	email, err := feedback.NormalizeEmail(email)
	if err != nil {
		return feedback.User{}, "", fmt.Errorf("store: user: %w", feedback.ErrNotFound)
	}
	var row userRow
	if err := s.db.WithContext(ctx).Where("email = ?", email).Take(&row).Error; err != nil {
		return feedback.User{}, "", fmt.Errorf("store: user %s: %w", email, translate(err))
	}
	return row.toUser(), row.PasswordHash, nil
}

// Users lists every user by email.
func (s *Store) Users(ctx context.Context) ([]feedback.User, error) {
	var rows []userRow
	if err := s.db.WithContext(ctx).Order("email").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: users: %w", translate(err))
	}
	out := make([]feedback.User, len(rows))
	for i, r := range rows {
		out[i] = r.toUser()
	}
	return out, nil
}

// DisableUser stops a user from signing in and ends their sessions;
// ErrNotFound when no user has email.
func (s *Store) DisableUser(ctx context.Context, email string) error {
	return s.updateUser(ctx, "disable user", email, func(tx *gorm.DB, row *userRow) map[string]any {
		if row.DisabledAt != nil {
			return nil
		}
		return map[string]any{"disabled_at": now()}
	})
}

// SetPassword replaces a user's password hash and ends their sessions, so
// a leaked password stops working everywhere; ErrNotFound when no user
// has email.
func (s *Store) SetPassword(ctx context.Context, email, hash string) error {
	if hash == "" {
		return fmt.Errorf("store: set password: %w: password: required", feedback.ErrInvalid)
	}
	return s.updateUser(ctx, "set password", email, func(tx *gorm.DB, row *userRow) map[string]any {
		return map[string]any{"password_hash": hash}
	})
}

func (s *Store) updateUser(ctx context.Context, op, email string, change func(*gorm.DB, *userRow) map[string]any) error {
	email, err := feedback.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row userRow
		if err := tx.Where("email = ?", email).Take(&row).Error; err != nil {
			return err
		}
		if set := change(tx, &row); set != nil {
			set["updated_at"] = now()
			if err := tx.Model(&userRow{}).Where("id = ?", row.ID).Updates(set).Error; err != nil {
				return err
			}
		}
		return tx.Where("user_id = ?", row.ID).Delete(&sessionRow{}).Error
	})
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", op, email, translate(err))
	}
	return nil
}

// CreateSession stores a session of userID under tokenHash, starting at
// at, and purges sessions that have expired.
func (s *Store) CreateSession(ctx context.Context, userID int64, tokenHash string, at time.Time) (feedback.Session, error) {
	at = normTime(at)
	row := sessionRow{TokenHash: tokenHash, UserID: userID, CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(feedback.SessionMax)}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("expires_at < ? OR last_seen_at < ?", at, at.Add(-feedback.SessionIdle)).Delete(&sessionRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return feedback.Session{}, fmt.Errorf("store: create session: %w", translate(err))
	}
	return s.Session(ctx, tokenHash, at)
}

// sessionTouchEvery is how stale last_seen_at may get before a request
// writes it again: often enough for the idle timeout, rarely enough that
// a page open all day does not write on every request.
const sessionTouchEvery = time.Minute

// Session returns the live session stored under tokenHash at time at, with
// its user, and records that it was seen. A session that does not exist,
// has expired, has been idle longer than feedback.SessionIdle or whose
// user is disabled is ErrNotFound.
func (s *Store) Session(ctx context.Context, tokenHash string, at time.Time) (feedback.Session, error) {
	at = normTime(at)
	var row sessionRow
	if err := s.db.WithContext(ctx).Where("token_hash = ?", tokenHash).Take(&row).Error; err != nil {
		return feedback.Session{}, fmt.Errorf("store: session: %w", translate(err))
	}
	if !at.Before(row.ExpiresAt) || !at.Before(row.LastSeenAt.Add(feedback.SessionIdle)) {
		return feedback.Session{}, fmt.Errorf("store: session: expired: %w", feedback.ErrNotFound)
	}
	var u userRow
	if err := s.db.WithContext(ctx).Where("id = ?", row.UserID).Take(&u).Error; err != nil {
		return feedback.Session{}, fmt.Errorf("store: session: %w", translate(err))
	}
	if u.DisabledAt != nil {
		return feedback.Session{}, fmt.Errorf("store: session: user disabled: %w", feedback.ErrNotFound)
	}
	if at.Sub(row.LastSeenAt) >= sessionTouchEvery {
		row.LastSeenAt = at
		if err := s.db.WithContext(ctx).Model(&sessionRow{}).Where("token_hash = ?", tokenHash).
			Update("last_seen_at", at).Error; err != nil {
			return feedback.Session{}, fmt.Errorf("store: session: %w", translate(err))
		}
	}
	return feedback.Session{User: u.toUser(), CreatedAt: row.CreatedAt.UTC(), LastSeenAt: row.LastSeenAt.UTC(),
		ExpiresAt: row.ExpiresAt.UTC()}, nil
}

// DeleteSession ends the session stored under tokenHash; ending one that
// does not exist is not an error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	if err := s.db.WithContext(ctx).Where("token_hash = ?", tokenHash).Delete(&sessionRow{}).Error; err != nil {
		return fmt.Errorf("store: delete session: %w", translate(err))
	}
	return nil
}
