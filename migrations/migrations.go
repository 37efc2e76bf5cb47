// Package migrations owns Hotlane's database schema: versioned SQL files for
// PostgreSQL and SQLite, embedded in the binary, and the functions that apply
// them with goose. Migrations run only when called (hotlane migrate, or serve
// at start); nothing here derives a schema from Go types. It imports
// nothing of Hotlane's; feedback/store applies it.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Dialect names accepted by the functions of this package; they match the
// names returned by the store's Dialect (feedback/store).
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Up applies every pending migration of dialect ("postgres" or "sqlite") to db.
// On PostgreSQL a session advisory lock keeps concurrent processes from
// migrating at the same time.
func Up(ctx context.Context, db *sql.DB, dialect string) error {
	p, err := newProvider(db, dialect)
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	return nil
}

// DownTo rolls back applied migrations of dialect until the schema is at
// version; DownTo(ctx, db, dialect, 0) removes every table this package made.
func DownTo(ctx context.Context, db *sql.DB, dialect string, version int64) error {
	p, err := newProvider(db, dialect)
	if err != nil {
		return fmt.Errorf("migrations: down: %w", err)
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrations: down: %w", err)
	}
	return nil
}

// Version reports the schema version applied to db (0 when none is).
func Version(ctx context.Context, db *sql.DB, dialect string) (int64, error) {
	p, err := newProvider(db, dialect)
	if err != nil {
		return 0, fmt.Errorf("migrations: version: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations: version: %w", err)
	}
	return v, nil
}

// Latest reports the highest migration version embedded for dialect, the
// version Up brings a database to.
func Latest(dialect string) (int64, error) {
	sub, _, err := source(dialect)
	if err != nil {
		return 0, fmt.Errorf("migrations: latest: %w", err)
	}
	names, err := fs.Glob(sub, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("migrations: latest: %w", err)
	}
	var latest int64
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return 0, fmt.Errorf("migrations: latest: %s: %w", name, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

func source(dialect string) (fs.FS, database.Dialect, error) {
	var gd database.Dialect
	switch dialect {
	case DialectPostgres:
		gd = database.DialectPostgres
	case DialectSQLite:
		gd = database.DialectSQLite3
	default:
		return nil, "", fmt.Errorf("unknown dialect %q (want %q or %q)", dialect, DialectPostgres, DialectSQLite)
	}
	sub, err := fs.Sub(files, dialect)
	if err != nil {
		return nil, "", err
	}
	return sub, gd, nil
}

func newProvider(db *sql.DB, dialect string) (*goose.Provider, error) {
	if db == nil {
		return nil, errors.New("nil database")
	}
	sub, gd, err := source(dialect)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if dialect == DialectPostgres {
		// Retry the lock every second for up to five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(gd, db, sub, opts...)
}
