package migrations

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	_ "github.com/glebarez/sqlite" // registers the "sqlite" database/sql driver
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

var tables = []string{"alert_labels", "alerts", "api_keys", "audit_log", "chatwoot_conversations", "chatwoot_receipts", "chatwoot_writes", "conversation_events", "conversations", "decisions", "deliveries", "delivery_attempts", "destinations", "idempotency_keys", "job_locks", "job_runs", "job_ticks", "models", "policies", "reports", "sessions", "users"}

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
		// Tables, not their partitions (decisions has one a month).
		query = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'goose_db_version'`
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

// TestDecisionPartitions checks 00015: stored decisions move into monthly
// partitions of created_at, from the oldest stored month (or 13 back) to 2
// ahead, and a decision outside them lands in the default partition.
func TestDecisionPartitions(t *testing.T) {
	ctx := context.Background()
	db := openPostgres(t)
	if err := Up(ctx, db, DialectPostgres); err != nil {
		t.Fatal(err)
	}
	if err := DownTo(ctx, db, DialectPostgres, 14); err != nil {
		t.Fatal(err)
	}
	ins := func(id, created string) {
		t.Helper()
		if _, err := db.Exec(`INSERT INTO decisions (id, conversation_id, channel, signals, score, tier, reasons, route,
  policy_version, latency_us, occurred_at, created_at)
VALUES ($1, 'c', 'web', '{"a":1}', 0.5, 'low', '[]', '{}', 1, 10, $2, $2)`, id, created); err != nil {
			t.Fatal(err)
		}
	}
	ins("old", "2023-03-10T12:00:00Z")
	ins("new", time.Now().UTC().Format(time.RFC3339))
	if err := Up(ctx, db, DialectPostgres); err != nil {
		t.Fatal(err)
	}
	where := func(id string) string {
		t.Helper()
		var part string
		if err := db.QueryRow(`SELECT tableoid::regclass::text FROM decisions WHERE id = $1`, id).Scan(&part); err != nil {
			t.Fatalf("decision %s: %v", id, err)
		}
		return part
	}
	if got := where("old"); got != "decisions_p202303" {
		t.Errorf("decision of March 2023 is in %s, want decisions_p202303", got)
	}
	if got, want := where("new"), "decisions_p"+time.Now().UTC().Format("200601"); got != want {
		t.Errorf("decision of now is in %s, want %s", got, want)
	}
	var months int
	if err := db.QueryRow(`SELECT count(*) FROM pg_inherits WHERE inhparent = 'decisions'::regclass`).Scan(&months); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	want := (now.Year()-2023)*12 + int(now.Month()) - 3 + 1 + 2 + 1 // March 2023 to now, 2 ahead, the default
	if months != want {
		t.Errorf("decisions has %d partitions, want %d", months, want)
	}
	ins("far", "2040-01-01T00:00:00Z")
	if got := where("far"); got != "decisions_default" {
		t.Errorf("decision of 2040 is in %s, want decisions_default", got)
	}
	if _, err := db.Exec(`INSERT INTO decisions SELECT * FROM decisions WHERE id = 'new'`); err == nil {
		t.Error("recording the same decision twice succeeded, want a unique violation")
	}
}
