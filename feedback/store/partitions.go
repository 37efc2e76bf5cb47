package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hotlane/hotlane/feedback"
)

// On PostgreSQL decisions are partitioned by month of created_at
// (migration 00015). The server keeps PartitionsAhead months ready past
// the current one and drops the months wholly older than its retention;
// the default partition catches anything outside the months that exist.
const (
	// PartitionsAhead is how many months past the current one are kept
	// created, so a write never waits on a partition being made.
	PartitionsAhead = 2
	// partitionLockTimeout bounds how long creating or dropping a month
	// waits for its lock on decisions: writes queue behind a waiting
	// DDL lock, so it gives up quickly and is tried again next time
	// rather than stall the score path.
	partitionLockTimeout = 50 * time.Millisecond
	// sqliteExpireBatch is how many expired decisions SQLite deletes per
	// statement, so each write lock is short.
	sqliteExpireBatch = 5000
)

// partitionName is the partition of the month starting at m.
func partitionName(m time.Time) string { return "decisions_p" + m.Format("200601") }

// monthOf is the start of t's month, in UTC.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// DecisionPartitions lists the monthly partitions of decisions by the
// start of their month, oldest first (PostgreSQL only; nil on SQLite).
func (s *Store) DecisionPartitions(ctx context.Context) ([]time.Time, error) {
	if s.dialect != DialectPostgres {
		return nil, nil
	}
	rows, err := s.sqlDB.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'decisions'::regclass AND c.relname ~ '^decisions_p[0-9]{6}$'`)
	if err != nil {
		return nil, fmt.Errorf("store: decision partitions: %w", translate(err))
	}
	defer rows.Close()
	var months []time.Time
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("store: decision partitions: %w", translate(err))
		}
		m, err := time.Parse("200601", strings.TrimPrefix(name, "decisions_p"))
		if err != nil {
			continue // not one of ours
		}
		months = append(months, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: decision partitions: %w", translate(err))
	}
	slices.SortFunc(months, time.Time.Compare)
	return months, nil
}

// MaintainDecisions keeps the decisions table for now: on PostgreSQL it
// creates the current month's partition and PartitionsAhead more when
// missing, and drops every month that ended retain or longer before now,
// whole (never row by row). retain 0 keeps every decision. On SQLite,
// which has no partitions, it deletes the decisions recorded before
// now-retain in short batches.
//
// A month whose lock is not granted at once is left for the next call,
// reported in Skipped; the call fails only when the database does.
func (s *Store) MaintainDecisions(ctx context.Context, now time.Time, retain time.Duration) (feedback.DecisionMaintenance, error) {
	var res feedback.DecisionMaintenance
	if s.dialect != DialectPostgres {
		if retain <= 0 {
			return res, nil
		}
		n, err := s.expireSQLiteDecisions(ctx, now.Add(-retain))
		res.Deleted = n
		return res, err
	}
	months, err := s.DecisionPartitions(ctx)
	if err != nil {
		return res, err
	}
	for i, m := 0, monthOf(now); i <= PartitionsAhead; i, m = i+1, m.AddDate(0, 1, 0) {
		if slices.ContainsFunc(months, m.Equal) {
			continue
		}
		switch err := s.createMonth(ctx, m); {
		case err == nil:
			res.Created = append(res.Created, partitionName(m))
		case errors.Is(err, errLockNotGranted):
			res.Skipped = append(res.Skipped, partitionName(m))
		default:
			return res, err
		}
	}
	if retain <= 0 {
		return res, nil
	}
	cutoff := now.Add(-retain)
	for _, m := range months {
		if m.AddDate(0, 1, 0).After(cutoff) {
			break // this month and the later ones still hold kept decisions
		}
		switch err := s.dropMonth(ctx, m); {
		case err == nil:
			res.Dropped = append(res.Dropped, partitionName(m))
		case errors.Is(err, errLockNotGranted):
			res.Skipped = append(res.Skipped, partitionName(m))
		default:
			return res, err
		}
	}
	return res, nil
}

// errLockNotGranted is a month's DDL that gave up waiting for its lock.
var errLockNotGranted = errors.New("lock not granted")

// createMonth makes the month's table on its own and attaches it: the
// attach takes a lock that lets writes go on, unlike creating the
// partition in place. Its check constraint spares the attach a scan.
func (s *Store) createMonth(ctx context.Context, m time.Time) error {
	name, end := partitionName(m), m.AddDate(0, 1, 0)
	from, to := m.Format(time.RFC3339), end.Format(time.RFC3339)
	return s.partitionDDL(ctx, "create "+name,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (LIKE decisions INCLUDING DEFAULTS,
  CONSTRAINT %s_month CHECK (created_at >= '%s' AND created_at < '%s'))`, name, name, from, to),
		fmt.Sprintf(`ALTER TABLE decisions ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`, name, from, to),
		fmt.Sprintf(`ALTER TABLE %s DROP CONSTRAINT %s_month`, name, name))
}

// dropMonth drops the month's partition with every decision in it.
func (s *Store) dropMonth(ctx context.Context, m time.Time) error {
	name := partitionName(m)
	return s.partitionDDL(ctx, "drop "+name, `DROP TABLE IF EXISTS `+name)
}

// partitionDDL runs statements in one transaction that waits at most
// partitionLockTimeout for each lock.
func (s *Store) partitionDDL(ctx context.Context, what string, stmts ...string) error {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, translate(err))
	}
	defer tx.Rollback()
	stmts = append([]string{fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", partitionLockTimeout.Milliseconds())}, stmts...)
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return partitionErr(what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return partitionErr(what, err)
	}
	return nil
}

func partitionErr(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
		return fmt.Errorf("store: %s: %w", what, errLockNotGranted)
	}
	if errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "42P17") {
		// Another process made the month meanwhile (duplicate table, or
		// already a partition).
		return nil
	}
	return fmt.Errorf("store: %s: %w", what, translate(err))
}

// expireSQLiteDecisions deletes the decisions recorded before cutoff.
func (s *Store) expireSQLiteDecisions(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM decisions WHERE rowid IN
  (SELECT rowid FROM decisions WHERE created_at < ? LIMIT ?)`, normTime(cutoff), sqliteExpireBatch)
		if res.Error != nil {
			return total, fmt.Errorf("store: expire decisions: %w", translate(res.Error))
		}
		total += res.RowsAffected
		if res.RowsAffected < sqliteExpireBatch {
			return total, nil
		}
	}
}
