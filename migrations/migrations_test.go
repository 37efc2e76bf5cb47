package migrations

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "github.com/glebarez/sqlite" // registers the "sqlite" database/sql driver
	_ "github.com/jackc/pgx/v5/stdlib"
)

var tables = []string{"alert_labels", "alerts", "api_keys", "conversation_events", "conversations", "decisions", "deliveries", "delivery_attempts", "destinations", "idempotency_keys", "models", "policies"}

func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres returns a connection whose search_path is a fresh schema,
// dropped when the test ends. Without HOTLANE_TEST_POSTGRES it skips, or
// fails when CI=true or HOTLANE_REQUIRE_POSTGRES=1.
func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	base := os.Getenv("HOTLANE_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" || os.Getenv("HOTLANE_REQUIRE_POSTGRES") == "1" {
			t.Fatal("HOTLANE_TEST_POSTGRES is not set but PostgreSQL tests are required")
		}
		t.Skip("PostgreSQL tests skipped: set HOTLANE_TEST_POSTGRES to a DSN such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	rand.Read(b[:])
	schema := "hl_mig_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return db
}

func listTables(t *testing.T, db *sql.DB, dialect string) []string {
	t.Helper()
	query := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version'`
	if dialect == DialectPostgres {
		query = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`
	}
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestUpDownUp(t *testing.T) {
	tests := []struct {
		dialect string
		open    func(t *testing.T) *sql.DB
	}{
		{DialectSQLite, openSQLite},
		{DialectPostgres, openPostgres},
	}
	for _, tt := range tests {
		t.Run(tt.dialect, func(t *testing.T) {
			ctx := context.Background()
			db := tt.open(t)
			latest, err := Latest(tt.dialect)
			if err != nil || latest < 1 {
				t.Fatalf("Latest = %d, %v", latest, err)
			}
			for round := range 2 {
				if err := Up(ctx, db, tt.dialect); err != nil {
					t.Fatalf("round %d: Up: %v", round, err)
				}
				if got, err := Version(ctx, db, tt.dialect); err != nil || got != latest {
					t.Fatalf("round %d: Version after Up = %d, %v; want %d", round, got, err, latest)
				}
				if got := listTables(t, db, tt.dialect); !slices.Equal(got, tables) {
					t.Fatalf("round %d: tables after Up = %v, want %v", round, got, tables)
				}
				if err := Up(ctx, db, tt.dialect); err != nil {
					t.Fatalf("round %d: Up when current: %v", round, err)
				}
				if err := DownTo(ctx, db, tt.dialect, 0); err != nil {
					t.Fatalf("round %d: DownTo 0: %v", round, err)
				}
				if got, err := Version(ctx, db, tt.dialect); err != nil || got != 0 {
					t.Fatalf("round %d: Version after down = %d, %v; want 0", round, got, err)
				}
				if got := listTables(t, db, tt.dialect); len(got) != 0 {
					t.Fatalf("round %d: tables after down = %v, want none", round, got)
				}
			}
		})
	}
}

func TestOneLiveOneActive(t *testing.T) {
	tests := []struct {
		dialect string
		open    func(t *testing.T) *sql.DB
	}{
		{DialectSQLite, openSQLite},
		{DialectPostgres, openPostgres},
	}
	for _, tt := range tests {
		t.Run(tt.dialect, func(t *testing.T) {
			ctx := context.Background()
			db := tt.open(t)
			if err := Up(ctx, db, tt.dialect); err != nil {
				t.Fatal(err)
			}
			ins := func(q string) error { _, err := db.Exec(q); return err }
			now := "'2025-01-01 00:00:00+00:00'"
			if err := ins(`INSERT INTO policies (version, document, live, created_at) VALUES (1, '{}', true, ` + now + `)`); err != nil {
				t.Fatal(err)
			}
			if err := ins(`INSERT INTO policies (version, document, live, created_at) VALUES (2, '{}', false, ` + now + `)`); err != nil {
				t.Fatal(err)
			}
			if err := ins(`INSERT INTO policies (version, document, live, created_at) VALUES (3, '{}', true, ` + now + `)`); err == nil {
				t.Error("a second live policy was accepted")
			}
			if err := ins(`INSERT INTO models (version, status, body, created_at) VALUES (1, 'active', '{}', ` + now + `)`); err != nil {
				t.Fatal(err)
			}
			if err := ins(`INSERT INTO models (version, status, body, created_at) VALUES (2, 'active', '{}', ` + now + `)`); err == nil {
				t.Error("a second active model was accepted")
			}
			if err := ins(`INSERT INTO models (version, status, body, created_at) VALUES (3, 'broken', '{}', ` + now + `)`); err == nil {
				t.Error("an unknown model status was accepted")
			}
		})
	}
}

func TestUnknownDialect(t *testing.T) {
	db := openSQLite(t)
	if err := Up(context.Background(), db, "mysql"); err == nil {
		t.Error("Up with dialect mysql succeeded, want error")
	}
	if _, err := Latest("mysql"); err == nil {
		t.Error("Latest with dialect mysql succeeded, want error")
	}
}
