package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// TestMain lets the test binary stand in for the hotlane binary: with
// HOTLANE_TEST_MAIN set it runs the program with the arguments that follow
// "--" and exits, so a test can kill a real server process.
func TestMain(m *testing.M) {
	if os.Getenv("HOTLANE_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"hotlane"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestKilledServerLosesNothingAcknowledged kills a serving process with
// SIGKILL in the middle of a load and checks that every decision it had
// answered 200 for is in the database.
func TestKilledServerLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dsn := testDSN(t, engine)
			addr := freeAddr(t)
			cmd, key := startProcess(t, "--demo", "--demo-history=false", "--addr", addr, "--db", dsn, "--log-level", "warn")
			waitReady(t, "http://"+addr+"/readyz")

			var mu sync.Mutex
			var acked []string
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			client := &http.Client{Timeout: 10 * time.Second}
			for w := range 8 {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						body := fmt.Sprintf(`{"conversation_id":"k-%d-%d","channel":"web","signals":{"deal_size":%d}}`, w, i%7, i*1000)
						req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/score", strings.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+key)
						resp, err := client.Do(req)
						if err != nil {
							return // the server is gone
						}
						var out struct {
							DecisionID string `json:"decision_id"`
						}
						_ = json.NewDecoder(resp.Body).Decode(&out)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK && out.DecisionID != "" {
							mu.Lock()
							acked = append(acked, out.DecisionID)
							mu.Unlock()
						}
					}
				})
			}
			time.Sleep(1500 * time.Millisecond)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			cancel()
			wg.Wait()
			if len(acked) < 10 {
				t.Fatalf("only %d decisions acknowledged before the kill", len(acked))
			}

			store, err := store.Open(context.Background(), dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for _, id := range acked {
				if _, err := store.Decision(context.Background(), id); err != nil {
					t.Fatalf("acknowledged decision %s is missing after the kill: %v (of %d acknowledged)", id, err, len(acked))
				}
			}
			t.Logf("%d acknowledged decisions all present after SIGKILL", len(acked))
		})
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func testDSN(t *testing.T, engine string) string {
	t.Helper()
	return storetest.DSN(t, engine)
}
