package jobs_test

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/jobs"
)

// gcWatchingStore notes the garbage collector's pace while the run reads
// its window.
type gcWatchingStore struct {
	*store.Store
	during int
}

func (g *gcWatchingStore) TrainingRows(ctx context.Context, from, to time.Time, fn func(feedback.TrainingRow) error) error {
	g.during = debug.SetGCPercent(-1)
	debug.SetGCPercent(g.during)
	return g.Store.TrainingRows(ctx, from, to, fn)
}

// A run collects garbage at its own pace, not the server's GOGC=400 (its
// heap would grow to five times what it holds), and puts the server's
// back when it ends; a lower setting is left alone.
func TestTuneRunsAtItsOwnGCPace(t *testing.T) {
	ctx := context.Background()
	s := &gcWatchingStore{Store: openTuneStore(t, "sqlite")}
	seedHistory(t, s.Store, 20, 5)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, tt := range []struct{ before, during int }{{400, 50}, {20, 20}} {
		debug.SetGCPercent(tt.before)
		if _, err := (&jobs.Tuner{Store: s}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf}); err != nil {
			t.Fatal(err)
		}
		if s.during != tt.during {
			t.Errorf("GOGC %d: the run collected at %d, want %d", tt.before, s.during, tt.during)
		}
		if after := debug.SetGCPercent(tt.before); after != tt.before {
			t.Errorf("GOGC %d: %d after the run, want it back", tt.before, after)
		}
	}
}
