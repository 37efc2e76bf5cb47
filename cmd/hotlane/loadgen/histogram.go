package loadgen

import (
	"math"
	"time"
)

// The latency histogram has logarithmic buckets growing by 1% from 1µs, so a
// percentile read from a bucket's geometric middle is within 0.5% of the
// true value, recording never allocates, and its size does not depend on
// how many requests a round makes. The last bucket starts near 20 minutes.
const (
	histMinNanos = 1e3
	histGrowth   = 1.01
	histBuckets  = 2100
)

var histLogGrowth = math.Log(histGrowth)

// histogram counts latencies in fixed logarithmic buckets and keeps the
// exact minimum and maximum. It is not safe for concurrent use: each worker
// owns one, and they are merged after a round.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max time.Duration
}

// bucketOf returns the bucket holding d.
func bucketOf(d time.Duration) int {
	if float64(d) < histMinNanos*histGrowth {
		return 0
	}
	i := int(math.Log(float64(d)/histMinNanos) / histLogGrowth)
	return min(max(i, 0), histBuckets-1)
}

// bucketValue returns the geometric middle of bucket i.
func bucketValue(i int) time.Duration {
	return time.Duration(histMinNanos * math.Pow(histGrowth, float64(i)+0.5))
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(d)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1): the smallest
// recorded latency such that at least q of all latencies are at or below
// it, to within the bucket resolution. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketValue(i), h.min), h.max)
		}
	}
	return h.max
}
