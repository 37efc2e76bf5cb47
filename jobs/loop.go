package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// every runs pass at once and then every interval until ctx ends. A pass
// never overlaps the next; a failing or panicking pass is logged and the
// loop goes on.
func every(ctx context.Context, interval time.Duration, log *slog.Logger, name string, pass func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := safely(ctx, pass); err != nil && ctx.Err() == nil {
			log.Error("job pass failed", slog.String("job", name), slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// safely runs pass, turning a panic into an error that carries the stack.
func safely(ctx context.Context, pass func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return pass(ctx)
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
