package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/model"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// fillQueue records open conversations (HOTLANE_BENCH_OPEN, default
// 10,000, decided in the last half hour) among closed ones imported with
// their outcome (HOTLANE_BENCH_CLOSED, default 100,000): a database that
// has grown.
func fillQueue(b *testing.B, st *store.Store) {
	ctx := context.Background()
	open, closed := envInt("HOTLANE_BENCH_OPEN", 10_000), envInt("HOTLANE_BENCH_CLOSED", 100_000)
	tiers := []model.Tier{model.TierUrgent, model.TierHigh, model.TierMedium, model.TierLow}
	teams := []string{"sales", "support", "retention", "enterprise-sales"}
	reasons := []byte(`[{"kind":"rule","name":"big-deal","contribution":2.5,"tier_floor":"high"},{"kind":"feature","name":"deal_size","contribution":0.8,"value":50000}]`)
	decision := func(conv string, i int, at time.Time) feedback.Decision {
		return feedback.Decision{ID: uuid.Must(uuid.NewV7()).String(), ConversationID: conv, Channel: []string{"web", "whatsapp"}[i%2],
			Signals: []byte(`{"deal_size":50000,"pricing_page_views":4}`), Score: float64(i%97) / 97, Tier: tiers[i%4],
			Reasons: reasons, Route: []byte(`{"team":"` + teams[i%4] + `","via":"route"}`), PolicyVersion: 1, OccurredAt: at, CreatedAt: at}
	}
	old := time.Now().UTC().Add(-30 * 24 * time.Hour)
	var rows []feedback.ImportedConversation
	for i := range closed {
		rows = append(rows, feedback.ImportedConversation{Decision: decision(fmt.Sprintf("closed-%d", i), i, old.Add(time.Duration(i)*time.Second)),
			Outcome: feedback.EventLost, EventID: uuid.Must(uuid.NewV7()).String()})
		if len(rows) == 5000 || i == closed-1 {
			if _, err := st.ImportHistory(ctx, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	now := time.Now().UTC()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range open {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := st.Record(ctx, decision(fmt.Sprintf("open-%d", i), i, now.Add(-time.Duration(i%1800)*time.Second))); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// BenchmarkQueuePage renders the queue page, as an agent's browser asks
// for it, over a queue of HOTLANE_BENCH_OPEN open conversations: the
// store's query (page and counts), the reasons and the template.
//
//	HOTLANE_TEST_POSTGRES=... go test -run '^$' -bench QueuePage -benchtime 200x ./server
func BenchmarkQueuePage(b *testing.B) {
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			h := newHarnessOn(b, openStoreAt(b, storetest.DSN(b, engine)), Config{Now: time.Now})
			h.publish(testPolicy)
			fillQueue(b, h.store)
			h.addUser("agent@example.com", feedback.RoleAgent, "sales")
			cookie := h.login("agent@example.com")
			for _, path := range []string{"/", "/?tier=urgent", "/?mine=1"} {
				b.Run(path, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						rec := h.page(http.MethodGet, path, nil, cookie, nil)
						if rec.Code != http.StatusOK {
							b.Fatalf("%s = %d", path, rec.Code)
						}
					}
				})
			}
		})
	}
}
