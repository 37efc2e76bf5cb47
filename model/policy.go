package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

// maxRules bounds a policy so one decision stays well under its latency
// budget however the policy is written.
const maxRules = 500

// defaultThresholds is the thresholds key used by channels without their own.
const defaultThresholds = "default"

var (
	ruleNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	channelRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

// PolicyDoc is a policy document as its author wrote it, in YAML or JSON.
// It is what gets stored, versioned and shown; CompilePolicy turns it into
// a Policy that can score.
type PolicyDoc struct {
	// Base is the intercept of the logit while no model has been trained.
	Base float64 `json:"base" yaml:"base"`
	// Rules are evaluated in this order; the order breaks ties in reasons.
	Rules []RuleSpec `json:"rules" yaml:"rules"`
	// Thresholds maps a channel, or "default", to its tier thresholds.
	Thresholds map[string]Thresholds `json:"thresholds" yaml:"thresholds"`
	// Routes are tried in order; the first that matches names the team.
	Routes []RouteSpec `json:"routes,omitempty" yaml:"routes,omitempty"`
	// Alerts says which decisions alert and how alerts are rationed; nil
	// means every default (see AlertsSpec).
	Alerts *AlertsSpec `json:"alerts,omitempty" yaml:"alerts,omitempty"`
}

// RuleSpec is one hand-written rule.
type RuleSpec struct {
	// Name identifies the rule in reasons, routes and tuning reports.
	Name string `json:"name" yaml:"name"`
	// Expression is an expr-lang boolean expression over the signals,
	// `channel` and `message`.
	Expression string `json:"expression" yaml:"expression"`
	// Points is the rule's weight on the logit until a model tunes it; it
	// may be negative.
	Points float64 `json:"points" yaml:"points"`
	// TierFloor, when set, is the least tier a decision gets when the rule
	// fires, whatever the score.
	TierFloor string `json:"tier_floor,omitempty" yaml:"tier_floor,omitempty"`
	// Channels, when set, limits the rule to these channels.
	Channels []string `json:"channels,omitempty" yaml:"channels,omitempty"`
	// Description says what the rule is for.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// Thresholds are the least scores for each tier on one channel; a score
// below Medium is low.
type Thresholds struct {
	Urgent float64 `json:"urgent" yaml:"urgent"`
	High   float64 `json:"high" yaml:"high"`
	Medium float64 `json:"medium" yaml:"medium"`
}

// RouteSpec maps decisions to a team. Every field but Team is optional; a
// route matches when all the fields that are set match.
type RouteSpec struct {
	Tier    string `json:"tier,omitempty" yaml:"tier,omitempty"`
	Channel string `json:"channel,omitempty" yaml:"channel,omitempty"`
	Rule    string `json:"rule,omitempty" yaml:"rule,omitempty"`
	Team    string `json:"team" yaml:"team"`
}

// Problem is one thing wrong with a policy document.
type Problem struct {
	// Field locates the problem in the document, e.g. "rules[1].expression"
	// (indexes are 0-based); empty for a syntax error in the document.
	Field string `json:"field,omitempty"`
	// Rule is the name of the rule concerned, if any.
	Rule string `json:"rule,omitempty"`
	// Line and Column are 1-based. For a rule expression they locate the
	// error inside the expression; for a syntax error they locate it in
	// the document (Column 0 when unknown). Both are 0 when not applicable.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String renders the problem on one line, naming the rule and position.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Field)
	if p.Rule != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(rule %q)", p.Rule)
	}
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteString(" at ")
		}
		if p.Column > 0 {
			fmt.Fprintf(&b, "%d:%d", p.Line, p.Column)
		} else {
			fmt.Fprintf(&b, "line %d", p.Line)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// PolicyError lists every problem found in a policy document, so an author
// can fix them all in one round trip.
type PolicyError struct {
	Problems []Problem
}

// Error is a readable multi-line message, one problem per line.
func (e *PolicyError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("invalid policy: ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "invalid policy: %d problems", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ParsePolicy reads a policy document in YAML or JSON (JSON is read as
// YAML, which it is a subset of). Unknown fields are refused so a typo such
// as `tierfloor` does not silently do nothing. Errors are *PolicyError with
// the document line of each problem. ParsePolicy checks only the shape of
// the document; CompilePolicy checks its meaning.
func ParsePolicy(data []byte) (PolicyDoc, error) {
	var doc PolicyDoc
	if len(bytes.TrimSpace(data)) == 0 {
		return doc, &PolicyError{Problems: []Problem{{Message: "policy document is empty"}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&doc)
	if err == nil {
		var extra yaml.Node
		if err2 := dec.Decode(&extra); err2 != io.EOF {
			return PolicyDoc{}, &PolicyError{Problems: []Problem{{Message: "policy must be a single document"}}}
		}
		for i, r := range doc.Rules {
			// Blank lines before an expression mean nothing, and a YAML
			// block that starts with one does not read back the same from
			// the editable form: they are dropped.
			e := r.Expression
			lead := len(e) - len(strings.TrimLeft(e, " \t\r\n"))
			if nl := strings.LastIndexByte(e[:lead], '\n'); nl >= 0 {
				doc.Rules[i].Expression = e[nl+1:]
			}
		}
		if doc.Alerts != nil {
			// A channel listed with no tiers (null, or a YAML set's
			// key) alerts on none, as an empty list does: store it as one,
			// so that the stored and editable forms read back the same.
			for ch, tiers := range doc.Alerts.Tiers {
				if tiers == nil {
					doc.Alerts.Tiers[ch] = []string{}
				}
			}
		}
		return doc, nil
	}
	if errors.Is(err, io.EOF) {
		return PolicyDoc{}, &PolicyError{Problems: []Problem{{Message: "policy document is empty"}}}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		pe := &PolicyError{}
		for _, msg := range te.Errors {
			pe.Problems = append(pe.Problems, yamlProblem(msg))
		}
		return PolicyDoc{}, pe
	}
	return PolicyDoc{}, &PolicyError{Problems: []Problem{yamlProblem(err.Error())}}
}

var (
	yamlLineRe         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	yamlUnmarshalRe    = regexp.MustCompile(`^cannot unmarshal (\S+)(?: (.*))? into (\S+)$`)
)

// yamlProblem turns a yaml.v3 message into a Problem with its line, and
// rewords messages that name Go types, which mean nothing to an author.
func yamlProblem(msg string) Problem {
	p := Problem{Message: strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = m[2]
	}
	if m := yamlUnknownFieldRe.FindStringSubmatch(p.Message); m != nil {
		p.Message = fmt.Sprintf("unknown field %q", m[1])
	} else if m := yamlUnmarshalRe.FindStringSubmatch(p.Message); m != nil {
		got := yamlTagWord(m[1])
		if m[2] != "" {
			got += " " + strings.Trim(m[2], "`")
		}
		p.Message = fmt.Sprintf("wrong type: got %s where %s is expected", got, goTypeWord(m[3]))
	}
	return p
}

func yamlTagWord(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!null":
		return "null"
	}
	return tag
}

func goTypeWord(t string) string {
	switch {
	case t == "float64":
		return "a number"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "model."):
		return "a mapping"
	}
	return t
}

// YAML renders the document as YAML, for an author to edit: the form a
// version is shown in when it was stored without its source.
func (d PolicyDoc) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("policy as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("policy as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// Canonical encodes the document as the canonical JSON that is stored and
// served: fixed field order, sorted threshold keys, empty lists as [], and
// no HTML escaping so expressions such as `a >= 1` stay readable.
func (d PolicyDoc) Canonical() ([]byte, error) {
	c := d.clone()
	if c.Rules == nil {
		c.Rules = []RuleSpec{}
	}
	if c.Thresholds == nil {
		c.Thresholds = map[string]Thresholds{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("canonical policy: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// clone copies the document deeply so a Policy never shares slices or maps
// with its caller.
func (d PolicyDoc) clone() PolicyDoc {
	c := d
	if d.Rules != nil {
		c.Rules = make([]RuleSpec, len(d.Rules))
		for i, r := range d.Rules {
			r.Channels = slices.Clone(r.Channels)
			c.Rules[i] = r
		}
	}
	if d.Thresholds != nil {
		c.Thresholds = make(map[string]Thresholds, len(d.Thresholds))
		for k, v := range d.Thresholds {
			c.Thresholds[k] = v
		}
	}
	c.Routes = slices.Clone(d.Routes)
	c.Alerts = d.Alerts.clone()
	return c
}

// Policy is a validated policy with every rule compiled. It is immutable
// and safe for concurrent use.
type Policy struct {
	doc        PolicyDoc
	rules      []rule
	thresholds map[string]Thresholds
	routes     []route
	alerts     *AlertPolicy
	channels   []string
	// envNames are the identifiers the rules read, other than channel and
	// message; only these are copied from the signals into the rule env.
	envNames []string
	// fullEnv is set when some rule reads $env and so needs every signal.
	fullEnv     bool
	readChannel bool
	readMessage bool
}

type rule struct {
	name     string
	program  *vm.Program
	points   float64
	floor    Tier
	channels []string // nil: every channel
	reads    []string // the names the expression reads, sorted
}

type route struct {
	tier    Tier
	channel string
	rule    int // index into Policy.rules; -1 for any
	team    string
}

// CompilePolicy validates a document and compiles each rule once. On
// failure it returns a *PolicyError listing every problem found, not just
// the first.
func CompilePolicy(doc PolicyDoc) (*Policy, error) {
	doc = doc.clone()
	var probs []Problem
	add := func(p Problem) { probs = append(probs, p) }

	if !finite(doc.Base) {
		add(Problem{Field: "base", Message: "must be a finite number"})
	}
	if len(doc.Rules) > maxRules {
		add(Problem{Field: "rules", Message: fmt.Sprintf("at most %d rules are allowed, got %d", maxRules, len(doc.Rules))})
	}

	p := &Policy{doc: doc}
	index := make(map[string]int, len(doc.Rules))
	names := map[string]struct{}{}
	for i, rs := range doc.Rules {
		field := func(f string) string { return fmt.Sprintf("rules[%d].%s", i, f) }
		r := rule{name: rs.Name, points: rs.Points}
		switch {
		case !ruleNameRe.MatchString(rs.Name):
			add(Problem{Field: field("name"), Rule: rs.Name, Message: "must match " + ruleNameRe.String()})
		default:
			if j, dup := index[rs.Name]; dup {
				add(Problem{Field: field("name"), Rule: rs.Name, Message: fmt.Sprintf("duplicate rule name (also rules[%d])", j)})
			} else {
				index[rs.Name] = i
			}
		}
		switch {
		case strings.TrimSpace(rs.Expression) == "":
			add(Problem{Field: field("expression"), Rule: rs.Name, Message: "must not be empty"})
		case len(rs.Expression) > maxExpressionBytes:
			add(Problem{Field: field("expression"), Rule: rs.Name, Message: fmt.Sprintf("is %d bytes, at most %d are allowed", len(rs.Expression), maxExpressionBytes)})
		default:
			prog, err := compileRule(rs.Expression)
			if err != nil {
				var ee *exprError
				pr := Problem{Field: field("expression"), Rule: rs.Name, Message: err.Error()}
				if errors.As(err, &ee) {
					pr.Line, pr.Column = ee.line, ee.column
				}
				add(pr)
			} else {
				r.program = prog
				own := map[string]struct{}{}
				if collectIdentifiers(prog, own) {
					p.fullEnv = true
				}
				for name := range own {
					names[name] = struct{}{}
					r.reads = append(r.reads, name)
				}
				slices.Sort(r.reads)
			}
		}
		if !finite(rs.Points) {
			add(Problem{Field: field("points"), Rule: rs.Name, Message: "must be a finite number"})
		}
		floor, err := ParseTier(rs.TierFloor)
		if err != nil {
			add(Problem{Field: field("tier_floor"), Rule: rs.Name, Message: fmt.Sprintf("unknown tier %q (want urgent, high, medium or low)", rs.TierFloor)})
		}
		r.floor = floor
		for j, ch := range rs.Channels {
			if !channelRe.MatchString(ch) {
				add(Problem{Field: fmt.Sprintf("rules[%d].channels[%d]", i, j), Rule: rs.Name, Message: fmt.Sprintf("channel %q must match %s", ch, channelRe.String())})
			}
		}
		if len(rs.Channels) > 0 {
			r.channels = rs.Channels
		}
		p.rules = append(p.rules, r)
	}

	if _, ok := doc.Thresholds[defaultThresholds]; !ok {
		add(Problem{Field: "thresholds", Message: `"default" thresholds are required`})
	}
	keys := make([]string, 0, len(doc.Thresholds))
	for k := range doc.Thresholds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := "thresholds." + k
		if k != defaultThresholds && !channelRe.MatchString(k) {
			add(Problem{Field: field, Message: fmt.Sprintf("key must be \"default\" or a channel matching %s", channelRe.String())})
			continue
		}
		if k != defaultThresholds {
			p.channels = append(p.channels, k)
		}
		t := doc.Thresholds[k]
		if !(finite(t.Medium) && finite(t.High) && finite(t.Urgent) && 0 < t.Medium && t.Medium <= t.High && t.High <= t.Urgent && t.Urgent < 1) {
			add(Problem{Field: field, Message: fmt.Sprintf("need 0 < medium <= high <= urgent < 1, got medium %v, high %v, urgent %v", t.Medium, t.High, t.Urgent)})
		}
	}
	p.thresholds = doc.Thresholds

	for i, rs := range doc.Routes {
		field := func(f string) string { return fmt.Sprintf("routes[%d].%s", i, f) }
		rt := route{channel: rs.Channel, rule: -1, team: rs.Team}
		t, err := ParseTier(rs.Tier)
		if err != nil {
			add(Problem{Field: field("tier"), Message: fmt.Sprintf("unknown tier %q (want urgent, high, medium or low)", rs.Tier)})
		}
		rt.tier = t
		if rs.Channel != "" && !channelRe.MatchString(rs.Channel) {
			add(Problem{Field: field("channel"), Message: fmt.Sprintf("channel %q must match %s", rs.Channel, channelRe.String())})
		}
		if rs.Rule != "" {
			j, ok := index[rs.Rule]
			if !ok {
				add(Problem{Field: field("rule"), Rule: rs.Rule, Message: fmt.Sprintf("unknown rule %q", rs.Rule)})
			}
			rt.rule = j
		}
		switch {
		case strings.TrimSpace(rs.Team) == "":
			add(Problem{Field: field("team"), Message: "must not be empty"})
		case len(rs.Team) > maxTeamLen || !PlainText(rs.Team):
			add(Problem{Field: field("team"), Message: fmt.Sprintf("must be at most %d bytes of text without control characters", maxTeamLen)})
		}
		p.routes = append(p.routes, rt)
	}

	alerts, alertProbs := compileAlerts(doc.Alerts)
	probs = append(probs, alertProbs...)
	p.alerts = alerts

	if len(probs) > 0 {
		return nil, &PolicyError{Problems: probs}
	}

	for name := range names {
		switch name {
		case "channel":
			p.readChannel = true
		case "message":
			p.readMessage = true
		default:
			p.envNames = append(p.envNames, name)
		}
	}
	sort.Strings(p.envNames)
	if p.fullEnv {
		p.readChannel, p.readMessage = true, true
	}
	return p, nil
}

// Doc returns a copy of the document the policy was compiled from.
func (p *Policy) Doc() PolicyDoc { return p.doc.clone() }

// ReadsMessage reports whether some rule reads the visitor's message.
func (p *Policy) ReadsMessage() bool { return p.readMessage }

// Alerts returns the policy's compiled alerts section.
func (p *Policy) Alerts() *AlertPolicy { return p.alerts }

// Channels returns the channels that have their own thresholds, sorted;
// "default" is not among them.
func (p *Policy) Channels() []string { return slices.Clone(p.channels) }

// thresholdsFor returns the channel's thresholds, else the default ones.
func (p *Policy) thresholdsFor(channel string) Thresholds {
	if t, ok := p.thresholds[channel]; ok && channel != defaultThresholds {
		return t
	}
	return p.thresholds[defaultThresholds]
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// maxTeamLen bounds a team name, which is stored with every alert.
const maxTeamLen = 64

// PlainText reports whether s is valid UTF-8 without control characters:
// text that every database stores and every log shows as it is.
func PlainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
