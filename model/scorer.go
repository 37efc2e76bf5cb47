package model

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr/vm"
)

// maxFeatureReasons bounds the signal reasons of a decision: beyond a few,
// explanations stop being read.
const maxFeatureReasons = 5

// Input is what one score call knows. Signal values are float64, bool,
// string or nil (nil means missing). Signals never hold "channel" or
// "message": those travel beside them and win over any such key.
type Input struct {
	Channel string
	Message string
	Signals map[string]any
}

// Decision is the outcome of scoring one input.
type Decision struct {
	// Score is sigmoid(Logit), in (0, 1).
	Score float64
	// Logit is b + sum of fired rule weights + sum of feature contributions.
	Logit float64
	// Tier is the highest tier whose threshold (the channel's, else the
	// default) Score reaches, raised to the highest tier floor of the
	// fired rules.
	Tier Tier
	// Reasons are the fired rules by |contribution| descending (ties in
	// policy order), then up to five signals by |contribution| descending
	// (ties in the encoder's order), each signal's contribution the sum
	// over all the features that read it: "plan" once, not "plan=pro" and
	// "plan=other", and a number with its missing indicator as one.
	// Signals whose features sum to zero are left out.
	Reasons []Reason
	// Route says where the conversation should go.
	Route Route
	// Hits are the fired rule names, in policy order.
	Hits []string
	// Errors are the names of rules that failed at run time, for example
	// on a string compared with a number; they count as not fired.
	Errors []string
	// Warnings say why: one per rule in Errors, in policy order, then one
	// per signal the model could not read because its value had another
	// type than the model expects. They are nil when all went well.
	Warnings []Warning
	// NowFailing are the rules among Errors whose run of failures reached
	// FailingStreak with this decision: a caller logs them once.
	NowFailing []string
}

// FailingStreak is how many evaluations in a row a rule must fail before
// the scorer reports it as failing (Scorer.FailingRules).
const FailingStreak = 100

// Reason is one contribution to a decision's logit.
type Reason struct {
	// Kind is "rule" or "feature"; a feature reason stands for a whole
	// signal (the kind keeps its name for the stored decisions and the
	// API's clients).
	Kind string `json:"kind"`
	// Name is the rule's name, or the signal's.
	Name         string  `json:"name"`
	Contribution float64 `json:"contribution"`
	TierFloor    string  `json:"tier_floor,omitempty"`
	// Value is, for a feature, the signal's value as sent; nil (and left
	// out of the JSON) when the signal was missing.
	Value any `json:"value,omitempty"`
}

// Route is where a decision sends the conversation.
type Route struct {
	Team string `json:"team,omitempty"`
	// Owner is the "owner" signal, set for urgent and high decisions: a
	// known account owner takes their important conversations.
	Owner string `json:"owner,omitempty"`
	// Via is "owner", "route" (the first matching route gave Team) or
	// "none".
	Via string `json:"via"`
}

// Scorer scores inputs against one policy and, optionally, one model. It
// is immutable and safe for concurrent use; per-call scratch space,
// including the expression VMs, is pooled so a decision allocates little.
type Scorer struct {
	policy    *Policy
	model     *Model
	intercept float64
	weights   []float64 // per rule, in policy order
	beta      []float64 // per feature; nil without a model
	plan      *encodePlan
	// Reasons are per signal: group maps each feature to its signal's
	// index in groups, and valueSlot each signal to its value's slot in
	// the plan (-1 when the plan does not read it).
	group     []int
	groups    []string
	valueSlot []int
	pool      sync.Pool      // of *scratch
	streaks   []atomic.Int64 // per rule: evaluations failed in a row
}

// scratch is the per-call state one goroutine uses at a time.
type scratch struct {
	vm    vm.VM
	env   map[string]any
	hit   []bool
	fired []int
	feats []float64
	vals  []any
	sums  []float64 // per signal group
	top   []int     // signal groups
	// The boxed channel is kept between calls: converting a string to an
	// interface allocates, and most calls repeat a few channels.
	channel      string
	boxedChannel any
}

