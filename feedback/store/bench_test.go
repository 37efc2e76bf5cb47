package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// benchSignals is a realistic signal object of 50 keys.
var benchSignals = func() []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := range 50 {
		if i > 0 {
			b.WriteByte(',')
		}
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `"num_%d":%d.5`, i, i*37)
		case 1:
			fmt.Fprintf(&b, `"flag_%d":%t`, i, i%2 == 0)
		default:
			fmt.Fprintf(&b, `"cat_%d":"value-%d"`, i, i%7)
		}
	}
	b.WriteByte('}')
	return []byte(b.String())
}()

// BenchmarkRecordDecision measures committed decisions per second with about
// 128 concurrent callers (the load the HTTP bar uses) on 10,000
// conversations; ns/op is wall time per decision, the inverse of throughput.
func BenchmarkRecordDecision(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := openStore(b, e.dsn(b), Options{})
			ctx := context.Background()
			reasons := []byte(`[{"kind":"rule","name":"big-deal","contribution":2.5,"tier_floor":"high"},{"kind":"feature","name":"num_3","contribution":0.4,"value":111.5}]`)
			route := []byte(`{"team":"enterprise-sales","via":"route"}`)
			tiers := []model.Tier{model.TierLow, model.TierMedium, model.TierHigh, model.TierUrgent}
			b.SetParallelism(max(1, 128/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := feedback.Decision{
						ID:             uuid.Must(uuid.NewV7()).String(),
						ConversationID: fmt.Sprint("conv-", rand.IntN(10000)),
						Channel:        "whatsapp",
						Signals:        benchSignals,
						Score:          rand.Float64(),
						Tier:           tiers[rand.IntN(len(tiers))],
						Reasons:        reasons,
						Route:          route,
						PolicyVersion:  1,
						LatencyMicros:  120,
					}
					if _, err := s.RecordDecision(ctx, d); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
