package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hotlane/hotlane/model"
)

// simPolicy is the hand-written policy the simulation publishes. It is
// partly right on purpose: big-deal and pricing-intent carry far more
// points than their true effect, angry-whatsapp is nearly useless, and no
// rule knows that open opportunities convert much more often
// (simTruth.lifecycle). The alerts section makes urgent and high alert on
// every channel; the cooldown and budget are measured on the server's
// clock, which a simulated week passes through in seconds, so both are
// set out of the way. The exploration rate keeps its default.
const simPolicy = `# Written by hotlane simulate.
base: -3
rules:
  - name: big-deal
    description: An open deal of at least 10k with a known buyer.
    expression: 'deal_size >= 10000 and lifecycle_stage in ["opportunity", "customer"]'
    points: 3
  - name: pricing-intent
    description: Repeated pricing page views in this visit.
    expression: 'pricing_page_views >= 3'
    points: 2
  - name: demo-request
    description: The visitor asks for a demo, a quote or a trial.
    expression: 'message matches "(?i)\\b(demo|quote|trial)\\b"'
    points: 1.5
  - name: churn-risk
    description: A customer talks about cancelling or a refund.
    expression: 'lifecycle_stage == "customer" and message matches "(?i)cancel|refund"'
    points: 2.5
  - name: angry-whatsapp
    description: Urgent words on WhatsApp.
    expression: 'message matches "(?i)urgent|asap"'
    points: 2.5
    channels: [whatsapp]
  - name: outage-report
    description: Reports of the product being down.
    expression: 'message matches "(?i)\\b(down|outage)\\b"'
    points: 2
  - name: returning-customer
    description: A paying customer is back.
    expression: 'returning == true and plan in ["pro", "enterprise"]'
    points: 1
  - name: free-plan-browsing
    description: Free-plan visitors who never looked at pricing.
    expression: 'plan == "free" and pricing_page_views == 0'
    points: -1.5
thresholds:
  default:  {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.65, medium: 0.35}
routes:
  - {rule: churn-risk, team: retention}
  - {rule: outage-report, team: support-escalations}
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, channel: whatsapp, team: whatsapp-sales}
  - {tier: high, team: sales}
  - {team: general-queue}
alerts:
  tiers: {default: [urgent, high]}
  cooldown: 0s
  hourly_budget: {default: 1000000}
`

// simTruth is the true model of the world: the logit of a conversation's
// outcome is linear in what Hotlane's model can learn (one-hot categories,
// booleans, rule hits, and log1p of the deal size, page views and wait,
// which are skewed enough for model.FitEncoder to log-transform them), so
// the best possible model is within its reach. Message intent reaches the
// truth only through rule hits, as the model sees messages only that way.
var simTruth = struct {
	base      float64
	logDeal   float64 // per unit of log1p(deal_size) - simLogDealCenter
	lifecycle map[string]float64
	plan      map[string]float64
	inbox     map[string]float64
	returning float64
	logViews  float64 // per unit of log1p(pricing_page_views)
	logWait   float64 // per unit of log1p(wait_seconds)
	rules     map[string]float64
}{
	base:      -1.4,
	logDeal:   0.5,
	lifecycle: map[string]float64{"lead": 0, "opportunity": 1.5, "customer": 0.3},
	plan:      map[string]float64{"free": -0.7, "pro": 0, "enterprise": 0.5},
	inbox:     map[string]float64{"sales": 0, "support": -0.3},
	returning: 0.5,
	logViews:  0.6,
	logWait:   -0.35,
	rules: map[string]float64{
		"big-deal":           0.3,
		"pricing-intent":     0.3,
		"demo-request":       1.6,
		"churn-risk":         2.0,
		"angry-whatsapp":     0.1,
		"outage-report":      1.8,
		"returning-customer": 0.8,
		"free-plan-browsing": -0.6,
	},
}

// simLogDealCenter centres log1p(deal_size) in the true logit.
const simLogDealCenter = 8.0

