package feedback

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hotlane/hotlane/model"
)

// MaxKPIWeeks bounds KPIQuery.Weeks.
const MaxKPIWeeks = 104

// KPIQuery selects the weeks of a KPI report.
type KPIQuery struct {
	// Weeks is how many ISO weeks to report, ending with the week of Now;
	// 1 to MaxKPIWeeks.
	Weeks int
	// Now places the last week; UTC.
	Now time.Time
	// Channel keeps one channel when set.
	Channel string
}

// KPIReport holds the KPIs of PRODUCT.md §6 per ISO week, oldest first.
type KPIReport struct {
	Weeks []KPIWeek
}

// KPIWeek is one ISO week (Monday 00:00 UTC to the next Monday) of KPIs:
// overall, per tier, per channel, and the alert true-positive rate per rule.
type KPIWeek struct {
	Week      string // ISO week, e.g. "2026-W48"
	Start     time.Time
	End       time.Time
	Overall   KPISet
	ByTier    map[model.Tier]KPISet
	ByChannel map[string]KPISet
	ByRule    map[string]TruePositiveKPI
}

// KPISet is the four KPIs of one group of conversations.
type KPISet struct {
	Accuracy     AccuracyKPI
	ResponseTime ResponseTimeKPI
	TruePositive TruePositiveKPI
	Conversion   ConversionKPI
}

// AccuracyKPI is the priority classification accuracy: of the conversations
// an agent reviewed (tier_feedback) in the week, the share whose tier, as
// Hotlane had it when the agent reviewed it, the agent confirmed. A
// conversation reviewed more than once counts once, by its latest review.
// Grouped by Hotlane's tier.
type AccuracyKPI struct {
	Confirmed int
	Reviewed  int
	Rate      *float64 // nil when nothing was reviewed
}

// ResponseTimeKPI is the top-tier response time: for conversations whose
// first urgent or high decision fell in the week, the time from it to the
// first human response (0 when the response came first). Median and P90
// interpolate linearly between ranks; nil without responses. Grouped by
// the highest tier the conversation reached.
type ResponseTimeKPI struct {
	Conversations int // reached urgent or high in the week
	Responded     int // of those, with a first response
	MedianSeconds *float64
	P90Seconds    *float64
}

// TruePositiveKPI is the alert true-positive rate: of the tier alerts fired
// in the week that agents labelled, useful / (useful + noise). Each alert
// counts once, by the majority of its agents' labels; alerts whose agents
// disagree evenly are counted as Tied and left out of the rate. Grouped by
// the alert's tier and channel, and per rule by the rules among the reasons
// of the decision that fired it.
type TruePositiveKPI struct {
	Useful int
	Noise  int
	Tied   int
	Rate   *float64 // nil without useful or noise alerts
	// Fired counts every tier alert fired in the week, labelled or not:
	// the alert volume (not counted per rule).
	Fired int
}

// ConversionKPI is the priority conversation conversion: of the
// conversations whose first urgent or high decision fell in the week, the
// share with a converted event. Grouped by the highest tier reached.
type ConversionKPI struct {
	Converted     int
	Conversations int
	Rate          *float64
	// Weighted by deal value: Value sums the deal value of the
	// conversations whose value is known (a conversion's value, else the
	// deal_size signal of its last decision), ConvertedValue that of the
	// converted ones, and ValueRate is their ratio; nil without values.
	Value          float64
	ConvertedValue float64
	ValueRate      *float64
}

// ISOWeekStart returns the Monday 00:00 UTC that starts t's ISO week.
func ISOWeekStart(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	offset := (int(day.Weekday()) + 6) % 7 // Monday = 0
	return day.AddDate(0, 0, -offset)
}

