// Package feedbacktest gives tests of other packages a fresh, empty
// database of each engine Hotlane supports: a SQLite file in the test's
// temporary directory, and a PostgreSQL schema of its own when
// HOTLANE_TEST_POSTGRES names a server.
//
// Without HOTLANE_TEST_POSTGRES the PostgreSQL cases skip with a message
// saying how to run them, unless CI=true or HOTLANE_REQUIRE_POSTGRES=1, in
// which case they fail: in CI they must run.
package feedbacktest

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
		return freshSchema(t, postgresBase(t))
	default:
		t.Fatalf("feedbacktest: unknown engine %q", engine)
		return ""
	}
}

func postgresBase(t testing.TB) string {
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

func freshSchema(t testing.TB, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to HOTLANE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
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