// NewScorer prepares a scorer. With m == nil it is a pure rules engine:
// the intercept is the policy's base and each rule weighs its points. The
// model is expected to come from ParseModel, which validates it.
func NewScorer(p *Policy, m *Model) *Scorer {
	s := &Scorer{policy: p, model: m, intercept: p.doc.Base, weights: make([]float64, len(p.rules)), streaks: make([]atomic.Int64, len(p.rules))}
	for i, r := range p.rules {
		s.weights[i] = r.points
	}
	if m != nil {
		s.intercept = m.Intercept
		for i, r := range p.rules {
			if w, ok := m.RuleWeights[r.name]; ok {
				s.weights[i] = w
			}
		}
		s.beta = make([]float64, len(m.Encoder.Features))
		copy(s.beta, m.Beta)
		s.plan = newEncodePlan(&m.Encoder)
		s.groupBySignal(&m.Encoder)
	}
	s.pool.New = func() any {
		st := &scratch{
			env:   make(map[string]any, len(p.envNames)+2),
			hit:   make([]bool, len(p.rules)),
			fired: make([]int, 0, len(p.rules)),
			feats: make([]float64, 0, len(s.beta)),
			vals:  make([]any, 0, len(s.beta)),
			sums:  make([]float64, len(s.groups)),
			top:   make([]int, 0, maxFeatureReasons),
		}
		// The env holds a fixed key set, so later calls only overwrite
		// values and the map never grows.
		for _, name := range p.envNames {
			st.env[name] = nil
		}
		st.env["channel"] = ""
		st.env["message"] = ""
		return st
	}
	return s
}

// groupBySignal prepares the reasons per signal. It reads only
// Feature.Signal, so every kind of feature, present or to come, adds to
// its signal's reason. An interaction feature, which reads a second signal
// besides Signal, is attributed to its first signal (Signal) for now: its
// contribution shows under that signal's name and value.
func (s *Scorer) groupBySignal(e *Encoder) {
	index := make(map[string]int, len(e.Features))
	s.group = make([]int, len(e.Features))
	for j := range e.Features {
		name := e.Features[j].Signal
		g, ok := index[name]
		if !ok {
			g = len(s.groups)
			index[name] = g
			s.groups = append(s.groups, name)
		}
		s.group[j] = g
	}
	s.valueSlot = make([]int, len(s.groups))
	for g, name := range s.groups {
		s.valueSlot[g] = slices.Index(s.plan.signals, name)
	}
}

// FailingRules names the rules that failed on their last FailingStreak
// evaluations in a row, in policy order.
func (s *Scorer) FailingRules() []string {
	var names []string
	for i := range s.streaks {
		if s.streaks[i].Load() >= FailingStreak {
			names = append(names, s.policy.rules[i].name)
		}
	}
	return names
}

// Policy returns the policy the scorer uses.
func (s *Scorer) Policy() *Policy { return s.policy }

