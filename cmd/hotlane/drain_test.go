package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// TestShutdownDrains stops a server in the middle of a load: every request
// answered before the stop is committed, none is answered with a server
// error, and serve returns cleanly once the decision writer has drained.
func TestShutdownDrains(t *testing.T) {
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			dsn := storetest.DSN(t, engine)
			srv := startServe(t, "--db", dsn, "--demo", "--demo-history=false", "--log-level", "error")
			addr, key := srv.addr, srv.key

			var mu sync.Mutex
			var acked []string
			var bad []string
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					client := &http.Client{Timeout: 10 * time.Second}
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						body := fmt.Sprintf(`{"conversation_id":"drain-%d-%d","channel":"web","signals":{"deal_size":%d}}`, w, i%5, i*100)
						req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/score", strings.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+key)
						resp, err := client.Do(req)
						if err != nil {
							continue // refused or closed once the server stops listening
						}
						var out struct {
							DecisionID string `json:"decision_id"`
						}
						_ = json.NewDecoder(resp.Body).Decode(&out)
						resp.Body.Close()
						mu.Lock()
						if resp.StatusCode == http.StatusOK {
							acked = append(acked, out.DecisionID)
						} else {
							bad = append(bad, fmt.Sprint(resp.StatusCode))
						}
						mu.Unlock()
					}
				})
			}
			time.Sleep(300 * time.Millisecond)
			if err := srv.stop(t); err != nil {
				t.Errorf("serve after shutdown: %v", err)
			}
			close(stop)
			wg.Wait()
			if len(bad) > 0 {
				t.Errorf("answers other than 200 during the shutdown: %v", bad)
			}
			if len(acked) == 0 {
				t.Fatal("no request was answered before the shutdown")
			}
			store, err := store.Open(context.Background(), dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for _, id := range acked {
				if _, err := store.Decision(context.Background(), id); err != nil {
					t.Fatalf("decision %s answered before the shutdown is missing: %v", id, err)
				}
			}
		})
	}
}
