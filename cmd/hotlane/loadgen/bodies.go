package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// bodyCount is how many distinct request bodies a run cycles through: enough
// that the server sees varied signals, small enough to stay in memory.
const bodyCount = 4096

// scoreBody is the request body of POST /v1/score as the generator writes it.
type scoreBody struct {
	ConversationID string         `json:"conversation_id"`
	Channel        string         `json:"channel"`
	Signals        map[string]any `json:"signals"`
	Message        string         `json:"message,omitempty"`
	OccurredAt     string         `json:"occurred_at"`
}

// Signal count bounds per body.
const (
	minSignals = 15
	maxSignals = 30
)

// nullRate is the share of signal values sent as JSON null (a known signal
// with no value yet).
const nullRate = 0.04

var (
	stages = weighted[string]{
		{"lead", 35}, {"mql", 25}, {"opportunity", 18}, {"customer", 17}, {"churn_risk", 5},
	}
	plans = weighted[string]{
		{"free", 40}, {"starter", 30}, {"pro", 22}, {"enterprise", 8},
	}
	channels = weighted[string]{
		{"web", 55}, {"whatsapp", 30}, {"email", 15},
	}
	countries = weighted[string]{
		{"US", 30}, {"BR", 14}, {"GB", 9}, {"DE", 8}, {"IN", 8}, {"FR", 6}, {"MX", 6},
		{"ES", 5}, {"CA", 5}, {"NL", 3}, {"AU", 3}, {"PT", 3},
	}
	utmSources = weighted[string]{
		{"google", 35}, {"direct", 20}, {"linkedin", 12}, {"newsletter", 10},
		{"facebook", 8}, {"partner", 6}, {"g2", 5}, {"bing", 4},
	}
	industries = weighted[string]{
		{"saas", 25}, {"ecommerce", 20}, {"fintech", 12}, {"education", 10},
		{"healthcare", 9}, {"agency", 9}, {"logistics", 8}, {"other", 7},
	}
	devices   = weighted[string]{{"desktop", 58}, {"mobile", 38}, {"tablet", 4}}
	languages = weighted[string]{{"en", 55}, {"pt", 15}, {"es", 14}, {"de", 8}, {"fr", 8}}
	browsers  = weighted[string]{{"chrome", 62}, {"safari", 22}, {"edge", 8}, {"firefox", 8}}
	regions   = weighted[string]{{"na", 38}, {"latam", 22}, {"emea", 30}, {"apac", 10}}
	support   = weighted[string]{{"none", 50}, {"standard", 35}, {"premium", 15}}
	referrers = weighted[string]{
		{"google.com", 40}, {"", 25}, {"linkedin.com", 12}, {"news.ycombinator.com", 4},
		{"partner.example.com", 9}, {"mail.example.org", 10},
	}
	companySizes = weighted[string]{
		{"1-10", 35}, {"11-50", 28}, {"51-200", 20}, {"201-1000", 12}, {"1000+", 5},
	}
	bigCompanySizes = weighted[string]{{"201-1000", 50}, {"1000+", 50}}
	csatScores      = weighted[int]{{1, 5}, {2, 7}, {3, 15}, {4, 33}, {5, 40}}
	discountCodes   = weighted[string]{{"SPRING20", 3}, {"WELCOME10", 5}, {"PARTNER15", 2}}
	// dealLogMean centres the log-normal deal size higher for bigger plans
	// (about $400 free, $1.5k starter, $5.4k pro, $27k enterprise).
	dealLogMean = map[string]float64{"free": 6.0, "starter": 7.3, "pro": 8.6, "enterprise": 10.2}
	ownerNames  = []string{
		"ana", "bruno", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jonas",
	}
)

// messages are short visitor texts, most of them mentioning something a
// rule might look for (price, seats, cancel, refund, urgency).
var messages = weighted[string]{
	{"I want to cancel", 6},
	{"pricing for 50 seats?", 6},
	{"hi", 5},
	{"Can I get a refund for last month?", 4},
	{"how do I export my data", 4},
	{"Do you have an enterprise plan with SSO?", 4},
	{"my invoice is wrong", 3},
	{"is there a discount for nonprofits?", 3},
	{"We need this live by Friday, can someone call me?", 3},
	{"the app keeps logging me out", 3},
	{"Quero cancelar minha assinatura", 2},
	{"¿tienen precio para 200 usuarios?", 2},
	{"thanks 🙏", 2},
	{"Can we talk to sales about a yearly contract?", 3},
	{"payment failed again", 3},
	{"what's the difference between pro and enterprise", 3},
	{"URGENT: checkout is down for our customers", 1},
	{"just browsing", 3},
	{"can I add 10 more seats to my plan", 3},
	{"we're comparing you with two other vendors", 2},
}

