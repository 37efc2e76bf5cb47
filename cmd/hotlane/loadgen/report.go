package loadgen

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run. Aggregates cover every measured round of
// one target: RPS is its requests divided by its measured time, and the
// percentiles are over all its latencies. Latencies are those of answered
// requests, whatever their status; transport failures have none.
type Report struct {
	// URL is the score endpoint that was measured.
	URL string `json:"url"`
	// RPS is the server's throughput in requests per second.
	RPS float64 `json:"rps"`
	// Requests counts the server's answered and failed requests.
	Requests int64 `json:"requests"`
	// Errors counts non-2xx answers and transport failures.
	Errors int64 `json:"errors"`
	// P50Ms, P95Ms, P99Ms, P999Ms and MaxMs are latency percentiles in
	// milliseconds.
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	// Statuses counts answers by HTTP status, plus "transport" for failures
	// without an answer.
	Statuses map[string]int64 `json:"statuses,omitempty"`
	// FirstError describes the first failure, if any, to help diagnosis.
	FirstError string `json:"first_error,omitempty"`

	// BaselineRPS and the other Baseline fields describe the bare Gin
	// handler; they are zero without a baseline.
	BaselineRPS      float64 `json:"baseline_rps"`
	BaselineRequests int64   `json:"baseline_requests"`
	BaselineErrors   int64   `json:"baseline_errors"`
	BaselineP50Ms    float64 `json:"baseline_p50_ms"`
	BaselineP95Ms    float64 `json:"baseline_p95_ms"`
	BaselineP99Ms    float64 `json:"baseline_p99_ms"`
	BaselineP999Ms   float64 `json:"baseline_p999_ms"`
	BaselineMaxMs    float64 `json:"baseline_max_ms"`
	// Ratio is RPS / BaselineRPS, 0 without a baseline.
	Ratio float64 `json:"ratio"`

	// Concurrency is the number of workers.
	Concurrency int `json:"concurrency"`
	// Rate is the open loop's requests per second, 0 for a closed loop;
	// with it, latencies run from each request's scheduled time.
	Rate float64 `json:"rate,omitempty"`
	// DurationS is the configured length of one measured round in seconds.
	DurationS float64 `json:"duration_s"`
	// Seed is the seed the request bodies were generated from.
	Seed int64 `json:"seed"`
	// Rounds lists the measured rounds in the order they ran.
	Rounds []Round `json:"rounds"`
}

// Round is one measured round of one target.
type Round struct {
	// Target is TargetHotlane or TargetBaseline.
	Target string `json:"target"`
	// RPS is requests divided by the round's measured time.
	RPS float64 `json:"rps"`
	// Requests counts answered and failed requests.
	Requests int64 `json:"requests"`
	// Errors counts non-2xx answers and transport failures.
	Errors int64 `json:"errors"`
	// P50Ms, P95Ms, P99Ms, P999Ms and MaxMs are latency percentiles in
	// milliseconds.
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	// ElapsedS is the measured time: the configured duration plus the
	// finishing of requests in flight at its end.
	ElapsedS float64 `json:"elapsed_s"`
	// Statuses counts answers by HTTP status, plus "transport".
	Statuses map[string]int64 `json:"statuses,omitempty"`
}

// statusTransport is the Statuses key for requests that got no answer.
const statusTransport = "transport"

// stats accumulates one worker's, round's or target's results.
type stats struct {
	hist      histogram
	requests  int64
	errors    int64
	statuses  map[int]int64 // by HTTP status; 0 for transport failures
	firstErr  string
	firstSeen bool
}

func (s *stats) response(status int, latency time.Duration) {
	s.requests++
	s.hist.record(latency)
	s.count(status)
	if status < 200 || status > 299 {
		s.errors++
		s.noteError("HTTP " + strconv.Itoa(status))
	}
}

func (s *stats) transportError(err error) {
	s.requests++
	s.errors++
	s.count(0)
	s.noteError(err.Error())
}

func (s *stats) count(status int) {
	if s.statuses == nil {
		s.statuses = make(map[int]int64)
	}
	s.statuses[status]++
}

func (s *stats) noteError(msg string) {
	if !s.firstSeen {
		s.firstSeen, s.firstErr = true, msg
	}
}

func (s *stats) merge(o *stats) {
	s.hist.merge(&o.hist)
	s.requests += o.requests
	s.errors += o.errors
	if len(o.statuses) > 0 && s.statuses == nil {
		s.statuses = make(map[int]int64, len(o.statuses))
	}
	for k, v := range o.statuses {
		s.statuses[k] += v
	}
	if o.firstSeen {
		s.noteError(o.firstErr)
	}
}

// statusMap renders the status counts with string keys for JSON.
func (s *stats) statusMap() map[string]int64 {
	if len(s.statuses) == 0 {
		return nil
	}
	m := make(map[string]int64, len(s.statuses))
	for k, v := range s.statuses {
		key := statusTransport
		if k != 0 {
			key = strconv.Itoa(k)
		}
		m[key] = v
	}
	return m
}

