package store

import (
	"context"
	"testing"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// freshPostgres returns a DSN of a fresh PostgreSQL schema for the test
// (storetest.DSN): skipped without HOTLANE_TEST_POSTGRES unless required.
func freshPostgres(t testing.TB) string { return storetest.DSN(t, DialectPostgres) }

type engine struct {
	name string
	dsn  func(t testing.TB) string // a fresh, empty database
}

var engines = []engine{
	{DialectSQLite, func(t testing.TB) string { return storetest.DSN(t, DialectSQLite) }},
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
