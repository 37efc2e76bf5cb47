// Package store is the persistence of everything in Hotlane: the loop's
// conversations, decisions, alerts, labels and events, rulesets and models,
// reports, API keys, job locks, claimed schedule ticks and runs, and the
// delivery outbox, in PostgreSQL (production, several processes) or SQLite
// (the embedded default). It is the only package besides migrations that
// imports GORM, pgx or database/sql: row structs, queries and transactions stay here,
// callers get feedback's types, and every failure is translated into
// feedback's error kinds (ErrNotFound, ErrConflict, ErrInvalid,
// ErrUnavailable, ...), the original kept in the chain for logs.
//
// Decisions are written by a group-commit writer (writer.go): concurrent
// Record calls share one transaction, planned by feedback.PlanAlerts and
// committed by the engine's flush (writer_postgres.go, writer_sqlite.go,
// with the PostgreSQL SQL in sql_postgres.go).
//
// On PostgreSQL decisions are partitioned by month of recording
// (migration 00015); partitions.go creates the coming months and drops
// expired ones whole (MaintainDecisions). Reads of a time window bound
// created_at (a decision occurs at most feedback.MaxAhead after it is
// recorded) so that only the window's months are read (training.go,
// kpi.go, sla.go).
//
// store imports feedback, model and migrations, and nothing else of
// Hotlane's.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/migrations"
)

// Dialect names returned by Store.Dialect.
const (
	DialectPostgres = migrations.DialectPostgres
	DialectSQLite   = migrations.DialectSQLite
)

// The values of Options.SQLiteSynchronous.
const (
	SyncFull   = "FULL"
	SyncNormal = "NORMAL"
)

// Options tunes Open. The zero value is usable.
type Options struct {
	// Logger receives the store's own log lines (slow or failed batches,
	// driver warnings). Nil discards them.
	Logger *slog.Logger
	// WriterConns is the size of the PostgreSQL connection pool reserved for
	// the decision writer; 0 means 4. Ignored for SQLite.
	WriterConns int
	// WriteTimeout bounds one decision batch commit, so a database that
	// stops answering fails requests instead of holding them; 0 means 10s.
	WriteTimeout time.Duration
	// Writers is the number of PostgreSQL decision writers; conversations
	// are spread over them by id. 0 means 1, which measured best on two
	// cores (bigger batches); it is capped at WriterConns.
	Writers int
	// ObserveFlush, when set, is called after every decision batch commit
	// attempt with the batch size, its duration and its error, so the owner
	// can export writer metrics without this package knowing about them.
	ObserveFlush func(size int, took time.Duration, err error)
	// MaxBatch caps the number of decisions committed together; 0 means 1000.
	MaxBatch int
	// SQLiteSynchronous is SQLite's synchronous setting: SyncFull (the
	// default, "" means it) makes every commit durable before it returns,
	// so a 2xx survives power loss; SyncNormal is faster but may lose the
	// last commits on power loss (not on a process crash). Ignored for
	// PostgreSQL.
	SQLiteSynchronous string
	// StateCache is the number of conversations whose state a lone
	// PostgreSQL writer keeps in memory, so that a batch commits in one
	// round trip without locking and reading its conversations first; 0
	// means DefaultStateCache and a negative number turns the cache off.
	// It is off when Writers is more than 1.
	StateCache int
	// ObservePath, when set, is called after every PostgreSQL decision
	// batch with the way it was committed: PathCached (one round trip from
	// the cache), PathStale (the cache was out of date, so the batch was
	// committed again on the locking path) or PathLocked (no cache, or
	// the cache set aside while most batches found it out of date).
	ObservePath func(path string)
}

// DefaultStateCache is the size of the writer's conversation cache when
// Options.StateCache is 0.
const DefaultStateCache = 100_000

// How a PostgreSQL decision batch was committed (Options.ObservePath).
const (
	PathCached = "cached"
	PathStale  = "stale"
	PathLocked = "locked"
)

