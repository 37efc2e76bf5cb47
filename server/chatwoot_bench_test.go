package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// BenchmarkChatwootWebhook handles signed message_created webhooks
// through the Gin engine, as Chatwoot sends them: signature, delivery
// receipt, the conversation's memory, the decision committed by the
// writer, and the write-back planned and queued. It runs on a database
// that has grown (fillQueue) with HOTLANE_BENCH_CHATWOOT conversations
// (default 1,000) taking the messages in turn; it reports the p50 and p99
// of one webhook's handling besides the mean.
//
//	HOTLANE_TEST_POSTGRES=... go test -run '^$' -bench ChatwootWebhook -benchtime 5000x ./server
func BenchmarkChatwootWebhook(b *testing.B) {
	convs := envInt("HOTLANE_BENCH_CHATWOOT", 1000)
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			cfg := cwConfig(cwSecret)
			h := newHarnessOn(b, openStoreAt(b, storetest.DSN(b, engine)), Config{Now: time.Now, Chatwoot: cfg})
			h.publish(testPolicy)
			fillQueue(b, h.store)
			var msgID atomic.Int64
			body := func() []byte {
				id := msgID.Add(1)
				conv := id % int64(convs)
				now := time.Now().Unix()
				return []byte(fmt.Sprintf(`{"event":"message_created","id":%d,"message_type":"incoming","private":false,
  "content":"Can we get pricing for 50 seats?","created_at":"%s","account":{"id":1},
  "conversation":{"id":%d,"inbox_id":3,"channel":"Channel::WebWidget","status":"open","labels":["vip"],
    "custom_attributes":{"deal_size":%d,"plan":"pro","owner":"sam@example.com"},
    "additional_attributes":{"browser":{"browser_name":"Chrome"},"referer":"https://www.example.com/pricing"},
    "meta":{"sender":{"id":%d,"custom_attributes":{"country":"DE"}},"assignee":null,"team":null},
    "waiting_since":%d,"created_at":%d,"priority":null}}`,
					id, time.Now().UTC().Format(time.RFC3339), conv+1, 5000+conv*100, conv+1, now-60, now-120))
			}
			post := func(b *testing.B, payload []byte) {
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				req := httptest.NewRequest(http.MethodPost, "/v1/integrations/chatwoot", strings.NewReader(string(payload)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Chatwoot-Delivery", "d-"+strconv.FormatInt(msgID.Load(), 10)+"-"+ts)
				req.Header.Set("X-Chatwoot-Timestamp", ts)
				req.Header.Set("X-Chatwoot-Signature", SignChatwoot(cwSecret, ts, payload))
				rec := httptest.NewRecorder()
				h.srv.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"scored"`) {
					b.Fatalf("webhook: %d %s", rec.Code, rec.Body.String())
				}
			}
			var took []time.Duration
			b.ResetTimer()
			for b.Loop() {
				payload := body()
				start := time.Now()
				post(b, payload)
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			if n := len(took); n > 0 {
				b.ReportMetric(float64(took[n/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(took[n*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
