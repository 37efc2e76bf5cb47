package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// TrainingRows calls fn with every conversation that has a decision
// occurring in [from, to), in conversation id order, streaming the
// decisions and their outcome events so a window of millions needs memory
// only for its agents' labels and alerts.
func (s *Store) TrainingRows(ctx context.Context, from, to time.Time, fn func(feedback.TrainingRow) error) error {
	return s.walkWindow(ctx, from, to, false, fn)
}

// BacktestRows is TrainingRows with every decision of each conversation in
// the window (Decisions, oldest first), for a backtest to replay.
func (s *Store) BacktestRows(ctx context.Context, from, to time.Time, fn func(feedback.TrainingRow) error) error {
	return s.walkWindow(ctx, from, to, true, fn)
}

func (s *Store) walkWindow(ctx context.Context, from, to time.Time, every bool, fn func(feedback.TrainingRow) error) error {
	from, to = normTime(from), normTime(to)
	ctx, cancel := context.WithCancel(ctx)
	db := s.db.WithContext(ctx)
	// A decision occurs at most feedback.MaxAhead after it is recorded, so
	// every decision of the window was recorded after from-MaxAhead: the
	// bound on created_at lets PostgreSQL read only the monthly partitions
	// from there on, never the older months.
	recordedFrom := from.Add(-feedback.MaxAhead)
	// The labels, alerts and outcome events of the window's conversations
	// are read by their own time, from windowLead before the window: a
	// conversation's alerts, labels and outcomes come with or after its
	// decisions, so this holds every one of a conversation with a decision
	// in the window unless it began more than windowLead before it. Those
	// of conversations outside the window are read too and never matched.
	// (Asking each row whether its conversation has a decision in the
	// window costs a lookup in decisions per row: minutes over a window of
	// millions.)
	since := from.Add(-windowLead)

	// Decisions and outcome events are both read in conversation order and
	// walked together, so neither is held whole. Byte order (COLLATE "C"
	// in PostgreSQL, SQLite's default) is the order Go compares strings in.
	// The database sorts each before its first row comes, the longest wait
	// of the walk over a large window, so both queries start now, on
	// connections of their own, while the labels and alerts are read.
	collate := ""
	if s.dialect == DialectPostgres {
		collate = ` COLLATE "C"`
	}
	decisionRows := startRows(db.Raw(windowDecisionsSQL(collate), from, to, recordedFrom))
	eventRows := startRows(db.Raw(`SELECT conversation_id, type, at, tier, agent FROM conversation_events
WHERE type IN ? AND at >= ? ORDER BY conversation_id`+collate+`, at, id`,
		[]string{feedback.EventConverted, feedback.EventLost, feedback.EventTierFeedback}, since))
	defer func() {
		cancel() // a query still running (after an error) stops
		decisionRows.close()
		eventRows.close()
	}()

	labels := map[string][]feedback.AlertLabel{}
	var labelRows []alertLabelRow
	if err := db.Where("created_at >= ?", since).Find(&labelRows).Error; err != nil {
		return fmt.Errorf("store: training labels: %w", translate(err))
	}
	for _, r := range labelRows {
		labels[r.ConversationID] = append(labels[r.ConversationID], r.toLabel())
	}

	type alertFact struct {
		tier       model.Tier
		sampleRate float64
	}
	alerted := map[string]alertFact{}
	var alertRows []struct {
		ConversationID string
		Kind           string
		Tier           string
		SampleRate     *float64
	}
	if err := db.Raw(`SELECT conversation_id, kind, tier, sample_rate FROM alerts WHERE status = 'fired' AND kind IN ('tier', 'review') AND created_at >= ?`, since).
		Scan(&alertRows).Error; err != nil {
		return fmt.Errorf("store: training alerts: %w", translate(err))
	}
	for _, a := range alertRows {
		f := alerted[a.ConversationID]
		switch a.Kind {
		case feedback.AlertKindTier:
			f.tier = max(f.tier, parseTier(a.Tier))
		case feedback.AlertKindReview:
			if a.SampleRate != nil {
				f.sampleRate = *a.SampleRate
			}
		}
		alerted[a.ConversationID] = f
	}

	events, err := newEventCursor(eventRows.wait())
	if err != nil {
		return fmt.Errorf("store: training events: %w", translate(err))
	}
	defer events.close()

	rows, err := decisionRows.wait()
	if err != nil {
		return fmt.Errorf("store: training decisions: %w", translate(err))
	}

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
	var earlier []feedback.WindowDecision
	emit := func() error {
		if !cur.haveRow {
			return nil
		}
		r := feedback.TrainingRow{ConversationID: cur.convID, Channel: cur.channel, At: cur.at.UTC(), Score: cur.score,
			Tier: parseTier(cur.tier), PolicyVersion: cur.policyVersion, Hits: feedback.RuleNames(string(cur.reasons))}
		if cur.message != nil {
			r.Message = *cur.message
		}
		if cur.modelVersion != nil {
			r.ModelVersion = *cur.modelVersion
		}
		r.Signals = cur.signals
		if every {
			r.Decisions = append(earlier, feedback.WindowDecision{Channel: r.Channel, At: r.At, Signals: r.Signals, Message: r.Message})
		}
		a := alerted[cur.convID]
		r.AlertTier, r.SampleRate = a.tier, a.sampleRate
		evs, err := events.take(cur.convID)
		if err != nil {
			return fmt.Errorf("store: training events: %w", translate(err))
		}
		r.Label = feedback.DeriveTrainingLabel(feedback.TrainingInput{Labels: labels[cur.convID], Events: evs, SampleRate: a.sampleRate})
		return fn(r)
	}
	for rows.Next() {
		var next last
		if err := rows.Scan(&next.convID, &next.channel, &next.signals, &next.message, &next.score, &next.tier,
			&next.reasons, &next.modelVersion, &next.policyVersion, &next.at); err != nil {
			return fmt.Errorf("store: training decisions: %w", translate(err))
		}
		next.haveRow = true
		switch {
		case cur.haveRow && next.convID != cur.convID:
			if err := emit(); err != nil {
				return err
			}
			earlier = nil
		case cur.haveRow && every:
			d := feedback.WindowDecision{Channel: cur.channel, At: cur.at.UTC(), Signals: cur.signals}
			if cur.message != nil {
				d.Message = *cur.message
			}
			earlier = append(earlier, d)
		}
		cur = next
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: training decisions: %w", translate(err))
	}
	return emit()
}

