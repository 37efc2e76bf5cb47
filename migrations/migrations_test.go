package migrations

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	_ "github.com/glebarez/sqlite" // registers the "sqlite" database/sql driver
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

var tables = []string{"alert_labels", "alerts", "api_keys", "audit_log", "chatwoot_conversations", "chatwoot_receipts", "chatwoot_writes", "conversation_events", "conversations", "decisions", "deliveries", "delivery_attempts", "destinations", "idempotency_keys", "job_locks", "job_runs", "models", "policies", "reports", "sessions", "users"}

func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", storetest.DSN(t, DialectSQLite)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres returns a connection whose search_path is a fresh schema
// (storetest), dropped when the test ends.
func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", storetest.DSN(t, DialectPostgres))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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

// TestAlertOnce checks 00005: alerts written twice by the race it closes
// are marked deduplicated, all but the first, and the same duplicates are
// refused afterwards.
func TestAlertOnce(t *testing.T) {
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
			if err := DownTo(ctx, db, tt.dialect, 4); err != nil {
				t.Fatal(err)
			}
			ins := func(id, kind, conv, tier, status, at string) error {
				_, err := db.Exec(`INSERT INTO alerts (id, kind, conversation_id, decision_id, channel, tier, score, status, created_at)
VALUES ('` + id + `', '` + kind + `', '` + conv + `', 'd', 'web', '` + tier + `', 0.9, '` + status + `', '2025-01-01 00:00:` + at + `+00:00')`)
				return err
			}
			rows := [][]string{
				{"t1", "tier", "c1", "high", "fired", "01"},
				{"t2", "tier", "c1", "high", "fired", "02"}, // the race's duplicate
				{"t3", "tier", "c1", "urgent", "fired", "03"},
				{"t4", "tier", "c1", "high", "deduplicated", "04"},
				{"r1", "review", "c2", "low", "fired", "01"},
				{"r2", "review", "c2", "low", "fired", "02"}, // the race's duplicate
				{"s1", "sla", "c1", "high", "fired", "05"},
				{"s2", "sla", "c1", "high", "fired", "06"},
			}
			for _, r := range rows {
				if err := ins(r[0], r[1], r[2], r[3], r[4], r[5]); err != nil {
					t.Fatal(err)
				}
			}
			if err := Up(ctx, db, tt.dialect); err != nil {
				t.Fatalf("Up over duplicates: %v", err)
			}
			want := map[string]string{"t1": "fired", "t2": "deduplicated", "t3": "fired", "t4": "deduplicated",
				"r1": "fired", "r2": "deduplicated", "s1": "fired", "s2": "fired"}
			for id, status := range want {
				var got string
				if err := db.QueryRow(`SELECT status FROM alerts WHERE id = '` + id + `'`).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != status {
					t.Errorf("alert %s status = %s, want %s", id, got, status)
				}
			}
			if err := ins("t5", "tier", "c1", "urgent", "fired", "07"); err == nil {
				t.Error("a second fired urgent alert of c1 was accepted")
			}
			if err := ins("r3", "review", "c2", "low", "fired", "07"); err == nil {
				t.Error("a second review request of c2 was accepted")
			}
			if err := ins("t6", "tier", "c3", "urgent", "fired", "07"); err != nil {
				t.Errorf("the first fired alert of another conversation: %v", err)
			}
		})
	}
}
