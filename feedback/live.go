package feedback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotlane/hotlane/model"
)

// LiveSource is what the live holder reads: the store's live ruleset and
// active model, and their versions, which are cheap to poll.
type LiveSource interface {
	LiveVersions(ctx context.Context) (policy, model int, err error)
	LivePolicy(ctx context.Context) (PolicyVersion, error)
	ActiveModel(ctx context.Context) (ModelVersion, error)
}

// Scoring is one immutable pairing of the live ruleset and the active
// model, compiled. A caller takes one and uses it throughout, so a reload
// in the middle of a request or a job cannot mix versions.
type Scoring struct {
	Scorer *model.Scorer
	// Policy is the compiled live ruleset; Model the active model, nil
	// before any (scoring is then by the rules alone).
	Policy *model.Policy
	Model  *model.Model
	// PolicyVersion and ModelVersion are their stored versions;
	// ModelVersion is 0 without a model.
	PolicyVersion int
	ModelVersion  int
	// ModelWindowEnd is the end of the active model's training window;
	// nil for rules only or a model stored by hand.
	ModelWindowEnd *time.Time
}

// SLA returns the live policy's time to first human response of tier, 0
// for none.
func (sc *Scoring) SLA(tier model.Tier) time.Duration { return sc.Policy.Alerts().SLA(tier) }

// LiveOptions tunes NewLive. The zero value is usable.
type LiveOptions struct {
	// Log receives a line for every new pairing and every failed refresh
	// of Watch; nil discards them.
	Log *slog.Logger
	// Loaded, when set, is called after a new pairing replaced prev (nil
	// for the first), for metrics.
	Loaded func(prev, next *Scoring)
	// Failed, when set, is called after a pairing failed to load.
	Failed func(err error)
}

// Live holds the pairing of ruleset and model that every part of a
// process scores with: the score path, the SLA checker, the tuning job and
// imports. It loads the store's live ruleset and active model once, and
// Refresh (every interval under Watch) loads them again only when their
// versions changed, so a ruleset published or a model promoted by any
// process is used by every process within one interval.
type Live struct {
	src  LiveSource
	opts LiveOptions

	mu  sync.Mutex // serialises loads
	cur atomic.Pointer[Scoring]
}

// NewLive returns a holder reading src. It holds nothing until the first
// Refresh.
func NewLive(src LiveSource, opts LiveOptions) *Live {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Live{src: src, opts: opts}
}

// Current returns the pairing in use, or nil before any ruleset was
// published (or loaded).
func (l *Live) Current() *Scoring { return l.cur.Load() }

// Refresh loads the live ruleset and active model when their versions
// differ from the ones in use. A version that fails to load leaves the
// previous pairing in place and is returned as an error.
func (l *Live) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	pv, mv, err := l.src.LiveVersions(ctx)
	if err != nil {
		return fmt.Errorf("refresh live ruleset: %w", err)
	}
	if cur := l.cur.Load(); cur != nil && cur.PolicyVersion == pv && cur.ModelVersion == mv {
		return nil
	}
	if pv == 0 {
		return nil
	}
	next, err := l.load(ctx)
	if err != nil {
		if l.opts.Failed != nil {
			l.opts.Failed(err)
		}
		return fmt.Errorf("refresh live ruleset: %w", err)
	}
	prev := l.cur.Swap(next)
	if l.opts.Loaded != nil {
		l.opts.Loaded(prev, next)
	}
	attrs := []any{slog.Int("ruleset_version", next.PolicyVersion), slog.Int("model_version", next.ModelVersion)}
	if prev != nil {
		attrs = append(attrs, slog.Int("previous_ruleset_version", prev.PolicyVersion),
			slog.Int("previous_model_version", prev.ModelVersion))
	}
	l.opts.Log.Info("scorer loaded", attrs...)
	return nil
}

// load reads and compiles the live ruleset and the active model. The two
// reads are not one snapshot: a promotion between them shows as a version
// change on the next Refresh, which loads the pair again.
func (l *Live) load(ctx context.Context) (*Scoring, error) {
	pol, err := l.src.LivePolicy(ctx)
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
	next := &Scoring{Policy: compiled, PolicyVersion: pol.Version}
	mv, err := l.src.ActiveModel(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("active model: %w", err)
	default:
		if next.Model, err = model.ParseModel(mv.Body); err != nil {
			return nil, fmt.Errorf("model %d: %w", mv.Version, err)
		}
		next.ModelVersion, next.ModelWindowEnd = mv.Version, mv.WindowEnd
	}
	next.Scorer = model.NewScorer(compiled, next.Model)
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
				l.opts.Log.Warn("scorer refresh failed; serving the previous versions", slog.Any("err", err))
			}
		}
	}
}
