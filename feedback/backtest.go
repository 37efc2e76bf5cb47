package feedback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hotlane/hotlane/model"
)

// A backtest replays the decisions of a window of history through a draft
// ruleset and through the live one, both with the active model, and counts
// what each would have caught: per rule and overall, the conversations it
// fired on, how many of those were labelled useful or noise, precision,
// recall against every positive conversation, and alerts per week per
// tier. It reads the signals platforms sent, not the decisions stored, so
// a rule that did not exist then is judged on the same footing as the live
// ones.

// BacktestSource streams a window's conversations with every decision
// (the store's BacktestRows).
type BacktestSource interface {
	BacktestRows(ctx context.Context, from, to time.Time, fn func(TrainingRow) error) error
}

// BacktestRequest is one backtest: the draft and live rulesets, the model
// both score with (nil for rules only) and the window.
type BacktestRequest struct {
	Draft        *model.Policy
	DraftVersion int // 0 for a document that is not stored
	Live         *model.Policy
	LiveVersion  int
	Model        *model.Model
	ModelVersion int
	From, To     time.Time
	// Workers replay conversations in parallel; 0 takes GOMAXPROCS.
	Workers int
}

// RuleStats is what one rule would have caught in a backtest.
type RuleStats struct {
	// Hits counts the conversations it fired on at least once.
	Hits int `json:"hits"`
	// Useful and Noise count those of them with a positive or a negative
	// training label (an agent's verdict, else the outcome).
	Useful int `json:"useful"`
	Noise  int `json:"noise"`
	// Precision is Useful/(Useful+Noise); nil without labelled hits.
	Precision *float64 `json:"precision"`
	// Recall is Useful over every positive conversation of the window.
	Recall *float64 `json:"recall"`
}

// Changes of a rule in a draft against the live ruleset.
const (
	RuleSame    = "same"
	RuleNew     = "new"
	RuleChanged = "changed"
	RuleRemoved = "removed"
)

// BacktestRule is one rule's line: its figures under the draft and under
// the live ruleset (nil where the ruleset does not have it).
type BacktestRule struct {
	Name   string     `json:"name"`
	Change string     `json:"change"`
	Draft  *RuleStats `json:"draft"`
	Live   *RuleStats `json:"live"`
}

// BacktestSide is a ruleset's overall figures in a backtest. A
// conversation alerts when any of its decisions reaches a tier that alerts
// on its channel; budgets and cooldowns are not replayed.
type BacktestSide struct {
	Version   int      `json:"version"`
	Alerted   int      `json:"alerted"`
	Useful    int      `json:"useful"`
	Noise     int      `json:"noise"`
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
	// Tiers counts conversations by the highest tier they reached.
	Tiers map[string]int `json:"tiers"`
	// AlertsPerWeek is, per tier, the conversations whose highest alerting
	// tier it was, per week of the window.
	AlertsPerWeek map[string]float64 `json:"alerts_per_week"`
}

// BacktestWeek counts one week's alerting conversations per tier under
// each ruleset, dated by the decision that reached the tier.
type BacktestWeek struct {
	Week  string         `json:"week"`
	Start time.Time      `json:"start"`
	Draft map[string]int `json:"draft"`
	Live  map[string]int `json:"live"`
}

// BacktestReport is the result of a backtest.
type BacktestReport struct {
	DraftVersion  int            `json:"draft_version"`
	LiveVersion   int            `json:"live_version"`
	ModelVersion  int            `json:"model_version"`
	From          time.Time      `json:"from"`
	To            time.Time      `json:"to"`
	Weeks         float64        `json:"weeks"`
	Conversations int            `json:"conversations"`
	Decisions     int            `json:"decisions"`
	Labelled      int            `json:"labelled"`
	Positives     int            `json:"positives"`
	Draft         BacktestSide   `json:"draft"`
	Live          BacktestSide   `json:"live"`
	Rules         []BacktestRule `json:"rules"`
	ByWeek        []BacktestWeek `json:"by_week"`
	Notes         []string       `json:"notes,omitempty"`
	Seconds       float64        `json:"seconds"`
}

// alertingTiers are the tiers counted as alerts, highest first.
var alertingTiers = []model.Tier{model.TierUrgent, model.TierHigh, model.TierMedium, model.TierLow}