// simIntents are the visitor messages by intent; the words in them are what
// the rules match.
var simIntents = map[string][]string{
	"demo":     {"Could we book a demo for the team next week?", "Can you send me a quote for 40 seats?", "Is there a free trial of the pro plan?"},
	"pricing":  {"How does pricing work for larger teams?", "What does the enterprise plan cost per seat?"},
	"urgent":   {"This is urgent, please answer asap", "Urgent: I need someone now"},
	"cancel":   {"I want to cancel my subscription", "How do I get a refund for last month?", "Please cancel the renewal"},
	"outage":   {"Your dashboard is down for all of us", "Is there an outage? Nothing loads"},
	"howto":    {"How do I export my reports?", "Where do I change my password?", "Can I add a second admin?"},
	"browsing": {"Hi, just looking around", "Thanks, I will read the docs first"},
}

// simIntentMix is the chance of each intent by kind of conversation.
var simIntentMix = map[string][]struct {
	intent string
	p      float64
}{
	"sales":   {{"demo", 0.22}, {"pricing", 0.28}, {"urgent", 0.10}, {"browsing", 0.40}},
	"support": {{"cancel", 0.16}, {"outage", 0.12}, {"urgent", 0.17}, {"howto", 0.55}},
}

// simWorld generates conversations with known true probabilities. It is
// deterministic: the same seed gives the same conversations, week by week.
type simWorld struct {
	seed   uint64
	scorer *model.Scorer // the simulation policy without a model, for rule hits
}

// simConv is one synthetic conversation and its hidden truth.
type simConv struct {
	ID      string // unique within the world, e.g. "w1-00042"
	Channel string
	Kind    string // sales or support
	Start   time.Time
	// Calls are the score calls, in time order; the last one carries the
	// final signals the truth is computed from.
	Calls []simCall
	// Hits are the rules the final call fires.
	Hits []string
	// TrueProb is the true probability of a useful outcome and Positive
	// the outcome drawn from it.
	TrueProb float64
	Positive bool
	// Value is the converted value reported with a positive outcome.
	Value float64
	// FirstResponseAt and OutcomeAt date the conversation's events.
	FirstResponseAt time.Time
	OutcomeAt       time.Time
	// LabelDraw is uniform in [0, 1): an agent's label is flipped when it
	// is below the label noise, so every noise level sees the same draws.
	LabelDraw float64
	// Agent is the agent who answers the conversation.
	Agent string
}

// simCall is one score call of a conversation.
type simCall struct {
	At      time.Time
	Message string
	Signals map[string]any
}

func newSimWorld(seed int64) (*simWorld, error) {
	doc, err := model.ParsePolicy([]byte(simPolicy))
	if err != nil {
		return nil, fmt.Errorf("simulation policy: %w", err)
	}
	p, err := model.CompilePolicy(doc)
	if err != nil {
		return nil, fmt.Errorf("simulation policy: %w", err)
	}
	return &simWorld{seed: uint64(seed), scorer: model.NewScorer(p, nil)}, nil
}

// Week generates the n conversations of week k (1-based) starting at
// start. Conversations start uniformly in the week and all their events
// fall before its end.
func (w *simWorld) Week(k, n int, start time.Time) []simConv {
	rng := rand.New(rand.NewPCG(w.seed, uint64(k)))
	const tail = 4 * time.Hour // room for the events after the last start
	span := 7*24*time.Hour - tail
	convs := make([]simConv, n)
	for i := range convs {
		c := &convs[i]
		c.ID = fmt.Sprintf("w%d-%05d", k, i+1)
		c.Start = start.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Second)
		w.fill(rng, c)
	}
	return convs
}

