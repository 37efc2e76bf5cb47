package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// nearestRank is the exact nearest-rank percentile of sorted values.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func within(got, want time.Duration, tol float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(float64(got-want))/float64(want) <= tol
}

func TestHistogramQuantiles(t *testing.T) {
	ms := time.Millisecond
	seq := func(n int, unit time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * unit
		}
		return out
	}
	repeat := func(d time.Duration, n int) []time.Duration { return slices.Repeat([]time.Duration{d}, n) }

	tests := []struct {
		name               string
		latencies          []time.Duration
		p50, p95, p99, max time.Duration
	}{
		{name: "one to a hundred ms", latencies: seq(100, ms), p50: 50 * ms, p95: 95 * ms, p99: 99 * ms, max: 100 * ms},
		{name: "single value", latencies: []time.Duration{5 * ms}, p50: 5 * ms, p95: 5 * ms, p99: 5 * ms, max: 5 * ms},
		{name: "one slow in a hundred stays out of p99",
			latencies: append(repeat(ms, 99), time.Second), p50: ms, p95: ms, p99: ms, max: time.Second},
		{name: "two slow in a hundred reach p99",
			latencies: append(repeat(ms, 98), time.Second, time.Second), p50: ms, p95: ms, p99: time.Second, max: time.Second},
		{name: "microseconds", latencies: seq(1000, time.Microsecond),
			p50: 500 * time.Microsecond, p95: 950 * time.Microsecond, p99: 990 * time.Microsecond, max: time.Millisecond},
		{name: "below the first bucket", latencies: []time.Duration{100, 200, 300, 400},
			p50: 200, p95: 400, p99: 400, max: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			// Record in reverse so order cannot matter.
			for _, d := range slices.Backward(tt.latencies) {
				h.record(d)
			}
			for _, c := range []struct {
				q    float64
				want time.Duration
			}{{0.50, tt.p50}, {0.95, tt.p95}, {0.99, tt.p99}, {1, tt.max}} {
				// Sub-microsecond values are clamped into the first bucket
				// and only its bounds are exact, so allow more there.
				tol := 0.01
				if tt.max < time.Microsecond {
					tol = 1
				}
				if got := h.quantile(c.q); !within(got, c.want, tol) {
					t.Errorf("quantile(%v) = %v, want %v (within %.0f%%)", c.q, got, c.want, tol*100)
				}
			}
			if got, want := h.max, tt.max; got != want {
				t.Errorf("max = %v, want %v", got, want)
			}
			if got, want := h.n, uint64(len(tt.latencies)); got != want {
				t.Errorf("count = %d, want %d", got, want)
			}
		})
	}
}

func TestHistogramMatchesExactPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var parts [4]histogram
	all := make([]time.Duration, 0, 20000)
	for i := range 20000 {
		// Log-normal around 2 ms with a long tail, as loaded servers show.
		d := time.Duration(math.Exp(math.Log(2e6) + 0.8*r.NormFloat64()))
		all = append(all, d)
		parts[i%len(parts)].record(d)
	}
	var merged histogram
	for i := range parts {
		merged.merge(&parts[i])
	}
	slices.Sort(all)
	for _, q := range []float64{0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
		got, want := merged.quantile(q), nearestRank(all, q)
		if !within(got, want, 0.01) {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", q, got, want)
		}
	}
	if got, want := merged.min, all[0]; got != want {
		t.Errorf("min = %v, want %v", got, want)
	}
}

func TestHistogramEmpty(t *testing.T) {
	var h, empty histogram
	h.merge(&empty)
	if got := h.quantile(0.99); got != 0 {
		t.Errorf("quantile of empty histogram = %v, want 0", got)
	}
}

func TestBucketsCoverRange(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, time.Millisecond, time.Second, time.Hour} {
		i := bucketOf(d)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%v) = %d, out of range", d, i)
		}
		if d >= 2*time.Microsecond && d < 10*time.Minute {
			lo, hi := histMinNanos*math.Pow(histGrowth, float64(i)), histMinNanos*math.Pow(histGrowth, float64(i+1))
			if float64(d) < lo*0.999999 || float64(d) >= hi*1.000001 {
				t.Errorf("bucketOf(%v) = %d covering [%v, %v)", d, i, lo, hi)
			}
		}
	}
}