// ISOWeekName names t's ISO week, e.g. "2026-W48".
func ISOWeekName(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// KPIFacts are the raw facts the KPIs of a window are computed from: the
// store gathers them, ComputeKPIs turns them into weeks.
type KPIFacts struct {
	Reviews []KPIReview
	Tops    []KPITopConversation
	Alerts  []KPILabelledAlert
	Fired   []KPIFiredAlert
}

// KPIFiredAlert is a fired tier alert, for the alert volume.
type KPIFiredAlert struct {
	Channel   string
	Tier      model.Tier
	CreatedAt time.Time
}

// KPIReview is one tier review (tier_feedback) of a conversation, with the
// tier Hotlane had given the conversation when the agent reviewed it.
type KPIReview struct {
	ConversationID string
	Channel        string
	ModelTier      model.Tier
	AgentTier      model.Tier
	At             time.Time
}

// KPITopConversation is a conversation that reached urgent or high.
type KPITopConversation struct {
	ConversationID  string
	Channel         string
	FirstTopAt      time.Time
	FirstResponseAt *time.Time
	ReachedUrgent   bool
	Converted       bool
	// Value is its deal value, nil when unknown.
	Value *float64
}

// KPILabelledAlert is a fired tier alert that agents labelled, with the
// rules among the reasons of the decision that fired it.
type KPILabelledAlert struct {
	AlertID   string
	Channel   string
	Tier      model.Tier
	CreatedAt time.Time
	Labels    []string
	Rules     []string
}

// KPIWindow validates q and returns the span of its weeks: Weeks ISO weeks
// ending with the week of Now. Weeks outside 1..MaxKPIWeeks is ErrInvalid.
func KPIWindow(q KPIQuery) (start, end time.Time, err error) {
	if q.Weeks < 1 || q.Weeks > MaxKPIWeeks {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: weeks must be 1 to %d", ErrInvalid, MaxKPIWeeks)
	}
	end = ISOWeekStart(q.Now).AddDate(0, 0, 7)
	return end.AddDate(0, 0, -7*q.Weeks), end, nil
}

// ValueSignal is the signal that carries a conversation's deal value, for
// the conversion weighted by deal value.
const ValueSignal = "deal_size"

// DealValue reads the deal value from a decision's signals (a JSON
// object): ValueSignal when it is a positive number, else nil.
func DealValue(signals []byte) *float64 {
	var v struct {
		DealSize *float64 `json:"deal_size"`
	}
	if len(signals) == 0 || json.Unmarshal(signals, &v) != nil || v.DealSize == nil || *v.DealSize <= 0 {
		return nil
	}
	return v.DealSize
}

// RuleNames returns the distinct rules among a decision's reasons (a
// JSON array of reasons as the score path stores them).
func RuleNames(reasons string) []string {
	var rs []struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(reasons), &rs) != nil {
		return nil
	}
	var names []string
	for _, r := range rs {
		if r.Kind == "rule" && r.Name != "" && !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	return names
}

// kpiAcc accumulates one group's KPIs before rates and percentiles.
type kpiAcc struct {
	set       KPISet
	durations []float64
}

func (a *kpiAcc) finish() KPISet {
	s := a.set
	s.Accuracy.Rate = ratio(s.Accuracy.Confirmed, s.Accuracy.Reviewed)
	s.Conversion.Rate = ratio(s.Conversion.Converted, s.Conversion.Conversations)
	if s.Conversion.Value > 0 {
		r := s.Conversion.ConvertedValue / s.Conversion.Value
		s.Conversion.ValueRate = &r
	}
	s.TruePositive.Rate = ratio(s.TruePositive.Useful, s.TruePositive.Useful+s.TruePositive.Noise)
	if len(a.durations) > 0 {
		slices.Sort(a.durations)
		med, p90 := percentile(a.durations, 0.5), percentile(a.durations, 0.9)
		s.ResponseTime.MedianSeconds, s.ResponseTime.P90Seconds = &med, &p90
	}
	return s
}

func ratio(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	r := float64(num) / float64(den)
	return &r
}

// percentile interpolates linearly between the closest ranks of sorted.
func percentile(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

type weekAcc struct {
	overall   kpiAcc
	byTier    map[model.Tier]*kpiAcc
	byChannel map[string]*kpiAcc
	byRule    map[string]*TruePositiveKPI
}

// groups returns the accumulators a fact of tier and channel adds to.
func (w *weekAcc) groups(tier model.Tier, channel string) []*kpiAcc {
	return []*kpiAcc{&w.overall, accFor(w.byTier, tier), accFor(w.byChannel, channel)}
}

func accFor[K comparable](m map[K]*kpiAcc, k K) *kpiAcc {
	a, ok := m[k]
	if !ok {
		a = &kpiAcc{}
		m[k] = a
	}
	return a
}

// alertVerdict resolves an alert's labels by majority: "useful", "noise",
// or "" when they tie.
func alertVerdict(labels []string) string {
	var useful, noise int
	for _, l := range labels {
		switch l {
		case LabelUseful:
			useful++
		case LabelNoise:
			noise++
		}
	}
	switch {
	case useful > noise:
		return LabelUseful
	case noise > useful:
		return LabelNoise
	}
	return ""
}

func addVerdict(k *TruePositiveKPI, verdict string) {
	switch verdict {
	case LabelUseful:
		k.Useful++
	case LabelNoise:
		k.Noise++
	default:
		k.Tied++
	}
}

// ComputeKPIs buckets facts into the weeks weeks starting at start (a
// Monday 00:00 UTC, as KPIWindow gives) and computes each week's KPIs.
func ComputeKPIs(f KPIFacts, start time.Time, weeks int) KPIReport {
	accs := bucketKPIs(f, weeks, func(t time.Time) int {
		return int(ISOWeekStart(t).Sub(start) / (7 * 24 * time.Hour))
	})
	report := KPIReport{Weeks: make([]KPIWeek, weeks)}
	for i, w := range accs {
		ws := start.AddDate(0, 0, 7*i)
		report.Weeks[i] = w.finish(ISOWeekName(ws), ws, ws.AddDate(0, 0, 7))
	}
	return report
}

// ComputeKPIPeriod computes the KPIs of the facts in [start, end) as one
// period, for a baseline: its Week names the period.
func ComputeKPIPeriod(f KPIFacts, start, end time.Time) KPIWeek {
	accs := bucketKPIs(f, 1, func(t time.Time) int {
		if t.Before(start) || !t.Before(end) {
			return -1
		}
		return 0
	})
	return accs[0].finish(start.Format("2006-01-02")+" to "+end.Format("2006-01-02"), start, end)
}

// bucketKPIs adds each fact to the bucket bucket(time) names, 0 to n-1;
// facts outside are skipped.
func bucketKPIs(f KPIFacts, n int, bucket func(time.Time) int) []*weekAcc {
	accs := make([]*weekAcc, n)
	for i := range accs {
		accs[i] = &weekAcc{byTier: map[model.Tier]*kpiAcc{}, byChannel: map[string]*kpiAcc{}, byRule: map[string]*TruePositiveKPI{}}
	}
	week := func(t time.Time) *weekAcc {
		i := bucket(t)
		if i < 0 || i >= n {
			return nil
		}
		return accs[i]
	}

	// One review per conversation: the latest in the window.
	latest := map[string]KPIReview{}
	for _, r := range f.Reviews {
		if prev, ok := latest[r.ConversationID]; !ok || !r.At.Before(prev.At) {
			latest[r.ConversationID] = r
		}
	}
	for _, r := range latest {
		w := week(r.At)
		if w == nil {
			continue
		}
		for _, a := range w.groups(r.ModelTier, r.Channel) {
			a.set.Accuracy.Reviewed++
			if r.AgentTier == r.ModelTier {
				a.set.Accuracy.Confirmed++
			}
		}
	}

	for _, t := range f.Tops {
		w := week(t.FirstTopAt)
		if w == nil {
			continue
		}
		tier := model.TierHigh
		if t.ReachedUrgent {
			tier = model.TierUrgent
		}
		for _, a := range w.groups(tier, t.Channel) {
			a.set.ResponseTime.Conversations++
			a.set.Conversion.Conversations++
			if t.Converted {
				a.set.Conversion.Converted++
			}
			if t.Value != nil && *t.Value > 0 {
				a.set.Conversion.Value += *t.Value
				if t.Converted {
					a.set.Conversion.ConvertedValue += *t.Value
				}
			}
			if t.FirstResponseAt != nil {
				a.set.ResponseTime.Responded++
				a.durations = append(a.durations, max(0, t.FirstResponseAt.Sub(t.FirstTopAt).Seconds()))
			}
		}
	}

	for _, al := range f.Alerts {
		w := week(al.CreatedAt)
		if w == nil {
			continue
		}
		v := alertVerdict(al.Labels)
		for _, a := range w.groups(al.Tier, al.Channel) {
			addVerdict(&a.set.TruePositive, v)
		}
		for _, rule := range al.Rules {
			k, ok := w.byRule[rule]
			if !ok {
				k = &TruePositiveKPI{}
				w.byRule[rule] = k
			}
			addVerdict(k, v)
		}
	}

	for _, al := range f.Fired {
		if w := week(al.CreatedAt); w != nil {
			for _, a := range w.groups(al.Tier, al.Channel) {
				a.set.TruePositive.Fired++
			}
		}
	}

	return accs
}

// finish computes a bucket's rates and percentiles.
func (w *weekAcc) finish(name string, start, end time.Time) KPIWeek {
	out := KPIWeek{Week: name, Start: start, End: end, Overall: w.overall.finish(),
		ByTier: map[model.Tier]KPISet{}, ByChannel: map[string]KPISet{}, ByRule: map[string]TruePositiveKPI{}}
	for k, a := range w.byTier {
		out.ByTier[k] = a.finish()
	}
	for k, a := range w.byChannel {
		out.ByChannel[k] = a.finish()
	}
	for k, tp := range w.byRule {
		tp.Rate = ratio(tp.Useful, tp.Useful+tp.Noise)
		out.ByRule[k] = *tp
	}
	return out
}
