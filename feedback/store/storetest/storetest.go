// Package storetest gives every package's tests a fresh, empty database of
// each engine Hotlane supports: a SQLite file in the test's temporary
// directory, and a PostgreSQL schema of its own when HOTLANE_TEST_POSTGRES
// names a server. It is the one place tests make databases; it imports
// neither the store nor the migrations, so their own tests can use it.
//
// Without HOTLANE_TEST_POSTGRES the PostgreSQL cases skip with a message
// saying how to run them, unless CI=true or HOTLANE_REQUIRE_POSTGRES=1, in
// which case they fail: in CI they must run.
package storetest

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

// Engines names the engines to run a store-backed test against; the names
// become subtest names, which CI counts.
var Engines = []string{"sqlite", "postgres"}

// DSN returns a data source for a fresh, empty database of engine
// ("sqlite" or "postgres"), removed when the test ends.
func DSN(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case "sqlite":
		return filepath.Join(t.TempDir(), "hotlane.db")
	case "postgres":
		return FreshSchema(t, PostgresBase(t), "hl_test_")
	default:
		t.Fatalf("storetest: unknown engine %q", engine)
		return ""
	}
}

// PostgresBase returns the DSN of the test PostgreSQL server
// (HOTLANE_TEST_POSTGRES). Without one the test is skipped, or fails when
// CI=true or HOTLANE_REQUIRE_POSTGRES=1.
func PostgresBase(t testing.TB) string {
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

// FreshSchema creates a schema named prefix and random hex on the server
// at base and returns a DSN whose search_path is that schema; the schema
// is dropped when the test ends.
func FreshSchema(t testing.TB, base, prefix string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to HOTLANE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
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
