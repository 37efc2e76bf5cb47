package feedback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresDSN returns the base DSN for PostgreSQL tests. Without one the
// test is skipped, unless the environment says PostgreSQL tests must run
// (CI=true or HOTLANE_REQUIRE_POSTGRES=1), in which case it fails.
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("HOTLANE_TEST_POSTGRES")
	if dsn != "" {
		return dsn
	}
	if os.Getenv("CI") == "true" || os.Getenv("HOTLANE_REQUIRE_POSTGRES") == "1" {
		t.Fatal("HOTLANE_TEST_POSTGRES is not set but PostgreSQL tests are required (CI=true or HOTLANE_REQUIRE_POSTGRES=1); " +
			"set it to a DSN such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	t.Skip("PostgreSQL tests skipped: set HOTLANE_TEST_POSTGRES to a DSN such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	return ""
}

// freshPostgres creates a schema of its own for the test and returns a DSN
// whose search_path points at it; the schema is dropped when the test ends.
func freshPostgres(t testing.TB) string {
	t.Helper()
	base := postgresDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to HOTLANE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "hl_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse HOTLANE_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

type engine struct {
	name string
	dsn  func(t testing.TB) string // a fresh, empty database
}

var engines = []engine{
	{DialectSQLite, func(t testing.TB) string { return filepath.Join(t.TempDir(), "hotlane.db") }},
	{DialectPostgres, freshPostgres},
}

// openStore opens a store on dsn, migrates it and closes it when the test ends.
func openStore(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// forEachEngine runs fn against a fresh, migrated store of every engine.
// On PostgreSQL it runs twice: with the writer's state cache (the default)
// and without it (the locking paths, as with several writers).
func forEachEngine(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			fn(t, openStore(t, e.dsn(t), Options{}))
		})
		if e.name == DialectPostgres {
			t.Run(e.name+"-locking", func(t *testing.T) {
				fn(t, openStore(t, e.dsn(t), Options{StateCache: -1}))
			})
		}
	}
}