// Score scores one input. It never fails: a rule that errors counts as not
// fired and is named in Decision.Errors.
func (s *Scorer) Score(in Input) Decision {
	p := s.policy
	st := s.pool.Get().(*scratch)
	defer s.pool.Put(st)

	s.fillEnv(st, in)

	var d Decision
	logit := s.intercept
	floor := TierNone
	st.fired = st.fired[:0]
	for i := range p.rules {
		r := &p.rules[i]
		st.hit[i] = false
		if r.channels != nil && !slices.Contains(r.channels, in.Channel) {
			continue
		}
		out, err := st.vm.Run(r.program, st.env)
		if err != nil {
			d.Errors = append(d.Errors, r.name)
			d.Warnings = append(d.Warnings, ruleWarning(r, err, st.env))
			if s.streaks[i].Add(1) == FailingStreak {
				d.NowFailing = append(d.NowFailing, r.name)
			}
			continue
		}
		if s.streaks[i].Load() != 0 {
			s.streaks[i].Store(0)
		}
		if b, _ := out.(bool); b {
			st.hit[i] = true
			st.fired = append(st.fired, i)
			logit += s.weights[i]
			floor = max(floor, r.floor)
		}
	}
	if p.readMessage {
		// Do not keep the message alive in the pool.
		st.env["message"] = ""
	}

	var nfeat int
	if len(s.beta) > 0 {
		var odd bool
		var channel any
		if s.plan.channelSlot >= 0 && in.Channel != "" {
			channel = s.boxChannel(st, in.Channel)
		}
		st.vals, st.feats, odd = s.plan.encode(channel, in.Signals, st.vals, st.feats)
		if odd {
			d.Warnings = append(d.Warnings, s.plan.typeWarnings(st.vals)...)
		}
		clear(st.sums)
		for j, f := range st.feats {
			c := s.beta[j] * f
			if c == 0 {
				continue
			}
			logit += c
			st.sums[s.group[j]] += c
		}
		st.top = st.top[:0]
		for g, c := range st.sums {
			if c != 0 {
				st.top = insertTop(st.top, g, st.sums)
			}
		}
		nfeat = len(st.top)
	}

	d.Logit = logit
	d.Score = sigmoid(logit)
	d.Tier = max(tierFor(p.thresholdsFor(in.Channel), d.Score), floor)

	if len(st.fired) > 0 {
		d.Hits = make([]string, len(st.fired))
		for k, i := range st.fired {
			d.Hits[k] = p.rules[i].name
		}
	}
	if n := len(st.fired) + nfeat; n > 0 {
		d.Reasons = make([]Reason, 0, n)
		// Insertion sort: stable, allocation-free, and the fired list is
		// short.
		fired := st.fired
		for a := 1; a < len(fired); a++ {
			for b := a; b > 0 && math.Abs(s.weights[fired[b]]) > math.Abs(s.weights[fired[b-1]]); b-- {
				fired[b], fired[b-1] = fired[b-1], fired[b]
			}
		}
		for _, i := range fired {
			r := &p.rules[i]
			d.Reasons = append(d.Reasons, Reason{Kind: "rule", Name: r.name, Contribution: s.weights[i], TierFloor: r.floor.String()})
		}
		for _, g := range st.top {
			var v any
			if k := s.valueSlot[g]; k >= 0 {
				v = st.vals[k]
			}
			d.Reasons = append(d.Reasons, Reason{Kind: "feature", Name: s.groups[g], Contribution: st.sums[g], Value: v})
		}
	}

	d.Route = s.route(in, d.Tier, st.hit)
	// Do not keep the caller's values alive in the pool.
	clear(st.vals)
	return d
}

// boxChannel is channel as an interface value, boxed again only when it
// differs from the last call's.
func (s *Scorer) boxChannel(st *scratch, channel string) any {
	if st.boxedChannel == nil || st.channel != channel {
		st.channel, st.boxedChannel = channel, channel
	}
	return st.boxedChannel
}

func (s *Scorer) fillEnv(st *scratch, in Input) {
	p := s.policy
	if p.fullEnv {
		clear(st.env)
		for k, v := range in.Signals {
			st.env[k] = v
		}
	} else {
		for _, name := range p.envNames {
			st.env[name] = in.Signals[name]
		}
	}
	if p.readChannel {
		st.env["channel"] = s.boxChannel(st, in.Channel)
	}
	if p.readMessage {
		st.env["message"] = in.Message
	}
}

// insertTop keeps top as the indexes of the largest |sums[g]| seen so
// far, at most maxFeatureReasons, largest first; earlier groups win ties.
func insertTop(top []int, g int, sums []float64) []int {
	c := math.Abs(sums[g])
	pos := len(top)
	for pos > 0 && c > math.Abs(sums[top[pos-1]]) {
		pos--
	}
	if pos >= maxFeatureReasons {
		return top
	}
	if len(top) < maxFeatureReasons {
		top = append(top, 0)
	}
	copy(top[pos+1:], top[pos:len(top)-1])
	top[pos] = g
	return top
}

// tierFor maps a score to the highest tier whose threshold it reaches.
func tierFor(t Thresholds, score float64) Tier {
	switch {
	case score >= t.Urgent:
		return TierUrgent
	case score >= t.High:
		return TierHigh
	case score >= t.Medium:
		return TierMedium
	}
	return TierLow
}

// route applies the routing table and the owner signal.
func (s *Scorer) route(in Input, tier Tier, hit []bool) Route {
	var r Route
	for _, rt := range s.policy.routes {
		if (rt.tier == TierNone || rt.tier == tier) &&
			(rt.channel == "" || rt.channel == in.Channel) &&
			(rt.rule < 0 || hit[rt.rule]) {
			r.Team, r.Via = rt.team, "route"
			break
		}
	}
	if tier >= TierHigh {
		if owner, ok := in.Signals["owner"].(string); ok && owner != "" {
			r.Owner, r.Via = owner, "owner"
		}
	}
	if r.Via == "" {
		r.Via = "none"
	}
	return r
}
