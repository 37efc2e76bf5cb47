package feedback

import (
	"encoding/json"
	"time"

	"github.com/hotlane/hotlane/model"
)

// Training label values.
const (
	TrainingPositive = "positive"
	TrainingNegative = "negative"
)

// Sources of a training label.
const (
	SourceAgent     = "agent"     // agents' labels and tier feedback
	SourceConverted = "converted" // a converted event
	SourceLost      = "lost"      // a lost event
)

// TrainingInput is what is known about one conversation for training: the
// labels agents gave its alerts, its events, and the probability it was
// drawn with when it was sampled for review (0 when it was not).
type TrainingInput struct {
	Labels     []AlertLabel
	Events     []Event
	SampleRate float64
}

// TrainingLabel is a conversation's training label. Label is "" when the
// conversation is unlabelled and must not be used; Weight is then 0.
type TrainingLabel struct {
	Label  string  // TrainingPositive, TrainingNegative or ""
	Weight float64 // 1, or 1/SampleRate for agents' labels of a review-sampled conversation
	Source string  // SourceAgent, SourceConverted, SourceLost or ""
	// Conflict reports that agents disagreed evenly, so their verdict was
	// set aside and the label (if any) comes from the outcome.
	Conflict bool
}

// DeriveTrainingLabel derives a conversation's training label (PRODUCT.md
// §4). It is pure: the same input always gives the same label.
//
// Agents come first. Each agent has one voice: their latest opinion, taken
// from their alert labels (useful is positive, noise negative, dated by
// when they last set it) and their tier_feedback events (urgent or high is
// positive, medium or low negative, dated by the event); at equal times
// tier feedback wins, as the more specific statement. Tier feedback without
// an agent counts as one more voice (the latest such event). The majority
// of voices is the label. When the voices tie, agents disagree evenly and
// their verdict is set aside (Conflict) rather than broken arbitrarily.
//
// Without an agents' verdict, the outcome decides: converted is positive,
// lost is negative; when both were reported, the later one wins, and at
// equal times converted wins (a sale is the stronger fact). Otherwise the
// conversation is unlabelled.
//
// A labelled conversation weighs 1, or 1/SampleRate when agents labelled it
// after it was sampled for review, so that the review sample stands for
// the non-alerted conversations it was drawn from. An outcome label weighs
// 1 even then: outcomes are reported whether or not a conversation was
// sampled, so the sampled ones stand only for themselves.
func DeriveTrainingLabel(in TrainingInput) TrainingLabel {
	var out TrainingLabel
	label, conflict := agentsVerdict(in)
	switch {
	case label != "":
		out.Label, out.Source = label, SourceAgent
	default:
		out.Conflict = conflict
		out.Label, out.Source = outcome(in.Events)
	}
	if out.Label == "" {
		return out
	}
	out.Weight = 1
	if out.Source == SourceAgent && in.SampleRate > 0 && in.SampleRate <= 1 {
		out.Weight = 1 / in.SampleRate
	}
	return out
}

type opinion struct {
	positive bool
	at       time.Time
	feedback bool // from tier feedback
}

// later reports whether o replaces prev as an agent's latest opinion.
func (o opinion) later(prev opinion) bool {
	if !o.at.Equal(prev.at) {
		return o.at.After(prev.at)
	}
	return o.feedback && !prev.feedback
}

func agentsVerdict(in TrainingInput) (label string, conflict bool) {
	latest := map[string]opinion{}
	add := func(agent string, o opinion) {
		if prev, ok := latest[agent]; !ok || o.later(prev) {
			latest[agent] = o
		}
	}
	for _, l := range in.Labels {
		switch l.Label {
		case LabelUseful:
			add(l.Agent, opinion{positive: true, at: l.UpdatedAt})
		case LabelNoise:
			add(l.Agent, opinion{positive: false, at: l.UpdatedAt})
		}
	}
	for _, e := range in.Events {
		if e.Type != EventTierFeedback {
			continue
		}
		switch {
		case IsTopTier(e.Tier):
			add(e.Agent, opinion{positive: true, at: e.At, feedback: true})
		case e.Tier != model.TierNone:
			add(e.Agent, opinion{positive: false, at: e.At, feedback: true})
		}
	}
	var pos, neg int
	for _, o := range latest {
		if o.positive {
			pos++
		} else {
			neg++
		}
	}
	switch {
	case pos > neg:
		return TrainingPositive, false
	case neg > pos:
		return TrainingNegative, false
	}
	return "", pos > 0
}

func outcome(events []Event) (label, source string) {
	var last *Event
	for i := range events {
		e := &events[i]
		if e.Type != EventConverted && e.Type != EventLost {
			continue
		}
		if last == nil || e.At.After(last.At) || (e.At.Equal(last.At) && e.Type == EventConverted) {
			last = e
		}
	}
	switch {
	case last == nil:
		return "", ""
	case last.Type == EventConverted:
		return TrainingPositive, SourceConverted
	default:
		return TrainingNegative, SourceLost
	}
}

// TrainingRow is one conversation of a training window as the tuning job
// sees it: its latest decision in the window (signals, fired rules, score),
// whether it alerted, whether it was sampled for review, and its derived
// training label (Label.Label is "" when it has none).
type TrainingRow struct {
	ConversationID string
	Channel        string
	At             time.Time // when its latest decision in the window occurred
	// Signals is the decision's signals as stored, a JSON object; callers
	// decode what they keep, so a window of millions is not held as maps.
	Signals       json.RawMessage
	Message       string // only when messages are stored
	Hits          []string
	Score         float64
	Tier          model.Tier
	ModelVersion  int
	PolicyVersion int
	// AlertTier is the highest tier of its fired tier alerts, TierNone
	// when none.
	AlertTier model.Tier
	// SampleRate is the probability its review request was drawn with, 0
	// when it was not sampled for review.
	SampleRate float64
	Label      TrainingLabel
	// Decisions holds every decision of the conversation in the window,
	// oldest first, the latest one last; only backtests ask for them.
	Decisions []WindowDecision
}

// WindowDecision is one decision of a conversation as a backtest replays
// it: what the platform sent, not what was decided.
type WindowDecision struct {
	Channel string
	At      time.Time
	Signals json.RawMessage
	Message string
}
