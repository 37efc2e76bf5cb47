package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// RetentionJob is the decisions' retention job's name in logs.
const RetentionJob = "retention"

// Defaults of the retention job.
const (
	DefaultRetainDecisions   = 400 * 24 * time.Hour
	DefaultRetentionInterval = time.Hour
)

// RetentionStore keeps the decisions table: partitions created ahead and
// expired ones dropped (see store.MaintainDecisions).
type RetentionStore interface {
	MaintainDecisions(ctx context.Context, now time.Time, retain time.Duration) (feedback.DecisionMaintenance, error)
}

// Retention keeps the decisions table for years of traffic: at start and
// then every Interval it has the store create the coming months'
// partitions and drop the months older than Retain. Every process may run
// it; the store's DDL is idempotent and gives way to busy locks.
type Retention struct {
	Store RetentionStore
	// Retain is how long decisions are kept; 0 keeps them all.
	Retain time.Duration
	// Interval is the time between passes; 0 means
	// DefaultRetentionInterval.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Run runs passes until ctx ends.
func (r *Retention) Run(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	return every(ctx, interval, orDiscard(r.Log), RetentionJob, func(ctx context.Context) error {
		_, err := r.Pass(ctx)
		return err
	})
}

// Pass runs one pass and logs what it changed.
func (r *Retention) Pass(ctx context.Context) (feedback.DecisionMaintenance, error) {
	res, err := r.Store.MaintainDecisions(ctx, orNow(r.Now)().UTC(), r.Retain)
	log := orDiscard(r.Log)
	if len(res.Created) > 0 {
		log.Info("decision partitions created", slog.Any("partitions", res.Created))
	}
	if len(res.Dropped) > 0 {
		log.Info("expired decision partitions dropped", slog.Any("partitions", res.Dropped), slog.String("retain", r.Retain.String()))
	}
	if res.Deleted > 0 {
		log.Info("expired decisions deleted", slog.Int64("decisions", res.Deleted), slog.String("retain", r.Retain.String()))
	}
	if len(res.Skipped) > 0 {
		log.Warn("decision partitions busy: left for the next pass", slog.Any("partitions", res.Skipped))
	}
	return res, err
}
