package feedback

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// API key scopes. A key carries one or more of them; the server decides
// which scope each route needs.
const (
	ScopeScore    = "score"
	ScopeFeedback = "feedback"
	ScopeAdmin    = "admin"
)

// Scopes lists every valid scope.
var Scopes = []string{ScopeScore, ScopeFeedback, ScopeAdmin}

// APIKey describes a stored key. The secret itself is never stored: only its
// SHA-256 hash and the first characters (Prefix) for display.
type APIKey struct {
	ID        int64
	Name      string
	Prefix    string
	Scopes    []string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// HasScope reports whether the key carries scope.
func (k APIKey) HasScope(scope string) bool { return slices.Contains(k.Scopes, scope) }

// ValidateScopes checks the scopes of a key to create: at least one, each
// known, none twice. Its errors wrap ErrInvalid.
func ValidateScopes(scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("%w: at least one scope is required (%s)", ErrInvalid, strings.Join(Scopes, ", "))
	}
	for i, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return fmt.Errorf("%w: unknown scope %q (want %s)", ErrInvalid, sc, strings.Join(Scopes, ", "))
		}
		if slices.Contains(scopes[:i], sc) {
			return fmt.Errorf("%w: scope %q given twice", ErrInvalid, sc)
		}
	}
	return nil
}