// messageRate is the share of bodies carrying a message, by channel.
var messageRate = map[string]float64{"web": 0.45, "whatsapp": 0.75, "email": 0.6}

// weighted is a list of choices with integer weights.
type weighted[T any] []struct {
	v T
	w int
}

func (ws weighted[T]) pick(r *rand.Rand) T {
	total := 0
	for _, c := range ws {
		total += c.w
	}
	n := r.IntN(total)
	for _, c := range ws {
		if n < c.w {
			return c.v
		}
		n -= c.w
	}
	return ws[len(ws)-1].v
}

// visitor holds the draws that several signals depend on, so a body reads
// like one plausible visitor rather than independent noise.
type visitor struct {
	plan    string
	stage   string
	country string
	deal    float64
}

// signalGen produces one signal value for a visitor.
type signalGen struct {
	name string
	gen  func(r *rand.Rand, v *visitor) any
}

// coreSignals are present in every body.
var coreSignals = []signalGen{
	{"deal_size", func(_ *rand.Rand, v *visitor) any { return v.deal }},
	{"lifecycle_stage", func(_ *rand.Rand, v *visitor) any { return v.stage }},
	{"plan", func(_ *rand.Rand, v *visitor) any { return v.plan }},
	{"country", func(_ *rand.Rand, v *visitor) any { return v.country }},
	{"returning", func(r *rand.Rand, v *visitor) any { return v.stage == "customer" || r.Float64() < 0.4 }},
	{"wait_seconds", func(r *rand.Rand, _ *visitor) any { return math.Round(r.ExpFloat64() * 45) }},
	{"pricing_page_views", func(r *rand.Rand, v *visitor) any {
		if v.stage == "opportunity" {
			return float64(1 + r.IntN(8))
		}
		return float64(poisson(r, 0.8))
	}},
	{"pages_viewed", func(r *rand.Rand, _ *visitor) any { return float64(1 + poisson(r, 5)) }},
}

// optionalSignals are drawn at random to bring a body to its signal count.
var optionalSignals = []signalGen{
	{"owner", func(r *rand.Rand, _ *visitor) any {
		return ownerNames[r.IntN(len(ownerNames))] + "@example.com"
	}},
	{"utm_source", func(r *rand.Rand, _ *visitor) any { return utmSources.pick(r) }},
	{"company_size", func(r *rand.Rand, v *visitor) any {
		if v.plan == "enterprise" {
			return bigCompanySizes.pick(r)
		}
		return companySizes.pick(r)
	}},
	{"csat_last", func(r *rand.Rand, _ *visitor) any {
		return float64(csatScores.pick(r))
	}},
	{"open_tickets", func(r *rand.Rand, _ *visitor) any { return float64(poisson(r, 0.6)) }},
	{"seats_requested", func(r *rand.Rand, _ *visitor) any { return float64(1 + int(r.ExpFloat64()*12)) }},
	{"session_count", func(r *rand.Rand, _ *visitor) any { return float64(1 + poisson(r, 3)) }},
	{"days_since_signup", func(r *rand.Rand, _ *visitor) any { return float64(int(r.ExpFloat64() * 120)) }},
	{"mrr", func(r *rand.Rand, v *visitor) any { return round2(v.deal / 12) }},
	{"trial_days_left", func(r *rand.Rand, _ *visitor) any { return float64(r.IntN(15)) }},
	{"device", func(r *rand.Rand, _ *visitor) any { return devices.pick(r) }},
	{"language", func(r *rand.Rand, _ *visitor) any { return languages.pick(r) }},
	{"referrer", func(r *rand.Rand, _ *visitor) any { return referrers.pick(r) }},
	{"visited_docs", func(r *rand.Rand, _ *visitor) any { return r.Float64() < 0.3 }},
	{"cart_value", func(r *rand.Rand, _ *visitor) any { return round2(math.Exp(3.5 + 1.1*r.NormFloat64())) }},
	{"emails_opened", func(r *rand.Rand, _ *visitor) any { return float64(poisson(r, 2)) }},
	{"last_order_days", func(r *rand.Rand, _ *visitor) any { return float64(int(r.ExpFloat64() * 40)) }},
	{"nps", func(r *rand.Rand, _ *visitor) any { return float64(r.IntN(11)) }},
	{"is_vip", func(r *rand.Rand, v *visitor) any { return v.plan == "enterprise" && r.Float64() < 0.5 }},
	{"industry", func(r *rand.Rand, _ *visitor) any { return industries.pick(r) }},
	{"previous_chats", func(r *rand.Rand, _ *visitor) any { return float64(poisson(r, 1.5)) }},
	{"time_on_site_s", func(r *rand.Rand, _ *visitor) any { return math.Round(math.Exp(5 + r.NormFloat64())) }},
	{"abandoned_cart", func(r *rand.Rand, _ *visitor) any { return r.Float64() < 0.15 }},
	{"region", func(r *rand.Rand, _ *visitor) any { return regions.pick(r) }},
	{"browser", func(r *rand.Rand, _ *visitor) any { return browsers.pick(r) }},
	{"marketing_consent", func(r *rand.Rand, _ *visitor) any { return r.Float64() < 0.55 }},
	{"discount_code", func(r *rand.Rand, _ *visitor) any {
		return discountCodes.pick(r)
	}},
	{"account_age_days", func(r *rand.Rand, v *visitor) any {
		if v.stage == "lead" {
			return float64(r.IntN(3))
		}
		return float64(int(r.ExpFloat64() * 400))
	}},
	{"support_plan", func(r *rand.Rand, _ *visitor) any { return support.pick(r) }},
	{"last_invoice_failed", func(r *rand.Rand, _ *visitor) any { return r.Float64() < 0.06 }},
	{"integration_count", func(r *rand.Rand, _ *visitor) any { return float64(poisson(r, 1.2)) }},
	{"contract_renewal_days", func(r *rand.Rand, _ *visitor) any { return float64(r.IntN(366)) }},
	{"viewed_cancel_page", func(r *rand.Rand, v *visitor) any { return v.stage == "churn_risk" || r.Float64() < 0.03 }},
	{"lead_score", func(r *rand.Rand, _ *visitor) any { return float64(r.IntN(101)) }},
	{"is_mobile_app", func(r *rand.Rand, _ *visitor) any { return r.Float64() < 0.2 }},
	{"coupon_attempts", func(r *rand.Rand, _ *visitor) any { return float64(poisson(r, 0.3)) }},
}