// Backtest runs req over src.
func Backtest(ctx context.Context, src BacktestSource, req BacktestRequest) (*BacktestReport, error) {
	if req.Draft == nil || req.Live == nil {
		return nil, errors.New("backtest: a draft and a live ruleset are needed")
	}
	if !req.To.After(req.From) {
		return nil, fmt.Errorf("backtest: %w: the window is empty", ErrInvalid)
	}
	start := time.Now()
	workers := req.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sides := [2]*replaySide{newReplaySide(req.Draft, req.Model), newReplaySide(req.Live, req.Model)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []TrainingRow, workers*2)
	accs := make([]*backtestAcc, workers)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for w := range workers {
		acc := newBacktestAcc(sides)
		accs[w] = acc
		wg.Go(func() {
			for batch := range batches {
				for i := range batch {
					if err := acc.replay(sides, &batch[i]); err != nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
				}
			}
		})
	}
	const batchSize = 256
	batch := make([]TrainingRow, 0, batchSize)
	err := src.BacktestRows(ctx, req.From, req.To, func(r TrainingRow) error {
		batch = append(batch, r)
		if len(batch) == batchSize {
			select {
			case batches <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]TrainingRow, 0, batchSize)
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	total := accs[0]
	for _, a := range accs[1:] {
		total.merge(a)
	}
	rep := total.report(sides, req)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// replaySide is one ruleset of a backtest, compiled once.
type replaySide struct {
	pol    *model.Policy
	scorer *model.Scorer
	rules  []model.RuleSpec
	index  map[string]int
}

func newReplaySide(pol *model.Policy, m *model.Model) *replaySide {
	s := &replaySide{pol: pol, scorer: model.NewScorer(pol, m), rules: pol.Doc().Rules, index: map[string]int{}}
	for i, r := range s.rules {
		s.index[r.Name] = i
	}
	return s
}

// sideAcc counts one ruleset's figures.
type sideAcc struct {
	ruleHits, ruleUseful, ruleNoise []int
	alerted, useful, noise          int
	tiers                           [model.TierUrgent + 1]int
	alertTiers                      [model.TierUrgent + 1]int
	weeks                           map[time.Time]*[model.TierUrgent + 1]int
}

type backtestAcc struct {
	sides                            [2]sideAcc
	conversations, decisions         int
	labelled, positives, withMessage int
	fired                            []bool
	signals                          []map[string]any
	// maps are the decoded signals' maps, one per decision of a
	// conversation, reused for the next: the scorer keeps none of them.
	maps []map[string]any
	strs stringCache
}

func newBacktestAcc(sides [2]*replaySide) *backtestAcc {
	a := &backtestAcc{}
	for k, s := range sides {
		n := len(s.rules)
		a.sides[k] = sideAcc{ruleHits: make([]int, n), ruleUseful: make([]int, n), ruleNoise: make([]int, n),
			weeks: map[time.Time]*[model.TierUrgent + 1]int{}}
	}
	return a
}

// replay scores every decision of one conversation under both rulesets.
func (a *backtestAcc) replay(sides [2]*replaySide, r *TrainingRow) error {
	decs := r.Decisions
	if len(decs) == 0 {
		decs = []WindowDecision{{Channel: r.Channel, At: r.At, Signals: r.Signals, Message: r.Message}}
	}
	a.conversations++
	a.decisions += len(decs)
	a.signals = a.signals[:0]
	for i, d := range decs {
		if i == len(a.maps) {
			a.maps = append(a.maps, nil)
		}
		var m map[string]any
		if len(d.Signals) > 0 {
			var err error
			if m, err = decodeSignals(d.Signals, a.maps[i], &a.strs); err != nil {
				return fmt.Errorf("backtest: conversation %s: signals: %w", r.ConversationID, err)
			}
			if m != nil {
				a.maps[i] = m
			}
		}
		a.signals = append(a.signals, m)
		if d.Message != "" {
			a.withMessage++
		}
	}
	pos, neg := r.Label.Label == TrainingPositive, r.Label.Label == TrainingNegative
	if pos || neg {
		a.labelled++
	}
	if pos {
		a.positives++
	}
	for k, side := range sides {
		acc := &a.sides[k]
		a.fired = append(a.fired[:0], make([]bool, len(side.rules))...)
		top, alertTop := model.TierNone, model.TierNone
		var alertAt time.Time
		for i, d := range decs {
			dec := side.scorer.Score(model.Input{Channel: d.Channel, Message: d.Message, Signals: a.signals[i]})
			for _, h := range dec.Hits {
				if j, ok := side.index[h]; ok {
					a.fired[j] = true
				}
			}
			top = max(top, dec.Tier)
			if dec.Tier > alertTop && side.pol.Alerts().Alerts(d.Channel, dec.Tier) {
				alertTop, alertAt = dec.Tier, d.At
			}
		}
		for j, f := range a.fired {
			if !f {
				continue
			}
			acc.ruleHits[j]++
			if pos {
				acc.ruleUseful[j]++
			}
			if neg {
				acc.ruleNoise[j]++
			}
		}
		acc.tiers[top]++
		if alertTop == model.TierNone {
			continue
		}
		acc.alerted++
		if pos {
			acc.useful++
		}
		if neg {
			acc.noise++
		}
		acc.alertTiers[alertTop]++
		wk := ISOWeekStart(alertAt)
		w := acc.weeks[wk]
		if w == nil {
			w = new([model.TierUrgent + 1]int)
			acc.weeks[wk] = w
		}
		w[alertTop]++
	}
	return nil
}

func (a *backtestAcc) merge(b *backtestAcc) {
	a.conversations += b.conversations
	a.decisions += b.decisions
	a.labelled += b.labelled
	a.positives += b.positives
	a.withMessage += b.withMessage
	for k := range a.sides {
		x, y := &a.sides[k], &b.sides[k]
		for j := range x.ruleHits {
			x.ruleHits[j] += y.ruleHits[j]
			x.ruleUseful[j] += y.ruleUseful[j]
			x.ruleNoise[j] += y.ruleNoise[j]
		}
		x.alerted += y.alerted
		x.useful += y.useful
		x.noise += y.noise
		for t := range x.tiers {
			x.tiers[t] += y.tiers[t]
			x.alertTiers[t] += y.alertTiers[t]
		}
		for wk, c := range y.weeks {
			w := x.weeks[wk]
			if w == nil {
				w = new([model.TierUrgent + 1]int)
				x.weeks[wk] = w
			}
			for t := range c {
				w[t] += c[t]
			}
		}
	}
}

func (a *backtestAcc) report(sides [2]*replaySide, req BacktestRequest) *BacktestReport {
	weeks := req.To.Sub(req.From).Hours() / (24 * 7)
	rep := &BacktestReport{DraftVersion: req.DraftVersion, LiveVersion: req.LiveVersion, ModelVersion: req.ModelVersion,
		From: req.From.UTC(), To: req.To.UTC(), Weeks: math.Round(weeks*100) / 100,
		Conversations: a.conversations, Decisions: a.decisions, Labelled: a.labelled, Positives: a.positives}
	side := func(k, version int) BacktestSide {
		acc := &a.sides[k]
		s := BacktestSide{Version: version, Alerted: acc.alerted, Useful: acc.useful, Noise: acc.noise,
			Precision: ratioOf(acc.useful, acc.useful+acc.noise), Recall: ratioOf(acc.useful, a.positives),
			Tiers: map[string]int{}, AlertsPerWeek: map[string]float64{}}
		for _, t := range alertingTiers {
			s.Tiers[t.String()] = acc.tiers[t]
			if acc.alertTiers[t] > 0 && weeks > 0 {
				s.AlertsPerWeek[t.String()] = math.Round(float64(acc.alertTiers[t])/weeks*10) / 10
			}
		}
		s.Tiers["none"] = acc.tiers[model.TierNone]
		return s
	}
	rep.Draft, rep.Live = side(0, req.DraftVersion), side(1, req.LiveVersion)

	stats := func(k, j int) *RuleStats {
		acc := &a.sides[k]
		return &RuleStats{Hits: acc.ruleHits[j], Useful: acc.ruleUseful[j], Noise: acc.ruleNoise[j],
			Precision: ratioOf(acc.ruleUseful[j], acc.ruleUseful[j]+acc.ruleNoise[j]), Recall: ratioOf(acc.ruleUseful[j], a.positives)}
	}
	draft, live := sides[0], sides[1]
	for j, r := range draft.rules {
		br := BacktestRule{Name: r.Name, Change: RuleNew, Draft: stats(0, j)}
		if lj, ok := live.index[r.Name]; ok {
			br.Live = stats(1, lj)
			br.Change = RuleChanged
			if reflect.DeepEqual(r, live.rules[lj]) {
				br.Change = RuleSame
			}
		}
		rep.Rules = append(rep.Rules, br)
	}
	for j, r := range live.rules {
		if _, ok := draft.index[r.Name]; !ok {
			rep.Rules = append(rep.Rules, BacktestRule{Name: r.Name, Change: RuleRemoved, Live: stats(1, j)})
		}
	}

	starts := map[time.Time]bool{}
	for k := range a.sides {
		for wk := range a.sides[k].weeks {
			starts[wk] = true
		}
	}
	order := make([]time.Time, 0, len(starts))
	for wk := range starts {
		order = append(order, wk)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].Before(order[j]) })
	for _, wk := range order {
		w := BacktestWeek{Week: ISOWeekName(wk), Start: wk, Draft: map[string]int{}, Live: map[string]int{}}
		for k, out := range []map[string]int{w.Draft, w.Live} {
			if c := a.sides[k].weeks[wk]; c != nil {
				for _, t := range alertingTiers {
					if c[t] > 0 {
						out[t.String()] = c[t]
					}
				}
			}
		}
		rep.ByWeek = append(rep.ByWeek, w)
	}

	if a.positives == 0 {
		rep.Notes = append(rep.Notes, "no conversation of the window has a positive label: recall cannot be measured")
	}
	if a.withMessage == 0 && (draft.pol.ReadsMessage() || live.pol.ReadsMessage()) {
		rep.Notes = append(rep.Notes, "messages are not stored (--store-messages), so rules on the visitor's message never fire in a backtest")
	}
	return rep
}

func ratioOf(num, den int) *float64 {
	if den <= 0 {
		return nil
	}
	r := float64(num) / float64(den)
	return &r
}

// decodeSignals decodes a decision's stored signals as json.Unmarshal into
// a nil map[string]any does, into m (cleared) when it can. Signals are
// stored as flat objects of numbers, strings, booleans and nulls: those
// whose keys and strings need no unescaping are read here, in a quarter of
// the time encoding/json takes or less; anything else (nested values,
// escapes, bytes that are not UTF-8, numbers out of range, invalid JSON)
// is left to encoding/json, which gives the same map or the same error.
func decodeSignals(data []byte, m map[string]any, strs *stringCache) (map[string]any, error) {
	if out, ok := decodeFlatObject(data, m, strs); ok {
		return out, nil
	}
	var out map[string]any
	err := json.Unmarshal(data, &out)
	return out, err
}

// decodeFlatObject reads a flat JSON object into m (cleared, or made when
// nil). ok is false for anything it does not read exactly as
// encoding/json would.
func decodeFlatObject(data []byte, m map[string]any, strs *stringCache) (_ map[string]any, ok bool) {
	i := skipJSONSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	if m == nil {
		m = make(map[string]any, 16)
	} else {
		clear(m)
	}
	i = skipJSONSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return m, skipJSONSpace(data, i+1) == len(data)
	}
	for {
		if i == len(data) || data[i] != '"' {
			return nil, false
		}
		key, j, ok := plainJSONString(data, i, strs)
		if !ok {
			return nil, false
		}
		i = skipJSONSpace(data, j)
		if i == len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipJSONSpace(data, i+1)
		if i == len(data) {
			return nil, false
		}
		var v any
		switch c := data[i]; {
		case c == '"':
			s, j, ok := plainJSONString(data, i, strs)
			if !ok {
				return nil, false
			}
			v, i = s, j
		case c == 't' && bytes.HasPrefix(data[i:], []byte("true")):
			v, i = true, i+4
		case c == 'f' && bytes.HasPrefix(data[i:], []byte("false")):
			v, i = false, i+5
		case c == 'n' && bytes.HasPrefix(data[i:], []byte("null")):
			v, i = nil, i+4
		case c == '-' || '0' <= c && c <= '9':
			j := jsonNumberEnd(data, i)
			if j < 0 {
				return nil, false
			}
			f, err := strconv.ParseFloat(string(data[i:j]), 64)
			if err != nil {
				return nil, false
			}
			v, i = f, j
		default:
			return nil, false
		}
		m[key] = v
		i = skipJSONSpace(data, i)
		if i == len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipJSONSpace(data, i+1)
		case '}':
			return m, skipJSONSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainJSONString reads the string starting at data[i] (a quote) when it
// has no escapes and is valid UTF-8, the cases in which encoding/json
// takes its bytes as they are; j is the index after the closing quote.
func plainJSONString(data []byte, i int, strs *stringCache) (s string, j int, ok bool) {
	ascii := true
	for j = i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			raw := data[i+1 : j]
			if !ascii && !utf8.Valid(raw) {
				return "", 0, false
			}
			return strs.get(raw), j + 1, true
		case c == '\\' || c < ' ':
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", 0, false
}

// jsonNumberEnd returns the index after the JSON number starting at
// data[i], or -1 when none starts there.
func jsonNumberEnd(data []byte, i int) int {
	digits := func(i int) int {
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i == len(data):
		return -1
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = digits(i + 1)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// stringCache hands out one string for the same bytes, so the keys and the
// recurring values of signals (plans, countries, stages) are not allocated
// again for every decision. It stops growing at maxCachedStrings.
type stringCache struct{ m map[string]string }

const maxCachedStrings = 4096

func (c *stringCache) get(b []byte) string {
	if c == nil {
		return string(b)
	}
	if s, ok := c.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if len(c.m) < maxCachedStrings && len(s) <= 64 {
		c.m[s] = s
	}
	return s
}
