package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// TrainingRow is one conversation of a training window as the tuning job
// sees it: its latest decision in the window (signals, fired rules, score),
// whether it alerted, whether it was sampled for review, and its derived
// training label (Label.Label is "" when it has none).
type TrainingRow struct {
	ConversationID string
	Channel        string
	At             time.Time // when its latest decision in the window occurred
	Signals        map[string]any
	Message        string // only when messages are stored
	Hits           []string
	Score          float64
	Tier           string
	ModelVersion   int
	PolicyVersion  int
	// AlertTier is the highest tier of its fired tier alerts, "" when none.
	AlertTier string
	// SampleRate is the probability its review request was drawn with, 0
	// when it was not sampled for review.
	SampleRate float64
	Label      TrainingLabel
}

// TrainingRows calls fn with every conversation that has a decision
// occurring in [from, to), in conversation id order, streaming the
// decisions so a window of millions needs memory only for its labels and
// outcome events.
func (s *Store) TrainingRows(ctx context.Context, from, to time.Time, fn func(TrainingRow) error) error {
	from, to = normTime(from), normTime(to)
	db := s.db.WithContext(ctx)
	inWindow := `conversation_id IN (SELECT conversation_id FROM decisions WHERE occurred_at >= ? AND occurred_at < ?)`

	labels := map[string][]AlertLabel{}
	var labelRows []alertLabelRow
	if err := db.Where(inWindow, from, to).Find(&labelRows).Error; err != nil {
		return fmt.Errorf("feedback: training labels: %w", translate(err))
	}
	for _, r := range labelRows {
		labels[r.ConversationID] = append(labels[r.ConversationID], r.toLabel())
	}

	events := map[string][]Event{}
	var eventRows []eventRow
	if err := db.Where("type IN ? AND "+inWindow, []string{EventConverted, EventLost, EventTierFeedback}, from, to).
		Find(&eventRows).Error; err != nil {
		return fmt.Errorf("feedback: training events: %w", translate(err))
	}
	for _, r := range eventRows {
		events[r.ConversationID] = append(events[r.ConversationID], r.toEvent())
	}

	type alertFact struct {
		tier       string
		sampleRate float64
	}
	alerted := map[string]alertFact{}
	var alertRows []struct {
		ConversationID string
		Kind           string
		Tier           string
		SampleRate     *float64
	}
	if err := db.Raw(`SELECT conversation_id, kind, tier, sample_rate FROM alerts WHERE status = 'fired' AND kind IN ('tier', 'review') AND `+inWindow, from, to).
		Scan(&alertRows).Error; err != nil {
		return fmt.Errorf("feedback: training alerts: %w", translate(err))
	}
	for _, a := range alertRows {
		f := alerted[a.ConversationID]
		switch a.Kind {
		case AlertKindTier:
			if tierRank(a.Tier) > tierRank(f.tier) {
				f.tier = a.Tier
			}
		case AlertKindReview:
			if a.SampleRate != nil {
				f.sampleRate = *a.SampleRate
			}
		}
		alerted[a.ConversationID] = f
	}

	rows, err := db.Raw(`SELECT conversation_id, channel, signals, message, score, tier, reasons, model_version, policy_version, occurred_at
FROM decisions WHERE occurred_at >= ? AND occurred_at < ?
ORDER BY conversation_id, occurred_at, created_at, id`, from, to).Rows()
	if err != nil {
		return fmt.Errorf("feedback: training decisions: %w", translate(err))
	}
	defer rows.Close()

	type last struct {
		convID, channel  string
		signals, reasons []byte
		message          *string
		score            float64
		tier             string
		modelVersion     *int
		policyVersion    int
		at               time.Time
		haveRow          bool
	}
	var cur last
	emit := func() error {
		if !cur.haveRow {
			return nil
		}
		r := TrainingRow{ConversationID: cur.convID, Channel: cur.channel, At: cur.at.UTC(), Score: cur.score,
			Tier: cur.tier, PolicyVersion: cur.policyVersion, Hits: ruleNames(string(cur.reasons))}
		if cur.message != nil {
			r.Message = *cur.message
		}
		if cur.modelVersion != nil {
			r.ModelVersion = *cur.modelVersion
		}
		if err := json.Unmarshal(cur.signals, &r.Signals); err != nil {
			return fmt.Errorf("feedback: training decisions: conversation %s: signals: %w", cur.convID, err)
		}
		a := alerted[cur.convID]
		r.AlertTier, r.SampleRate = a.tier, a.sampleRate
		r.Label = DeriveTrainingLabel(TrainingInput{Labels: labels[cur.convID], Events: events[cur.convID], SampleRate: a.sampleRate})
		return fn(r)
	}
	for rows.Next() {
		var next last
		if err := rows.Scan(&next.convID, &next.channel, &next.signals, &next.message, &next.score, &next.tier,
			&next.reasons, &next.modelVersion, &next.policyVersion, &next.at); err != nil {
			return fmt.Errorf("feedback: training decisions: %w", translate(err))
		}
		next.haveRow = true
		if cur.haveRow && next.convID != cur.convID {
			if err := emit(); err != nil {
				return err
			}
		}
		cur = next
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("feedback: training decisions: %w", translate(err))
	}
	return emit()
}
