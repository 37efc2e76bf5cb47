package model

import (
	"context"
	"math/rand/v2"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// The training benchmarks use one seeded synthetic dataset of 1M rows x
// 50 features (400 MB of float64), built once.
//
//	go test -run '^$' -bench 'Train|FitEncoder' -benchtime 3x ./model
var (
	bigOnce sync.Once
	bigData *Dataset
)

func bigDataset() *Dataset {
	bigOnce.Do(func() { bigData, _ = synthDataset(1_000_000, 50, 42) })
	return bigData
}

// peakHeap samples the live heap every few milliseconds until stop is
// closed, then returns the largest value seen, in bytes.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// BenchmarkTrainNewton1Mx50 reports, besides ns/op and B/op (what training
// allocates), peak-heap-MB: the largest live heap seen during training,
// the 400 MB dataset included.
func BenchmarkTrainNewton1Mx50(b *testing.B) {
	d := bigDataset()
	b.ReportAllocs()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	var fit Fit
	b.ResetTimer()
	for b.Loop() {
		var err error
		fit, err = Newton{}.Train(context.Background(), d, TrainOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(<-peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(fit.Iterations), "iterations")
	if !fit.Converged {
		b.Errorf("not converged after %d iterations", fit.Iterations)
	}
}

// BenchmarkFitEncoder1M fits an encoder on 1M rows of five signals: two
// numbers (one skewed), a boolean, a category and a sometimes-missing
// number.
func BenchmarkFitEncoder1M(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 7))
	plans := []string{"free", "pro", "business", "enterprise"}
	rows := make([]map[string]any, 1_000_000)
	for i := range rows {
		r := map[string]any{
			"deal_size": rng.ExpFloat64() * 5000,
			"score":     rng.NormFloat64(),
			"returning": rng.IntN(2) == 0,
			"plan":      plans[rng.IntN(len(plans))],
		}
		if rng.IntN(10) > 0 {
			r["wait_seconds"] = float64(rng.IntN(600))
		}
		rows[i] = r
	}
	b.ReportAllocs()
	b.ResetTimer()
	var enc Encoder
	for b.Loop() {
		enc = FitEncoder(rows, EncoderOptions{})
	}
	b.StopTimer()
	if len(enc.Features) == 0 {
		b.Fatal("no features")
	}
	b.ReportMetric(float64(len(enc.Features)), "features")
}

// TestTrainAllocations checks training allocates little beyond its
// parameters: the Hessian and per-block buffers, never a copy of the data.
func TestTrainAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100k-row dataset")
	}
	d, _ := synthDataset(100_000, 20, 5)
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (Newton{}).Train(context.Background(), d, TrainOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	data := int64(len(d.X) * 8)
	if got := res.AllocedBytesPerOp(); got > data/10 {
		t.Errorf("training allocates %d bytes per fit, want well under the data's %d", got, data)
	}
	t.Logf("%d bytes, %d allocs per fit of 100k x 20", res.AllocedBytesPerOp(), res.AllocsPerOp())
}
