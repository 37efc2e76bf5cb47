package feedback

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/hotlane/hotlane/model"
)

// Role orders what a person signed in to the web UI may do: an agent works
// the queue and the alert feed, a lead also reviews reports, rules and
// models, an admin also sets Hotlane up.
type Role string

// Roles, lowest first.
const (
	RoleAgent Role = "agent"
	RoleLead  Role = "lead"
	RoleAdmin Role = "admin"
)

// Roles lists every role, lowest first.
var Roles = []Role{RoleAgent, RoleLead, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// AtLeast reports whether r may do what min may.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() && r.rank() > 0 }

// ParseRole parses agent, lead or admin.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("%w: role: must be agent, lead or admin", ErrInvalid)
	}
	return r, nil
}

// User is a person who signs in to the web UI.
type User struct {
	ID         int64
	Email      string
	Role       Role
	Team       string
	DisabledAt *time.Time
	CreatedAt  time.Time
}

// Disabled reports whether the user may no longer sign in.
func (u User) Disabled() bool { return u.DisabledAt != nil }

// NewUser is a user to create; PasswordHash comes from HashPassword.
type NewUser struct {
	Email        string
	Role         Role
	Team         string
	PasswordHash string
}

// Limits of a user.
const (
	MaxEmailLen       = 254
	MinPasswordLen    = 10
	MaxPasswordBytes  = 72 // bcrypt reads no further
	DefaultBcryptCost = 10 // about 70 ms per check on a 2-vCPU server
)

// NormalizeEmail trims and lower-cases an email address and checks that
// it looks like one. Its errors wrap ErrInvalid and name the field.
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return "", fmt.Errorf("%w: email: must be an address such as ana@example.com", ErrInvalid)
	case len(e) > MaxEmailLen || !utf8.ValidString(e) || strings.ContainsAny(e, " \t\r\n\x00<>\"'"):
		return "", fmt.Errorf("%w: email: must be at most %d characters without spaces or quotes", ErrInvalid, MaxEmailLen)
	}
	return e, nil
}

// ValidateUser checks a user to create.
func ValidateUser(u NewUser) error {
	if _, err := NormalizeEmail(u.Email); err != nil {
		return err
	}
	if u.Role.rank() == 0 {
		return fmt.Errorf("%w: role: must be agent, lead or admin", ErrInvalid)
	}
	// A team is shown and stored as it is: control characters (NUL, which
	// PostgreSQL refuses, among them) are refused here, as for a
	// destination's team.
	if strings.TrimSpace(u.Team) != u.Team || utf8.RuneCountInString(u.Team) > MaxTeamLen || !model.PlainText(u.Team) {
		return fmt.Errorf("%w: team: at most %d characters without surrounding spaces or control characters", ErrInvalid, MaxTeamLen)
	}
	if u.PasswordHash == "" {
		return fmt.Errorf("%w: password: required", ErrInvalid)
	}
	return nil
}

// HashPassword checks a new password and hashes it with bcrypt at cost.
func HashPassword(password string, cost int) (string, error) {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return "", fmt.Errorf("%w: password: at least %d characters", ErrInvalid, MinPasswordLen)
	case len(password) > MaxPasswordBytes:
		return "", fmt.Errorf("%w: password: at most %d bytes", ErrInvalid, MaxPasswordBytes)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether password matches hash.
func CheckPassword(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// dummyHash is compared against when no user has the email given, so an
// unknown email takes as long to refuse as a wrong password. It is made on
// first use: bcrypt is slow by design.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), DefaultBcryptCost)
	return h
})

// CheckNoPassword spends the time of one password check and fails.
func CheckNoPassword(password string) bool {
	_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
	return false
}

// Session lifetimes: a session ends after SessionIdle without a request,
// or SessionMax after sign-in, whichever comes first.
const (
	SessionIdle = 12 * time.Hour
	SessionMax  = 7 * 24 * time.Hour
)

// Session is a signed-in user's session.
type Session struct {
	User       User
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// NewSessionToken returns a random session token for the cookie and the
// hash under which it is stored.
func NewSessionToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashSessionToken(token)
}

// HashSessionToken is the stored form of a session token.
func HashSessionToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