// generateBodies returns n JSON bodies for POST /v1/score, the same for the
// same seed, conversation pool and reference time. Conversation ids are
// conv-1 .. conv-<conversations>, with a few busy conversations appearing
// more often, as in a real queue. Timestamps fall in the two hours before
// ref, so a server that refuses stale or future events accepts them.
func generateBodies(seed int64, conversations, n int, ref time.Time) ([][]byte, error) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x686f746c616e65)) // second word: fixed stream id
	hot := max(1, conversations/20)
	ref = ref.UTC().Truncate(time.Second)
	bodies := make([][]byte, n)
	for i := range bodies {
		conv := 1 + r.IntN(conversations)
		if r.Float64() < 0.3 {
			conv = 1 + r.IntN(hot)
		}
		b := scoreBody{
			ConversationID: "conv-" + strconv.Itoa(conv),
			Channel:        channels.pick(r),
			Signals:        genSignals(r),
			OccurredAt:     ref.Add(-time.Duration(r.IntN(7200)) * time.Second).Format(time.RFC3339),
		}
		if r.Float64() < messageRate[b.Channel] {
			b.Message = messages.pick(r)
		}
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("generate body %d: %w", i, err)
		}
		bodies[i] = data
	}
	return bodies, nil
}

// genSignals draws one visitor's signals: every core signal, then a random
// selection of optional ones, some of them null.
func genSignals(r *rand.Rand) map[string]any {
	v := visitor{
		plan:    plans.pick(r),
		stage:   stages.pick(r),
		country: countries.pick(r),
	}
	v.deal = round2(math.Exp(dealLogMean[v.plan] + 0.9*r.NormFloat64()))

	k := minSignals + r.IntN(maxSignals-minSignals+1)
	out := make(map[string]any, k)
	set := func(g signalGen) {
		val := g.gen(r, &v)
		if r.Float64() < nullRate {
			val = nil
		}
		out[g.name] = val
	}
	for _, g := range coreSignals {
		set(g)
	}
	for _, i := range r.Perm(len(optionalSignals))[:k-len(coreSignals)] {
		set(optionalSignals[i])
	}
	return out
}

// poisson draws from a Poisson distribution with mean lambda (small lambda).
func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