// Store persists Hotlane's state. It is safe for concurrent use; Open starts
// its decision writer and Close stops it.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string
	log     *slog.Logger
	pool    *pgxpool.Pool // PostgreSQL only: the decision writer's connections
	w       *shardedWriter

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the database named by dsn: a postgres:// or postgresql://
// URL selects PostgreSQL, anything else is a SQLite file path (its parent
// directory is created when missing). Open checks the connection but does not
// migrate; call Migrate for that.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WriterConns <= 0 {
		opts.WriterConns = 4
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Writers <= 0 {
		opts.Writers = 1
	}
	if opts.Writers > opts.WriterConns {
		opts.Writers = opts.WriterConns
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	engine, path, err := classifyDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if engine == DialectPostgres {
		return openPostgres(ctx, dsn, opts)
	}
	return openSQLite(ctx, path, opts)
}

// pgKeyword matches the start of a PostgreSQL keyword/value connection
// string such as "host=db user=hotlane".
var pgKeyword = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)

// classifyDSN says which engine a --db value names, and for SQLite the
// file (with any query). A value is taken for SQLite only when it looks
// like a SQLite file, so a mistyped PostgreSQL URL or a keyword string
// never silently becomes a new, empty SQLite file (possibly named after a
// password).
func classifyDSN(dsn string) (engine, path string, err error) {
	lower := strings.ToLower(strings.TrimSpace(dsn))
	switch {
	case lower == "":
		return "", "", dsnError("empty database path")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"), pgKeyword.MatchString(dsn):
		return DialectPostgres, dsn, nil
	case strings.Contains(lower, ":memory:"), strings.Contains(lower, "mode=memory"):
		return "", "", dsnError("in-memory databases are not supported, use a file")
	case strings.HasPrefix(lower, "sqlite://"):
		return DialectSQLite, dsn[len("sqlite://"):], nil
	case strings.HasPrefix(lower, "file:"):
		return DialectSQLite, dsn[len("file:"):], nil
	}
	file, _, _ := strings.Cut(lower, "?")
	for _, ext := range []string{".db", ".sqlite", ".sqlite3"} {
		if strings.HasSuffix(file, ext) {
			return DialectSQLite, dsn, nil
		}
	}
	return "", "", dsnError(fmt.Sprintf("the database %s is neither a PostgreSQL database "+
		"(a postgres:// URL, or a keyword string such as \"host=... dbname=...\") nor a SQLite file "+
		"(a path ending in .db or .sqlite, file:PATH or sqlite://PATH)", describeDSN(dsn)))
}

// CheckDSN reports whether Open would know which engine dsn names, without
// opening anything, so a command can refuse a bad --db with its other
// flag errors.
func CheckDSN(dsn string) error {
	_, _, err := classifyDSN(dsn)
	return err
}

// SQLiteFile returns the file a SQLite --db value names (without its
// query), and false for a PostgreSQL database or a value Open refuses.
func SQLiteFile(dsn string) (string, bool) {
	engine, path, err := classifyDSN(dsn)
	if err != nil || engine != DialectSQLite {
		return "", false
	}
	file, _, _ := strings.Cut(path, "?")
	return file, true
}

// dsnError is a --db value Open cannot use; it is feedback.ErrInvalid.
type dsnError string

func (e dsnError) Error() string { return string(e) }
func (e dsnError) Unwrap() error { return feedback.ErrInvalid }

// describeDSN names a refused --db value in an error without echoing what
// may be a password: a URL by its scheme, anything holding @ or = not at
// all.
func describeDSN(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok {
		return fmt.Sprintf("URL with scheme %q", scheme)
	}
	if strings.ContainsAny(dsn, "@=") {
		return "value"
	}
	return fmt.Sprintf("%q", dsn)
}

