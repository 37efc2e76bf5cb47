package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// liveStore is what the live scorer needs from the store.
type liveStore interface {
	LiveVersions(ctx context.Context) (policy, model int, err error)
	LivePolicy(ctx context.Context) (feedback.PolicyVersion, error)
	ActiveModel(ctx context.Context) (feedback.ModelVersion, error)
}

// liveScorer is one immutable pairing of the live ruleset and the active
// model; a request takes one and uses it throughout, so a reload in the
// middle of a request cannot mix versions.
type liveScorer struct {
	scorer        *model.Scorer
	policyVersion int
	modelVersion  int // 0 before any model
}

// Live holds the scorer built from the database's live ruleset and active
// model. Every process polls the versions (Watch), so a ruleset published
// or a model promoted anywhere is served everywhere within one interval.
type Live struct {
	store liveStore
	log   *slog.Logger
	m     *metrics

	mu  sync.Mutex // serialises loads
	cur atomic.Pointer[liveScorer]
}

func newLive(store liveStore, log *slog.Logger, m *metrics) *Live {
	return &Live{store: store, log: log, m: m}
}

// current returns the scorer in use, or nil before any ruleset exists.
func (l *Live) current() *liveScorer { return l.cur.Load() }

// Refresh loads the live ruleset and active model when their versions
// differ from the ones in use. A version that fails to load leaves the
// previous scorer in place.
func (l *Live) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	pv, mv, err := l.store.LiveVersions(ctx)
	if err != nil {
		return fmt.Errorf("refresh scorer: %w", err)
	}
	if cur := l.cur.Load(); cur != nil && cur.policyVersion == pv && cur.modelVersion == mv {
		return nil
	}
	if pv == 0 {
		return nil
	}
	next, err := l.load(ctx)
	if err != nil {
		l.m.reloads.WithLabelValues("error").Inc()
		return fmt.Errorf("refresh scorer: %w", err)
	}
	prev := l.cur.Swap(next)
	l.m.reloads.WithLabelValues("ok").Inc()
	l.m.served.WithLabelValues("ruleset").Set(float64(next.policyVersion))
	l.m.served.WithLabelValues("model").Set(float64(next.modelVersion))
	attrs := []any{slog.Int("ruleset_version", next.policyVersion), slog.Int("model_version", next.modelVersion)}
	if prev != nil {
		attrs = append(attrs, slog.Int("previous_ruleset_version", prev.policyVersion),
			slog.Int("previous_model_version", prev.modelVersion))
	}
	l.log.Info("scorer loaded", attrs...)
	return nil
}

func (l *Live) load(ctx context.Context) (*liveScorer, error) {
	pol, err := l.store.LivePolicy(ctx)
	if err != nil {
		return nil, fmt.Errorf("live ruleset: %w", err)
	}
	doc, err := model.ParsePolicy(pol.Document)
	if err != nil {
		return nil, fmt.Errorf("ruleset %d: %w", pol.Version, err)
	}
	compiled, err := model.CompilePolicy(doc)
	if err != nil {
		return nil, fmt.Errorf("ruleset %d: %w", pol.Version, err)
	}
	next := &liveScorer{policyVersion: pol.Version}
	var m *model.Model
	mv, err := l.store.ActiveModel(ctx)
	switch {
	case errors.Is(err, feedback.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("active model: %w", err)
	default:
		m, err = model.ParseModel(mv.Body)
		if err != nil {
			return nil, fmt.Errorf("model %d: %w", mv.Version, err)
		}
		next.modelVersion = mv.Version
	}
	next.scorer = model.NewScorer(compiled, m)
	return next, nil
}

// Watch refreshes every interval until ctx ends. Errors are logged, not
// returned: a database blip must not stop scoring with the last good
// versions.
func (l *Live) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("scorer refresh failed; serving the previous versions", slog.Any("err", err))
			}
		}
	}
}