func (w *simWorld) fill(rng *rand.Rand, c *simConv) {
	c.Channel = pick(rng, "web", 0.6, "whatsapp")
	c.Kind = pick(rng, "sales", 0.55, "support")

	var lifecycle string
	if c.Kind == "sales" {
		lifecycle = pickN(rng, []string{"lead", "opportunity", "customer"}, []float64{0.5, 0.35, 0.15})
	} else {
		lifecycle = pickN(rng, []string{"lead", "opportunity", "customer"}, []float64{0.1, 0.1, 0.8})
	}
	var plan string
	if lifecycle == "customer" {
		plan = pickN(rng, []string{"free", "pro", "enterprise"}, []float64{0.3, 0.5, 0.2})
	} else {
		plan = pickN(rng, []string{"free", "pro", "enterprise"}, []float64{0.65, 0.27, 0.08})
	}
	returning := rng.Float64() < map[bool]float64{true: 0.7, false: 0.3}[lifecycle == "customer"]
	mu := 8.0
	if plan == "enterprise" {
		mu += 0.8
	}
	if lifecycle == "opportunity" {
		mu += 0.3
	}
	deal := math.Round(math.Exp(mu + 1.1*rng.NormFloat64()))
	views := geometric(rng, map[string]float64{"sales": 2.0, "support": 0.5}[c.Kind])
	meanWait := map[string]float64{"web": 70, "whatsapp": 150}[c.Channel]
	wait := math.Round(min(rng.ExpFloat64()*meanWait, 1800))

	var intent string
	u := rng.Float64()
	for _, m := range simIntentMix[c.Kind] {
		intent = m.intent
		if u -= m.p; u < 0 {
			break
		}
	}
	msgs := simIntents[intent]
	message := msgs[rng.IntN(len(msgs))]

	final := map[string]any{
		"inbox":              c.Kind,
		"lifecycle_stage":    lifecycle,
		"plan":               plan,
		"returning":          returning,
		"deal_size":          deal,
		"pricing_page_views": float64(views),
		"wait_seconds":       wait,
	}
	last := c.Start.Add(time.Duration(wait) * time.Second)
	if rng.Float64() < 0.6 {
		// The first call comes as the chat opens: the wait is not known
		// yet, fewer pages are seen, and the message is a greeting or the
		// same question.
		early := make(map[string]any, len(final))
		for k, v := range final {
			early[k] = v
		}
		seen := 0
		for range views {
			if rng.Float64() < 0.6 {
				seen++
			}
		}
		early["pricing_page_views"] = float64(seen)
		delete(early, "wait_seconds")
		first := "Hello"
		if rng.Float64() < 0.4 {
			first = message
		}
		c.Calls = append(c.Calls, simCall{At: c.Start, Message: first, Signals: early})
	} else {
		last = c.Start
	}
	c.Calls = append(c.Calls, simCall{At: last, Message: message, Signals: final})

	d := w.scorer.Score(model.Input{Channel: c.Channel, Message: message, Signals: final})
	c.Hits = d.Hits
	z := simTruth.base +
		simTruth.logDeal*(math.Log1p(deal)-simLogDealCenter) +
		simTruth.lifecycle[lifecycle] +
		simTruth.plan[plan] +
		simTruth.inbox[c.Kind] +
		simTruth.logViews*math.Log1p(float64(views)) +
		simTruth.logWait*math.Log1p(wait)
	if returning {
		z += simTruth.returning
	}
	for _, h := range d.Hits {
		z += simTruth.rules[h]
	}
	c.TrueProb = 1 / (1 + math.Exp(-z))
	c.Positive = rng.Float64() < c.TrueProb
	if c.Positive {
		c.Value = deal
	}
	c.FirstResponseAt = c.Start.Add(time.Duration(wait) * time.Second)
	c.OutcomeAt = c.FirstResponseAt.Add(time.Duration(5+rng.IntN(115)) * time.Minute)
	c.LabelDraw = rng.Float64()
	c.Agent = fmt.Sprintf("agent-%d@example.com", 1+rng.IntN(6))
}

// pick returns a with probability p, else b.
func pick(rng *rand.Rand, a string, p float64, b string) string {
	if rng.Float64() < p {
		return a
	}
	return b
}

// pickN returns values[i] with probability probs[i]; probs sum to 1.
func pickN(rng *rand.Rand, values []string, probs []float64) string {
	u := rng.Float64()
	for i, p := range probs {
		if u -= p; u < 0 {
			return values[i]
		}
	}
	return values[len(values)-1]
}

// geometric draws a count with the given mean from a geometric
// distribution: mostly small, with a long right tail.
func geometric(rng *rand.Rand, mean float64) int {
	q := mean / (1 + mean) // the chance of one more
	k := 0
	for rng.Float64() < q && k < 50 {
		k++
	}
	return k
}

// simStart is the Monday 00:00 UTC at least weeks weeks before now: the
// simulated weeks lie in the past and end at most at this week's Monday.
func simStart(now time.Time, weeks int) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	return monday.AddDate(0, 0, -7*weeks)
}