func gormConfig(log *slog.Logger) *gorm.Config {
	return &gorm.Config{
		Logger: quietCanceled{logger.NewSlogLogger(log, logger.Config{
			SlowThreshold:             time.Second,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true, // never log values: they may hold secrets or messages
		})},
		NowFunc:                func() time.Time { return now() },
		PrepareStmt:            false,
		SkipDefaultTransaction: true,
		TranslateError:         true,
	}
}

// now is the store's clock: UTC, truncated to the microsecond precision both
// engines keep, so values read back compare equal to values written.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func openPostgres(ctx context.Context, dsn string, opts Options) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: parse dsn: %w", redactDSNError(err))
	}
	pcfg.MaxConns = int32(opts.WriterConns)
	pcfg.MinConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: writer pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db, err := gorm.Open(postgres.Open(dsn), gormConfig(opts.Logger))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	retryReadsOn(db, sqlDB)
	s := &Store{db: db, sqlDB: sqlDB, dialect: DialectPostgres, log: opts.Logger, pool: pool}
	s.w = newWriter(s, opts)
	return s, nil
}

// redactDSNError keeps a parse error from echoing a DSN that may hold a password.
func redactDSNError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid postgres connection string")
	}
	return err
}

func openSQLite(ctx context.Context, dsn string, opts Options) (*Store, error) {
	sync := strings.ToUpper(opts.SQLiteSynchronous)
	switch sync {
	case "":
		sync = SyncFull
	case SyncFull, SyncNormal:
	default:
		return nil, fmt.Errorf("store: open sqlite: %w: synchronous must be %s or %s, not %q", feedback.ErrInvalid, SyncFull, SyncNormal, opts.SQLiteSynchronous)
	}
	path, query, _ := strings.Cut(dsn, "?")
	if path == "" {
		return nil, fmt.Errorf("store: open sqlite: %w: empty database path", feedback.ErrInvalid)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: open sqlite %q: create directory: %w", path, err)
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("store: open sqlite %q: is a directory", path)
	}
	params := []string{
		"_pragma=journal_mode(WAL)",
		"_pragma=busy_timeout(10000)",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(" + sync + ")",
		// Write transactions take the write lock up front, so two of them
		// wait on busy_timeout instead of failing on a lock upgrade.
		"_txlock=immediate",
	}
	if query != "" {
		params = append(params, query)
	}
	full := path + "?" + strings.Join(params, "&")
	db, err := gorm.Open(sqlite.Open(full), gormConfig(opts.Logger))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	retryReadsOn(db, sqlDB)
	s := &Store{db: db, sqlDB: sqlDB, dialect: DialectSQLite, log: opts.Logger}
	s.w = newWriter(s, opts)
	return s, nil
}

// Dialect reports the engine behind the store: "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// Migrate applies every pending schema migration.
func (s *Store) Migrate(ctx context.Context) error {
	if err := migrations.Up(ctx, s.sqlDB, s.dialect); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// SchemaVersion reports the schema version applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	v, err := migrations.Version(ctx, s.sqlDB, s.dialect)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if s.pool != nil {
		if err := s.pool.Ping(ctx); err != nil {
			return fmt.Errorf("store: ping writer pool: %w", err)
		}
	}
	return nil
}

// Close commits the decisions already queued, stops the decision writer and
// closes the connections. Later RecordDecision calls return ErrClosed. Close
// is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.w.close()
		if s.pool != nil {
			s.pool.Close()
		}
		if err := s.sqlDB.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// quietCanceled is GORM's logger without the error line of a statement
// whose context was canceled: a client that went away or a process
// shutting down, which the caller reports if it matters. Every shutdown
// logged a job's canceled query as an ERROR before.
type quietCanceled struct{ logger.Interface }

func (q quietCanceled) LogMode(level logger.LogLevel) logger.Interface {
	return quietCanceled{q.Interface.LogMode(level)}
}

func (q quietCanceled) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled)) {
		return
	}
	q.Interface.Trace(ctx, begin, fc, err)
}
