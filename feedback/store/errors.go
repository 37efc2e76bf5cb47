package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
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
		case "23502", "23514", "22P02", "22P05", "22023", "22021", "22003": // not null, check, bad text/json, out of range
			return fmt.Errorf("%w: %w", feedback.ErrInvalid, err)
		}
	}
	if transient(err) {
		return fmt.Errorf("%w: %w", feedback.ErrUnavailable, err)
	}
	return err
}

// transient reports whether err is the database failing to run an
// operation rather than refusing it: a connection lost, refused or closed,
// a server shutting down or out of connections, a serialization failure or
// a deadlock, SQLite busy. The operation may succeed when tried again, and
// the client is not at fault.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || // connection exception
			strings.HasPrefix(c, "53") || // insufficient resources (too many connections)
			c == "57P01" || c == "57P02" || c == "57P03" || // admin shutdown, crash shutdown, cannot connect now
			c == "40001" || c == "40P01" || // serialization failure, deadlock
			c == "55P03" // lock not available
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "database is closed") ||
		strings.Contains(msg, "closed pool")
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

// retryReads is the connection pool GORM uses outside transactions: a
// SELECT that fails transiently (typically on a connection the database
// closed while it sat idle) runs once more, on another connection. Writes
// are never repeated here; an operation known to be idempotent repeats
// itself as a whole with retry.
type retryReads struct{ *sql.DB }

func retryReadsOn(db *gorm.DB, sqlDB *sql.DB) {
	db.ConnPool = retryReads{sqlDB}
	db.Statement.ConnPool = db.ConnPool
}

// QueryContext implements gorm.ConnPool.
func (p retryReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := p.DB.QueryContext(ctx, query, args...)
	if err != nil && transient(err) && ctx.Err() == nil && isSelect(query) {
		rows, err = p.DB.QueryContext(ctx, query, args...)
	}
	return rows, err
}

// GetDBConn implements gorm.GetDBConnector, so db.DB() finds the pool.
func (p retryReads) GetDBConn() (*sql.DB, error) { return p.DB, nil }

func isSelect(query string) bool {
	q := strings.TrimSpace(query)
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

// retry runs op, and once more when it failed transiently and ctx is
// still live: for operations that are safe to repeat as a whole (a
// transaction that reads, or upserts keyed by what it writes).
func retry(ctx context.Context, op func() error) error {
	err := op()
	if err != nil && transient(err) && ctx.Err() == nil {
		err = op()
	}
	return err
}