func (s *stats) round(name string, elapsed time.Duration) Round {
	return Round{
		Target:   name,
		RPS:      rate(s.requests, elapsed),
		Requests: s.requests,
		Errors:   s.errors,
		P50Ms:    ms(s.hist.quantile(0.50)),
		P95Ms:    ms(s.hist.quantile(0.95)),
		P99Ms:    ms(s.hist.quantile(0.99)),
		P999Ms:   ms(s.hist.quantile(0.999)),
		MaxMs:    ms(s.hist.max),
		ElapsedS: round3(elapsed.Seconds()),
		Statuses: s.statusMap(),
	}
}

// summary is the round's progress line.
func (r Round) summary() string {
	return fmt.Sprintf("%8d req in %6.2fs  %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms  p99.9 %8.3f ms  max %8.3f ms  errors %d",
		r.Requests, r.ElapsedS, r.RPS, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs, r.Errors)
}

// finish fills the aggregate fields from the targets' totals.
func (r Report) finish(targets []*target) Report {
	exact := map[string]float64{}
	for _, t := range targets {
		if t.rounds == 0 {
			continue
		}
		agg := t.total.round(t.name, t.elapsed)
		exact[t.name] = float64(t.total.requests) / t.elapsed.Seconds()
		switch t.name {
		case TargetHotlane:
			r.RPS, r.Requests, r.Errors = agg.RPS, agg.Requests, agg.Errors
			r.P50Ms, r.P95Ms, r.P99Ms, r.P999Ms, r.MaxMs = agg.P50Ms, agg.P95Ms, agg.P99Ms, agg.P999Ms, agg.MaxMs
			r.Statuses, r.FirstError = agg.Statuses, t.total.firstErr
		case TargetBaseline:
			r.BaselineRPS, r.BaselineRequests, r.BaselineErrors = agg.RPS, agg.Requests, agg.Errors
			r.BaselineP50Ms, r.BaselineP95Ms, r.BaselineP99Ms, r.BaselineP999Ms, r.BaselineMaxMs = agg.P50Ms, agg.P95Ms, agg.P99Ms, agg.P999Ms, agg.MaxMs
		}
	}
	if exact[TargetBaseline] > 0 {
		r.Ratio = round3(exact[TargetHotlane] / exact[TargetBaseline])
	}
	return r
}

// WriteText writes r as a readable table: one row per round, then one per
// target over all its rounds when it ran several, then the ratio and any
// errors.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Rate > 0 {
		fmt.Fprintf(&b, "POST %s  open loop: %.0f req/s over up to %d connections, latency from each request's scheduled time  %s per round  seed %d\n\n",
			r.URL, r.Rate, r.Concurrency, time.Duration(r.DurationS*float64(time.Second)), r.Seed)
	} else {
		fmt.Fprintf(&b, "POST %s  concurrency %d  %s per round  seed %d\n\n",
			r.URL, r.Concurrency, time.Duration(r.DurationS*float64(time.Second)), r.Seed)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tround\trequests\terrors\treq/s\tp50 ms\tp95 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	row := func(target, round string, req, errs int64, rps, p50, p95, p99, p999, mx float64) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", target, round, req, errs, rps, p50, p95, p99, p999, mx)
	}
	perTarget := map[string]int{}
	for _, rd := range r.Rounds {
		perTarget[rd.Target]++
		row(rd.Target, strconv.Itoa(perTarget[rd.Target]), rd.Requests, rd.Errors, rd.RPS, rd.P50Ms, rd.P95Ms, rd.P99Ms, rd.P999Ms, rd.MaxMs)
	}
	// A target's "all" row only adds something when it ran several rounds.
	if perTarget[TargetBaseline] > 1 {
		row(TargetBaseline, "all", r.BaselineRequests, r.BaselineErrors, r.BaselineRPS,
			r.BaselineP50Ms, r.BaselineP95Ms, r.BaselineP99Ms, r.BaselineP999Ms, r.BaselineMaxMs)
	}
	if perTarget[TargetHotlane] > 1 {
		row(TargetHotlane, "all", r.Requests, r.Errors, r.RPS, r.P50Ms, r.P95Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if r.BaselineRPS > 0 {
		fmt.Fprintf(&b, "\nratio (hotlane req/s / baseline req/s): %.3f\n", r.Ratio)
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, "\nhotlane errors: %d (%s); first: %s\n", r.Errors, formatStatuses(r.Statuses), r.FirstError)
	}
	if r.BaselineErrors > 0 {
		fmt.Fprintf(&b, "baseline errors: %d\n", r.BaselineErrors)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// formatStatuses renders status counts as "200: 10, 500: 2", sorted.
func formatStatuses(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// rate returns n per second over d, rounded to 0.1.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// ms converts d to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
