package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// SLAStore is what the SLAChecker needs from the store.
type SLAStore interface {
	SLABreaches(ctx context.Context, deadlines map[model.Tier]time.Time, limit int) ([]string, error)
	EscalateSLA(ctx context.Context, conversationID string, at time.Time) (feedback.Alert, bool, error)
}

// DefaultSLA is the time to first human response when the policy sets
// none: 60 s for urgent, 180 s for high, none for other tiers.
func DefaultSLA(tier model.Tier) time.Duration {
	switch tier {
	case model.TierUrgent:
		return 60 * time.Second
	case model.TierHigh:
		return 180 * time.Second
	}
	return 0
}

// SLAChecker raises one escalation alert (kind sla) for each conversation
// that reached an alerting tier and had no first_response within its
// tier's SLA, measured from its first urgent or high decision. The
// Deliverer sends escalations to the team's lead destinations. Each
// conversation is escalated at most once, whatever the number of
// checkers running.
type SLAChecker struct {
	Store SLAStore
	// SLA gives the time to first response of a tier (0: none), asked
	// once per tier at the start of each pass; nil means DefaultSLA.
	// LiveSLA follows the live policy.
	SLA func(ctx context.Context, tier model.Tier) (time.Duration, error)
	// Tiers are the tiers checked; nil means urgent and high.
	Tiers []model.Tier
	// Interval between passes of Run; 0 means 5 s.
	Interval time.Duration
	// Batch is how many conversations one query takes; 0 means 100.
	Batch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives escalations and failures.
	Log *slog.Logger
}

// Run repeats RunOnce every Interval until ctx ends; then it returns nil.
func (c *SLAChecker) Run(ctx context.Context) error {
	interval := c.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return every(ctx, interval, orDiscard(c.Log), "sla", func(ctx context.Context) error {
		_, err := c.RunOnce(ctx)
		return err
	})
}

// RunOnce escalates every conversation in breach now and returns the
// alerts it raised.
func (c *SLAChecker) RunOnce(ctx context.Context) ([]feedback.Alert, error) {
	sla, tiers, batch := c.SLA, c.Tiers, c.Batch
	if sla == nil {
		sla = func(_ context.Context, tier model.Tier) (time.Duration, error) { return DefaultSLA(tier), nil }
	}
	if tiers == nil {
		tiers = []model.Tier{model.TierUrgent, model.TierHigh}
	}
	if batch <= 0 {
		batch = 100
	}
	now := orNow(c.Now)()
	deadlines := map[model.Tier]time.Time{}
	for _, t := range tiers {
		d, err := sla(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("sla check: %w", err)
		}
		if d > 0 {
			deadlines[t] = now.Add(-d)
		}
	}
	var raised []feedback.Alert
	for {
		ids, err := c.Store.SLABreaches(ctx, deadlines, batch)
		if err != nil {
			return raised, fmt.Errorf("sla check: %w", err)
		}
		for _, id := range ids {
			a, ok, err := c.Store.EscalateSLA(ctx, id, now)
			if err != nil {
				return raised, fmt.Errorf("sla check: %w", err)
			}
			if ok {
				orDiscard(c.Log).Info("sla escalation raised", slog.String("alert_id", a.ID),
					slog.String("conversation_id", a.ConversationID), slog.String("tier", a.Tier.String()), slog.String("team", a.Team))
				raised = append(raised, a)
			}
		}
		if len(ids) < batch {
			return raised, nil
		}
	}
}

// Current is the live holder as the SLA checker reads it.
type Current interface {
	Current() *feedback.Scoring
}

// LiveSLA returns an SLA lookup that follows the live policy held by live;
// before any policy is loaded it gives DefaultSLA.
func LiveSLA(live Current) func(context.Context, model.Tier) (time.Duration, error) {
	return func(_ context.Context, tier model.Tier) (time.Duration, error) {
		sc := live.Current()
		if sc == nil {
			return DefaultSLA(tier), nil
		}
		return sc.SLA(tier), nil
	}
}