// windowLead is how long before a window the labels, alerts and outcome
// events of its conversations are looked for.
const windowLead = 30 * 24 * time.Hour

// windowDecisionsSQL reads the decisions occurring in [$1, $2), recorded
// since $3, in conversation order.
func windowDecisionsSQL(collate string) string {
	return `SELECT conversation_id, channel, signals, message, score, tier, reasons, model_version, policy_version, occurred_at
FROM decisions WHERE occurred_at >= ? AND occurred_at < ? AND created_at >= ?
ORDER BY conversation_id` + collate + `, occurred_at, created_at, id`
}

// pendingRows is a query started in the background: its rows, once it
// answers.
type pendingRows struct {
	answer chan pendingAnswer
	got    pendingAnswer
	done   bool
}

type pendingAnswer struct {
	rows *sql.Rows
	err  error
}

func startRows(q *gorm.DB) *pendingRows {
	p := &pendingRows{answer: make(chan pendingAnswer, 1)}
	go func() {
		rows, err := q.Rows()
		p.answer <- pendingAnswer{rows, err}
	}()
	return p
}

// wait returns the query's rows, waiting for it to answer.
func (p *pendingRows) wait() (*sql.Rows, error) {
	if !p.done {
		p.got, p.done = <-p.answer, true
	}
	return p.got.rows, p.got.err
}

// close waits for the query and closes its rows; cancel its context first
// to stop it rather than wait for it.
func (p *pendingRows) close() {
	if rows, _ := p.wait(); rows != nil {
		_ = rows.Close()
	}
}

// eventCursor walks outcome events in conversation order alongside the
// decisions.
type eventCursor struct {
	rows    *sql.Rows
	next    feedback.Event
	hasNext bool
	err     error
	buf     []feedback.Event
}

func newEventCursor(rows *sql.Rows, err error) (*eventCursor, error) {
	if err != nil {
		return nil, err
	}
	c := &eventCursor{rows: rows}
	c.advance()
	if c.err != nil {
		c.close()
		return nil, c.err
	}
	return c, nil
}

func (c *eventCursor) advance() {
	c.hasNext = false
	if !c.rows.Next() {
		c.err = c.rows.Err()
		return
	}
	var e feedback.Event
	var tier string
	if err := c.rows.Scan(&e.ConversationID, &e.Type, &e.At, &tier, &e.Agent); err != nil {
		c.err = err
		return
	}
	e.Tier = parseTier(tier)
	e.At = e.At.UTC()
	c.next, c.hasNext = e, true
}

// take returns the events of conversation id, skipping those of
// conversations before it; the slice is reused by the next call.
func (c *eventCursor) take(id string) ([]feedback.Event, error) {
	c.buf = c.buf[:0]
	for c.hasNext && c.next.ConversationID < id {
		c.advance()
	}
	for c.hasNext && c.next.ConversationID == id {
		c.buf = append(c.buf, c.next)
		c.advance()
	}
	return c.buf, c.err
}

func (c *eventCursor) close() { _ = c.rows.Close() }
