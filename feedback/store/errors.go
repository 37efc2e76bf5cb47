package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
)

// translate maps driver and GORM errors to the package's error kinds, keeping
// the original in the chain for logs.
func translate(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows), errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %w", feedback.ErrNotFound, err)
	case errors.Is(err, gorm.ErrDuplicatedKey), errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("%w: %w", feedback.ErrConflict, err)
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case 2067, 1555, 787: // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY, _FOREIGNKEY
			return fmt.Errorf("%w: %w", feedback.ErrConflict, err)
		case 275, 1299: // SQLITE_CONSTRAINT_CHECK, _NOTNULL
			return fmt.Errorf("%w: %w", feedback.ErrInvalid, err)
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "23503", "23P01": // unique, foreign key, exclusion
			return fmt.Errorf("%w: %w", feedback.ErrConflict, err)
		case "40001", "40P01": // serialization failure, deadlock: transient, worth a retry
			return fmt.Errorf("%w: %w", feedback.ErrUnavailable, err)
		case "23502", "23514", "22P02", "22P05", "22023", "22021": // not null, check, bad text/json
			return fmt.Errorf("%w: %w", feedback.ErrInvalid, err)
		}
	}
	return err
}

// isDataError reports whether err is the database refusing the data (class
// 22 data exception or 23 integrity violation) rather than failing to run.
func isDataError(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.Is(err, gorm.ErrCheckConstraintViolated) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code()&0xff == 19 // SQLITE_CONSTRAINT and its extended codes
	}
	return false
}

// isDeadlock reports whether PostgreSQL aborted err's transaction to break
// a deadlock (SQLSTATE 40P01).
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// isStale reports whether err is the error of a cached batch that found
// the database changed since the cache learnt it (hotlane_expect, SQLSTATE
// HL001).
func isStale(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "HL001"
}
