package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
)

// BenchmarkChatwootClaim claims and finishes Chatwoot writes four at a
// time, as the writer does, with HOTLANE_BENCH_PENDING writes pending
// (default 100,000, two per conversation) among twice as many delivered:
// the write-back outbox after a long Chatwoot outage.
//
//	HOTLANE_TEST_POSTGRES=... go test -run '^$' -bench ChatwootClaim -benchtime 1000x ./feedback/store
func BenchmarkChatwootClaim(b *testing.B) {
	pending := 100_000
	if n, err := strconv.Atoi(os.Getenv("HOTLANE_BENCH_PENDING")); err == nil && n > 0 {
		pending = n
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := openStore(b, e.dsn(b), Options{})
			ctx := context.Background()
			at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			var rows []chatwootWriteRow
			for i := range 3 * pending {
				st := feedback.DeliveryDelivered
				if i%3 == 0 {
					st = feedback.DeliveryPending
				}
				rows = append(rows, chatwootWriteRow{ID: uuid.Must(uuid.NewV7()).String(), ConversationID: fmt.Sprintf("chatwoot-1-%d", i%(pending/2)),
					AccountID: 1, DisplayID: int64(i % (pending / 2)), Kind: feedback.ChatwootNote, Lane: feedback.ChatwootNote, Body: "{}",
					Status: st, NextAttemptAt: at, CreatedAt: at.Add(time.Duration(i) * time.Microsecond)})
				if len(rows) == 2000 {
					if err := s.db.Create(&rows).Error; err != nil {
						b.Fatal(err)
					}
					rows = rows[:0]
				}
			}
			if len(rows) > 0 {
				if err := s.db.Create(&rows).Error; err != nil {
					b.Fatal(err)
				}
			}
			s.db.Exec("ANALYZE")
			now := at.Add(time.Hour)
			for b.Loop() {
				got, err := s.ClaimChatwootWrites(ctx, now, time.Minute, 4)
				if err != nil || len(got) == 0 {
					b.Fatal(len(got), err)
				}
				for _, w := range got {
					if err := s.FinishChatwootWrite(ctx, feedback.ChatwootOutcome{ID: w.ID, Claim: w.Claim, At: now, StatusCode: 200, Delivered: true}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
