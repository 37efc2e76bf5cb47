package feedback

import (
	"errors"
	"fmt"
)

// Error kinds. The store and the jobs wrap their failures in these, and the
// server maps each kind to one HTTP status; test them with errors.Is.
var (
	// ErrNotFound means the requested row does not exist (or, for API keys,
	// is revoked).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write clashes with existing data or with the
	// current state, such as a duplicate decision id, a concurrent publish
	// or a report that can no longer be applied.
	ErrConflict = errors.New("conflict")
	// ErrIdempotencyConflict means an idempotency key was already used for
	// a different request. It wraps ErrConflict, so errors.Is(err,
	// ErrConflict) holds for it too.
	ErrIdempotencyConflict = fmt.Errorf("idempotency key already used for a different request: %w", ErrConflict)
	// ErrUnavailable means the database could not complete the operation
	// this time (a serialization failure or a deadlock, PostgreSQL 40001
	// and 40P01) and the same call may succeed if retried. It is not
	// ErrConflict: nothing the caller sent clashes with stored data.
	ErrUnavailable = errors.New("database temporarily unavailable")
	// ErrInvalid means the caller passed a value that is refused, such as
	// an unknown scope, an empty name or malformed JSON. Validators put the
	// field's name first in the message: "<field>: <problem>".
	ErrInvalid = errors.New("invalid input")
	// ErrClosed is returned by the store's decision writer after Close has
	// begun.
	ErrClosed = errors.New("store closed")
	// ErrLocked means another run of a job, in this process or another,
	// holds the job's lock.
	ErrLocked = errors.New("another run of this job holds its lock")
)

// kindError is an error of its own that is also of a kind: errors.Is
// matches both the error itself and the kind, while its message stays its
// own.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }

// Is reports whether target is the error's kind.
func (e *kindError) Is(target error) bool { return target == e.kind }

// Reason is the message of the first conflict of Hotlane's own in err's
// chain (ErrApplied, ErrPublishedImmutable, ...), fit to show a client;
// "" when there is none.
func Reason(err error) string {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.msg
	}
	return ""
}
