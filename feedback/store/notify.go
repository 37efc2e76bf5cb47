package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// liveChannel is the PostgreSQL notification channel live events travel
// on between processes.
const liveChannel = "hotlane_live"

// SharesLiveEvents reports whether Notify reaches the other processes on
// the database: true on PostgreSQL (LISTEN/NOTIFY); on SQLite there is one
// process and nothing to share.
func (s *Store) SharesLiveEvents() bool { return s.dialect == DialectPostgres }

// Notify sends payload to every process listening with ListenLive. It is a
// no-op on SQLite. PostgreSQL caps a payload at 8000 bytes.
func (s *Store) Notify(ctx context.Context, payload []byte) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", liveChannel, string(payload)); err != nil {
		return fmt.Errorf("store: notify: %w", translate(err))
	}
	return nil
}

// ListenLive calls fn with every payload Notify sends, from any process,
// until ctx ends; then it returns nil. It holds a connection of its own
// and reconnects after losing it, waiting up to ten seconds between
// tries; notifications sent while it was away are lost. On SQLite it
// returns at once.
func (s *Store) ListenLive(ctx context.Context, fn func(payload []byte)) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, func() { wait = 100 * time.Millisecond })
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("live events: listening failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, fn func([]byte), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+liveChannel); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		fn([]byte(n.Payload))
	}
}
