package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback/store/storetest"
)

// startProcess runs `hotlane serve` as a child process (the test binary
// standing in for hotlane) and returns it with the demo key it printed,
// if any.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--", "serve"}, args...)...)
	cmd.Env = append(os.Environ(), "HOTLANE_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	keyCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`hl_\S+`)
		sent := false
		for sc.Scan() {
			if k := re.FindString(sc.Text()); k != "" && !sent {
				keyCh <- k
				sent = true
			}
		}
		close(keyCh)
	}()
	for _, a := range args {
		if a == "--demo" {
			select {
			case k := <-keyCh:
				return cmd, k
			case <-time.After(60 * time.Second):
				t.Fatal("the server printed no demo key")
			}
		}
	}
	return cmd, ""
}

// TestOutboxSurvivesKill fires alerts on a server that never gets to send
// them, kills it with SIGKILL, starts a new process on the same database,
// and checks that every fired alert reaches the webhook.
func TestOutboxSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	for _, engine := range storetest.Engines {
		t.Run(engine, func(t *testing.T) {
			dsn := storetest.DSN(t, engine)
			rcv := &signedReceiver{}
			hook := httptest.NewServer(rcv)
			defer hook.Close()

			addr := freeAddr(t)
			// The first process only takes alerts: it runs no delivery
			// worker, so every alert is still in the outbox at the kill.
			proc, key := startProcess(t, "--demo", "--demo-history=false", "--addr", addr, "--db", dsn, "--log-level", "error", "--allow-destination-ranges", "loopback",
				"--deliver=false")
			waitReady(t, "http://"+addr+"/readyz")
			c := client{t: t, base: "http://" + addr, key: key}
			rcv.subscribe(c, "enterprise-sales", hook.URL)
			fired := map[string]bool{}
			for i := range 10 {
				var out struct {
					Alert *struct {
						ID     string `json:"id"`
						Status string `json:"status"`
					} `json:"alert"`
				}
				body := fmt.Sprintf(`{"conversation_id":"kill-%d","channel":"web","signals":{"deal_size":60000,"lifecycle_stage":"customer"}}`, i)
				if code := c.call(http.MethodPost, "/v1/score", body, &out); code != http.StatusOK {
					t.Fatalf("score: %d", code)
				}
				if out.Alert != nil && out.Alert.Status == "fired" {
					fired[out.Alert.ID] = true
				}
			}
			if len(fired) != 10 {
				t.Fatalf("%d alerts fired, want 10", len(fired))
			}
			if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = proc.Wait()
			if n := len(rcv.deliveries()); n != 0 {
				t.Fatalf("%d deliveries before the kill; the test needs none", n)
			}

			addr = freeAddr(t)
			startProcess(t, "--addr", addr, "--db", dsn, "--log-level", "error", "--delivery-interval", "100ms", "--allow-destination-ranges", "loopback")
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				seen := map[string]bool{}
				for _, d := range rcv.deliveries() {
					seen[d.alertID] = true
				}
				if len(seen) >= len(fired) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			ids := map[string]string{}
			for _, d := range rcv.deliveries() {
				if !d.verified {
					t.Errorf("delivery %s failed the signature check", d.deliveryID)
				}
				if prev, ok := ids[d.alertID]; ok && prev != d.deliveryID {
					t.Errorf("alert %s delivered under two delivery ids %s and %s", d.alertID, prev, d.deliveryID)
				}
				ids[d.alertID] = d.deliveryID
			}
			for id := range fired {
				if _, ok := ids[id]; !ok {
					t.Errorf("fired alert %s never reached the webhook after the restart", id)
				}
			}
		})
	}
}
